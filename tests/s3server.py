"""A real S3 endpoint for tests: moto's server over HTTP on 127.0.0.1, one per test session.

Use it from a test module with::

    pytest_plugins = ["s3server"]

    def test_something(s3_server: str, s3_bucket: str) -> None:
        store = open_store(s3_bucket, endpoint_url=s3_server)

``s3_server`` is the endpoint URL ("http://127.0.0.1:PORT"); ``s3_bucket`` is "s3://BUCKET/some-prefix"
for a bucket made fresh for each test. ``s3_bucket`` also points every AWS setting boto3 reads from the
environment at dummy values, so no real credentials, profile or config file is ever read.

(PYTEST_DONT_REWRITE: this module has no asserts, and test modules may import it before pytest
loads it as a plugin.)
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

REGION = "us-east-1"
ACCESS_KEY = "billcast-test"
SECRET_KEY = "billcast-test-secret"
# Everything boto3 would otherwise read from the environment or ~/.aws, pinned or removed.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
AWS_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
             "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")


@functools.cache
def s3_client(endpoint_url: str) -> Any:
    """A plain boto3 S3 client on the test endpoint, with explicit dummy credentials (one per endpoint)."""
    import boto3.session

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


def aws_test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point boto3's environment at dummy credentials and away from any real AWS configuration."""
    for name in AWS_UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1, started once per session: yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, uniquely named bucket on ``s3_server``: yields its store URL "s3://BUCKET/some-prefix"."""
    aws_test_env(monkeypatch)
    bucket = f"billcast-test-{uuid.uuid4().hex[:16]}"
    client = s3_client(s3_server)
    client.create_bucket(Bucket=bucket)
    yield f"s3://{bucket}/some-prefix"
    # Free moto's memory; a test may have removed objects or the bucket itself already.
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", ()):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)
    except client.exceptions.ClientError:
        pass

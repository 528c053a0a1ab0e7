"""Personal files in shared caches: nothing under r/<token>/ may be kept by a CDN past the link's life.

Every object of a recipient is published ``private`` with a max-age no longer than the link lives; only
the shared static files stay public and immutable. ``billcast expire`` also purges a configured CDN
(CloudFront through moto's server here) before it marks the recipients expired.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from billcast.jobs.campaign import load_campaign
from billcast.jobs.cdn import purge_paths
from billcast.jobs.ledger import Ledger
from billcast.jobs.publish import Extra, publish_recipient, publish_static
from billcast.jobs.run import expire_campaign
from billcast.jobs.store import open_store
from billcast.microsite import Site
from billcast.renderer import PublishError

from s3server import aws_test_env
from test_campaign_run import good_records, write_campaign

pytest_plugins = ["s3server"]
TOKENS = ["T" * 21 + str(i) for i in range(3)]


def site(media: Path) -> Site:
    for name in ("video.mp4", "poster.jpg", "captions.vtt"):
        (media / name).write_bytes(name.encode())
    return Site(files={"index.html": b"<p>page</p>"},
                copies={f"m/{'a' * 16}/{name}": media / name for name in ("video.mp4", "poster.jpg", "captions.vtt")})


def test_personal_files_are_private_for_no_longer_than_the_link_lives(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/store")
    (tmp_path / "media").mkdir()
    publish_recipient(store, TOKENS[0], "a" * 64, site(tmp_path / "media"),
                      [Extra("qr.png", data=b"qr"), Extra("thumb.gif", data=b"gif")], link_seconds=1800)
    static = publish_static(store, {"static/site.css": b"body{}"})
    for key in store.list(f"r/{TOKENS[0]}/"):
        cache = store.head(key).cache_control
        assert "public" not in cache, key
        assert cache == "no-store" or cache.startswith("private"), key
        age = re.search(r"max-age=(\d+)", cache)
        assert age is None or int(age.group(1)) <= 1800, key
    assert store.head(f"r/{TOKENS[0]}/m/{'a' * 16}/video.mp4").cache_control == "private, max-age=1800, immutable"
    assert store.head(f"r/{TOKENS[0]}/qr.png").cache_control == "private, max-age=1800"
    assert store.head(static + "site.css").cache_control == "public, max-age=31536000, immutable"


def published_campaign(tmp_path: Path, extra: str = ""):
    """A campaign whose ledger holds three recipients published 61 days ago, with their files in the store."""
    campaign = load_campaign(write_campaign(tmp_path, good_records()[:1], extra=extra))
    store = open_store(campaign.store)
    ledger = Ledger(campaign.ledger)
    ledger.ensure_campaign(campaign.id, link_days=campaign.link_days)
    then = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=61)
    for n, token in enumerate(TOKENS):
        store.put_bytes(f"r/{token}/index.html", b"<p>page</p>")
        ledger.record_published(campaign_id=campaign.id, customer_id=f"C-{n}", token=token, storyboard="s",
                                variant="", amount_due=Decimal("1.00"), currency="EUR", content_hash="h" * 64,
                                published_at=then, expires_at=then + dt.timedelta(days=60))
    ledger.close()
    return campaign, store


@pytest.fixture
def cloudfront(s3_server: str, monkeypatch: pytest.MonkeyPatch):
    """A CloudFront distribution on moto's server, boto3 pointed at it: yields (client, distribution id)."""
    import boto3

    aws_test_env(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFRONT", s3_server)
    client = boto3.session.Session().client("cloudfront")
    answer = client.create_distribution(DistributionConfig={
        "CallerReference": uuid.uuid4().hex, "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "origin.test",
                                               "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                                                      "OriginProtocolPolicy": "https-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "https-only",
                                 "MinTTL": 0, "ForwardedValues": {"QueryString": False,
                                                                  "Cookies": {"Forward": "none"}}}})
    yield client, answer["Distribution"]["Id"]


def test_expire_purges_the_cdn_of_the_expired_recipients(tmp_path: Path, cloudfront) -> None:
    client, distribution = cloudfront
    campaign, store = published_campaign(tmp_path, extra=f'cdn = "cloudfront:{distribution}"\n')
    assert expire_campaign(campaign) == 3
    assert not list(store.list("r/"))
    listed = client.list_invalidations(DistributionId=distribution)["InvalidationList"]
    assert listed["Quantity"] == 1
    batch = client.get_invalidation(DistributionId=distribution, Id=listed["Items"][0]["Id"])
    paths = batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    assert sorted(paths) == [f"/r/{token}/*" for token in TOKENS]
    assert expire_campaign(campaign) == 0  # nothing more is due: no second invalidation
    assert client.list_invalidations(DistributionId=distribution)["InvalidationList"]["Quantity"] == 1


def test_a_refused_purge_leaves_the_recipients_due_for_the_next_run(tmp_path: Path, cloudfront) -> None:
    campaign, store = published_campaign(tmp_path, extra='cdn = "cloudfront:ENOSUCHDISTRIBUTION"\n')
    with pytest.raises(PublishError, match="cdn cloudfront:ENOSUCHDISTRIBUTION: the invalidation failed") as info:
        expire_campaign(campaign)
    assert not any(token in str(info.value) for token in TOKENS)
    assert not list(store.list("r/"))  # taken down at the origin all the same
    ledger = Ledger(campaign.ledger)
    assert ledger.counts(campaign.id)["published"] == 3  # still due: the next run purges again
    ledger.close()


def test_many_recipients_are_purged_with_one_path_and_below_the_public_path() -> None:
    assert purge_paths("https://bills.example/billcast/", ["a", "b"]) == ["/billcast/r/a/*", "/billcast/r/b/*"]
    assert purge_paths("https://bills.example", [f"t{i}" for i in range(11)]) == ["/r/*"]


@pytest.mark.parametrize("value", ["cloudfront:", "cloudfront:e2qw", "fastly:abc", "cloudfront:ABC/../x"])
def test_an_unknown_cdn_is_refused_when_the_campaign_loads(tmp_path: Path, value: str) -> None:
    from billcast.jobs.campaign import CampaignError

    with pytest.raises(CampaignError, match="cdn"):
        load_campaign(write_campaign(tmp_path, good_records()[:1], extra=f'cdn = "{value}"\n'))

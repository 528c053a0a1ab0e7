"""The object-store contract, run against both backends: a folder under tmp_path and S3 on moto over HTTP."""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import os
import pickle
import socket
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from billcast.jobs.store import (IMMUTABLE, NO_STORE, PRIVATE, FolderStore, ObjectInfo, ObjectNotFound, ObjectStore,
                        S3Store, guess_content_type, open_store)
from billcast.renderer import BillcastError, PublishError
from s3server import AWS_ENV, AWS_UNSET, aws_test_env, s3_client

pytest_plugins = ["s3server"]

MiB = 1024 * 1024
THRESHOLD = 1 * MiB  # lowered from 8 MiB; boto3 never makes parts smaller than 5 MiB
TEMP_MARK = ".billcast-tmp-"


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """Each backend, small enough to exercise multipart uploads, pagination and delete batches quickly."""
    if request.param == "folder":
        return open_store(f"file://{tmp_path}/store")
    url = request.getfixturevalue("s3_bucket")
    return S3Store(url, endpoint_url=request.getfixturevalue("s3_server"), multipart_threshold=THRESHOLD,
                   multipart_chunksize=5 * MiB, delete_batch_size=3, list_page_size=2)


def raw_head(store: ObjectStore, key: str) -> dict:
    """What S3 itself says about an object, bypassing the store."""
    assert isinstance(store, S3Store)
    return s3_client(store.endpoint_url).head_object(Bucket=store.bucket, Key=store.prefix + key)


def files_under(root: Path) -> list[Path]:
    return sorted(Path(folder, name) for folder, _, names in os.walk(root) for name in names)


# ---------------------------------------------------------------- round trips


def test_put_bytes_get_round_trip(store: ObjectStore) -> None:
    objects = {"r/abc/cta.json": b'{"pay": 1}', "empty.bin": b"", "all-bytes.bin": bytes(range(256)) * 3,
               "r/tök/ünïcode name.txt": "grüße".encode()}
    for key, data in objects.items():
        store.put_bytes(key, data)
    for key, data in objects.items():
        assert store.get(key) == data
        assert store.exists(key)
        assert store.head(key).size == len(data)


def test_put_file_round_trip_leaves_the_source_alone(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "poster.jpg"
    data = b"\xff\xd8 not really a jpeg"
    source.write_bytes(data)
    store.put_file("r/t/poster.jpg", source)
    assert store.get("r/t/poster.jpg") == data
    assert source.read_bytes() == data
    source.write_bytes(b"changed later")  # the stored object is a copy, not a link
    assert store.get("r/t/poster.jpg") == data
    assert store.head("r/t/poster.jpg") == ObjectInfo("r/t/poster.jpg", len(data), "image/jpeg", PRIVATE, {})


def test_put_file_above_the_multipart_threshold(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "video.mp4"
    data = os.urandom(5 * MiB + 12345)  # two parts: 5 MiB and the rest
    source.write_bytes(data)
    store.put_file("r/t/video.mp4", source, cache_control=IMMUTABLE, metadata={"content-hash": "abc"})
    assert store.get("r/t/video.mp4") == data
    assert store.head("r/t/video.mp4") == ObjectInfo("r/t/video.mp4", len(data), "video/mp4", IMMUTABLE,
                                                     {"content-hash": "abc"})
    if isinstance(store, S3Store):
        assert raw_head(store, "r/t/video.mp4")["ETag"].strip('"').endswith("-2")


def test_put_file_of_a_missing_file_is_a_publish_error(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="nope.mp4"):
        store.put_file("x.mp4", tmp_path / "nope.mp4")
    assert not store.exists("x.mp4")


# ---------------------------------------------------------------- headers


def test_head_returns_the_headers_given(store: ObjectStore) -> None:
    store.put_bytes("seg/0f3a.mp4", b"video", content_type="video/mp4", cache_control=IMMUTABLE,
                    metadata={"content-hash": "0f3a", "renderer": "1.2.0"})
    assert store.head("seg/0f3a.mp4") == ObjectInfo("seg/0f3a.mp4", 5, "video/mp4", IMMUTABLE,
                                                    {"content-hash": "0f3a", "renderer": "1.2.0"})


@pytest.mark.parametrize(("key", "content_type", "cache_control"), [
    ("r/t/index.html", "text/html; charset=utf-8", NO_STORE),
    ("r/t/video.mp4", "video/mp4", PRIVATE),
    ("r/t/captions.vtt", "text/vtt; charset=utf-8", PRIVATE),
    ("r/t/thumb.GIF", "image/gif", PRIVATE),
    ("r/t/blob", "application/octet-stream", PRIVATE),
])
def test_head_applies_the_defaults(store: ObjectStore, key: str, content_type: str, cache_control: str) -> None:
    store.put_bytes(key, b"1234")
    assert store.head(key) == ObjectInfo(key, 4, content_type, cache_control, {})


def test_html_default_cache_follows_an_explicit_content_type(store: ObjectStore) -> None:
    store.put_bytes("r/t/page", b"<p>", content_type="text/html; charset=utf-8")
    assert store.head("r/t/page").cache_control == NO_STORE


@pytest.mark.parametrize(("key", "expected"), [
    ("a/index.html", "text/html; charset=utf-8"), ("v.mp4", "video/mp4"), ("p.jpg", "image/jpeg"),
    ("p.png", "image/png"), ("t.gif", "image/gif"), ("c.vtt", "text/vtt; charset=utf-8"),
    ("s.css", "text/css; charset=utf-8"), ("s.js", "text/javascript; charset=utf-8"),
    ("cta.json", "application/json"), ("f.ttf", "font/ttf"), ("OFL.txt", "text/plain; charset=utf-8"),
    ("r.csv", "text/csv; charset=utf-8"), ("x.tar.gz", "application/octet-stream"),
    ("no-extension", "application/octet-stream"), (".html/x", "application/octet-stream"),
])
def test_guess_content_type(key: str, expected: str) -> None:
    assert guess_content_type(key) == expected


def test_overwrite_replaces_body_and_headers(store: ObjectStore) -> None:
    store.put_bytes("r/t/index.html", b"<p>old</p>", metadata={"content-hash": "old"})
    store.put_bytes("r/t/index.html", b"new", content_type="text/plain; charset=utf-8", cache_control=IMMUTABLE)
    assert store.get("r/t/index.html") == b"new"
    assert store.head("r/t/index.html") == ObjectInfo("r/t/index.html", 3, "text/plain; charset=utf-8",
                                                      IMMUTABLE, {})


@pytest.mark.parametrize("headers", [
    {"content_type": "text/html\r\nX-Evil: 1"}, {"cache_control": " no-store"}, {"content_type": ""},
    {"metadata": {"Content-Hash": "x"}}, {"metadata": {"hash": "naïve"}}, {"metadata": {"a b": "x"}},
    {"metadata": {"big": "x" * 2100}},
])
def test_headers_that_cannot_travel_raise_value_error(store: ObjectStore, headers: dict) -> None:
    with pytest.raises(ValueError):
        store.put_bytes("k.txt", b"x", **headers)
    assert not store.exists("k.txt")


# ---------------------------------------------------------------- missing keys


def test_missing_keys(store: ObjectStore) -> None:
    store.put_bytes("a/b.txt", b"x")
    for key in ("nope.txt", "a", "a/b.txt/c", "a/c.txt"):
        assert store.head(key) is None
        assert not store.exists(key)
        with pytest.raises(ObjectNotFound) as caught:
            store.get(key)
        assert isinstance(caught.value, PublishError) and caught.value.exit_code == 5
        assert str(caught.value) == f"{store.url}: {key}: no such object"


def test_object_not_found_pickles() -> None:
    error = pickle.loads(pickle.dumps(ObjectNotFound("s3://b/p", "r/t/x.mp4")))
    assert (error.url, error.key, str(error)) == ("s3://b/p", "r/t/x.mp4", "s3://b/p: r/t/x.mp4: no such object")
    assert isinstance(error, BillcastError)


# ---------------------------------------------------------------- list and delete

KEYS = ["b/2.txt", "a/1.txt", "a/sub/3.txt", "a-z.txt", "a/10.txt", "c.txt", "é.txt", "a/sub/deeper/4.txt"]


def test_list_is_sorted_nested_and_prefixed(store: ObjectStore) -> None:
    assert list(store.list()) == []
    for key in KEYS:
        store.put_bytes(key, key.encode(), metadata={"k": "v"})
    assert list(store.list()) == sorted(KEYS)  # "a-z.txt" sorts before "a/..." ("-" < "/"); no sidecars
    assert list(store.list("a/")) == ["a/1.txt", "a/10.txt", "a/sub/3.txt", "a/sub/deeper/4.txt"]
    assert list(store.list("a")) == ["a-z.txt", "a/1.txt", "a/10.txt", "a/sub/3.txt", "a/sub/deeper/4.txt"]
    assert list(store.list("a/1")) == ["a/1.txt", "a/10.txt"]
    assert list(store.list("a/sub/d")) == ["a/sub/deeper/4.txt"]
    assert list(store.list("zzz/")) == []
    assert list(store.list("c.txt")) == ["c.txt"]


def test_delete(store: ObjectStore) -> None:
    for key in KEYS:
        store.put_bytes(key, b"x")
    store.delete(["a/1.txt", "a/sub/3.txt", "missing.txt", "a/sub/deeper/4.txt", "b/2.txt", "b/none/x"])
    assert list(store.list()) == ["a-z.txt", "a/10.txt", "c.txt", "é.txt"]
    assert not store.exists("a/1.txt") and store.head("a/sub/3.txt") is None
    store.delete(store.list())  # a generator of the store's own listing
    assert list(store.list()) == []
    store.delete([])
    if isinstance(store, FolderStore):
        assert files_under(store.root) == []
        assert [p.name for p in store.root.iterdir()] in ([], [".billcast-meta"])  # empty folders pruned
        assert not any((store.root / ".billcast-meta").iterdir())


def test_delete_many_keys_in_batches(store: ObjectStore) -> None:
    keys = [f"batch/{i:02d}.txt" for i in range(11)]  # the S3 fixture deletes in batches of 3
    for key in keys:
        store.put_bytes(key, b"x")
    store.delete(reversed(keys))
    assert list(store.list()) == []


def test_s3_delete_objects_sends_content_md5(s3_server: str, s3_bucket: str) -> None:
    """Newer botocore sends only a CRC32; MinIO and other S3-compatible services want Content-MD5."""
    store = S3Store(s3_bucket, endpoint_url=s3_server)
    sent: list[tuple[bytes, str | bytes | None]] = []
    client = store._s3()
    client.meta.events.register("before-send.s3.DeleteObjects",
                                lambda request, **_: sent.append((request.body, request.headers.get("Content-MD5"))))
    store.put_bytes("k.txt", b"x")
    store.delete(["k.txt"])
    assert len(sent) == 1
    body, md5 = sent[0]
    assert md5 is not None
    assert (md5.decode() if isinstance(md5, bytes) else md5) == base64.b64encode(hashlib.md5(body).digest()).decode()


# ---------------------------------------------------------------- keys

GOOD_LONG_KEY = "/".join(["k" * 150] * 5)  # 754 bytes: fits under an S3 prefix too


@pytest.mark.parametrize("key", [
    "", "/abs", "a//b", "a/./b", "../x", "a/..", ".", "a\\b", "a/", "x" * 1025, "é" * 513, "a\x00b",
    ".billcast-meta/x", "a/.billcast-tmp-123",
])
def test_bad_keys_raise_value_error(store: ObjectStore, key: str) -> None:
    calls = [lambda: store.put_bytes(key, b"x"), lambda: store.get(key), lambda: store.head(key),
             lambda: store.exists(key), lambda: store.delete([key]), lambda: store.local_path(key)]
    for call in calls:
        with pytest.raises(ValueError):
            call()


@pytest.mark.parametrize("prefix", ["/a", "../", "a//", "a\\"])
def test_bad_list_prefixes_raise_value_error(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(ValueError):
        store.list(prefix)  # at the call, before any iteration


def test_long_and_dotted_keys_are_fine(store: ObjectStore) -> None:
    for key in (GOOD_LONG_KEY, ".hidden", "a/..b/.c", "x.billcast-y"):
        store.put_bytes(key, b"ok")
        assert store.get(key) == b"ok"
    assert list(store.list()) == sorted([GOOD_LONG_KEY, ".hidden", "a/..b/.c", "x.billcast-y"])


def test_local_path(store: ObjectStore) -> None:
    store.put_bytes("r/t/video.mp4", b"frames")
    path = store.local_path("r/t/video.mp4")
    if isinstance(store, FolderStore):
        assert path == store.root / "r" / "t" / "video.mp4" and path.read_bytes() == b"frames"
    else:
        assert path is None


# ---------------------------------------------------------------- opening


def test_open_store_file_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    relative = open_store("file://var/store", base=tmp_path)
    assert isinstance(relative, FolderStore) and relative.url == "file://var/store"
    assert relative.root == tmp_path / "var" / "store"
    relative.put_bytes("k.txt", b"here")
    assert (tmp_path / "var" / "store" / "k.txt").read_bytes() == b"here"

    monkeypatch.chdir(tmp_path)
    assert open_store("file://cwd/store").root == tmp_path / "cwd" / "store"
    absolute = open_store(f"file://{tmp_path}/abs", base=tmp_path / "ignored")
    assert absolute.root == tmp_path / "abs" and absolute.url == f"file://{tmp_path}/abs"


def test_open_store_s3_urls() -> None:
    store = open_store("s3://my-bucket/campaigns/2024-06/", endpoint_url="http://127.0.0.1:9", region="auto")
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.region) == ("my-bucket", "campaigns/2024-06/", "auto")
    assert store._client is None  # no client, no network, until the first call
    assert open_store("s3://my-bucket").prefix == ""


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://host/x", "ftp://host/x: store: unknown scheme 'ftp'"),
    ("var/store", "var/store: store: not a store URL"),
    ("", "<empty>: store: not a store URL"),
    ("file://", "file://: store: no folder given"),
    ("s3://", "s3://: store: expected s3://bucket"),
    ("s3://bad_bucket!/x", "s3://bad_bucket!/x: store: expected s3://bucket"),
    ("s3://bucket/a/../b", "s3://bucket/a/../b: store: bad key prefix"),
])
def test_open_store_rejects_bad_urls(url: str, message: str) -> None:
    with pytest.raises(PublishError) as caught:
        open_store(url)
    assert str(caught.value).startswith(message)


def test_unreachable_endpoint_is_a_publish_error(monkeypatch: pytest.MonkeyPatch) -> None:
    aws_test_env(monkeypatch)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3Store("s3://bucket/pre", endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)
    with pytest.raises(PublishError) as caught:
        store.put_bytes("r/t/index.html", b"SECRET-BODY")
    assert str(caught.value).startswith("s3://bucket/pre: r/t/index.html: put failed: Could not connect")
    assert "SECRET-BODY" not in str(caught.value)
    with pytest.raises(PublishError) as caught:
        store.get("r/t/index.html")
    assert not isinstance(caught.value, ObjectNotFound)


def test_missing_bucket_is_a_publish_error_not_a_missing_key(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_test_env(monkeypatch)
    store = open_store("s3://billcast-no-such-bucket/p", endpoint_url=s3_server)
    with pytest.raises(PublishError, match=r"s3://billcast-no-such-bucket/p: k\.txt: put failed: NoSuchBucket"):
        store.put_bytes("k.txt", b"x")
    with pytest.raises(PublishError, match="get failed: NoSuchBucket") as caught:
        store.get("k.txt")
    assert not isinstance(caught.value, ObjectNotFound)


# ---------------------------------------------------------------- pickling and processes


def put_in_worker(store: ObjectStore, key: str, data: bytes) -> bytes:
    store.put_bytes(key, data)
    return store.get(key)


def set_worker_env(env: dict[str, str], unset: tuple[str, ...]) -> None:
    for name in unset:
        os.environ.pop(name, None)
    os.environ.update(env)


@pytest.fixture(scope="module")
def workers() -> Iterator[ProcessPoolExecutor]:
    """Fresh interpreters (spawn, as Dask and macOS use), started once, with the dummy AWS settings."""
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn"), initializer=set_worker_env,
                             initargs=(AWS_ENV, AWS_UNSET)) as pool:
        yield pool


def test_pickled_store_works_here_and_in_another_process(store: ObjectStore, workers: ProcessPoolExecutor) -> None:
    store.put_bytes("before.txt", b"1")  # makes the S3 client, which must not travel
    copy = pickle.loads(pickle.dumps(store))
    assert copy == store and copy.url == store.url
    assert copy.get("before.txt") == b"1"
    copy.put_bytes("from-copy.txt", b"2")
    assert store.get("from-copy.txt") == b"2"
    assert workers.submit(put_in_worker, store, "from-worker.txt", b"3").result(timeout=60) == b"3"
    assert store.get("from-worker.txt") == b"3"


# ---------------------------------------------------------------- folder store atomicity

BODY_SIZE = 64 * 1024


def write_many(store: ObjectStore, writer: int, times: int) -> None:
    for _ in range(times):
        store.put_bytes("r/t/video.mp4", bytes([writer]) * BODY_SIZE, metadata={"writer": str(writer)})


def test_folder_concurrent_writers_leave_one_intact_object(tmp_path: Path, workers: ProcessPoolExecutor) -> None:
    store = open_store(f"file://{tmp_path}/store")
    store.put_bytes("r/t/video.mp4", b"\x00" * BODY_SIZE)
    jobs = [workers.submit(write_many, store, writer, 10) for writer in range(1, 4)]
    reads = 0
    while not all(job.done() for job in jobs) or reads == 0:  # a reader never sees a partial object
        data = store.get("r/t/video.mp4")
        assert len(data) == BODY_SIZE and data == data[:1] * BODY_SIZE
        reads += 1
    for job in jobs:
        job.result(timeout=60)
    data = store.get("r/t/video.mp4")
    assert data[0] in (1, 2, 3) and data == data[:1] * BODY_SIZE
    assert store.head("r/t/video.mp4").size == BODY_SIZE
    assert [p for p in files_under(store.root) if TEMP_MARK in p.name] == []


def test_folder_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/store")
    source = tmp_path / "big.bin"
    source.write_bytes(b"z" * (3 * MiB))
    for i in range(3):
        store.put_bytes(f"r/{i}/index.html", b"<p>")
        store.put_file(f"r/{i}/big.bin", source)
        store.put_bytes(f"r/{i}/index.html", b"<p>again")
    names = [p.relative_to(store.root).as_posix() for p in files_under(store.root)]
    assert not [n for n in names if TEMP_MARK in n]
    assert sorted(n for n in names if not n.startswith(".billcast-meta/")) == list(store.list())
    assert source.exists()


def test_folder_failed_overwrite_keeps_the_old_object_and_headers(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(f"file://{tmp_path}/store")
    store.put_bytes("r/t/index.html", b"old", metadata={"v": "1"})
    target = store.local_path("r/t/index.html")
    real_replace = os.replace

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == target:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr("billcast.jobs.store.folder.os.replace", failing_replace)
    with pytest.raises(PublishError, match=r"r/t/index\.html: cannot store: No space left on device"):
        store.put_bytes("r/t/index.html", b"new", content_type="text/plain", metadata={"v": "2"})
    monkeypatch.undo()
    assert store.get("r/t/index.html") == b"old"
    assert store.head("r/t/index.html") == ObjectInfo("r/t/index.html", 3, "text/html; charset=utf-8", NO_STORE,
                                                      {"v": "1"})
    assert not [p for p in files_under(store.root) if TEMP_MARK in p.name]


def test_folder_key_that_is_also_a_folder_is_a_publish_error(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/store")
    store.put_bytes("a", b"file")
    with pytest.raises(PublishError, match=r"a/b: cannot store: a file or folder is in the way"):
        store.put_bytes("a/b", b"x")
    assert store.get("a") == b"file" and list(store.list()) == ["a"]


def test_folder_file_placed_by_hand_gets_default_headers(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/store")
    (tmp_path / "store" / "r").mkdir(parents=True)
    (tmp_path / "store" / "r" / "index.html").write_bytes(b"<p>")
    assert store.head("r/index.html") == ObjectInfo("r/index.html", 3, "text/html; charset=utf-8", NO_STORE, {})
    assert list(store.list()) == ["r/index.html"]


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Even the folder tests and URL parsing never read a real AWS configuration."""
    aws_test_env(monkeypatch)
    yield

"""Paths as an attacker sends them, to the serving route and to the folder store behind it.

A link placed in a page's folder must not serve what it points to; a name the file system refuses
(a segment over 255 bytes) must be a 404, never a 500; traversal in any spelling stays a 404.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from billcast.jobs.campaign import load_campaign
from billcast.jobs.store import FolderStore, ObjectNotFound, open_store
from billcast.renderer import PublishError

from test_campaign_run import good_records, write_campaign
from test_service import app_for

TOKEN = "A" * 22
SECRET_TEXT = b"root:x:0:0 outside the store"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A campaign whose folder store holds one page, a file outside the store, and links to it."""
    monkeypatch.setenv("BILLCAST_TEST_SECRET", "s" * 40)
    campaign = load_campaign(write_campaign(tmp_path / "c", good_records()[:1]))
    store = open_store(campaign.store, base=tmp_path / "c")
    store.put_bytes(f"r/{TOKEN}/index.html", b"<p>page</p>")
    store.put_bytes(f"r/{TOKEN}/video.mp4", b"frames")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET_TEXT)
    page = store.root / "r" / TOKEN
    os.symlink(outside / "secret.txt", page / "link.txt")
    os.symlink(outside, page / "dir")
    os.symlink(page / "video.mp4", page / "inside.mp4")  # even a link that stays inside is not an object
    os.symlink(outside, store.root / "r" / ("B" * 22))
    return app_for(campaign, tmp_path).test_client(), store


@pytest.mark.parametrize("path", [f"/r/{TOKEN}/link.txt", f"/r/{TOKEN}/dir/secret.txt", f"/r/{TOKEN}/inside.mp4",
                                  f"/r/{'B' * 22}/secret.txt", f"/r/{'B' * 22}/"])
def test_symbolic_links_in_the_store_are_not_served(served, path: str) -> None:
    client, _ = served
    response = client.get(path)
    assert response.status_code == 404
    assert SECRET_TEXT not in response.data


def test_the_store_itself_follows_no_link(served) -> None:
    _, store = served
    for key in (f"r/{TOKEN}/link.txt", f"r/{TOKEN}/dir/secret.txt", f"r/{'B' * 22}/secret.txt"):
        assert store.head(key) is None
        with pytest.raises(ObjectNotFound):
            store.get(key)
        with pytest.raises(ObjectNotFound):
            store.open_local(key)
    assert list(store.list("r/")) == [f"r/{TOKEN}/index.html", f"r/{TOKEN}/video.mp4"]
    with pytest.raises(PublishError, match="symbolic link"):
        store.put_bytes(f"r/{TOKEN}/dir/planted.txt", b"x")
    with pytest.raises(PublishError, match="symbolic link"):
        store.delete([f"r/{TOKEN}/dir/secret.txt"])
    assert (Path(os.readlink(store.root / "r" / TOKEN / "dir")) / "secret.txt").read_bytes() == SECRET_TEXT


@pytest.mark.parametrize("segment", ["x" * 256, "é" * 200, "x" * 1000])
def test_a_name_too_long_for_the_file_system_is_a_404(served, segment: str) -> None:
    client, store = served
    assert client.get(f"/r/{TOKEN}/{segment}").status_code == 404
    assert client.get(f"/r/{segment}/index.html").status_code == 404
    assert client.get(f"/{segment}").status_code == 404
    key = f"r/{TOKEN}/{segment}"[:1024]
    assert store.head(key) is None
    with pytest.raises(ObjectNotFound):
        store.get(key)


@pytest.mark.parametrize("path", [
    "/r/%2e%2e/%2e%2e/outside/secret.txt", f"/r/{TOKEN}/../../outside/secret.txt", "/../outside/secret.txt",
    f"/r/{TOKEN}/..%2f..%2foutside/secret.txt", f"/r/{TOKEN}/%2e%2e%2f%2e%2e%2foutside%2fsecret.txt",
    f"/r/{TOKEN}/..\\..\\outside\\secret.txt", f"/r/{TOKEN}/%5c..%5csecret.txt", f"/r/{TOKEN}/index.html%00.txt",
    "/.billcast-meta/r/" + TOKEN + "/index.html", f"/r/{TOKEN}/.billcast-tmp-1", "//etc/passwd",
    f"/r/{TOKEN}//index.html", f"/r/{TOKEN}/./index.html", "/%2fetc%2fpasswd", "/r/" + "%c0%ae" * 2 + "/x",
])
def test_traversal_in_any_spelling_is_a_404(served, path: str) -> None:
    client, _ = served
    response = client.get(path)
    assert response.status_code in (404, 308)
    assert SECRET_TEXT not in response.data
    assert b"root:" not in response.data


def test_a_page_is_still_served_with_ranges(served) -> None:
    client, _ = served
    assert client.get(f"/r/{TOKEN}/").data == b"<p>page</p>"
    part = client.get(f"/r/{TOKEN}/video.mp4", headers={"Range": "bytes=1-3"})
    assert part.status_code == 206 and part.data == b"ram"


def test_only_pages_and_their_shared_files_are_served(served) -> None:
    """The store also holds the shared segment cache (personal frames) and whatever else a team put there."""
    client, store = served
    store.put_bytes("cache/segments/0123abcd.mp4", b"someone's frames")
    store.put_bytes("exports/2026-11.csv", b"customer_id,amount")
    store.put_bytes("static/0123456789abcdef/site.css", b"body{}")
    assert client.get("/cache/segments/0123abcd.mp4").status_code == 404
    assert client.get("/exports/2026-11.csv").status_code == 404
    assert client.get("/static/0123456789abcdef/site.css").data == b"body{}"


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "a\\..\\x", "a\x00b", ".billcast-meta/x"])
def test_the_store_refuses_traversal_keys(tmp_path: Path, key: str) -> None:
    store = FolderStore(f"file://{tmp_path}/store")
    for call in (lambda: store.get(key), lambda: store.head(key), lambda: store.put_bytes(key, b"x"),
                 lambda: store.open_local(key), lambda: store.delete([key])):
        with pytest.raises(ValueError):
            call()
    assert not (tmp_path / "x").exists()

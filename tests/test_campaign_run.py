"""``billcast run`` and ``billcast expire`` end to end, tiny: records in, pages in the store, ledger, manifest.

Videos are rendered at 160x90 so a whole campaign takes seconds; the store is a
folder (one run goes to S3 on moto's server), the ledger a SQLite file, all under tmp_path.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from billcast.jobs.campaign import load_campaign
from billcast.cli import main
from billcast.demo import sample_rules
from billcast.jobs.ledger import Ledger
from billcast.jobs.links import recipient_token
from billcast.jobs.run import expire_campaign
from billcast.jobs.store import open_store

from conftest import ROOT, sample
from s3server import aws_test_env

pytest_plugins = ["s3server"]
pytestmark = pytest.mark.slow

SECRET = "s" * 40
GOOD = ["IT-000123", "IT-000124", "DE-000456", "EG-000790", "US-001234", "US-001301"]
PERSONAL = ("email", "birth_date", "postcode", "account_number", "service_address", "first_name", "last_name")


def campaign_toml(folder: Path, *, store: str = "file://store", extra: str = "") -> str:
    return f"""\
id = "test-2026-11"
input = "customers.jsonl"
default_locale = "en-US"
store = "{store}"
public_url = "https://bills.lumen.test"
pay_url = "https://pay.lumen.test"
link_days = 60
link_secret_env = "BILLCAST_TEST_SECRET"
ledger = "sqlite:///ledger.db"
out = "out"
cache = "cache"
size = [160, 90]
{extra}
{sample_rules()}"""


def write_campaign(folder: Path, records: list, *, bad_lines: list[str] = (), **kw) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False) for r in records] + list(bad_lines)
    (folder / "customers.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "campaign.toml").write_text(campaign_toml(folder, **kw), encoding="utf-8")
    return folder / "campaign.toml"


def plain(customer_id: str) -> dict:
    """A sample record as plain JSON values (floats for quantities, strings for money, as in the file)."""
    line = next(line for line in (ROOT / "examples" / "customers.jsonl").read_text(encoding="utf-8").splitlines()
                if f'"customer_id": "{customer_id}"' in line)
    return json.loads(line)


def good_records() -> list[dict]:
    return [plain(cid) for cid in GOOD]


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("BILLCAST_TEST_SECRET", SECRET)
    monkeypatch.delenv("BILLCAST_CACHE_DIR", raising=False)


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def objects(folder: Path) -> dict[str, bytes]:
    store = open_store(f"file://{folder / 'store'}")
    return {key: store.get(key) for key in store.list()}


def token(customer_id: str) -> str:
    return recipient_token(SECRET.encode(), "test-2026-11", customer_id)


def run(path: Path, *args: str) -> int:
    return main(["run", str(path), "--quiet", *args])


# --- a whole campaign ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """One campaign of six good records and three bad lines, run once."""
    folder = tmp_path_factory.mktemp("campaign")
    mp = pytest.MonkeyPatch()
    mp.setenv("BILLCAST_TEST_SECRET", SECRET)
    bad = ['{"customer_id": "BAD-1", "first_name": "Ann", "currency": "EUR"}', "{not json",
           json.dumps({**plain("IT-000123"), "customer_id": "IT-000999", "currency": "EURO"})]
    bad.append(json.dumps({**plain("IT-000231"), "customer_id": "IT-000998",
                           "first_name": "Zeno " + "Lunghissimo" * 10}))  # a personal value that is refused
    path = write_campaign(folder, good_records(), bad_lines=bad)
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        code = main(["run", str(path), "--workers", "2"])  # the progress bar too (off when not a terminal)
    (folder / "output.txt").write_text(output.getvalue(), encoding="utf-8")
    mp.undo()
    return folder, path, code


def test_every_good_record_is_published_and_every_bad_one_listed(published) -> None:
    folder, _, code = published
    assert code == 3  # some refused, all others published
    errors = read_csv(folder / "out" / "errors.csv")
    assert {(e["line"], e["customer_id"]) for e in errors} >= {("7", "BAD-1"), ("8", ""), ("9", "IT-000999")}
    assert any(e["customer_id"] == "IT-000999" and e["field"] == "currency" for e in errors)
    assert any(e["customer_id"] == "BAD-1" and e["field"] == "bill" for e in errors)
    manifest = read_csv(folder / "out" / "manifest.csv")
    assert [m["customer_id"] for m in manifest] == GOOD + ["BAD-1", "", "IT-000999", "IT-000998"]  # input order
    assert [m["status"] for m in manifest] == ["published"] * 6 + ["refused"] * 4
    store = objects(folder)
    for row in manifest[:6]:
        t = token(row["customer_id"])
        assert row["link"] == f"https://bills.lumen.test/r/{t}/"
        for name in ("index.html", "poster.jpg", "thumb.gif", "qr.png"):
            assert f"r/{t}/{name}" in store
            assert row[{"index.html": "link", "poster.jpg": "poster_url", "thumb.gif": "thumb_url",
                        "qr.png": "qr_url"}[name]].endswith(f"r/{t}/{'' if name == 'index.html' else name}")
        local = folder / "out" / "recipients" / row["customer_id"]
        assert (local / "qr.png").read_bytes() == store[f"r/{t}/qr.png"]
        assert row["link"] in (local / "email.html").read_text(encoding="utf-8")


def test_pages_name_only_files_that_are_published(published) -> None:
    folder, _, _ = published
    store = objects(folder)
    pages = {k: v.decode() for k, v in store.items() if k.endswith("index.html")}
    assert len(pages) == 6
    statics = {k for k in store if k.startswith("static/")}
    assert len({k.split("/")[1] for k in statics}) == 1  # one shared static folder for the campaign
    import re

    for key, html in pages.items():
        base = key.rsplit("/", 1)[0] + "/"
        refs = re.findall(r'(?:src|href|poster)="([^"]+)"|url\("([^"]+)"\)', html)
        for ref in (a or b for a, b in refs):
            if ref.startswith(("http", "mailto:", "#")):
                continue
            target = os.path.normpath(base + ref)
            assert target in store, (key, ref)
        media = [k for k in store if k.startswith(base + "m/")]
        fonts = {k for k in media if "/fonts/" in k}
        assert {k.rsplit("/", 1)[1] for k in media if k not in fonts} == {"video.mp4", "poster.jpg", "captions.vtt",
                                                                           "paid.html"}
        assert fonts and all(k.rsplit("/", 1)[1] in html for k in fonts)  # the page's own fonts, named by it


def test_storyboards_and_variants_follow_the_rules(published) -> None:
    folder, _, _ = published
    rows = {m["customer_id"]: m for m in read_csv(folder / "out" / "manifest.csv")}
    records = {r["customer_id"]: r for r in good_records()}
    for cid in GOOD:
        debt = records[cid].get("debt")
        expected = ("firm_reminder" if debt and debt["days_past_due"] > 30 else
                    {"soft_reminder", "soft_reminder_b"} if debt else "bill_explainer")
        if isinstance(expected, set):
            assert rows[cid]["storyboard"] in expected and rows[cid]["variant"] in ("a", "b")
        else:
            assert rows[cid]["storyboard"] == expected and rows[cid]["variant"] == ""


def test_ledger_holds_one_row_per_recipient_with_its_amount(published) -> None:
    folder, path, _ = published
    ledger = Ledger(load_campaign(path).ledger)
    rows = list(ledger.recipients("test-2026-11"))
    ledger.close()
    assert sorted(r.customer_id for r in rows) == sorted(GOOD)
    for r in rows:
        record = sample(r.customer_id)
        debt = record.get("debt")
        assert r.amount_due == Decimal(debt["overdue_total"] if debt else record["bill"]["total"])
        assert r.currency == record["currency"] and r.status == "published" and r.token == token(r.customer_id)
        assert r.expires_at - r.published_at == dt.timedelta(days=60)
        assert r.days_past_due == (debt["days_past_due"] if debt else None)
        assert r.plan_installments == (debt["plan_offer"]["installments"] if debt and debt.get("plan_offer") else None)


def test_no_personal_data_in_keys_urls_logs_errors_or_ledger(published) -> None:
    folder, _, _ = published
    secrets = {str(sample(cid)[name]) for cid in GOOD for name in PERSONAL if sample(cid).get(name)}
    secrets |= {"Zeno", "Lunghissimo"}
    keys = " ".join(objects(folder))
    urls = (folder / "out" / "manifest.csv").read_text(encoding="utf-8")
    urls += (folder / "out" / "errors.csv").read_text(encoding="utf-8")
    urls += (folder / "output.txt").read_text(encoding="utf-8")
    assert "6 published" in urls
    con = sqlite3.connect(folder / "ledger.db")
    dump = "\n".join(con.iterdump())
    con.close()
    for value in secrets:
        assert value not in keys and value not in urls and value not in dump, value


def test_a_second_run_renders_nothing_and_changes_nothing(published, tmp_path) -> None:
    folder, path, _ = published
    before = {k: v for k, v in objects(folder).items()}
    mtimes = {p: p.stat().st_mtime_ns for p in (folder / "store").rglob("*") if p.is_file()}
    assert run(path) == 3
    assert objects(folder) == before
    assert {p: p.stat().st_mtime_ns for p in (folder / "store").rglob("*") if p.is_file()} == mtimes
    assert [m["status"] for m in read_csv(folder / "out" / "manifest.csv")][:6] == ["unchanged"] * 6


# --- changes, kills, failures ----------------------------------------------------------------------

def test_a_changed_record_is_republished_at_the_same_link(tmp_path) -> None:
    records = good_records()[:2]
    path = write_campaign(tmp_path, records)
    assert run(path) == 0
    t = token(records[0]["customer_id"])
    old = objects(tmp_path)
    records[0] = copy.deepcopy(records[0])
    records[0]["bill"]["total"] = "150.00"
    records[0]["bill"].pop("lines", None)
    write_campaign(tmp_path, records)
    assert run(path) == 0
    new = objects(tmp_path)
    manifest = read_csv(tmp_path / "out" / "manifest.csv")
    assert [m["status"] for m in manifest] == ["published", "unchanged"]
    assert new[f"r/{t}/index.html"] != old[f"r/{t}/index.html"]
    old_media = {k for k in old if k.startswith(f"r/{t}/m/")}
    new_media = {k for k in new if k.startswith(f"r/{t}/m/")}
    assert len([k for k in new_media if "/fonts/" not in k]) == 4 and not old_media & new_media  # old media gone
    ledger = Ledger(load_campaign(path).ledger)
    assert ledger.recipient("test-2026-11", records[0]["customer_id"]).amount_due == Decimal("150.00")
    assert len(list(ledger.recipients("test-2026-11"))) == 2
    ledger.close()


def test_killed_midway_then_resumed_equals_an_uninterrupted_run(tmp_path) -> None:
    records = good_records()
    whole = write_campaign(tmp_path / "whole", records)
    assert run(whole, "--workers", "2") == 0
    expected = objects(tmp_path / "whole")

    killed = write_campaign(tmp_path / "killed", records)
    env = {**os.environ, "BILLCAST_TEST_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "billcast.cli", "run", str(killed), "--quiet", "--workers", "2"],
                            env=env, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pages = tmp_path / "killed" / "store" / "r"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(pages.glob("*/index.html"))) >= 2:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list(pages.glob("*/index.html"))) < len(records), "the run finished before it could be killed"

    assert run(killed, "--workers", "2") == 0
    assert objects(tmp_path / "killed") == expected
    con = sqlite3.connect(tmp_path / "killed" / "ledger.db")
    rows = con.execute("select customer_id, count(*) from recipients group by customer_id").fetchall()
    con.close()
    assert sorted(rows) == sorted((cid, 1) for cid in GOOD)


def test_a_storyboard_that_cannot_take_a_record_refuses_it_and_the_rest_go_on(tmp_path) -> None:
    board = (ROOT / "storyboards" / "bill_explainer.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "needs_tags.yaml"
    broken.write_text(board.replace("name: bill_explainer", "name: needs_tags").replace(
        "    greeting: ", "    greeting: \"{{ tags.region }} \"\n    unused_greeting: ", 1), encoding="utf-8")
    records = [plain("US-001234"), {**plain("IT-000123"), "tags": {"region": "Nord"}}]
    path = write_campaign(tmp_path, records)
    text = path.read_text(encoding="utf-8").replace(str(ROOT / "storyboards" / "bill_explainer.yaml"), str(broken))
    path.write_text(text, encoding="utf-8")
    assert run(path) == 3
    errors = read_csv(tmp_path / "out" / "errors.csv")
    assert [(e["customer_id"], "region" in e["message"]) for e in errors] == [("US-001234", True)]
    store = objects(tmp_path)
    assert f"r/{token('IT-000123')}/index.html" in store
    assert not any(k.startswith(f"r/{token('US-001234')}/") for k in store)


def test_an_invalid_campaign_exits_2_naming_the_key(tmp_path, capsys) -> None:
    path = write_campaign(tmp_path, good_records()[:1])
    path.write_text(path.read_text().replace("link_days = 60", "link_days = 0"), encoding="utf-8")
    assert run(path) == 2
    assert "link_days" in capsys.readouterr().err


def test_without_a_secret_the_run_stops_before_anything(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("BILLCAST_TEST_SECRET")
    path = write_campaign(tmp_path, good_records()[:1])
    assert run(path) == 2
    assert "BILLCAST_TEST_SECRET" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_expire_takes_pages_down_and_marks_the_ledger(tmp_path) -> None:
    path = write_campaign(tmp_path, good_records()[:2])
    assert run(path) == 0
    campaign = load_campaign(path)
    assert expire_campaign(campaign, now=dt.datetime.now(dt.timezone.utc)) == 0
    assert expire_campaign(campaign, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=61)) == 2
    assert not any(k.startswith("r/") for k in objects(tmp_path))
    ledger = Ledger(campaign.ledger)
    assert ledger.counts("test-2026-11") == {"pending": 0, "published": 0, "expired": 2}
    ledger.close()
    assert main(["expire", str(path)]) == 0


def test_a_campaign_publishes_to_s3(tmp_path, s3_server, s3_bucket, monkeypatch) -> None:
    aws_test_env(monkeypatch)
    path = write_campaign(tmp_path, good_records()[:2], store=s3_bucket,
                          extra=f'store_endpoint_url = "{s3_server}"\n')
    assert run(path) == 0
    store = open_store(s3_bucket, endpoint_url=s3_server)
    t = token(GOOD[0])
    page = store.head(f"r/{t}/index.html")
    assert page.cache_control == "no-store" and page.content_type.startswith("text/html")
    media = [k for k in store.list(f"r/{t}/m/")]
    assert len([k for k in media if "/fonts/" not in k]) == 4
    video = store.head(next(k for k in media if k.endswith(".mp4")))
    assert "immutable" in video.cache_control and video.content_type == "video/mp4"
    font = store.head(next(k for k in media if k.endswith(".woff2")))
    assert "immutable" in font.cache_control and font.content_type == "font/woff2"
    assert store.head(next(k for k in media if k.endswith("paid.html"))).cache_control == "no-store"


def test_a_paid_recipient_page_goes_paid_and_stays_paid_when_republished(tmp_path) -> None:
    from billcast.jobs.publish import show_paid

    records = good_records()[1:2]  # a debtor
    path = write_campaign(tmp_path, records)
    assert run(path) == 0
    campaign = load_campaign(path)
    store = open_store(campaign.store)
    t = token(records[0]["customer_id"])
    unpaid = store.get(f"r/{t}/index.html")
    assert b"/pay/" in unpaid
    assert show_paid(store, t) and show_paid(store, t)  # idempotent
    paid = store.get(f"r/{t}/index.html")
    assert b"/pay/" not in paid and b"pay-card--paid" in paid
    assert store.head(f"r/{t}/index.html").metadata["page-state"] == "paid"
    assert not show_paid(store, token("NOBODY"))
    ledger = Ledger(campaign.ledger)
    ledger.mark_paid(t, dt.datetime.now(dt.timezone.utc))
    ledger.close()
    assert run(path) == 0  # unchanged: the paid page stays
    assert store.get(f"r/{t}/index.html") == paid
    records[0]["first_name"] = "Giuseppe Maria"
    write_campaign(tmp_path, records)
    assert run(path) == 0  # changed after paying: republished, still paid
    page = store.get(f"r/{t}/index.html")
    assert page != paid and b"pay-card--paid" in page and b"/pay/" not in page


def _paid_while_rendering(settings, tasks):
    """The recipient pays (the webhook marks it and puts the old page live as paid) while their page is made."""
    from billcast.jobs.publish import show_paid
    from billcast.jobs.run.worker import work_chunk

    with Ledger(os.environ["BILLCAST_TEST_LEDGER"]) as ledger:
        for task in tasks:
            ledger.mark_paid(task.token, dt.datetime.now(dt.timezone.utc))
            show_paid(open_store(settings.store_url), task.token)
    return work_chunk(settings, tasks)


def test_a_payment_made_while_a_run_republishes_the_page_leaves_it_paid(tmp_path, monkeypatch) -> None:
    from billcast.jobs.run import run_campaign

    records = good_records()[1:2]  # a debtor
    path = write_campaign(tmp_path, records)
    assert run(path) == 0
    records[0]["first_name"] = "Giuseppe Maria"  # changed: the next run makes the page again
    write_campaign(tmp_path, records)
    campaign = load_campaign(path)
    monkeypatch.setenv("BILLCAST_TEST_LEDGER", campaign.ledger)
    counts = run_campaign(campaign, secret=SECRET.encode(), work_fn=_paid_while_rendering, cache_dir=None)
    assert counts.published == 1
    page = open_store(campaign.store).get(f"r/{token(records[0]['customer_id'])}/index.html")
    assert b"Giuseppe Maria" in page and b"pay-card--paid" in page and b"/pay/" not in page


def test_an_upload_that_fails_midway_leaves_the_old_page_and_no_new_media(tmp_path) -> None:
    from billcast.jobs.publish import Extra, publish_recipient
    from billcast.jobs.store import FolderStore
    from billcast.microsite import Site
    from billcast.renderer import PublishError

    class Failing(FolderStore):
        def put_file(self, key, path, **kw):
            if key.endswith("captions.vtt"):
                raise PublishError("the store went away")
            super().put_file(key, path, **kw)

    media = tmp_path / "media"
    media.mkdir()
    for name in ("video.mp4", "poster.jpg", "captions.vtt"):
        (media / name).write_bytes(name.encode())
    t = token("IT-000123")

    def site(version: str) -> Site:
        return Site(files={"index.html": version.encode()},
                    copies={f"m/{version}/{name}": media / name for name in ("video.mp4", "poster.jpg", "captions.vtt")})

    store = FolderStore(f"file://{tmp_path / 'store'}")
    publish_recipient(store, t, "a" * 64, site("aaaaaaaaaaaaaaaa"), [Extra("qr.png", data=b"qr")], link_seconds=86400)
    before = {k: store.get(k) for k in store.list()}
    with pytest.raises(PublishError):
        publish_recipient(Failing(store.url), t, "b" * 64, site("bbbbbbbbbbbbbbbb"), link_seconds=86400)
    assert {k: store.get(k) for k in store.list()} == before  # the old page and its media, untouched


def test_the_paid_pages_own_fonts_are_published_and_go_with_their_version(tmp_path) -> None:
    from billcast.jobs.publish import publish_recipient, show_paid, unpublish
    from billcast.jobs.store import FolderStore
    from billcast.microsite import Site

    def site(version: str, page: bytes, fonts: tuple[str, ...]) -> Site:
        return Site(files={"index.html": page, **{f"m/{version}/fonts/{name}": name.encode() for name in fonts}},
                    copies={})

    store = FolderStore(f"file://{tmp_path / 'store'}")
    t = token("IT-000123")
    publish_recipient(store, t, "a" * 64, site("aaaaaaaaaaaaaaaa", b"open", ("A-1.woff2",)),
                      link_seconds=86400, paid_site=site("aaaaaaaaaaaaaaaa", b"paid", ("A-1.woff2", "B-2.woff2")))
    fonts = {k for k in store.list(f"r/{t}/") if k.endswith(".woff2")}
    assert fonts == {f"r/{t}/m/aaaaaaaaaaaaaaaa/fonts/A-1.woff2", f"r/{t}/m/aaaaaaaaaaaaaaaa/fonts/B-2.woff2"}
    assert show_paid(store, t) and store.get(f"r/{t}/index.html") == b"paid"
    publish_recipient(store, t, "b" * 64, site("bbbbbbbbbbbbbbbb", b"open 2", ("C-3.woff2",)), link_seconds=86400)
    assert {k for k in store.list(f"r/{t}/") if k.endswith(".woff2")} == {f"r/{t}/m/bbbbbbbbbbbbbbbb/fonts/C-3.woff2"}
    unpublish(store, t)
    assert list(store.list(f"r/{t}/")) == []  # expiring takes the fonts down with the rest

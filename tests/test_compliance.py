"""The debtor's rights: opting out (the page, the email link, RFC 8058's one click), disputing the amount, the
suppression list and disputes on the command line, send windows and the weekly cap.

Each request is made as an attacker would too: forged tokens, replays, posts from other sites, huge bodies.
The service is the real app over a SQLite ledger in tmp_path.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from billcast.cli import main
from billcast.jobs.campaign import Campaign
from billcast.jobs.contact import SendWindow, allowed_from, next_window
from billcast.jobs.ledger import Ledger
from billcast.service import create_app

from test_events import publish, settings_for, write_campaign

TOKENS = {"it": "ItOptOut_T0ken_0123456", "ar": "ArOptOut_T0ken_0123456", "en": "EnOptOut_T0ken_0123456"}
CUSTOMERS = {"it": ("IT-000124", "it-IT"), "ar": ("EG-000790", "ar-EG"), "en": ("US-001235", None)}
FORGED = "F0rgedT0ken_0123456789"
SECRET_WORDS = "Ho pagato il 3 ottobre con bonifico IBAN IT60X0542811101000000123456"


@pytest.fixture
def campaign(tmp_path: Path) -> Campaign:
    campaign = write_campaign(tmp_path / "campaign", "compliance-1")
    with Ledger(campaign.ledger) as ledger:
        ledger.ensure_campaign(campaign.id, link_days=60)
        for key, (customer, locale) in CUSTOMERS.items():
            publish(ledger, campaign.id, customer, TOKENS[key], amount_due="185.15", locale=locale)
    return campaign


@pytest.fixture
def client(campaign: Campaign):
    app = create_app(settings_for(campaign))
    app.config["TESTING"] = True
    yield app.test_client()
    app.extensions["billcast"].close()


def ledger_of(campaign: Campaign) -> Ledger:
    return Ledger(campaign.ledger)


def optouts(campaign: Campaign) -> list:
    with ledger_of(campaign) as ledger:
        return list(ledger.suppressions())


SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Origin": "null"}  # what Chromium sends from a no-referrer page


# --- opting out ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key, lang, direction, words", [
    ("it", "it-IT", "ltr", "Non inviarmi più questi messaggi"), ("ar", "ar-EG", "rtl", "إيقاف هذه الرسائل"),
    ("en", "en-US", "ltr", "Stop these messages")])
def test_the_opt_out_page_is_one_button_in_the_recipient_s_language(client: FlaskClient, campaign: Campaign,
                                                                     key: str, lang: str, direction: str,
                                                                     words: str) -> None:
    answer = client.get(f"/r/{TOKENS[key]}/optout")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and f'<html lang="{lang}" dir="{direction}">' in html
    assert html.count("<button") == 1 and words in html and "<script" not in html
    assert f'<form method="post" action="/r/{TOKENS[key]}/optout"' in html
    assert answer.headers["Cache-Control"] == "no-store" and "form-action 'self'" in answer.headers[
        "Content-Security-Policy"]
    assert optouts(campaign) == []  # looking is not opting out (mail scanners follow links)


def test_confirming_records_the_opt_out_once_with_no_personal_data(client: FlaskClient, campaign: Campaign) -> None:
    token = TOKENS["it"]
    answer = client.post(f"/r/{token}/optout", data={"confirm": "1"}, headers=SAME_ORIGIN)
    assert answer.status_code == 200 and "Non riceverai più questi messaggi" in answer.get_data(as_text=True)
    again = client.post(f"/r/{token}/optout", data={"confirm": "1"}, headers=SAME_ORIGIN)
    assert again.status_code == 200
    [entry] = optouts(campaign)
    assert (entry.customer_id, entry.channel, entry.reason, entry.source, entry.campaign_id) == (
        "IT-000124", "email", "optout", "page", campaign.id)
    assert "Non riceverai più" in client.get(f"/r/{token}/optout").get_data(as_text=True)  # says it is done


def test_one_click_is_200_without_a_redirect_and_a_replay_changes_nothing(client: FlaskClient,
                                                                          campaign: Campaign) -> None:
    token = TOKENS["en"]
    answers = [client.post(f"/r/{token}/optout", data={"List-Unsubscribe": "One-Click"},
                           headers={"Sec-Fetch-Site": "cross-site"} if n else {}) for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all("Location" not in a.headers for a in answers)
    multipart = client.post(f"/r/{token}/optout", data={"List-Unsubscribe": "One-Click"},
                            content_type="multipart/form-data")
    assert multipart.status_code == 200
    [entry] = optouts(campaign)
    assert (entry.customer_id, entry.source) == ("US-001235", "one_click")


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "https://evil.example"}])
def test_a_post_from_another_site_is_refused(client: FlaskClient, campaign: Campaign, headers: dict) -> None:
    for path, data in ((f"/r/{TOKENS['it']}/optout", {"confirm": "1"}),
                       (f"/r/{TOKENS['it']}/dispute", {"reason": "not_mine"})):
        answer = client.post(path, data=data, headers=headers)
        assert answer.status_code == 403
    assert optouts(campaign) == []
    with ledger_of(campaign) as ledger:
        assert ledger.disputes() == []


def test_forged_tokens_and_bad_bodies_change_nothing(client: FlaskClient, campaign: Campaign) -> None:
    for path in (f"/r/{FORGED}/optout", f"/r/{FORGED}/dispute", "/r/short/optout"):
        assert client.get(path).status_code == 404
        assert client.post(path, data={"List-Unsubscribe": "One-Click", "reason": "other"}).status_code == 404
    assert client.post("/r/..%2F..%2Fetc/optout", data={"List-Unsubscribe": "One-Click"}).status_code in (404, 405)
    assert client.post(f"/r/{TOKENS['it']}/optout", data={"confirm": "yes"}).status_code == 400
    assert client.post(f"/r/{TOKENS['it']}/optout", data={"List-Unsubscribe": "Two-Clicks"}).status_code == 400
    assert client.get(f"/r/{TOKENS['it']}/optout?confirm=1&List-Unsubscribe=One-Click").status_code == 200
    huge = client.post(f"/r/{TOKENS['it']}/optout", data={"confirm": "1", "pad": "x" * 100_000})
    assert huge.status_code == 413
    assert optouts(campaign) == []


def test_an_opted_out_customer_can_still_pay(client: FlaskClient, campaign: Campaign) -> None:
    token = TOKENS["it"]
    client.post(f"/r/{token}/optout", data={"List-Unsubscribe": "One-Click"})
    answer = client.get(f"/pay/{token}?option=full&src=email")
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/demo/checkout/cs_demo_")


# --- disputes --------------------------------------------------------------------------------------


def test_a_dispute_is_a_short_form_in_the_recipient_s_language(client: FlaskClient) -> None:
    html = client.get(f"/r/{TOKENS['ar']}/dispute").get_data(as_text=True)
    assert 'lang="ar-EG" dir="rtl"' in html and "الاعتراض على هذا المبلغ" in html
    assert html.count('type="radio"') == 4 and 'maxlength="500"' in html and "<script" not in html


def test_a_dispute_is_stored_never_logged_and_stops_nothing_but_collection(client: FlaskClient, campaign: Campaign,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    token = TOKENS["it"]
    caplog.set_level(logging.DEBUG)
    answer = client.post(f"/r/{token}/dispute", data={"reason": "already_paid", "details": f" {SECRET_WORDS}\r\n\x07"},
                         headers=SAME_ORIGIN)
    assert answer.status_code == 200 and "Abbiamo ricevuto la tua contestazione" in answer.get_data(as_text=True)
    again = client.post(f"/r/{token}/dispute", data={"reason": "other"}, headers=SAME_ORIGIN)
    assert "La tua contestazione è già stata ricevuta" in again.get_data(as_text=True)
    with ledger_of(campaign) as ledger:
        [dispute] = ledger.disputes()
    assert (dispute.customer_id, dispute.reason, dispute.details, dispute.status) == (
        "IT-000124", "already_paid", SECRET_WORDS, "open")
    assert SECRET_WORDS not in caplog.text and "IBAN" not in caplog.text
    assert client.get(f"/pay/{token}?option=full&src=site").status_code == 303  # the pay buttons stay


@pytest.mark.parametrize("data, status, message", [
    ({"details": "x"}, 400, "Scegli un motivo."), ({"reason": "because"}, 400, "Scegli un motivo."),
    ({"reason": "other", "details": "é" * 501}, 400, "Scrivi al massimo 500 caratteri (ne hai scritti 501)."),
    ({"reason": "other", "details": "x" * 20_000}, 413, None)])
def test_a_bad_dispute_says_what_to_fix_and_stores_nothing(client: FlaskClient, campaign: Campaign, data: dict,
                                                           status: int, message: str | None) -> None:
    answer = client.post(f"/r/{TOKENS['it']}/dispute", data=data, headers=SAME_ORIGIN)
    assert answer.status_code == status
    if message:
        assert message in answer.get_data(as_text=True)
    with ledger_of(campaign) as ledger:
        assert ledger.disputes() == []


def test_five_hundred_characters_with_line_ends_fit(client: FlaskClient, campaign: Campaign) -> None:
    text = "\r\n".join(["a" * 99] * 5)  # 495 characters and four line ends, kept as \n: 499
    assert client.post(f"/r/{TOKENS['en']}/dispute", data={"reason": "other", "details": text}).status_code == 200
    with ledger_of(campaign) as ledger:
        assert ledger.disputes()[0].details == text.replace("\r\n", "\n")


# --- the command line ------------------------------------------------------------------------------


def test_suppress_import_export_list_and_disputes_resolve(campaign: Campaign, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    listing = tmp_path / "dnc.csv"
    listing.write_text("customer_id,channel,reason,source,extra\n"
                       "DE-000512,all,cease_communication,crm,x\n"
                       "US-001302,,,,\n"
                       "bad id!,email,optout,crm,\n"
                       "IT-000900,fax,optout,crm,\n"
                       "DE-000512,all,cease_communication,crm,\n", encoding="utf-8")
    where = ["--campaign", str(campaign.path)]
    assert main(["suppress", "import", str(listing), *where]) == 3
    out, err = capsys.readouterr()
    assert f"{listing}:4: customer_id: must be 1-64 letters" in err
    assert f"{listing}:5: customer IT-000900: channel: must be one of email, sms, post, all, got 'fax'" in err
    assert "2 added to the suppression list, 1 already on it, 2 rows refused" in out
    assert main(["suppress", "export", "--out", str(tmp_path / "out.csv"), *where]) == 0
    exported = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    assert exported[0] == "customer_id,channel,reason,source,campaign_id,created_at"
    assert [line.split(",")[:5] for line in exported[1:]] == [
        ["DE-000512", "all", "cease_communication", "crm", ""], ["US-001302", "all", "request", "import", ""]]
    assert main(["suppress", "list", "--channel", "all", "--ledger", campaign.ledger]) == 0
    assert "2 on the suppression list for all" in capsys.readouterr().out
    assert main(["suppress", "remove", "US-001302", "--channel", "email", *where]) == 1  # on it for all
    assert "customer US-001302: not on the suppression list for email" in capsys.readouterr().err
    assert main(["suppress", "remove", "US-001302", *where]) == 0
    assert "1 entry removed from the suppression list" in capsys.readouterr().out
    with ledger_of(campaign) as ledger:
        assert ledger.suppression("US-001302", "email") is None and ledger.suppression("DE-000512", "sms")
    assert main(["suppress", "remove", "US-001302", *where]) == 1

    with ledger_of(campaign) as ledger:
        ledger.open_dispute(campaign_id=campaign.id, customer_id="IT-000124", token=TOKENS["it"],
                            reason="wrong_amount", details="Line one\nline two")
    assert main(["disputes", "list", *where]) == 0
    out = capsys.readouterr().out
    assert "IT-000124" in out and "wrong_amount" in out and "open 0 days" in out and "Line one / line two" in out
    assert main(["disputes", "resolve", "IT-000124", "--outcome", "corrected", *where]) == 0
    assert main(["disputes", "resolve", "IT-000124", "--outcome", "corrected", *where]) == 1
    assert "no open dispute" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["disputes", "resolve", "IT-000124", "--outcome", "maybe", *where])
    assert usage.value.code == 64


def test_the_ledger_must_be_named_and_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("BILLCAST_LEDGER_URL", raising=False)
    assert main(["suppress", "list"]) == 10
    assert "--ledger" in capsys.readouterr().err
    monkeypatch.setenv("BILLCAST_LEDGER_URL", f"sqlite:///{tmp_path / 'none.db'}")
    assert main(["disputes", "list"]) == 8
    assert not (tmp_path / "none.db").exists()


# --- send windows and the weekly cap ---------------------------------------------------------------


@pytest.mark.parametrize("now, zone, after, before", [
    ("2026-11-20T06:59:00+00:00", "Europe/Rome", "2026-11-20T07:00:00+00:00", "2026-11-20T20:00:00+00:00"),
    ("2026-11-20T12:00:00+00:00", "Europe/Rome", "2026-11-20T12:00:00+00:00", "2026-11-20T20:00:00+00:00"),
    ("2026-11-20T20:00:00+00:00", "Europe/Rome", "2026-11-21T07:00:00+00:00", "2026-11-21T20:00:00+00:00"),
    ("2026-11-20T12:00:00+00:00", "America/New_York", "2026-11-20T13:00:00+00:00", "2026-11-21T02:00:00+00:00"),
    ("2026-03-29T05:00:00+00:00", "Europe/Rome", "2026-03-29T06:00:00+00:00", "2026-03-29T19:00:00+00:00"),
    ("2026-10-25T01:30:00+00:00", "Europe/Rome", "2026-10-25T07:00:00+00:00", "2026-10-25T20:00:00+00:00"),
    ("2026-11-20T23:00:00+00:00", "Pacific/Kiritimati", "2026-11-20T23:00:00+00:00", "2026-11-21T07:00:00+00:00"),
    ("2026-11-20T08:00:00+00:00", "Pacific/Kiritimati", "2026-11-20T18:00:00+00:00", "2026-11-21T07:00:00+00:00")])
def test_the_next_send_window_is_in_the_recipient_s_zone_across_clock_changes(now: str, zone: str, after: str,
                                                                            before: str) -> None:
    window = SendWindow.parse("08:00-21:00")
    start, end = next_window(datetime.fromisoformat(now), window, ZoneInfo(zone))
    assert (start.isoformat(), end.isoformat()) == (after, before)


@pytest.mark.parametrize("text, message", [("21:00-08:00", "the start must come before the end"),
                                           ("8-21", "HH:MM-HH:MM"), ("08:00-24:30", "24:00 is the latest end"),
                                           ("25:00-26:00", "HH:MM-HH:MM")])
def test_a_bad_send_window_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SendWindow.parse(text)
    assert SendWindow.parse("00:00-24:00") == SendWindow(time(0), None)


def test_the_cap_says_when_one_more_message_fits() -> None:
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    sent = tuple(now - timedelta(days=d) for d in (6, 3, 1))
    assert allowed_from(sent, 4, now) is None
    assert allowed_from(sent, 3, now) == now - timedelta(days=6) + timedelta(days=7)
    assert allowed_from(sent, 2, now) == now - timedelta(days=3) + timedelta(days=7)
    assert allowed_from((now - timedelta(days=8),), 1, now) is None  # older than the week: not counted
    sent_at = now - timedelta(days=2, microseconds=302165)  # sent at a fraction of a second
    fits = allowed_from((sent_at,), 1, now)
    assert fits == now + timedelta(days=5) and fits >= sent_at + timedelta(days=7)  # the next whole second, not before


# --- the report page --------------------------------------------------------------------------------


def test_the_report_page_lists_who_was_not_contacted_open_disputes_and_plans(campaign: Campaign) -> None:
    with ledger_of(campaign) as ledger:
        ledger.record_withheld(campaign_id=campaign.id, customer_id="DE-000456", storyboard="firm_reminder",
                               variant="", status="suppressed", reason="optout")
        ledger.record_withheld(campaign_id=campaign.id, customer_id="US-001302", storyboard="soft_reminder",
                               variant="a", status="deferred", reason="max_messages_per_7_days")
        ledger.open_dispute(campaign_id=campaign.id, customer_id="IT-000124", token=TOKENS["it"], reason="not_mine",
                            details=SECRET_WORDS, at=datetime.now(UTC) - timedelta(days=12))
    app = create_app(settings_for(campaign, admin_token="admin-test-token-0123456789"))
    html = app.test_client().get(f"/reports/{campaign.id}", headers={
        "Authorization": "Bearer admin-test-token-0123456789"}).get_data(as_text=True)
    app.extensions["billcast"].close()
    assert "1 suppressed (opted out, or disputing the debt) and 1 deferred" in html
    assert "<caption class=\"visually-hidden\">Recipients not contacted, by storyboard and variant</caption>" in html
    assert '<th scope="row">IT-000124</th><td>not_mine</td>' in html and '<td class="num">12</td>' in html
    assert SECRET_WORDS not in html  # the debtor's words stay in `billcast disputes list`
    assert "0 active · 0 needs card · 0 broken · 0 completed" in html


@pytest.mark.parametrize("zone, problem", [
    ("America/Argentina/Buenos_Aires", None), ("UTC", None),
    ("Mars/Olympus_Mons", "timezone: must be an IANA time zone such as Europe/Rome"),
    ("../../etc/passwd", "timezone: must be an IANA time zone"), ("localtime", "timezone: must be an IANA"),
    (7, "timezone: must be an IANA time zone")])
def test_a_record_s_time_zone_is_an_iana_name(zone: object, problem: str | None) -> None:
    from billcast.jobs.records import RecordErrors, parse_record

    from conftest import sample
    record = sample("US-001235") | {"timezone": zone}
    if problem is None:
        assert parse_record(record).timezone == zone
    else:
        with pytest.raises(RecordErrors, match=problem):
            parse_record(record)

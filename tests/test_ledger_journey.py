"""The ledger's revision 0004 (opt-outs, disputes, held-back recipients, plans), on SQLite and on PostgreSQL
(the same fixtures as tests/test_ledger.py)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from billcast.jobs.amounts import plan_schedule
from billcast.jobs.ledger import Ledger, LedgerError, schema_state

from ledgers import HEAD, execute, query
from test_ledger import NOW, ledger, publish, token, url  # noqa: F401 - fixtures
from test_ledger_migrations import at_revision, open_or_upgrade


def test_a_ledger_at_revision_0003_is_brought_to_head_keeping_its_rows(url: str) -> None:
    tok = token()
    at_revision(url, "0003")  # a ledger as Billcast made it before revision 0004
    assert schema_state(url).revision == "0003"
    execute(url, "INSERT INTO campaigns (id, created_at, updated_at, link_days) VALUES "
                 "('c1', '2025-03-01 12:00:00', '2025-03-01 12:00:00', 30)")
    execute(url, "INSERT INTO recipients (campaign_id, customer_id, token, storyboard, variant, status, amount_due, "
                 "currency, content_hash, published_at, expires_at, paid_at, updated_at, plan_installments, "
                 f"days_past_due) VALUES ('c1', 'IT-1', '{tok}', 'firm_reminder', '', 'published', '185.15', 'EUR', "
                 "'h1', '2025-03-01 12:00:00', '2025-03-31 12:00:00', NULL, '2025-03-01 12:00:00', 3, 45)")
    open_or_upgrade(url)
    with Ledger(url) as upgraded:
        assert upgraded.schema_revision() == HEAD
        found = upgraded.recipient_by_token(tok)
        assert found is not None and (found.plan_installments, found.plan_first_due, found.locale) == (3, None, None)
        publish(upgraded, "IT-1", token=tok, plan_installments=3, plan_first_due=date(2026, 12, 5), locale="it-IT")
        again = upgraded.recipient_by_token(tok)
        assert (again.plan_first_due, again.locale) == (date(2026, 12, 5), "it-IT")
        assert upgraded.suppressions and list(upgraded.suppressions()) == [] and upgraded.plans("c1") == []


def test_an_opt_out_is_kept_once_per_customer_and_channel(ledger: Ledger) -> None:
    assert ledger.suppress(customer_id="IT-1", channel="email", reason="optout", source="page", campaign_id="c1")
    assert not ledger.suppress(customer_id="IT-1", channel="email", reason="other", source="one_click")
    assert ledger.suppress(customer_id="IT-2", channel="all", reason="cease_communication", source="crm")
    assert [(s.customer_id, s.channel, s.reason, s.source) for s in ledger.suppressions()] == [
        ("IT-1", "email", "optout", "page"), ("IT-2", "all", "cease_communication", "crm")]
    assert ledger.suppression("IT-2", "sms") is not None and ledger.suppression("IT-1", "sms") is None
    with pytest.raises(LedgerError, match="suppress: channel: must be one of email, sms, post, all"):
        ledger.suppress(customer_id="IT-3", channel="fax", reason="optout", source="page")
    with pytest.raises(LedgerError, match="suppress: reason: must be letters"):
        ledger.suppress(customer_id="IT-3", channel="email", reason="no; DROP TABLE", source="page")


def test_contact_state_counts_other_campaigns_messages_of_the_week(ledger: Ledger) -> None:
    ledger.ensure_campaign("c2", link_days=30)
    publish(ledger, "IT-1", published_at=NOW - timedelta(days=2))
    publish(ledger, "IT-1", campaign_id="c2", published_at=NOW - timedelta(days=9))
    state = ledger.contact_state("IT-1", "email", campaign_id="c2", since=NOW - timedelta(days=7))
    assert state.recent == (NOW - timedelta(days=2),) and state.suppression is None and state.dispute is None
    assert ledger.contact_state("IT-1", "email", campaign_id="c1", since=NOW - timedelta(days=7)).recent == ()


def test_one_dispute_is_open_at_a_time_and_resolving_closes_it(ledger: Ledger) -> None:
    tok = publish(ledger, "IT-1")
    first, opened = ledger.open_dispute(campaign_id="c1", customer_id="IT-1", token=tok, reason="wrong_amount",
                                        details="ß" * 500)
    second, again = ledger.open_dispute(campaign_id="c1", customer_id="IT-1", token=tok, reason="other", details=None)
    assert opened and not again and second.id == first.id and first.details == "ß" * 500
    assert ledger.contact_state("IT-1", "email", campaign_id="c1").dispute == first
    with pytest.raises(LedgerError, match="details"):
        ledger.open_dispute(campaign_id="c1", customer_id="IT-2", token=tok, reason="other", details="x" * 501)
    assert ledger.resolve_disputes("IT-1", "withdrawn") == 1 and ledger.resolve_disputes("IT-1", "withdrawn") == 0
    [closed] = ledger.disputes(status="resolved")
    assert (closed.status, closed.outcome) == ("resolved", "withdrawn") and ledger.disputes() == []


CUSTOMERS, SENDERS = 40, 6


def _open_disputes(url: str, token: str, ready: Any, out: Any) -> None:
    with Ledger(url) as mine:
        ready.wait()
        out.put(sum(mine.open_dispute(campaign_id="c1", customer_id=f"IT-{n}", token=token, reason="other",
                                      details=None)[1] for n in range(CUSTOMERS)))


def test_disputes_sent_at_the_same_instant_from_several_processes_open_one(ledger: Ledger, url: str) -> None:
    tok = publish(ledger, "IT-1")
    context = multiprocessing.get_context("fork")
    ready, out = context.Barrier(SENDERS + 1), context.Queue()
    workers = [context.Process(target=_open_disputes, args=(url, tok, ready, out)) for _ in range(SENDERS)]
    for worker in workers:
        worker.start()
    ready.wait()
    for worker in workers:
        worker.join(60)
    assert sum(out.get(timeout=5) for _ in workers) == CUSTOMERS  # each customer's dispute opened by one sender
    assert sorted(d.customer_id for d in ledger.disputes()) == sorted(f"IT-{n}" for n in range(CUSTOMERS))


def test_what_a_run_held_back_goes_once_the_recipient_is_published(ledger: Ledger) -> None:
    ledger.record_withheld(campaign_id="c1", customer_id="IT-1", storyboard="firm_reminder", variant="",
                           status="suppressed", reason="dispute")
    ledger.record_withheld(campaign_id="c1", customer_id="IT-1", storyboard="firm_reminder", variant="",
                           status="deferred", reason="max_messages_per_7_days", send_after=NOW)
    [row] = ledger.withheld("c1")
    assert (row["status"], row["reason"], row["send_after"]) == ("deferred", "max_messages_per_7_days", NOW)
    publish(ledger, "IT-1")
    assert list(ledger.withheld("c1")) == []


def _plan(ledger: Ledger, customer_id: str, *, method: str | None = "pm_1") -> str:
    tok = publish(ledger, customer_id, plan_installments=3)
    ledger.upsert_payment(campaign_id="c1", token=tok, provider="stripe", provider_ref=f"cs_{tok}", amount=6172,
                          currency="EUR", option="plan", source="site", status="paid", payment_intent=f"pi_{tok}")
    ledger.start_plan(campaign_id="c1", token=tok, provider="stripe", provider_customer="cus_1", payment_method=method,
                      currency="EUR", schedule=plan_schedule(18515, 3, date(2026, 10, 5)), first_payment=f"cs_{tok}",
                      paid_at=NOW)
    return tok


def test_a_plan_is_made_once_and_moves_through_its_states(ledger: Ledger) -> None:
    tok = _plan(ledger, "IT-1")
    again = ledger.start_plan(campaign_id="c1", token=tok, provider="stripe", provider_customer="x",
                              payment_method="y", currency="EUR", schedule=[(date(2027, 1, 1), 1)] * 2,
                              first_payment="other", paid_at=NOW)
    assert (again.count, again.total, again.payment_method) == (3, 18515, "pm_1")
    assert ledger.payment(f"cs_{tok}")["installment"] == 1
    assert ledger.plan_for_token(tok).installments[0].payment_intent == f"pi_{tok}"
    assert ledger.due_installments("c1", date(2026, 11, 4)) == []
    [(plan_id, number)] = ledger.due_installments("c1", date(2026, 11, 5))
    claim = ledger.claim_installment(plan_id, number)
    assert claim is not None and claim.installment.number == 2 and ledger.claim_installment(plan_id, 2) is None
    ledger.installment_submitted(plan_id, 2, "pi_2")
    plan = ledger.installment_failed(tok, 2, "pi_2", "card_declined", max_failures=2)
    assert (plan.status, plan.failures) == ("needs_card", 1)
    assert ledger.installment_failed(tok, 2, "pi_2", "card_declined", max_failures=2).failures == 1  # replayed
    assert ledger.due_installments("c1", date(2027, 1, 1)) == []  # waits for a card
    plan = ledger.card_saved(tok, "pm_2", None)
    assert (plan.status, plan.payment_method, plan.installments[1].status, plan.installments[1].attempt) == (
        "active", "pm_2", "scheduled", 2)
    ledger.claim_installment(plan_id, 2)
    plan = ledger.installment_failed(tok, 2, "pi_2b", "expired_card", max_failures=2)
    assert (plan.status, plan.open_balance) == ("broken", 18515 - 6172)
    assert ledger.card_saved(tok, "pm_3", None).status == "broken"  # a broken plan stays broken
    tok2 = _plan(ledger, "IT-2")
    for number in (2, 3):
        ledger.installment_paid(tok2, number, f"pi_{number}", NOW)
    plan = ledger.plan_for_token(tok2)
    assert (plan.status, plan.open_balance, plan.next) == ("completed", 0, None)
    assert _plan(ledger, "IT-3", method=None) and ledger.plan_for_token(
        ledger.recipient("c1", "IT-3").token).status == "needs_card"


def _claim_all(url: str, pairs: list[tuple[int, int]], ready: Any, out: Any) -> None:
    with Ledger(url) as mine:
        ready.wait()
        out.put(sum(mine.claim_installment(plan_id, number) is not None for plan_id, number in pairs))


def test_two_processes_claiming_at_once_win_each_installment_once(ledger: Ledger, url: str) -> None:
    for n in range(10):
        _plan(ledger, f"IT-{n}")
    pairs = ledger.due_installments("c1", date(2027, 1, 1))
    assert len(pairs) == 20
    context = multiprocessing.get_context("fork")
    ready, out = context.Barrier(3), context.Queue()
    workers = [context.Process(target=_claim_all, args=(url, pairs, ready, out)) for _ in range(2)]
    for worker in workers:
        worker.start()
    ready.wait()
    for worker in workers:
        worker.join(60)
    assert out.get(timeout=5) + out.get(timeout=5) == 20
    assert ledger.due_installments("c1", date(2027, 1, 1)) == []
    assert query(url, "SELECT count(*) FROM installments WHERE status = 'charging'") == [(20,)]

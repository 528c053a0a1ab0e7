"""Campaign reports: what recipients did with their pages, and what they paid.

:func:`build_report` is pure: it folds a campaign's recipients, events and
payments (as the ledger streams them) into a :class:`Report` of frozen rows,
and :func:`format_report` and :func:`reconciliation_csv` turn that into text.
Only :func:`campaign_report` (reads a ledger) and :func:`report_command` (the
``billcast report`` command) do I/O. The service's ``/reports`` pages show the
same :class:`Report`. See ``docs/REPORTS.md``.

Every count is of distinct recipients; money is exact (``Decimal``, in the
currency's major units); nothing here reads or prints personal data beyond the
customer_id the reconciliation file needs.
"""

from __future__ import annotations

import csv
import io
import os
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from billcast.microsite import SOURCES

from .amounts import major_units
from .journey_report import Journey, format_journey, read_journey
from .ledger import Ledger, LedgerError, Recipient

__all__ = [
    "BUCKETS", "SOURCES", "STAGES", "Amounts", "BucketRow", "FunnelRow", "PaymentRow", "Report", "SourceRow",
    "build_report", "campaign_report", "dpd_bucket", "format_report", "major_units", "reconciliation_csv",
    "report_command",
]

STAGES = ("published", "viewed", "played", "watched_half", "clicked", "paid")
STAGE_LABELS = {"published": "published", "viewed": "viewed", "played": "played", "watched_half": "watched half",
                "clicked": "clicked", "paid": "paid"}
BUCKETS = ("no arrears", "1-30", "31-60", "61-90", "91+")
CSV_COLUMNS = ("payment_id", "token", "customer_id", "amount", "currency", "option", "source", "paid_at",
               "flagged", "flag_reason", "installment")

# One bit per stage a recipient reached (published is implied by being counted at all).
_VIEWED, _PLAYED, _HALF, _CLICKED, _PAID = 1, 2, 4, 8, 16
_STAGE_BITS = (_VIEWED, _PLAYED, _HALF, _CLICKED, _PAID)
_DUE = 32  # something to pay: counted in the collection rate

Amounts = tuple[tuple[str, Decimal], ...]
"""Money per currency, sorted by currency code: ``(("EUR", Decimal("185.15")), ("USD", Decimal("12.00")))``."""


# --- the report, as data ------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelRow:
    """How far the recipients of one storyboard and variant got; ``storyboard`` is ``"all"`` for the total."""

    storyboard: str
    variant: str
    published: int
    viewed: int
    played: int
    watched_half: int
    clicked: int
    paid: int
    collected: Amounts

    @property
    def label(self) -> str:
        return f"{self.storyboard} ({self.variant})" if self.variant else self.storyboard

    @property
    def counts(self) -> tuple[int, ...]:
        """The counts in :data:`STAGES` order."""
        return tuple(getattr(self, stage) for stage in STAGES)


@dataclass(frozen=True)
class BucketRow:
    """Collection among recipients with something to pay, by how many days past due they were."""

    bucket: str
    due: int
    paid: int
    collected: Amounts

    @property
    def rate(self) -> float | None:
        return self.paid / self.due if self.due else None


@dataclass(frozen=True)
class SourceRow:
    """Paid payments that started from one place: the video, the page, the QR code or an email."""

    source: str
    payments: int
    amounts: Amounts


@dataclass(frozen=True)
class PaymentRow:
    """One paid payment, for reconciliation with the payment provider's payouts."""

    payment_id: int
    token: str
    customer_id: str
    amount: Decimal
    currency: str
    option: str
    source: str
    paid_at: datetime
    flagged: bool
    flag_reason: str | None
    installment: int | None = None  # which installment of a payment plan (1 is the one paid at checkout)


@dataclass(frozen=True)
class Report:
    campaign_id: str
    funnel: tuple[FunnelRow, ...]
    total: FunnelRow
    buckets: tuple[BucketRow, ...]
    sources: tuple[SourceRow, ...]
    reconciliation: tuple[PaymentRow, ...]
    journey: Journey | None = None  # not contacted, open disputes, payment plans (read from a ledger)

    @property
    def flagged(self) -> int:
        return sum(row.flagged for row in self.reconciliation)

    @property
    def collected(self) -> Amounts:
        return self.total.collected

    @property
    def due(self) -> int:
        return sum(row.due for row in self.buckets)


# --- pure helpers -------------------------------------------------------------------------------


def dpd_bucket(days_past_due: int | None) -> str:
    """The bucket a recipient's days past due fall in; none (or not yet due) is "no arrears"."""
    if days_past_due is None or days_past_due <= 0:
        return BUCKETS[0]
    if days_past_due <= 30:
        return BUCKETS[1]
    if days_past_due <= 60:
        return BUCKETS[2]
    if days_past_due <= 90:
        return BUCKETS[3]
    return BUCKETS[4]


def _amounts(sums: Mapping[str, int]) -> Amounts:
    return tuple((currency, major_units(sums[currency], currency)) for currency in sorted(sums))


def format_amounts(amounts: Amounts) -> str:
    """``EUR 185.15, USD 12.00``, or ``-`` for none."""
    return ", ".join(f"{currency} {amount:,}" for currency, amount in amounts) or "-"


# --- building the report ------------------------------------------------------------------------


class _Tally:
    """Per-recipient state in compact arrays: a token index, a group, a bucket and a byte of flags each.

    Customer ids are kept only for the tokens in ``payers`` (the reconciliation rows need them).
    """

    def __init__(self, payers: set[str]) -> None:
        self.payers = payers
        self.index: dict[str, int] = {}
        self.customer: dict[int, str] = {}
        self.group = array("I")
        self.bucket = bytearray()
        self.flags = bytearray()
        self.groups: dict[tuple[str, str], int] = {}

    def add(self, recipient: Recipient) -> None:
        if recipient.published_at is None or recipient.token in self.index:
            return  # never published (pending): no page, nothing to count
        slot = len(self.flags)
        self.index[recipient.token] = slot
        if recipient.token in self.payers:
            self.customer[slot] = recipient.customer_id
        self.group.append(self.groups.setdefault((recipient.storyboard, recipient.variant), len(self.groups)))
        self.bucket.append(BUCKETS.index(dpd_bucket(recipient.days_past_due)))
        self.flags.append(_DUE if recipient.amount_due > 0 else 0)

    def mark(self, token: str, bit: int) -> int | None:
        slot = self.index.get(token)
        if slot is not None:
            self.flags[slot] |= bit
        return slot

    def stage_counts(self) -> tuple[list[list[int]], list[list[int]]]:
        """Per group, the recipients at each of :data:`STAGES`; per bucket, [with something to pay, of them paid]."""
        stages = [[0] * len(STAGES) for _ in self.groups]
        buckets = [[0, 0] for _ in BUCKETS]
        for slot, flags in enumerate(self.flags):
            counts = stages[self.group[slot]]
            counts[0] += 1
            for i, bit in enumerate(_STAGE_BITS, start=1):
                if flags & bit:
                    counts[i] += 1
            if flags & _DUE:
                buckets[self.bucket[slot]][0] += 1
                if flags & _PAID:
                    buckets[self.bucket[slot]][1] += 1
        return stages, buckets


def _event_bit(kind: str, value: Any) -> int:
    if kind == "view":
        return _VIEWED
    if kind == "play":
        return _PLAYED
    if kind == "progress":
        return _HALF if isinstance(value, int) and value >= 50 else 0
    if kind in ("cta_click", "pay_click"):
        return _CLICKED
    return 0


def _money() -> defaultdict[Any, defaultdict[str, int]]:
    return defaultdict(lambda: defaultdict(int))


@dataclass
class _Paid:
    """The paid payments folded: money per group, bucket and source (minor units), and the reconciliation rows."""

    by_group: defaultdict[int, defaultdict[str, int]]
    by_bucket: defaultdict[int, defaultdict[str, int]]
    by_source: defaultdict[str, defaultdict[str, int]]
    count_by_source: defaultdict[str, int]
    rows: list[PaymentRow]


def _fold_payments(tally: _Tally, paid: list[Mapping[str, Any]]) -> _Paid:
    folded = _Paid(_money(), _money(), _money(), defaultdict(int), [])
    for payment in paid:
        token, amount, currency = payment["token"], int(payment["amount"]), payment["currency"]
        source = payment["source"]
        slot = tally.mark(token, _PAID)
        if slot is not None:
            folded.by_group[tally.group[slot]][currency] += amount
            if tally.flags[slot] & _DUE:
                folded.by_bucket[tally.bucket[slot]][currency] += amount
        folded.count_by_source[source] += 1
        folded.by_source[source][currency] += amount
        customer = "" if slot is None else tally.customer.get(slot, "")
        folded.rows.append(PaymentRow(
            payment_id=int(payment["id"]), token=token, customer_id=customer, amount=major_units(amount, currency),
            currency=currency, option=payment["option"], source=source,
            paid_at=payment.get("paid_at") or payment["updated_at"], flagged=bool(payment["flagged"]),
            flag_reason=payment.get("flag_reason"), installment=payment.get("installment")))
    return folded


def build_report(campaign_id: str, recipients: Iterable[Recipient], events: Iterable[Mapping[str, Any]],
                 payments: Iterable[Mapping[str, Any]]) -> Report:
    """Fold a campaign's recipients, events and payments (rows as ``Ledger`` gives them) into a :class:`Report`.

    Only published recipients count (pending ones have no page); events of
    tokens that are not among them are ignored. Only ``paid`` payments count;
    a flagged one (its amount or currency disagreed with the ledger) still
    counts, and is marked in the reconciliation rows. Payments are read first
    (only the paid ones are kept), then recipients, then events, each once.
    """
    paid = [payment for payment in payments if payment["status"] == "paid"]
    tally = _Tally({payment["token"] for payment in paid})
    for recipient in recipients:
        tally.add(recipient)
    for event in events:
        bit = _event_bit(event["kind"], event.get("value"))
        if bit:
            tally.mark(event["token"], bit)
    folded = _fold_payments(tally, paid)
    stages, buckets = tally.stage_counts()

    funnel = sorted((FunnelRow(storyboard, variant, *stages[g], collected=_amounts(folded.by_group[g]))
                     for (storyboard, variant), g in tally.groups.items()),
                    key=lambda row: (row.storyboard, row.variant))
    all_money: dict[str, int] = defaultdict(int)
    for sums in folded.by_group.values():
        for currency, amount in sums.items():
            all_money[currency] += amount
    total = FunnelRow("all", "", *(sum(row.counts[i] for row in funnel) for i in range(len(STAGES))),
                      collected=_amounts(all_money))
    known = [*SOURCES, *sorted(set(folded.count_by_source) - set(SOURCES))]
    return Report(
        campaign_id=campaign_id, funnel=tuple(funnel), total=total,
        buckets=tuple(BucketRow(name, due, paid_n, _amounts(folded.by_bucket[i]))
                      for i, (name, (due, paid_n)) in enumerate(zip(BUCKETS, buckets, strict=True))),
        sources=tuple(SourceRow(s, folded.count_by_source[s], _amounts(folded.by_source[s])) for s in known),
        reconciliation=tuple(folded.rows))


def campaign_report(ledger: Ledger, campaign_id: str) -> Report:
    """The report of one campaign, read from its ledger (streamed, a page of rows at a time)."""
    report = build_report(campaign_id, ledger.recipients(campaign_id), ledger.events(campaign_id),
                          ledger.payments(campaign_id))  # generators: each read once, payments first
    return replace(report, journey=read_journey(ledger, campaign_id, datetime.now(UTC)))


# --- as text ------------------------------------------------------------------------------------


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _table(headers: tuple[str, ...], rows: Iterable[tuple[str, ...]], align: str) -> list[str]:
    """Plain aligned columns, ``align`` saying ``l`` (text) or ``r`` (numbers) for each."""
    rows = [headers, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) if a == "l" else cell.rjust(w) for cell, w, a in zip(row, widths, align, strict=True)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def format_report(report: Report) -> str:
    """The report as plain text tables, for a terminal or an email."""
    total = report.total
    lines = [f"Campaign {report.campaign_id}: {total.published} published, {total.paid} paid "
             f"({_percent(total.paid, total.published)}), collected {format_amounts(report.collected)}", ""]
    lines.append("Funnel by storyboard and variant (distinct recipients)")
    funnel = [(row.storyboard, row.variant, *(str(c) for c in row.counts), _percent(row.paid, row.published),
               format_amounts(row.collected)) for row in (*report.funnel, total)]
    lines += _table(("storyboard", "variant", *(STAGE_LABELS[s] for s in STAGES), "paid %", "collected"), funnel,
                    "ll" + "r" * (len(STAGES) + 1) + "l")
    lines += ["", "Collection rate by days past due (recipients with something to pay)"]
    lines += _table(("days past due", "to pay", "paid", "rate", "collected"),
                    [(b.bucket, str(b.due), str(b.paid), _percent(b.paid, b.due), format_amounts(b.collected))
                     for b in report.buckets], "lrrrl")
    lines += ["", "Payments by source"]
    lines += _table(("source", "payments", "amount"),
                    [(s.source, str(s.payments), format_amounts(s.amounts)) for s in report.sources], "lrl")
    lines += ["", f"Paid payments: {len(report.reconciliation)}, flagged for review: {report.flagged}"]
    if report.journey is not None:
        lines += format_journey(report.journey, _table, format_amounts)
    return "\n".join(lines) + "\n"


def _cell(text: str | None) -> str:
    """Text a spreadsheet would run as a formula gets a leading apostrophe."""
    text = text or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def reconciliation_csv(rows: Iterable[PaymentRow]) -> str:
    """The paid payments as CSV (UTF-8, CRLF lines): amounts in major units, times in ISO 8601 UTC."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow((row.payment_id, row.token, _cell(row.customer_id), f"{row.amount}", row.currency,
                         row.option, row.source, row.paid_at.astimezone(UTC).isoformat(timespec="seconds"),
                         "yes" if row.flagged else "no", _cell(row.flag_reason),
                         "" if row.installment is None else row.installment))
    return buffer.getvalue()


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def ledger_must_exist(url: str, where: str = "report") -> None:
    """A command that reads a ledger: opening a SQLite file that is not there would make an empty one."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).exists():
            raise LedgerError(f"no ledger at {parsed.database}; run `billcast run` for this campaign first",
                              where=where, field="ledger")


def report_command(campaign_path: Path, payments_csv: Path | None, out: TextIO) -> int:
    """``billcast report CAMPAIGN.toml [--payments-csv FILE]``: print the report, write the reconciliation CSV.

    A bad campaign file raises ``CampaignErrors`` (exit 2) and an unusable
    ledger ``LedgerError`` (exit 8), as for ``billcast run``.
    """
    from .campaign import load_campaign

    campaign = load_campaign(campaign_path)
    ledger_must_exist(campaign.ledger)
    with Ledger(campaign.ledger) as ledger:
        report = campaign_report(ledger, campaign.id)
    out.write(format_report(report))
    if payments_csv is not None:
        _write_atomically(Path(payments_csv), reconciliation_csv(report.reconciliation))
        out.write(f"Reconciliation: {len(report.reconciliation)} paid payments written to {payments_csv}\n")
    return 0

"""``billcast suppress import|export|list|remove`` and ``billcast disputes list|resolve``: the suppression list and the
debtors' disputes, kept in a ledger (named by ``--ledger``, ``--campaign`` or ``BILLCAST_LEDGER_URL``)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from billcast.renderer import BillcastError, SettingsError

if TYPE_CHECKING:  # the commands import the ledger when they run, not when the CLI starts
    from billcast.jobs.ledger import Ledger

LEDGER_ENV = "BILLCAST_LEDGER_URL"
ENV = (f"{LEDGER_ENV}: the ledger's SQLAlchemy URL, when neither --ledger nor --campaign is given",)


def _ledger(args: argparse.Namespace) -> Ledger:
    """The ledger named by --ledger, else the --campaign file's, else the ledger_url setting; it must exist."""
    from billcast.jobs.ledger import Ledger
    from billcast.jobs.report import ledger_must_exist

    if args.ledger:
        url = args.ledger
    elif args.campaign:
        from billcast.jobs.campaign import load_campaign

        url = load_campaign(args.campaign).ledger
    elif args.settings.ledger_url:
        url = args.settings.ledger_url
    else:
        raise SettingsError("--ledger", f"name the ledger: --ledger URL, --campaign CAMPAIGN.toml, or {LEDGER_ENV}")
    ledger_must_exist(url, "ledger")
    return Ledger(url)


def cmd_suppress_import(args: argparse.Namespace) -> int:
    from billcast.jobs.suppressions import read_entries

    added = known = 0
    refused: list[BillcastError] = []
    with _ledger(args) as ledger:
        for entry in read_entries(Path(args.file)):
            if isinstance(entry, BillcastError):
                refused.append(entry)
                print(entry, file=sys.stderr)
                continue
            new = ledger.suppress(customer_id=entry.customer_id, channel=entry.channel, reason=entry.reason,
                                  source=entry.source)
            added, known = added + new, known + (not new)
    print(f"{args.file}: {added} added to the suppression list, {known} already on it"
          + (f", {len(refused)} rows refused" if refused else ""))
    return 3 if refused else 0


def cmd_suppress_export(args: argparse.Namespace) -> int:
    from billcast.jobs.suppressions import export_lines

    with _ledger(args) as ledger:
        lines = export_lines(ledger.suppressions(channel=args.channel))
        if not args.out:
            sys.stdout.writelines(lines)
            return 0
        out = Path(args.out)
        tmp = out.with_name(f".{out.name}.tmp")
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            handle.writelines(lines)
        tmp.replace(out)
    print(f"suppression list written to {args.out}")
    return 0


def cmd_suppress_list(args: argparse.Namespace) -> int:
    count = 0
    with _ledger(args) as ledger:
        for entry in ledger.suppressions(channel=args.channel):
            count += 1
            print(f"{entry.customer_id:<24} {entry.channel:<6} {entry.reason:<24} {entry.source:<10} "
                  f"{entry.campaign_id or '-':<20} {entry.created_at:%Y-%m-%d %H:%M}")
    print(f"{count} on the suppression list" + (f" for {args.channel}" if args.channel else ""))
    return 0


def cmd_suppress_remove(args: argparse.Namespace) -> int:
    with _ledger(args) as ledger:
        removed = ledger.unsuppress(args.customer, args.channel)
    channel = f" for {args.channel}" if args.channel else ""
    if not removed:
        raise BillcastError(f"customer {args.customer}: not on the suppression list{channel} "
                            "(`billcast suppress list` shows who is)")
    print(f"customer {args.customer}: {removed} entr{'ies' if removed > 1 else 'y'} removed from the suppression "
          f"list{channel}; later campaigns may contact them again")
    return 0


def cmd_disputes_list(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    with _ledger(args) as ledger:
        disputes = ledger.disputes(status=None if args.all else "open")
    for d in disputes:
        state = f"open {(now - d.opened_at).days} days" if d.status == "open" else f"resolved: {d.outcome}"
        print(f"{d.customer_id:<24} {d.campaign_id:<20} {d.reason:<14} opened {d.opened_at:%Y-%m-%d} ({state})")
        if d.details:
            print("    " + d.details.replace("\n", " / "))
    print(f"{len(disputes)} {'disputes' if args.all else 'open disputes'}")
    return 0


def cmd_disputes_resolve(args: argparse.Namespace) -> int:
    with _ledger(args) as ledger:
        closed = ledger.resolve_disputes(args.customer, args.outcome)
    if not closed:
        raise BillcastError(f"customer {args.customer}: no open dispute to resolve (`billcast disputes list` "
                            "shows the open ones)")
    print(f"customer {args.customer}: {closed} dispute{'s' if closed > 1 else ''} resolved ({args.outcome}); "
          "later campaigns may contact them again")
    return 0


def _where(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ledger", metavar="URL", help=f"the ledger (a SQLAlchemy URL; default: ${LEDGER_ENV})")
    p.add_argument("--campaign", metavar="FILE", help="use this campaign file's ledger")


def add_parsers(sub: argparse._SubParsersAction, command) -> None:
    """The ``suppress`` and ``disputes`` commands; ``command`` makes a documented subparser."""
    from billcast.jobs.contact import DISPUTE_OUTCOMES, SUPPRESSION_CHANNELS

    p = command(sub, "suppress", "the suppression list: customers no campaign may contact (opt-outs and imports)",
                ENV)
    inner = p.add_subparsers(dest="suppress_command", required=True, metavar="SUBCOMMAND")
    q = command(inner, "import", "add customers from a CSV file (customer_id, channel, reason, source)", ENV)
    q.add_argument("file", help="the CSV file (see docs/COMPLIANCE.md)")
    _where(q)
    q.set_defaults(func=cmd_suppress_import)
    for name, func, help in (("export", cmd_suppress_export, "write the list as CSV"),
                             ("list", cmd_suppress_list, "print the list")):
        q = command(inner, name, help, ENV)
        q.add_argument("--channel", choices=SUPPRESSION_CHANNELS, help="only this channel's entries")
        if name == "export":
            q.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
        _where(q)
        q.set_defaults(func=func)
    q = command(inner, "remove", "take a customer off the list: they asked to hear from you again", ENV)
    q.add_argument("customer", help="the customer_id")
    q.add_argument("--channel", choices=SUPPRESSION_CHANNELS, help="only this channel's entry (default: all of theirs)")
    _where(q)
    q.set_defaults(func=cmd_suppress_remove)

    p = command(sub, "disputes", "debtors' disputes: list the open ones, resolve one", ENV)
    inner = p.add_subparsers(dest="disputes_command", required=True, metavar="SUBCOMMAND")
    q = command(inner, "list", "the open disputes, oldest first, with their age and the debtor's words", ENV)
    q.add_argument("--all", action="store_true", help="resolved ones too")
    _where(q)
    q.set_defaults(func=cmd_disputes_list)
    q = command(inner, "resolve", "close a customer's open disputes; collection messages may resume", ENV)
    q.add_argument("customer", help="the customer_id")
    q.add_argument("--outcome", required=True, choices=DISPUTE_OUTCOMES,
                   help="upheld (the debtor was right), corrected (the amount was put right), withdrawn")
    _where(q)
    q.set_defaults(func=cmd_disputes_resolve)

"""``billcast collect CAMPAIGN.toml [--date YYYY-MM-DD]``: charge the payment-plan installments due by a date."""

from __future__ import annotations

import argparse
import os
from datetime import date, datetime
from zoneinfo import ZoneInfo


ENV = ("STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET: charge through Stripe (without them, the demo provider)",)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def cmd_collect(args: argparse.Namespace) -> int:
    from billcast.jobs.campaign import load_campaign
    from billcast.jobs.report import ledger_must_exist
    from billcast.service import create_public_app
    from billcast.service.collect import collect_due

    from .settings import load_settings, service_settings

    campaign = load_campaign(args.campaign)
    ledger_must_exist(campaign.ledger, "ledger")
    on = args.date or datetime.now(ZoneInfo(campaign.timezone)).date()
    settings = service_settings(load_settings(os.environ), (campaign,))
    app = create_public_app(settings)  # charging needs the payment side only
    try:
        with app.app_context():
            done = collect_due(settings.campaigns[0], on)
            plans = app.extensions["billcast"].ledger(settings.campaigns[0]).plans(campaign.id)
    finally:
        app.extensions["billcast"].close()
    states = {status: sum(p.status == status for p in plans) for status in ("active", "needs_card", "broken",
                                                                             "completed")}
    print(f"{campaign.id}: {len(done.submitted)} installments due by {on} charged"
          f"{' (demo provider)' if settings.demo_payments else ' (outcomes come back by webhook)'}"
          f", {done.elsewhere} being charged by another collector, {len(done.errors)} not charged")
    for problem in done.errors:
        print(f"  not charged: {problem}")
    print("plans: " + ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in states.items()))
    return 6 if done.errors else 0


def add_parsers(sub: argparse._SubParsersAction, command) -> None:
    p = command(sub, "collect", "charge every payment-plan installment due by a date to its saved card "
                                "(safe to run twice, or in two processes at once)", ENV)
    p.add_argument("campaign", help="a campaign TOML file")
    p.add_argument("--date", type=_date, metavar="YYYY-MM-DD",
                   help="charge what is due by this date (default: today in the campaign's timezone)")
    p.set_defaults(func=cmd_collect)

"""Who this run may contact, and when: opt-outs, open disputes, the frequency cap and the send window.

Asked by the driver for each valid record, before anything is rendered: a
customer on the suppression list for the campaign's channel (or "all"), or with
an open dispute about a debt, is ``suppressed``; one who already had
``max_messages_per_7_days`` messages from the ledger's other campaigns is
``deferred`` until a message fits again. Everyone else gets the manifest's
``send_after``/``send_before`` (the next send window in their time zone, from
the run's time) and the ``List-Unsubscribe`` values of RFC 8058.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from billcast.microsite import optout_link

from ..campaign import Campaign, ChoiceError, choose
from ..contact import CAP_DAYS, allowed_from, next_window
from ..ledger import ContactState, Ledger
from ..records import Record, record_values

CAP_REASON = "max_messages_per_7_days"
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058's List-Unsubscribe-Post value


@dataclass(frozen=True)
class Held:
    """A recipient the run does not contact: ``suppressed`` or ``deferred``, why, and (deferred) from when."""

    status: str
    reason: str
    send_after: datetime | None = None


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Gate:
    """The run's contact rules for one campaign, at the run's time."""

    campaign: Campaign
    ledger: Ledger
    now: datetime

    def state(self, record: Record) -> ContactState:
        """What the ledger says about contacting this customer (one read)."""
        cap = self.campaign.max_messages_per_7_days
        return self.ledger.contact_state(record.customer_id, self.campaign.channel, campaign_id=self.campaign.id,
                                         since=self.now - timedelta(days=CAP_DAYS) if cap else None)

    @staticmethod
    def suppressed(record: Record, state: ContactState) -> Held | None:
        """Opted out of the channel, or disputing a debt this message would collect."""
        if state.suppression is not None:
            return Held("suppressed", state.suppression.reason)
        if state.dispute is not None and record.debt is not None:
            return Held("suppressed", "dispute")
        return None

    def deferred(self, state: ContactState) -> Held | None:
        """Over the frequency cap: held back until one more message fits."""
        cap = self.campaign.max_messages_per_7_days
        allowed = allowed_from(state.recent, cap, self.now) if cap else None
        return None if allowed is None else Held("deferred", CAP_REASON, allowed)

    def attribution(self, record: Record) -> tuple[str, str]:
        """The storyboard and variant the rules give a record that is held back (counted there in reports)."""
        try:
            choice = choose(self.campaign, record_values(record), record.customer_id)
        except ChoiceError:
            return "", ""
        return (choice.name, choice.variant) if choice is not None else ("", "")

    def window(self, record: Record, after: datetime | None = None) -> dict[str, Any]:
        """``send_after``/``send_before``: the next send window in the recipient's zone from ``after`` (default:
        the run's time); with no window, ``after`` alone (when given)."""
        start = max(after or self.now, self.now)
        if self.campaign.send_window is None:
            return {"send_after": _iso(start)} if after is not None else {}
        zone = ZoneInfo(record.timezone or self.campaign.timezone)
        begin, end = next_window(start, self.campaign.send_window, zone)
        return {"send_after": _iso(begin), "send_before": _iso(end)}

    def unsubscribe(self, token: str) -> dict[str, str]:
        """RFC 8058's two header values for the recipient's messages: the one-click opt-out at the service."""
        return {"list_unsubscribe": f"<{optout_link(self.campaign.pay_url, token)}>",
                "list_unsubscribe_post": ONE_CLICK}

"""Which storyboard a record gets: the first rule whose ``when`` holds, and a variant picked by hash.

Each ``when`` is a sandboxed Jinja expression over the record's values
(``jobs.records.record_values``; what it may do: ``jobs.rules``). A rule with
``variants`` splits customers between storyboards by weight, deterministically
from the campaign id and the customer id, the same on every machine and run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from billcast.renderer import RecordError

from ..rules import SAFE_ERRORS, evaluate
from .model import Campaign, Rule, Variant


class ChoiceError(RecordError):
    """A rule's ``when`` failed for one record: that record is refused, the batch goes on.

    ``source`` and ``line`` are the campaign file's and the line of the ``when``.
    """


@dataclass(frozen=True)
class Choice:
    """The storyboard one record gets."""

    storyboard: Path
    name: str
    variant: str
    rule: int


def choose(campaign: Campaign, values: Mapping[str, Any], customer_id: str) -> Choice | None:
    """The storyboard for one record's values: the first rule that holds; None when none does.

    Raises :class:`ChoiceError` when a rule's ``when`` cannot be evaluated for these values.
    """
    for rule in campaign.rules:
        if rule.when is None or _holds(campaign, rule, values, customer_id):
            variant = _pick(rule, campaign.id, customer_id)
            return Choice(storyboard=variant.storyboard, name=variant.name, variant=variant.variant,
                          rule=rule.index)
    return None


def variant_bucket(campaign_id: str, customer_id: str, total: int) -> int:
    """0 <= bucket < total, the same for the same ids on every machine and run."""
    digest = hashlib.sha256(f"{campaign_id}\0{customer_id}".encode("utf-8")).digest()
    return int.from_bytes(digest, "big") % total


def _pick(rule: Rule, campaign_id: str, customer_id: str) -> Variant:
    if len(rule.variants) == 1:
        return rule.variants[0]
    bucket = variant_bucket(campaign_id, customer_id, rule.total_weight)
    for variant in rule.variants:
        if bucket < variant.weight:
            return variant
        bucket -= variant.weight
    raise AssertionError("bucket beyond the total weight")  # pragma: no cover


def _holds(campaign: Campaign, rule: Rule, values: Mapping[str, Any], customer_id: str) -> bool:
    assert rule.when is not None
    try:
        return evaluate(rule.when, values)
    except Exception as exc:  # an author's expression failing on one record refuses that record only
        detail = str(exc) if isinstance(exc, SAFE_ERRORS) else type(exc).__name__  # no record values in logs
        raise ChoiceError(f"cannot be evaluated for this record: {detail}", line=rule.line,
                          customer_id=customer_id, field=f"rules[{rule.index}].when",
                          source=campaign.source) from None

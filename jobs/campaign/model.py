"""A loaded campaign, as the rest of Billcast sees it (frozen, built by ``load``), and its hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..contact import SendWindow


@dataclass(frozen=True)
class Variant:
    """One storyboard a rule can pick; a rule with a single ``storyboard`` has one, named ""."""

    storyboard: Path
    name: str  # the file's stem
    variant: str  # "" for a single storyboard, else "a", "b", ... in table order
    weight: int
    digest: str  # sha256 of the storyboard file as loaded, for campaign_hash


@dataclass(frozen=True)
class Rule:
    """One ``[[rules]]`` table: a condition and the storyboards it picks between."""

    index: int
    when: str | None  # None: matches every record
    variants: tuple[Variant, ...]
    line: int | None = None  # of its ``when`` (else its [[rules]] header), for messages

    @property
    def total_weight(self) -> int:
        return sum(variant.weight for variant in self.variants)


@dataclass(frozen=True)
class Experiment:
    """``[experiment]``, resolved: each arm is a :class:`Variant` whose ``variant`` is the arm's name."""

    arms: tuple[Variant, ...]
    when: str | None  # which records take part; None: every record
    segments: tuple[tuple[str, str], ...]  # (dimension, expression over the record), in file order
    policy: str  # "fixed" or "thompson"
    holdout: float  # share of the experiment's recipients left uncontacted, for comparison
    metric: str  # "paid" or "amount"
    window_days: int  # outcomes count when paid within this many days of publishing
    floor: float  # every arm keeps at least this share of a segment's traffic
    seed: int
    waves: int

    def arm(self, name: str) -> Variant:
        return next(arm for arm in self.arms if arm.variant == name)


@dataclass(frozen=True)
class Campaign:
    """A loaded campaign: every path absolute, every URL checked, every storyboard valid."""

    id: str
    path: Path  # absolute
    source: str  # the path as given, for messages
    folder: Path  # absolute; relative paths in the file were resolved against it
    input: Path
    default_locale: str
    store: str  # file:///absolute/path or s3://bucket[/prefix]
    store_endpoint_url: str | None
    store_region: str | None
    public_url: str  # no trailing slash
    pay_url: str  # no trailing slash
    link_days: int
    link_secret_env: str
    ledger: str  # a SQLAlchemy URL; a relative SQLite path made absolute
    out: Path
    cache: Path | None  # None: the CLI's default ($BILLCAST_CACHE_DIR or the user's cache)
    workers: int | None
    size: tuple[int, int] | None
    brand_name: str | None
    contact_url: str | None
    optout_url: str | None
    rules: tuple[Rule, ...]
    channel: str = "email"  # what the messages go out by: opt-outs for it (or "all") suppress a customer
    send_window: SendWindow | None = None  # local hours messages may be sent in (the recipient's time zone)
    timezone: str = "UTC"  # for recipients whose record has none
    max_messages_per_7_days: int | None = None  # across the ledger's campaigns; None: no cap
    plan_max_failures: int = 3  # failed installment charges before a plan breaks
    shared_cache: bool = False  # share encoded segments between hosts through the store (docs/SCALING.md)
    assets: Path | None = None  # fonts, images and audio beds the storyboards name; None: the packaged ones
    experiment: Experiment | None = None
    link_secret_file: Path | None = None  # read when the link_secret_env variable is unset
    cdn: str | None = None  # cloudfront:DISTRIBUTION_ID: purged of a recipient's files when their link expires

    @property
    def storyboards(self) -> tuple[Path, ...]:
        """Every storyboard the experiment and the rules can pick, once each, arms first, then in rule order."""
        arms = self.experiment.arms if self.experiment else ()
        return tuple(dict.fromkeys([*(a.storyboard for a in arms),
                                    *(v.storyboard for rule in self.rules for v in rule.variants)]))


def campaign_hash(campaign: Campaign) -> str:
    """A sha256 of what shapes a campaign's outputs: links, locale, size, page settings, rules and storyboards.

    Where files are written (input, store, ledger, out, cache) and how many workers run
    do not count, nor does the campaign file's location: moving it changes nothing.
    """
    settings = {
        "version": 1,
        "id": campaign.id,
        "default_locale": campaign.default_locale,
        "public_url": campaign.public_url,
        "pay_url": campaign.pay_url,
        "size": list(campaign.size) if campaign.size else None,
        "brand_name": campaign.brand_name,
        "contact_url": campaign.contact_url,
        "optout_url": campaign.optout_url,
        "rules": [{"when": rule.when,
                   "variants": [[v.name, v.variant, v.weight, v.digest] for v in rule.variants]}
                  for rule in campaign.rules],
    }
    if campaign.experiment is not None:  # absent: the hash stays what it was before experiments existed
        e = campaign.experiment
        settings["experiment"] = {
            "arms": [[a.variant, a.weight, a.digest] for a in e.arms], "when": e.when, "segments": e.segments,
            "policy": e.policy, "holdout": e.holdout, "metric": e.metric, "window_days": e.window_days,
            "floor": e.floor, "seed": e.seed, "waves": e.waves}
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

"""The campaign file's shape, checked by pydantic at the edge, and its complaints put in our words.

Every model is strict, frozen and refuses unknown keys; a validator's message
is what the user reads. :func:`problems` turns pydantic's errors into keys
and messages for ``load`` to place on their lines.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..cdn import check_cdn
from ..records import known_locale
from ..contact import SendWindow, is_time_zone  # noqa: I001 - kept apart from the lines above

MAX_VARIANTS = 26  # named a-z
DEFAULTS: Mapping[str, Any] = types.MappingProxyType({
    "default_locale": "en-US",
    "store": "file://var/store",
    "public_url": "http://127.0.0.1:8000",
    "link_days": 60,
    "link_secret_env": "BILLCAST_LINK_SECRET",
    "ledger": "sqlite:///var/billcast.db",
})

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOCALE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _invalid(message: str, entry: str | None = None) -> PydanticCustomError:
    """A problem in our words; ``entry`` names the key inside a table whose line is meant."""
    return PydanticCustomError("campaign", "{message}", {"message": message, "entry": entry})


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise _invalid("must not be empty")
    return value


def _check_base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise _invalid(f"must be an absolute http(s) URL with no query or fragment, got {value!r}")
    return value.rstrip("/")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RuleModel(_Strict):
    when: str | None = None
    storyboard: str | None = None
    variants: dict[str, Any] | None = None

    @field_validator("when")
    @classmethod
    def _when(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise _invalid("must not be empty; leave `when` out to match every record")
        return value

    _storyboard = field_validator("storyboard")(_not_blank)

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        if not value:
            raise _invalid('needs at least one storyboard, e.g. { "a.yaml" = 50, "b.yaml" = 50 }')
        if len(value) > MAX_VARIANTS:
            raise _invalid(f"may have at most {MAX_VARIANTS} storyboards, got {len(value)}")
        for name, weight in value.items():
            if not name.strip():
                raise _invalid("a storyboard path must not be empty")
            if not isinstance(weight, int) or isinstance(weight, bool) or weight <= 0:
                raise _invalid(f"weights must be positive integers, got {_shown(weight)} for {name!r}", entry=name)
        return value

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.storyboard is None) == (self.variants is None):
            both = "not both" if self.storyboard is not None else "found neither"
            raise _invalid(f"a rule needs exactly one of `storyboard` or `variants`, {both}")
        return self


_ARM = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def _choice(meanings: Mapping[str, str]) -> Any:
    """A validator that accepts one of ``meanings``' keys and explains each in its message."""
    def check(value: str) -> str:
        if value not in meanings:
            options = " or ".join(f"{json.dumps(k)} ({meaning})" for k, meaning in meanings.items())
            raise _invalid(f"must be {options}, got {value!r}")
        return value
    return check


def _between(low: float, high: float, what: str) -> Any:
    """A validator of a number from ``low`` to ``high``, described as ``what``."""
    def check(value: float) -> float:
        if not low <= value <= high:
            raise _invalid(f"must be {what}, got {value}")
        return value
    return check
MAX_ARMS = 8
MAX_SEGMENT_DIMENSIONS = 4


class ExperimentModel(_Strict):
    """``[experiment]``: arms, segments, the policy, a holdout, the success metric, waves."""

    arms: dict[str, Any]
    when: str | None = None
    segments: dict[str, Any] = Field(default_factory=dict)
    policy: str = "thompson"
    weights: dict[str, Any] | None = None
    holdout: float | int = 0
    metric: str = "paid"
    window_days: int = 14
    floor: float | int = 0.05
    seed: int = 1
    waves: int = 1

    @field_validator("arms")
    @classmethod
    def _arms(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not 2 <= len(value) <= MAX_ARMS:
            raise _invalid(f"needs 2 to {MAX_ARMS} arms, e.g. {{ friendly = \"a.yaml\", direct = \"b.yaml\" }}, "
                           f"got {len(value)}")
        for name, path in value.items():
            if not _ARM.fullmatch(name):
                raise _invalid(f"arm names are 1-32 lower-case letters, digits, '_' or '-', got {name!r}", entry=name)
            if not isinstance(path, str) or not path.strip():
                raise _invalid(f"each arm names a storyboard file, got {_shown(path)} for {name!r}", entry=name)
        return value

    @field_validator("segments")
    @classmethod
    def _segments(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_SEGMENT_DIMENSIONS:
            raise _invalid(f"may have at most {MAX_SEGMENT_DIMENSIONS} dimensions, got {len(value)}")
        for name, source in value.items():
            if not _ARM.fullmatch(name):
                raise _invalid(f"dimension names are 1-32 lower-case letters, digits, '_' or '-', got {name!r}",
                               entry=name)
            if not isinstance(source, str) or not source.strip():
                raise _invalid(f"each dimension is an expression over the record, got {_shown(source)}", entry=name)
        return value

    _policy = field_validator("policy")(_choice({
        "fixed": "the weights, always", "thompson": "learn from earlier waves"}))
    _metric = field_validator("metric")(_choice({
        "paid": "paid within window_days", "amount": "amount collected within window_days"}))
    _holdout = field_validator("holdout")(_between(0, 0.5, "a share from 0 to 0.5 of the experiment's recipients"))
    _window = field_validator("window_days")(_between(1, 365, "1 to 365 days"))
    _waves = field_validator("waves")(_between(1, 100, "1 to 100"))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not 0 <= self.floor * len(self.arms) <= 1:
            raise PydanticCustomError("campaign_key", "{key}: {message}", {
                "key": "floor", "message": f"must be from 0 to 1/{len(self.arms)} (one share for each arm), "
                                          f"got {self.floor}"})
        if self.weights is not None:
            if set(self.weights) != set(self.arms):
                raise PydanticCustomError("campaign_key", "{key}: {message}", {
                    "key": "weights", "message": f"must give a weight to each arm ({', '.join(self.arms)}) "
                                                 "and to nothing else"})
            if any(not isinstance(w, int) or isinstance(w, bool) or w <= 0 for w in self.weights.values()):
                raise PydanticCustomError("campaign_key", "{key}: {message}", {
                    "key": "weights", "message": "weights must be positive whole numbers"})
        return self


class CampaignModel(_Strict):
    id: str
    input: str
    default_locale: str = DEFAULTS["default_locale"]
    store: str = DEFAULTS["store"]
    store_endpoint_url: str | None = None
    store_region: str | None = None
    public_url: str = DEFAULTS["public_url"]
    pay_url: str | None = None
    link_days: int = DEFAULTS["link_days"]
    link_secret_env: str = DEFAULTS["link_secret_env"]
    link_secret_file: str | None = None
    ledger: str = DEFAULTS["ledger"]
    out: str | None = None
    cache: str | None = None
    assets: str | None = None
    workers: int | None = None
    shared_cache: bool = False
    size: list[int] | None = None
    brand_name: Annotated[str, Field(max_length=100)] | None = None
    contact_url: str | None = None
    optout_url: str | None = None
    cdn: str | None = None
    rules: Annotated[list[RuleModel], Field(min_length=1)]
    experiment: ExperimentModel | None = None

    # when and how a message may be sent (docs/COMPLIANCE.md), and how often a plan's card may fail
    channel: str = "email"
    send_window: str | None = None
    timezone: str = "UTC"
    max_messages_per_7_days: int | None = None
    plan_max_failures: int = 3

    _channel = field_validator("channel")(_choice({
        "email": "bill emails", "sms": "text messages", "post": "paper bills"}))
    _cap = field_validator("max_messages_per_7_days")(_between(1, 100, "1 to 100 messages"))
    _failures = field_validator("plan_max_failures")(_between(1, 10, "1 to 10 failed charges"))

    @field_validator("send_window")
    @classmethod
    def _send_window(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                SendWindow.parse(value)
            except ValueError as exc:
                raise _invalid(str(exc)) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if not is_time_zone(value):
            raise _invalid(f"must be an IANA time zone such as Europe/Rome or America/New_York, got {_shown(value)}")
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise _invalid("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, "
                           f"got {_shown(value)}")
        return value

    _texts = field_validator("input", "out", "cache", "assets", "link_secret_file", "store_region",
                             "brand_name")(_not_blank)

    @field_validator("default_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        if not (_LOCALE_TAG.fullmatch(value) and known_locale(value)):
            raise _invalid(f"must be a BCP 47 locale tag such as en-US, it-IT, de-DE or ar-EG, got {value!r}")
        return value

    @field_validator("public_url", "pay_url", "store_endpoint_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_base_url(value)

    @field_validator("contact_url", "optout_url")
    @classmethod
    def _page_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if not ((parts.scheme in ("http", "https") and parts.netloc) or (parts.scheme == "mailto" and parts.path)):
            raise _invalid(f"must be an absolute http(s) or mailto: URL ({{token}} is replaced by the "
                           f"recipient's token), got {value!r}")
        return value

    @field_validator("link_days")
    @classmethod
    def _link_days(cls, value: int) -> int:
        if not 1 <= value <= 3650:
            raise _invalid(f"must be between 1 and 3650 days, got {value}")
        return value

    @field_validator("cdn")
    @classmethod
    def _cdn(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_cdn(value)
        except ValueError as exc:
            raise _invalid(str(exc)) from None

    @field_validator("link_secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise _invalid(f"must be the name of an environment variable (letters, digits, '_'), got {value!r}")
        return value

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise _invalid(f"must be at least 1, got {value}")
        return value

    @field_validator("size")
    @classmethod
    def _size(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (len(value) != 2 or any(v <= 0 or v % 2 for v in value)):
            raise _invalid(f"must be [width, height], two positive even numbers, got {value}")
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.query or parts.fragment:
            raise _invalid(f"must have no query or fragment, got {value!r}")
        if value.startswith("file://") and len(value) > len("file://"):
            return value
        if parts.scheme == "s3" and _S3_BUCKET.fullmatch(parts.netloc or ""):
            return value
        raise _invalid("must be file://PATH (relative to the campaign's folder), file:///ABSOLUTE/PATH or "
                       f"s3://BUCKET/PREFIX, got {value!r}")

    @model_validator(mode="after")
    def _s3_only(self) -> Self:
        if not self.store.startswith("s3://"):
            for name in ("store_endpoint_url", "store_region"):
                if getattr(self, name) is not None:
                    raise PydanticCustomError("campaign_key", "{key}: only used with an s3:// store",
                                              {"key": name})
        return self


_MESSAGES = {
    "missing": "is missing; it is required",
    "string_type": "must be text (in quotes)",
    "int_type": "must be a whole number",
    "list_type": "must be an array",
    "dict_type": "must be a table",
    "model_type": "must be a table",
}


def problems(exc: ValidationError) -> Iterator[tuple[tuple[Any, ...], str, str | None]]:
    """(key, message, entry) for each problem; ``entry`` is the key inside a table the message is about."""
    for error in exc.errors(include_url=False):
        loc, kind = tuple(error["loc"]), error["type"]
        if kind == "campaign":
            yield loc, error["msg"], (error.get("ctx") or {}).get("entry")
        elif kind == "campaign_key":  # a model-level check about one key
            key, _, message = error["msg"].partition(": ")
            yield (*loc, key), message, None
        elif kind == "extra_forbidden":
            yield loc, _unknown_key(loc), None
        elif loc == ("rules",) and kind in ("missing", "list_type", "too_short"):
            yield loc, "needs at least one [[rules]] table (write each rule as [[rules]], not [rules])", None
        elif loc == ("ledger",) or kind == "missing":  # a database URL may hold a password: not shown
            yield loc, _MESSAGES.get(kind, error["msg"]), None
        else:
            yield loc, f"{_MESSAGES.get(kind, error['msg'])}, got {_shown(error['input'])}", None


def _unknown_key(loc: tuple[Any, ...]) -> str:
    key = str(loc[-1])
    top, rule = list(CampaignModel.model_fields), list(RuleModel.model_fields)
    if loc[:1] == ("experiment",) and len(loc) == 2:
        known = list(ExperimentModel.model_fields)
        close = difflib.get_close_matches(key, known, n=1)
        return f"is not an experiment key; {f'did you mean {close[0]!r}' if close else 'known: ' + ', '.join(known)}"
    if len(loc) == 1 and key in rule:
        return "is not a campaign key; it belongs in a [[rules]] table"
    if len(loc) == 3 and key in top:
        return ("is not a rule key; a campaign's own keys must come before the first [[rules]] table "
                "(TOML puts every key after a table header inside that table)")
    close = difflib.get_close_matches(key, top if len(loc) == 1 else rule, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (known keys: {', '.join(top if len(loc) == 1 else rule)})"
    return f"is not a known key{hint}"


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return json.dumps(value)
    return str(value)

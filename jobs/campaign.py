"""Campaign files: who gets which storyboard, where outputs go, and how links are made.

A campaign is one TOML file (``docs/CAMPAIGNS.md``), parsed once at the edge into
a frozen :class:`Campaign`. Every problem is a :class:`CampaignError` naming the
file, the line and the dotted key, and all problems are reported at once.

Rules pick a storyboard per record: each ``when`` is a sandboxed Jinja expression
over the record's values (``jobs.records.record_values``), the first rule that
holds wins, and a rule with ``variants`` splits customers between storyboards by
weight, deterministically from the campaign id and the customer id. How an
expression reads a record, and what it may not do: ``jobs.rules``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import tomllib
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from billcast.renderer import RecordError, SourceError, StoryboardError, parse_storyboard

from .records import known_locale
from .rules import SAFE_ERRORS, evaluate, when_problems
from .toml_lines import KeyLines

__all__ = [
    "Campaign", "CampaignError", "CampaignErrors", "Choice", "ChoiceError", "Rule", "Variant",
    "campaign_hash", "choose", "load_campaign",
]

INPUT_SUFFIXES = (".jsonl", ".ndjson", ".csv")
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


# --- errors ------------------------------------------------------------------------------------

class CampaignError(SourceError):
    """A campaign file that cannot be used: names its file, line and dotted key."""


class CampaignErrors(CampaignError):
    """Every problem of one campaign file, in file order; the first one is also its own."""

    def __init__(self, errors: list[CampaignError]) -> None:
        if not errors:
            raise ValueError("CampaignErrors needs at least one error")
        errors = sorted(errors, key=lambda e: (e.line or 0, e.field or ""))
        first = errors[0]
        super().__init__(first.message, path=first.path, line=first.line, field=first.field)
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(CampaignError.__str__(error) for error in self.errors)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errors,))


class ChoiceError(RecordError):
    """A rule's ``when`` failed for one record: that record is refused, the batch goes on.

    ``source`` and ``line`` are the campaign file's and the line of the ``when``.
    """


# --- the campaign, inside ------------------------------------------------------------------------

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
    index: int
    when: str | None  # None: matches every record
    variants: tuple[Variant, ...]
    line: int | None = None  # of its ``when`` (else its [[rules]] header), for messages

    @property
    def total_weight(self) -> int:
        return sum(variant.weight for variant in self.variants)


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
    shared_cache: bool = False  # share encoded segments between hosts through the store (docs/SCALING.md)

    @property
    def storyboards(self) -> tuple[Path, ...]:
        """Every storyboard the rules can pick, once each, in rule order."""
        return tuple(dict.fromkeys(v.storyboard for rule in self.rules for v in rule.variants))


@dataclass(frozen=True)
class Choice:
    """The storyboard one record gets."""

    storyboard: Path
    name: str
    variant: str
    rule: int


# --- public API ----------------------------------------------------------------------------------

def load_campaign(path: str | os.PathLike[str]) -> Campaign:
    """Read, validate and resolve a campaign file; raise :class:`CampaignErrors` listing every problem."""
    shown = os.fspath(path)
    file = Path(os.path.abspath(shown))
    try:
        text = file.read_bytes().decode("utf-8")
    except OSError as exc:
        raise CampaignErrors([CampaignError(f"cannot read: {exc.strerror or exc}", path=shown)]) from None
    except UnicodeDecodeError:
        raise CampaignErrors([CampaignError("is not UTF-8 text", path=shown)]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignErrors([_toml_error(exc, shown, text)]) from None
    report = _Report(shown, KeyLines(text))
    try:
        model = _CampaignModel.model_validate(data)
    except ValidationError as exc:
        for loc, message, entry in _pydantic_problems(exc):
            report.add(loc, message, entry=entry)
        raise CampaignErrors(report.errors) from None
    campaign = _resolve(model, file, report)
    if report.errors:
        raise CampaignErrors(report.errors)
    return campaign


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
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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


# --- the file's shape: pydantic at the edge --------------------------------------------------------

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


class _RuleModel(_Strict):
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


class _CampaignModel(_Strict):
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
    ledger: str = DEFAULTS["ledger"]
    out: str | None = None
    cache: str | None = None
    workers: int | None = None
    shared_cache: bool = False
    size: list[int] | None = None
    brand_name: Annotated[str, Field(max_length=100)] | None = None
    contact_url: str | None = None
    optout_url: str | None = None
    rules: Annotated[list[_RuleModel], Field(min_length=1)]

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise _invalid("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, "
                           f"got {_shown(value)}")
        return value

    _texts = field_validator("input", "out", "cache", "store_region", "brand_name")(_not_blank)

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


def _pydantic_problems(exc: ValidationError) -> Iterator[tuple[tuple[Any, ...], str, str | None]]:
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
    top, rule = list(_CampaignModel.model_fields), list(_RuleModel.model_fields)
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


# --- resolving paths, storyboards and expressions --------------------------------------------------

class _Report:
    """Problems found so far, each with the line of its key."""

    def __init__(self, shown: str, lines: KeyLines) -> None:
        self.shown = shown
        self.lines = lines
        self.errors: list[CampaignError] = []

    def add(self, loc: tuple[Any, ...], message: str, *, entry: str | None = None) -> None:
        """A problem with key ``loc``; ``entry`` (a key inside its table) sharpens the line, not the key."""
        line = self.lines.line_of(loc if entry is None else (*loc, entry))
        self.errors.append(CampaignError(message, path=self.shown, line=line, field=_dotted(loc)))


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _resolve(model: _CampaignModel, file: Path, report: _Report) -> Campaign:
    folder = file.parent
    input_path = _path(folder, model.input)
    if not input_path.is_file():
        report.add(("input",), f"no such file: {input_path}")
    elif input_path.suffix.lower() not in INPUT_SUFFIXES:
        report.add(("input",), f"must be JSON Lines (.jsonl, .ndjson) or CSV (.csv), got {input_path.name!r}")
    rules = tuple(_rule(index, rule, folder, report) for index, rule in enumerate(model.rules))
    return Campaign(
        id=model.id, path=file, source=report.shown, folder=folder, input=input_path,
        default_locale=model.default_locale, store=_store(model.store, folder),
        store_endpoint_url=model.store_endpoint_url, store_region=model.store_region,
        public_url=model.public_url, pay_url=model.pay_url or model.public_url,
        link_days=model.link_days, link_secret_env=model.link_secret_env,
        ledger=_ledger(model.ledger, folder, report),
        out=_path(folder, model.out or f"var/out/{model.id}"),
        cache=_path(folder, model.cache) if model.cache else None,
        workers=model.workers, size=(model.size[0], model.size[1]) if model.size else None,
        brand_name=model.brand_name, contact_url=model.contact_url, optout_url=model.optout_url,
        rules=rules, shared_cache=model.shared_cache,
    )


def _path(folder: Path, text: str) -> Path:
    """``text`` made absolute against the campaign's folder, with ``..`` folded (symlinks are kept)."""
    return Path(os.path.normpath(folder / Path(text).expanduser()))


def _store(url: str, folder: Path) -> str:
    if url.startswith("file://"):
        rest = url[len("file://"):]
        return "file://" + (os.path.normpath(rest) if rest.startswith("/") else str(_path(folder, rest)))
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    return f"s3://{parts.netloc}/{prefix}" if prefix else f"s3://{parts.netloc}"


def _ledger(url: str, folder: Path, report: _Report) -> str:
    from sqlalchemy.engine import make_url  # late: only loading a campaign needs it
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        report.add(("ledger",), "is not a SQLAlchemy database URL, such as sqlite:///var/billcast.db or "
                   "postgresql+psycopg://user@host/billcast")
        return url
    database = parsed.database
    if (parsed.get_backend_name() != "sqlite" or not database or database == ":memory:"
            or database.startswith("file:") or os.path.isabs(database)):
        return url
    return parsed.set(database=str(_path(folder, database))).render_as_string(hide_password=False)


def _rule(index: int, model: _RuleModel, folder: Path, report: _Report) -> Rule:
    if model.storyboard is not None:
        key = ("rules", index, "storyboard")
        targets = [(model.storyboard, "", 1)]
    else:
        key = ("rules", index, "variants")
        targets = [(name, chr(ord("a") + i), weight) for i, (name, weight) in enumerate((model.variants or {}).items())]
    variants = tuple(_variant(name, letter, weight, folder, key, report, entry=None if letter == "" else name)
                     for name, letter, weight in targets)
    if model.when is not None:
        for problem in when_problems(model.when):
            report.add(("rules", index, "when"), problem)
    line = report.lines.line_of(("rules", index, "when") if model.when is not None else ("rules", index))
    return Rule(index=index, when=model.when, variants=variants, line=line)


def _variant(name: str, letter: str, weight: int, folder: Path, key: tuple[Any, ...], report: _Report, *,
             entry: str | None) -> Variant:
    path = _path(folder, name)
    digest = ""
    try:
        data = path.read_bytes()
    except OSError as exc:
        what = "no such storyboard" if isinstance(exc, FileNotFoundError) else f"cannot read ({exc.strerror})"
        report.add(key, f"{what}: {path}", entry=entry)
    else:
        digest = hashlib.sha256(data).hexdigest()
        problem = _storyboard_problem(data, _display(report.shown, name, path))
        if problem:
            report.add(key, problem, entry=entry)
    return Variant(storyboard=path, name=path.stem, variant=letter, weight=weight, digest=digest)


def _display(campaign_shown: str, name: str, path: Path) -> str:
    """A storyboard's path as its messages show it: from where the campaign's path was given."""
    if Path(name).is_absolute():
        return str(path)
    return os.path.normpath(os.path.join(os.path.dirname(campaign_shown), name))


def _storyboard_problem(data: bytes, shown: str) -> str | None:
    try:
        parse_storyboard(data.decode("utf-8"), path=shown)
    except UnicodeDecodeError:
        return f"{shown} is not UTF-8 text"
    except StoryboardError as exc:
        return f"{shown} is not a valid storyboard:\n" + "\n".join(f"  {line}" for line in str(exc).splitlines())
    return None


def _holds(campaign: Campaign, rule: Rule, values: Mapping[str, Any], customer_id: str) -> bool:
    assert rule.when is not None
    try:
        return evaluate(rule.when, values)
    except Exception as exc:  # an author's expression failing on one record refuses that record only
        detail = str(exc) if isinstance(exc, SAFE_ERRORS) else type(exc).__name__  # no record values in logs
        raise ChoiceError(f"cannot be evaluated for this record: {detail}", line=rule.line,
                          customer_id=customer_id, field=f"rules[{rule.index}].when",
                          source=campaign.source) from None


def _toml_error(exc: tomllib.TOMLDecodeError, shown: str, text: str) -> CampaignError:
    message = str(exc)
    line: int | None = getattr(exc, "lineno", None)  # Python 3.14 keeps it
    if match := re.search(r"\s*\(at line (\d+), column (\d+)\)$", message):
        line, message = int(match[1]), f"{message[:match.start()]} (column {match[2]})"
    elif match := re.search(r"\s*\(at end of document\)$", message):
        line, message = max(1, len(text.splitlines())), f"{message[:match.start()]} (at the end of the file)"
    return CampaignError(f"is not valid TOML: {message}", path=shown, line=line)

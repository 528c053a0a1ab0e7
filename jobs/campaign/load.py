"""Loading a campaign file: read, check against its shape, resolve paths and storyboards, report every problem.

Every problem is a :class:`CampaignError` naming the file, the line and the
dotted key; all of one file's problems are raised at once as
:class:`CampaignErrors`, in file order.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from billcast.renderer import SourceError, SourceErrors, StoryboardError, parse_storyboard

from ..contact import SendWindow
from ..rules import when_problems
from ..toml_lines import KeyLines
from .model import Campaign, Experiment, Rule, Variant
from .schema import CampaignModel, ExperimentModel, RuleModel, problems

INPUT_SUFFIXES = (".jsonl", ".ndjson", ".csv")


class CampaignError(SourceError):
    """A campaign file that cannot be used: names its file, line and dotted key."""


class CampaignErrors(SourceErrors, CampaignError):
    """Every problem of one campaign file, in file order; the first one is also its own."""


def load_campaign(path: str | os.PathLike[str], *, assets: Path | None = None) -> Campaign:
    """Read, validate and resolve a campaign file; raise :class:`CampaignErrors` listing every problem.

    ``assets`` (``--assets``) replaces the file's own ``assets`` folder.
    """
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
        model = CampaignModel.model_validate(data)
    except ValidationError as exc:
        for loc, message, entry in problems(exc):
            report.add(loc, message, entry=entry)
        raise CampaignErrors(report.errors) from None
    campaign = _resolve(model, file, report, assets)
    if report.errors:
        raise CampaignErrors(report.errors)
    return campaign


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


def _resolve(model: CampaignModel, file: Path, report: _Report, assets: Path | None) -> Campaign:
    folder = file.parent
    if assets is None and model.assets:
        assets = _path(folder, model.assets)
        if not assets.is_dir():
            report.add(("assets",), f"no such folder: {assets}")
            assets = None  # reported once, not again for every asset of every storyboard
    input_path = _path(folder, model.input)
    if not input_path.is_file():
        report.add(("input",), f"no such file: {input_path}")
    elif input_path.suffix.lower() not in INPUT_SUFFIXES:
        report.add(("input",), f"must be JSON Lines (.jsonl, .ndjson) or CSV (.csv), got {input_path.name!r}")
    rules = tuple(_rule(index, rule, folder, report, assets) for index, rule in enumerate(model.rules))
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
        rules=rules, shared_cache=model.shared_cache, assets=assets, cdn=model.cdn,
        link_secret_file=_path(folder, model.link_secret_file) if model.link_secret_file else None,
        experiment=_experiment(model.experiment, folder, report, assets) if model.experiment else None,
        channel=model.channel, send_window=SendWindow.parse(model.send_window) if model.send_window else None,
        timezone=model.timezone, max_messages_per_7_days=model.max_messages_per_7_days,
        plan_max_failures=model.plan_max_failures,
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


def _rule(index: int, model: RuleModel, folder: Path, report: _Report, assets: Path | None) -> Rule:
    if model.storyboard is not None:
        key = ("rules", index, "storyboard")
        targets = [(model.storyboard, "", 1)]
    else:
        key = ("rules", index, "variants")
        targets = [(name, chr(ord("a") + i), weight) for i, (name, weight) in enumerate((model.variants or {}).items())]
    variants = tuple(_variant(name, letter, weight, folder, key, report, assets,
                              entry=None if letter == "" else name)
                     for name, letter, weight in targets)
    if model.when is not None:
        for problem in when_problems(model.when):
            report.add(("rules", index, "when"), problem)
    line = report.lines.line_of(("rules", index, "when") if model.when is not None else ("rules", index))
    return Rule(index=index, when=model.when, variants=variants, line=line)


def _experiment(model: ExperimentModel, folder: Path, report: _Report, assets: Path | None) -> Experiment:
    key = ("experiment", "arms")
    weights = model.weights or dict.fromkeys(model.arms, 1)
    arms = tuple(_variant(path, name, weights[name], folder, key, report, assets, entry=name)
                 for name, path in model.arms.items())
    if model.when is not None:
        for problem in when_problems(model.when):
            report.add(("experiment", "when"), problem)
    for dimension, source in model.segments.items():
        for problem in when_problems(source):
            report.add(("experiment", "segments"), f"{dimension}: {problem}", entry=dimension)
    return Experiment(arms=arms, when=model.when, segments=tuple(model.segments.items()), policy=model.policy,
                      holdout=float(model.holdout), metric=model.metric, window_days=model.window_days,
                      floor=float(model.floor), seed=model.seed, waves=model.waves)


def _variant(name: str, letter: str, weight: int, folder: Path, key: tuple[Any, ...], report: _Report,
             assets: Path | None, *, entry: str | None) -> Variant:
    path = _path(folder, name)
    digest = ""
    try:
        data = path.read_bytes()
    except OSError as exc:
        what = "no such storyboard" if isinstance(exc, FileNotFoundError) else f"cannot read ({exc.strerror})"
        report.add(key, f"{what}: {path}", entry=entry)
    else:
        digest = hashlib.sha256(data).hexdigest()
        problem = _storyboard_problem(data, _display(report.shown, name, path), assets)
        if problem:
            report.add(key, problem, entry=entry)
    return Variant(storyboard=path, name=path.stem, variant=letter, weight=weight, digest=digest)


def _display(campaign_shown: str, name: str, path: Path) -> str:
    """A storyboard's path as its messages show it: from where the campaign's path was given."""
    if Path(name).is_absolute():
        return str(path)
    return os.path.normpath(os.path.join(os.path.dirname(campaign_shown), name))


def _storyboard_problem(data: bytes, shown: str, assets: Path | None) -> str | None:
    try:
        parse_storyboard(data.decode("utf-8"), path=shown, assets_dir=assets)
    except UnicodeDecodeError:
        return f"{shown} is not UTF-8 text"
    except StoryboardError as exc:
        return f"{shown} is not a valid storyboard:\n" + "\n".join(f"  {line}" for line in str(exc).splitlines())
    return None


def _toml_error(exc: tomllib.TOMLDecodeError, shown: str, text: str) -> CampaignError:
    message = str(exc)
    line: int | None = getattr(exc, "lineno", None)  # Python 3.14 keeps it
    if match := re.search(r"\s*\(at line (\d+), column (\d+)\)$", message):
        line, message = int(match[1]), f"{message[:match.start()]} (column {match[2]})"
    elif match := re.search(r"\s*\(at end of document\)$", message):
        line, message = max(1, len(text.splitlines())), f"{message[:match.start()]} (at the end of the file)"
    return CampaignError(f"is not valid TOML: {message}", path=shown, line=line)

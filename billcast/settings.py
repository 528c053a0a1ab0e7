"""Billcast's one settings model: every setting the service, the command and the runs read, from one place.

Read once at the entry point (``billcast`` and ``billcast.wsgi:app``) with
:func:`load_settings`, from, highest first: the command line's options, the
environment (``BILLCAST_*``; Stripe's keys also under their usual names), files
named by ``*_FILE`` settings (container secrets), a TOML file (``--config FILE``
or ``BILLCAST_CONFIG``), then the defaults. The lower layers get plain values:
:func:`service_settings` maps the model onto the service's frozen
``ServiceSettings``. ``docs/CONFIGURATION.md`` lists every setting
(``tests/test_settings.py`` checks it against :func:`documented_rows`).

Anything missing or unsafe fails at once with one line naming the setting
(:class:`~billcast.renderer.SettingsError`, exit 10).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (BaseSettings, EnvSettingsSource, InitSettingsSource, NoDecode,
                               PydanticBaseSettingsSource, SettingsConfigDict)

from billcast.renderer import SettingsError, default_cache_dir
from billcast.jobs.campaign import Campaign, load_campaign
from billcast.jobs.links import link_secret
from billcast.jobs.secret_file import SecretFileError, kept_secret, new_hex_secret

if TYPE_CHECKING:
    from billcast.service import ServiceSettings

CONFIG_ENV = "BILLCAST_CONFIG"
PREFIX = "BILLCAST_"
SECRET_MIN_CHARS = 32
SECRET_MAX_BYTES = 4096  # a *_FILE longer than this is not a secret
LINK_SECRET_ENV = "BILLCAST_LINK_SECRET"
STRIPE_KEY_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_")
LOOPBACK_NAMES = ("localhost",)
STATE_FOLDER = ".billcast-service"  # beside the first campaign's outputs, when state_dir is not set
SECRETS = ("admin_token", "session_secret", "link_secret", "stripe_api_key", "stripe_webhook_secret")
MAX_WORKERS = 8
OPTIONS = {"assets_dir": "--assets", "cache_dir": "--cache", "secure_cookies": "--insecure-cookies",
           "campaigns": "CAMPAIGN"}  # the command line's names where they are not --the-setting


def default_workers() -> int:
    """gunicorn's rule of thumb, two per core and one more, capped: I/O waits leave the cores room."""
    return min(2 * (os.cpu_count() or 1) + 1, MAX_WORKERS)


def _aliases(*names: str) -> AliasChoices:
    return AliasChoices(*names)


def _doc(text: str, default: str | None = None) -> dict[str, Any]:
    """A field's meaning for docs/CONFIGURATION.md, and its default in words where it is computed."""
    return {"doc": text, **({"doc_default": default} if default is not None else {})}


# The sources settings are read from while load_settings builds one (see Settings.settings_customise_sources).
_SOURCES: ContextVar[tuple[PydanticBaseSettingsSource, ...]] = ContextVar("billcast_settings_sources")


class _Environment(EnvSettingsSource):
    """The environment source, over a mapping given to :func:`load_settings` (``os.environ`` in use)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._environ.items() if value.strip()}


class Settings(BaseSettings):
    """Every setting, with its default. Secrets are ``SecretStr``: they never print."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid", validate_by_name=True, frozen=True)

    # --- what is served -------------------------------------------------------------------------
    campaigns: Annotated[tuple[Path, ...], NoDecode] = Field((), json_schema_extra=_doc(
        "campaign files the service serves, separated by `:` (a list in the TOML file); `billcast serve` "
        "and `billcast doctor` take them as arguments too", "none (`billcast serve`: `./var/campaign.toml`)"))
    state_dir: Path | None = Field(None, json_schema_extra=_doc(
        "where the service keeps the session key it makes when `session_secret` is not set",
        "`.billcast-service/` beside the first campaign's `out` folder"))
    # --- the server -----------------------------------------------------------------------------
    host: str = Field("127.0.0.1", json_schema_extra=_doc("address `billcast serve` listens on"))
    port: int = Field(8000, ge=1, le=65535, json_schema_extra=_doc("port `billcast serve` listens on"))
    workers: int = Field(default_factory=default_workers, ge=1, le=64, json_schema_extra=_doc(
        "gunicorn worker processes", "2 × cores + 1, at most 8"))
    threads: int = Field(4, ge=1, le=64, json_schema_extra=_doc("threads per worker process (gunicorn's gthread)"))
    timeout: int = Field(30, ge=5, le=600, json_schema_extra=_doc(
        "seconds a worker may spend on one request before gunicorn restarts it"))
    trusted_proxies: int = Field(0, ge=0, le=5, json_schema_extra=_doc(
        "reverse proxies in front that set X-Forwarded-For/-Proto/-Host/-Port/-Prefix; 0 trusts none of "
        "those headers"))
    secure_cookies: bool = Field(True, json_schema_extra=_doc(
        "the admin sign-in cookie travels over https only (`--insecure-cookies` turns it off for local use)"))
    events_per_minute: int = Field(120, ge=1, le=100_000, json_schema_extra=_doc(
        "beacons recorded per page link in any minute; more are answered 429"))
    signin_failures: int = Field(10, ge=1, le=1000, json_schema_extra=_doc(
        "sign-in attempts (form or bearer token) one client may fail in `signin_window_minutes`; more are "
        "answered 429 without the token being looked at"))
    signin_window_minutes: int = Field(15, ge=1, le=24 * 60, json_schema_extra=_doc(
        "the sliding window `signin_failures` is counted over"))
    signin_failures_all: int = Field(60, ge=1, le=100_000, json_schema_extra=_doc(
        "sign-in attempts all clients together may fail in any minute; past it every sign-in, by form or "
        "bearer header, is answered 429 until the minute is over"))
    session_hours: int = Field(8, ge=1, le=24 * 30, json_schema_extra=_doc(
        "how long an admin session lasts after signing in, however busy"))
    session_idle_minutes: int = Field(60, ge=1, le=24 * 60, json_schema_extra=_doc(
        "an admin session unused this long is over"))
    admin_nice: int = Field(10, ge=0, le=19, json_schema_extra=_doc(
        "niceness of the admin side's processes when it runs on its own (`billcast serve --admin`, "
        "`billcast.wsgi:admin_app`), so that on a shared host the public side keeps the CPU; 0 leaves it"))
    log_format: Literal["text", "json"] = Field("text", json_schema_extra=_doc(
        "`text` (a line a person reads) or `json` (one object a line, for a log collector)"))
    log_level: Literal["debug", "info", "warning", "error"] | None = Field(None, json_schema_extra=_doc(
        "the least severe record logged; `-v`, `-vv` and `-q` win", "`info` for `serve`, else `warning`"))
    # --- secrets (each also from a file: the setting's name with _FILE) ----------------------------
    admin_token: SecretStr | None = Field(None, json_schema_extra=_doc(
        "opens reports and the studio (at least 32 characters); unset, they are off, and the admin side on its "
        "own (`billcast serve --admin`) does not start; the public side never reads it"))
    admin_token_file: Path | None = Field(None, json_schema_extra=_doc("a file holding `admin_token`"))
    session_secret: SecretStr | None = Field(None, json_schema_extra=_doc(
        "signs the admin session cookie and keys the token hashes in logs (at least 32 characters); the same "
        "on every host", "made once and kept in `state_dir`"))
    session_secret_file: Path | None = Field(None, json_schema_extra=_doc("a file holding `session_secret`"))
    link_secret: SecretStr | None = Field(None, json_schema_extra=_doc(
        "the secret recipients' links are derived from (at least 32 characters; a campaign's "
        "`link_secret_env` may name another variable)", "`billcast demo`: made once in `OUT/link_secret`"))
    link_secret_file: Path | None = Field(None, json_schema_extra=_doc("a file holding `link_secret`"))
    stripe_api_key: SecretStr | None = Field(None, validation_alias=_aliases(
        "STRIPE_API_KEY", "BILLCAST_STRIPE_API_KEY"), json_schema_extra=_doc(
        "Stripe's secret key (`sk_test_...`, `sk_live_...`); unset, the demo provider takes payments"))
    stripe_api_key_file: Path | None = Field(None, validation_alias=_aliases(
        "STRIPE_API_KEY_FILE", "BILLCAST_STRIPE_API_KEY_FILE"), json_schema_extra=_doc(
        "a file holding `stripe_api_key`"))
    stripe_webhook_secret: SecretStr | None = Field(None, validation_alias=_aliases(
        "STRIPE_WEBHOOK_SECRET", "BILLCAST_STRIPE_WEBHOOK_SECRET"), json_schema_extra=_doc(
        "the signing secret (`whsec_...`) of the webhook endpoint; required with `stripe_api_key`",
        "demo: derived from `session_secret`"))
    stripe_webhook_secret_file: Path | None = Field(None, validation_alias=_aliases(
        "STRIPE_WEBHOOK_SECRET_FILE", "BILLCAST_STRIPE_WEBHOOK_SECRET_FILE"), json_schema_extra=_doc(
        "a file holding `stripe_webhook_secret`"))
    stripe_api_base: str | None = Field(None, json_schema_extra=_doc(
        "another address for Stripe's API (a Stripe-compatible test server)", "Stripe's"))
    # --- the studio -----------------------------------------------------------------------------
    storyboards: Path | None = Field(None, json_schema_extra=_doc(
        "the storyboards folder the studio lists and saves to (set it: the default is inside the installed "
        "package)", "the packaged storyboards"))
    samples: Path | None = Field(None, json_schema_extra=_doc(
        "the sample customer records the studio previews with", "the packaged examples"))
    studio_assets: Path | None = Field(None, json_schema_extra=_doc(
        "the studio's assets folder, where uploads go (starts as a copy of the packaged assets)",
        "the packaged assets (read only: no uploads)"))
    studio_cache: Path | None = Field(None, json_schema_extra=_doc(
        "the segment cache of the studio's preview videos (and their status)", "`~/.cache/billcast/studio-segments`"))
    studio_check_seconds: float = Field(10.0, gt=0, le=600, json_schema_extra=_doc(
        "CPU and wall-clock seconds one studio check or preview frame may take in its worker process"))
    studio_render_seconds: float = Field(120.0, gt=0, le=3600, json_schema_extra=_doc(
        "CPU and wall-clock seconds one studio preview video may take in its worker process"))
    studio_memory_mb: int = Field(2048, ge=256, le=65536, json_schema_extra=_doc(
        "memory (address space, MB) of each studio worker process"))
    studio_workers: int = Field(1, ge=1, le=16, json_schema_extra=_doc(
        "studio worker processes that check and draw, per service process (renders have one more)"))
    studio_queue: int = Field(4, ge=0, le=64, json_schema_extra=_doc(
        "studio jobs that may wait for a worker, per service process; beyond them the studio answers 503"))
    studio_yield_percent: int = Field(30, ge=0, le=100, json_schema_extra=_doc(
        "a studio job stops while other work at the normal priority keeps more than this percent of the "
        "host's CPUs busy (the public side first), for at most three times its own limit in all; 0: never"))
    # --- rendering and runs ---------------------------------------------------------------------
    assets_dir: Path | None = Field(None, json_schema_extra=_doc(
        "fonts, images and audio beds for storyboards (`--assets` wins)", "the packaged ones"))
    cache_dir: str | None = Field(None, json_schema_extra=_doc(
        "the segment cache folder, or `off` (`--cache` and a campaign's `cache` win)",
        "`~/.cache/billcast/segments`"))
    ledger_url: str | None = Field(None, json_schema_extra=_doc(
        "the ledger `billcast db` works on when neither `--ledger` nor a campaign file is given (a SQLAlchemy "
        "URL; campaigns name their own `ledger`)", "`sqlite:///var/billcast.db`"))
    executor: str = Field("local", json_schema_extra=_doc(
        "where `billcast run` renders: `local`, a Dask scheduler's `tcp://HOST:PORT` or its scheduler file "
        "(`--executor` wins)"))

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, **_: PydanticBaseSettingsSource
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The options given (init), then what :func:`load_settings` put in context (else the process's env)."""
        return (init_settings, *_SOURCES.get((env_settings,)))

    @field_validator("campaigns", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(os.pathsep) if part.strip())
        return value

    @field_validator("assets_dir")
    @classmethod
    def _a_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a folder (it should hold fonts/, images/ and audio/)")
        return value.absolute() if value is not None else None

    @field_validator("stripe_api_base")
    @classmethod
    def _a_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"must be an http(s) URL, got {value[:60]!r}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """``X_FILE`` settings read into ``X``; both given is a mistake, named."""
        if not isinstance(data, dict):
            return data
        data = _by_name(data)
        for name in SECRETS:
            path = data.get(f"{name}_file")
            if path is None:
                continue
            if data.get(name) is not None:
                raise SettingsError(f"{env_name(name)}_FILE", f"{env_name(name)} is set too; set only one of them")
            data[name] = _read_secret_file(f"{env_name(name)}_FILE", Path(path))
        return data

    @model_validator(mode="after")
    def _safe(self) -> Settings:
        """Refuse what would run unsafely: short secrets, a Stripe key without its webhook secret."""
        for name in ("admin_token", "session_secret", "link_secret"):
            value = self.secret(name)
            if value is not None and len(value) < SECRET_MIN_CHARS:
                raise SettingsError(env_name(name), f"is {len(value)} characters; use at least {SECRET_MIN_CHARS}, "
                                    "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
        key = self.secret("stripe_api_key")
        if key is not None:
            if not key.startswith(STRIPE_KEY_PREFIXES):
                raise SettingsError("STRIPE_API_KEY", f"does not look like a Stripe secret key ({mask(key)}); "
                                    "it starts with sk_test_, sk_live_, rk_test_ or rk_live_")
            if self.secret("stripe_webhook_secret") is None:
                raise SettingsError("STRIPE_WEBHOOK_SECRET", f"is not set: with a {self.stripe_mode} Stripe key, "
                                    "give the signing secret (whsec_...) of the webhook endpoint registered in "
                                    "Stripe's dashboard (docs/DEPLOY.md)")
        return self

    def secret(self, name: str) -> str | None:
        """A secret's value in the clear (``admin_token``, ``stripe_api_key``, ...), None when unset."""
        value = getattr(self, name)
        return value.get_secret_value().strip() if value is not None else None

    @property
    def stripe_mode(self) -> str:
        """``live`` or ``test`` from the key's prefix; ``demo`` without a key."""
        key = self.secret("stripe_api_key")
        if not key:
            return "demo"
        return "live" if "_live_" in key[:8] else "test"

    def segment_cache_dir(self, given: str | None = None) -> Path | None:
        """The segment cache: ``given`` (``--cache``), else ``cache_dir``, else the user's; None for ``off``."""
        folder = given or self.cache_dir
        if folder == "off":
            return None
        return Path(folder) if folder else default_cache_dir()


def _by_name(data: dict[str, Any]) -> dict[str, Any]:
    """The input with every alias (STRIPE_API_KEY) under its field's name (stripe_api_key)."""
    names = {}
    for name, field in Settings.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):
            names.update({str(alias): name for alias in field.validation_alias.choices})
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.setdefault(names.get(key, key), value)
    return out


def _read_secret_file(setting: str, path: Path) -> str:
    try:
        with path.open("rb") as f:
            raw = f.read(SECRET_MAX_BYTES + 1)
    except OSError as exc:
        raise SettingsError(setting, f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > SECRET_MAX_BYTES:
        raise SettingsError(setting, f"{path} is over {SECRET_MAX_BYTES} bytes; it should hold one secret")
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SettingsError(setting, f"{path} is not UTF-8 text") from None
    if not value:
        raise SettingsError(setting, f"{path} is empty")
    return value


def env_name(name: str) -> str:
    """The first environment variable a setting is read from."""
    return env_names(name)[0]


def env_names(name: str) -> tuple[str, ...]:
    """Every environment variable a setting is read from, the usual one first."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return (PREFIX + name.upper(),)


# --- loading --------------------------------------------------------------------------------------

def load_settings(environ: Mapping[str, str], config: str | os.PathLike[str] | None = None,
                  **options: Any) -> Settings:
    """The settings from ``options`` (the command line's, by field name), ``environ`` and the TOML file
    (``config``, else ``$BILLCAST_CONFIG``); a :class:`SettingsError` naming the first bad setting."""
    given = {name: value for name, value in options.items() if value is not None}
    path = config or environ.get(CONFIG_ENV) or None
    label = "--config" if config else CONFIG_ENV
    toml = _read_toml(Path(path), label) if path else {}
    sources = (_Environment(Settings, environ), InitSettingsSource(Settings, toml))
    context = _SOURCES.set(sources)
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise _settings_error(exc, given, toml, Path(path) if path else None) from None
    finally:
        _SOURCES.reset(context)


_TOML_PATHS = ("campaigns", "state_dir", "assets_dir", "storyboards", "samples", "studio_assets", "studio_cache",
               *(f"{name}_file" for name in SECRETS))


def _read_toml(path: Path, label: str) -> dict[str, Any]:
    """The TOML file's settings; relative paths in it are relative to its folder."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(label, f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(label, f"{path} is not valid TOML: {exc}") from None
    folder = path.absolute().parent

    def resolve(value: Any) -> Any:
        return str(folder / value) if isinstance(value, str) and value else value

    for key in _TOML_PATHS:
        if key in data:
            data[key] = [resolve(v) for v in data[key]] if isinstance(data[key], list) else resolve(data[key])
    if isinstance(data.get("cache_dir"), str) and data["cache_dir"] != "off":
        data["cache_dir"] = resolve(data["cache_dir"])
    return data


def _settings_error(exc: ValidationError, given: Mapping[str, Any], toml: Mapping[str, Any],
                    path: Path | None) -> SettingsError:
    """The first problem as one line naming where the setting was given."""
    error = exc.errors()[0]
    key = str(error["loc"][0]) if error["loc"] else ""
    name = _by_name({key: None}).popitem()[0] if key else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    if name in Settings.model_fields and name not in SECRETS and error["type"] != "value_error":
        message += f", got {str(error.get('input'))[:60]!r}"
    if name in given:
        return SettingsError(OPTIONS.get(name, f"--{name.replace('_', '-')}"), message)
    if name in toml or key in toml or name not in Settings.model_fields:
        if name not in Settings.model_fields:
            message = "is not a setting (docs/CONFIGURATION.md lists them)"
        return SettingsError(f"{path}: {key}", message)
    return SettingsError(env_name(name), message)


# --- what the settings mean for the service -------------------------------------------------------

def load_campaigns(files: Sequence[str | os.PathLike[str]]) -> tuple[Campaign, ...]:
    return tuple(load_campaign(path) for path in files)


def service_settings(settings: Settings, campaigns: Sequence[Campaign]) -> ServiceSettings:
    """The service's frozen settings: the campaigns' links checked, the secrets resolved.

    Where no session secret is set it is made once and kept in ``state_dir``, so every
    worker (and every restart) agrees; the demo provider's webhook secret is derived
    from it.
    """
    from billcast.service import ServiceSettings

    if not campaigns:
        raise SettingsError("BILLCAST_CAMPAIGNS", "no campaign to serve: give the campaign files")
    for campaign in campaigns:
        check_public_urls(campaign)
    state = settings.state_dir or campaigns[0].out.parent / STATE_FOLDER
    session = settings.secret("session_secret")
    if session is None:
        try:
            session = kept_secret(state / "session_secret", new_hex_secret)
        except SecretFileError as exc:
            raise SettingsError("BILLCAST_SESSION_SECRET", f"{exc}, or set it") from None
    webhook = settings.secret("stripe_webhook_secret") or demo_webhook_secret(session.encode())
    same = {field.name: getattr(settings, field.name) for field in fields(ServiceSettings)
            if field.name in Settings.model_fields}  # the campaigns and the secrets are given below
    return ServiceSettings(**same | {
        "campaigns": tuple(campaigns), "webhook_secret": webhook, "session_secret": session.encode(),
        "admin_token": settings.secret("admin_token"), "stripe_api_key": settings.secret("stripe_api_key"),
        "storyboards_dir": settings.storyboards, "samples_dir": settings.samples,
        "studio_assets_dir": settings.studio_assets, "studio_cache_dir": settings.studio_cache})


def demo_webhook_secret(session_secret: bytes) -> str:
    """The demo provider's signing secret: the same in every worker that shares the session secret."""
    return "whsec_demo_" + hmac.new(session_secret, b"billcast demo webhook secret", "sha256").hexdigest()[:48]


def check_public_urls(campaign: Campaign) -> None:
    """An http:// link outside this machine would carry tokens in the clear: only the demo (loopback) may."""
    for key, url in (("public_url", campaign.public_url), ("pay_url", campaign.pay_url)):
        parts = urlsplit(url)
        if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            raise SettingsError(f"{campaign.source}: {key}", f"{url} is plain http; links outside this machine "
                                "must be https:// (http:// is for the demo on 127.0.0.1 or localhost)")


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def campaign_link_secret(settings: Settings, campaign: Campaign, environ: Mapping[str, str],
                         keep: Path | None = None) -> bytes:
    """The secret a campaign's links are derived from: ``link_secret``, or the variable (or its ``_FILE``)
    the campaign's ``link_secret_env`` names; else the campaign's ``link_secret_file``; else, with ``keep``
    (the demo), one made and kept there."""
    name = campaign.link_secret_env
    if name == LINK_SECRET_ENV:
        value = settings.secret("link_secret")
    else:
        value = environ.get(name, "").strip() or None
        if value is None and environ.get(f"{name}_FILE"):
            value = _read_secret_file(f"{name}_FILE", Path(environ[f"{name}_FILE"]))
    return link_secret(name, environ={name: value} if value else {}, keep=keep, file=campaign.link_secret_file)


# --- showing them ---------------------------------------------------------------------------------

def mask(value: str) -> str:
    """A secret as its first 4 characters and its length: enough to tell two apart, not to use one."""
    return f"{value[:4]}… ({len(value)} chars)"


def shown(settings: Settings) -> Iterator[tuple[str, str]]:
    """Each setting and its value as ``billcast doctor`` prints it, secrets masked."""
    for name in Settings.model_fields:
        if name.endswith("_file") and name.removesuffix("_file") in SECRETS:
            continue
        value = getattr(settings, name)
        if name in SECRETS:
            secret = settings.secret(name)
            where = getattr(settings, f"{name}_file")
            text = "unset" if secret is None else mask(secret) + (f" from {where}" if where else "")
        elif isinstance(value, tuple):
            text = ", ".join(str(v) for v in value) or "none"
        elif name == "ledger_url" and value:
            text = make_url(value).render_as_string(hide_password=True)
        else:
            text = "unset" if value is None else str(value)
        yield name, text


def documented_rows() -> list[tuple[str, str, str, str]]:
    """(TOML key, environment variables, default, meaning) per setting: docs/CONFIGURATION.md's table."""
    rows = []
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "doc_default" in extra:
            default = str(extra["doc_default"])
        elif field.default is None or field.default == ():
            default = "unset"
        else:
            default = f"`{str(field.default).lower() if isinstance(field.default, bool) else field.default}`"
        names = ", ".join(f"`{env}`" for env in env_names(name))
        rows.append((f"`{name}`", names, default, str(extra.get("doc", ""))))
    return rows

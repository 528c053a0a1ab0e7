"""``billcast doctor``: the settings as resolved (secrets masked), then whether each part answers.

Each check prints ``ok`` and what it found, or what is wrong; the exit code is
0 when all are ok, else that of the first failing check's kind of error (the
store 5, the ledger 8, Stripe 6, ffmpeg 4, the fonts or a campaign file 2, a
setting 10), so a deployment script can stop on it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url

from billcast.renderer import (FACES, AssetError, BillcastError, EncodeError, FontBook, PaymentError, PublishError,
                               packaged)
from billcast.jobs.campaign import Campaign, CampaignErrors, load_campaign
from billcast.jobs.ledger import LedgerError, schema_state
from billcast.jobs.store import open_store

from .settings import Settings, check_public_urls, mask, shown

PROBE_KEY = "readyz"  # the key /readyz asks for: never published


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    text: str
    exit_code: int = 0


def _check(name: str, kind: type[BillcastError], run: Callable[[], str]) -> Result:
    """Run one check; any failure is reported as ``kind``'s exit code, with its one-line reason."""
    try:
        return Result(name, True, run())
    except BillcastError as exc:
        return Result(name, False, str(exc).splitlines()[0], exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - a check reports what failed rather than stopping the others
        return Result(name, False, f"{type(exc).__name__}: {exc}".splitlines()[0], kind.exit_code)


def _campaigns(files: Sequence[Path]) -> tuple[list[Campaign], list[Result]]:
    campaigns, results = [], []
    for path in files:
        try:
            campaign = load_campaign(path)
            check_public_urls(campaign)
        except CampaignErrors as exc:
            results.append(Result("campaign", False, str(exc).splitlines()[0], exc.exit_code))
        except BillcastError as exc:
            results.append(Result("campaign", False, str(exc), exc.exit_code))
        else:
            campaigns.append(campaign)
            results.append(Result("campaign", True, f"{campaign.id} ({path})"))
    return campaigns, results


def _store(campaign: Campaign) -> str:
    store = open_store(campaign.store, endpoint_url=campaign.store_endpoint_url, region=campaign.store_region)
    try:
        store.head(PROBE_KEY)
    except PublishError:
        raise
    except Exception as exc:
        raise PublishError(f"{campaign.store}: does not answer: {type(exc).__name__}: {exc}") from exc
    return f"{campaign.store} answers ({campaign.id})"


def _ledger(campaign: Campaign) -> str:
    """The ledger answers and its schema is usable, read without changing anything."""
    url = make_url(campaign.ledger)
    shown_url = url.render_as_string(hide_password=True)
    state = schema_state(campaign.ledger)
    if state.empty:
        return f"{shown_url} answers, empty: its schema is made on first use ({campaign.id})"
    if not state.known:
        raise LedgerError(f"at revision {state.revision}, which this Billcast does not know (a newer one's?)",
                          where=shown_url)
    if not state.at_head:
        if url.get_backend_name() != "sqlite":
            raise LedgerError(f"at revision {state.revision}, this Billcast needs {state.head}: run "
                              "`billcast db upgrade` first", where=shown_url)
        return f"{shown_url} answers, revision {state.revision}: upgraded to {state.head} when opened ({campaign.id})"
    return f"{shown_url} answers, at revision {state.revision} ({campaign.id})"


def _stripe(settings: Settings) -> str:
    mode = settings.stripe_mode
    if mode == "demo":
        return "demo provider (no STRIPE_API_KEY): nothing is charged"
    key, webhook = settings.secret("stripe_api_key"), settings.secret("stripe_webhook_secret")
    if not webhook:
        raise PaymentError("STRIPE_WEBHOOK_SECRET is not set")
    return f"{mode} mode (key {mask(key or '')}; webhook secret {mask(webhook)})"


def _ffmpeg() -> str:
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    try:
        done = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EncodeError(f"{exe} -version did not run: {exc}", argv=[exe, "-version"]) from None
    first = (done.stdout or done.stderr).strip().splitlines()[:1]
    if done.returncode != 0 or not first:
        raise EncodeError(f"{exe} -version exited {done.returncode}", argv=[exe, "-version"],
                          stderr_tail=done.stderr[-500:])
    return first[0]


def _fonts(settings: Settings) -> str:
    folder = (settings.assets_dir or packaged("assets")) / "fonts"
    names = sorted({name for faces in FACES.values() for name in faces})
    book = FontBook(folder)
    for name in names:
        try:
            book.font(name, 24)
        except OSError as exc:
            raise AssetError(f"cannot load: {exc}", path=str(folder / name)) from None
    return f"{len(names)} fonts load from {folder}"


def checks(settings: Settings, files: Sequence[Path]) -> Iterator[Result]:
    """Every check, in order: campaigns, stores, ledgers, Stripe, ffmpeg, fonts."""
    campaigns, loaded = _campaigns(files)
    yield from loaded
    if not files:
        yield Result("campaign", True, "none given (stores and ledgers not checked)")
    for campaign in campaigns:
        yield _check("store", PublishError, lambda c=campaign: _store(c))
        yield _check("ledger", LedgerError, lambda c=campaign: _ledger(c))
    yield _check("stripe", PaymentError, lambda: _stripe(settings))
    yield _check("ffmpeg", EncodeError, _ffmpeg)
    yield _check("fonts", AssetError, lambda: _fonts(settings))


def doctor(settings: Settings, files: Sequence[Path], out: TextIO) -> int:
    """Print the settings and every check; the exit code of the first that failed, else 0."""
    print("settings (secrets masked):", file=out)
    for name, text in shown(settings):
        print(f"  {name:<22} {text}", file=out)
    print("checks:", file=out)
    first = 0
    for result in checks(settings, files):
        print(f"  {result.name:<9} {'ok' if result.ok else 'FAILED'}: {result.text}", file=out, flush=True)
        if not result.ok and not first:
            first = result.exit_code or 1
    return first

"""The ``billcast`` command: the one place that ties the packages together.

Every user error ends as one line on stderr naming the file or setting and what
is wrong, and an exit code per kind of failure (:data:`EXIT_CODES`); ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from billcast import __version__
from billcast.renderer import (ENGINES, BillcastError, SegmentCache, SettingsError, StoryboardErrors,
                               load_storyboard, plan, preview, render)

from billcast.jobs.links import random_token, recipient_links
from billcast.jobs.record_files import load_record_file
from billcast.jobs.records import record_values
from billcast.jobs.storyboard_check import Sample, check_storyboard_file

from . import collect_cli, compliance_cli, db_cli, experiment_cli

DEFAULT_URL = "http://127.0.0.1:8000"


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, like 640x360, got {text!r}") from None
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"width and height must be positive even numbers, got {text!r}")
    return w, h


def _link(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    if not sep or not name or not url:
        raise argparse.ArgumentTypeError(f"expected NAME=URL, got {text!r}")
    return name, url


def _links(args: argparse.Namespace) -> dict[str, str]:
    links = recipient_links(args.public_url, args.pay_url or args.public_url, random_token())
    links.update(dict(args.link or ()))
    return links


_DEFAULT_LINK_ARGS = argparse.Namespace(public_url=DEFAULT_URL, pay_url=None, link=None)


def assets_dir(args: argparse.Namespace) -> Path | None:
    """``--assets``, else the ``assets_dir`` setting, else None (the packaged assets)."""
    return args.settings.assets_dir


def _timeline(args: argparse.Namespace):
    board = load_storyboard(args.storyboard, assets_dir=assets_dir(args))
    record = load_record_file(args.customer)
    values = record_values(record)
    return plan(board, values, _links(args), size=args.size, fps=args.fps, locale=args.locale)


def cmd_check(args: argparse.Namespace) -> int:
    """Check each storyboard as the studio does: parsed, then planned for each --customer in every language."""
    samples = [Sample(who=path, values=record_values(load_record_file(path))) for path in args.customer or ()]
    links = _links(_DEFAULT_LINK_ARGS)
    bad = 0
    assets = assets_dir(args)
    for path in args.storyboards:
        checked = check_storyboard_file(path, samples, links, assets_dir=assets)
        for problem in checked.problems:
            print(problem, file=sys.stderr)
        if checked.ok:
            print(f"{path}: ok")
        else:
            bad += 1
    return 2 if bad else 0


def segment_cache(args: argparse.Namespace) -> SegmentCache | None:
    """The segment cache: ``--cache``, else the ``cache_dir`` setting, else the user's cache folder; "off" for none."""
    folder = args.settings.segment_cache_dir(args.cache)
    return SegmentCache(folder) if folder is not None else None


def cmd_render(args: argparse.Namespace) -> int:
    started = time.monotonic()
    timeline = _timeline(args)
    result = render(timeline, args.out, engine=args.engine, cache=segment_cache(args))
    for name in result.truncated:
        print(f"warning: {name}: text did not fit its box even at its minimum size", file=sys.stderr)
    print(f"{result.out}: {', '.join(result.files)} ({timeline.duration:.2f} s video, "
          f"{time.monotonic() - started:.1f} s)")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    timeline = _timeline(args)
    if not 0 <= args.at < timeline.duration:
        print(f"--at must be within the video (0 to {timeline.duration:.2f} s), got {args.at:g}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = preview(timeline, args.at)
    if out.suffix.lower() in (".jpg", ".jpeg"):
        frame.save(out, quality=90)
    else:
        frame.save(out, compress_level=1)  # a preview is for looking at now: favour speed over size
    print(out)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.out), args.settings, os.environ, campaign=Path(args.campaign) if args.campaign else None,
                    workers=args.workers)


SCHEMAS = ("storyboard", "campaign", "record")


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from .schemas import json_schema

    print(json.dumps(json_schema(args.model), indent=2, ensure_ascii=False))
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    from billcast.microsite import Disclosure, SiteSettings, build_site, load_catalogs, page_link, read_video, write_site

    from billcast.jobs.records import amount_due

    record = load_record_file(args.customer)
    video = read_video(args.video_dir)
    disclosure = None
    if args.storyboard:
        board = load_storyboard(args.storyboard, assets_dir=assets_dir(args))
        disclosure = Disclosure.from_translations(board.model.translations, board.model.default_language)
    settings = SiteSettings(pay_url=args.pay_url or args.public_url, public_url=args.public_url,
                            contact_url=args.contact_url, optout_url=args.optout_url, brand_name=args.brand,
                            disclosure=disclosure)
    token = args.token or random_token()
    site = build_site(record_values(record), video, token=token, amount_due=amount_due(record), settings=settings,
                      catalogs=load_catalogs(args.catalogs), locale=args.locale)
    out = write_site(site, args.out)
    print(f"{out}: index.html and {len(site.files) + len(site.copies) - 1} more files; "
          f"publish it at {page_link(settings.public_url, token)}")
    return 0


def _campaign(path: str):
    from billcast.jobs.campaign import load_campaign

    return load_campaign(path)


def cmd_run(args: argparse.Namespace) -> int:
    from billcast.jobs.campaign import load_campaign
    from billcast.jobs.run import run_campaign

    from .settings import campaign_link_secret

    settings = args.settings
    campaign = load_campaign(args.campaign, assets=assets_dir(args))
    if args.wave is not None and (campaign.experiment is None or not 1 <= args.wave <= campaign.experiment.waves):
        raise SettingsError("--wave", f"{args.campaign} has no [experiment]" if campaign.experiment is None else
                            f"must be 1 to {campaign.experiment.waves} (the experiment's waves), got {args.wave}")
    secret = campaign_link_secret(settings, campaign, os.environ)
    workers = args.workers or campaign.workers or os.cpu_count() or 1
    started = time.monotonic()
    counts = run_campaign(campaign, secret=secret, workers=workers, show_progress=not args.quiet,
                          executor=settings.executor, chunk=args.chunk, shared_cache=args.shared_cache or None,
                          wave=args.wave, cache_dir=settings.segment_cache_dir())
    minutes = (time.monotonic() - started) / 60
    where = (f"{workers} workers" if counts.executor == "local"
             else f"{counts.slots} Dask worker threads at {settings.executor}")
    print(f"{campaign.id}: {counts.published} published, {counts.unchanged} unchanged, {counts.refused} refused, "
          f"{counts.failed} failed"
          + (f", {counts.held_out} held out, {counts.waiting} waiting for a later wave" if campaign.experiment else "")
          + (f", {counts.suppressed} suppressed, {counts.deferred} deferred" if counts.withheld else "")
          + f" in {minutes * 60:.1f} s with {where}"
          + (f" ({counts.published / minutes:.0f} recipients/min)" if counts.published and minutes > 0 else ""))
    for (status, storyboard, variant), n in sorted(counts.withheld.items()):
        print(f"  {status}: {n} for {storyboard or '(no rule)'}" + (f" variant {variant}" if variant else ""))
    print(f"manifest: {campaign.out / 'manifest.csv'}")
    if counts.refused or counts.failed:
        print(f"errors:   {campaign.out / 'errors.csv'}" + ("; run again to retry the failed ones"
                                                           if counts.failed else ""))
    return counts.exit_code


def _campaign_files(args: argparse.Namespace) -> tuple[Path, ...]:
    """The arguments, else the ``campaigns`` setting, else the demo's ./var/campaign.toml if there is one."""
    from .demo import DEMO_CAMPAIGN

    demo = Path("var", DEMO_CAMPAIGN)
    return args.settings.campaigns or ((demo,) if demo.is_file() else ())


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve

    files = _campaign_files(args)
    if not files:
        raise SettingsError("CAMPAIGN", "give the campaign files to serve (or BILLCAST_CAMPAIGNS; or run "
                                        "`billcast demo` here first, which writes var/campaign.toml)")
    serve(args.settings, files, dev=args.dev, side=args.side)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import doctor

    return doctor(args.settings, _campaign_files(args), sys.stdout)


def cmd_report(args: argparse.Namespace) -> int:
    from billcast.jobs.report import report_command

    return report_command(Path(args.campaign), args.payments_csv, sys.stdout)


def cmd_expire(args: argparse.Namespace) -> int:
    from billcast.jobs.run import expire_campaign

    campaign = _campaign(args.campaign)
    print(f"{campaign.id}: {expire_campaign(campaign)} expired links taken down")
    return 0


def _render_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("storyboard", help="a storyboard YAML file")
    p.add_argument("--customer", required=True, help="one customer record as a JSON file")
    p.add_argument("--locale", help="override the record's locale (BCP 47, like it-IT)")
    p.add_argument("--size", type=_size, help="output size, like 640x360 (default: the storyboard's)")
    p.add_argument("--fps", type=int, help="frames per second (default: the storyboard's)")
    p.add_argument("--link", type=_link, action="append", metavar="NAME=URL",
                   help="a link the storyboard can name (page, pay, plan are made up when not given)")
    p.add_argument("--public-url", default=DEFAULT_URL, help="base of the page link")
    p.add_argument("--pay-url", default=None, help="base of the pay links (default: --public-url)")


# Exit codes: 0 done, then one per kind of failure (each BillcastError kind carries its own, listed in
# EXIT_CODES with these); usage, internal and I/O errors follow sysexits.h.
EXIT_USAGE = 64
EXIT_INTERNAL = 70
EXIT_IO = 74
EXIT_INTERRUPTED = 130
EXIT_CODES = {
    0: "done",
    1: "some recipients failed and can be retried by running again; or any other Billcast error",
    2: "a storyboard or a campaign file is invalid, or an asset it names is missing or unreadable",
    3: "a customer record or records file breaks the record contract (billcast run: those records were "
       "refused, all others published)",
    4: "ffmpeg failed to encode (its command and last lines of output are printed)",
    5: "the object store cannot be reached or written (names the store and key)",
    6: "a payment setting or the payment provider failed",
    7: "billcast site: a render's file is missing or unreadable",
    8: "the ledger cannot be used",
    9: "the executor cannot be used (a Dask scheduler out of reach, a cluster without workers)",
    10: "a setting is missing, invalid or unsafe (names the setting or option)",
    EXIT_USAGE: "the command line is wrong (unknown command or option, a missing or malformed argument)",
    EXIT_INTERNAL: "an unexpected internal error (run again with --debug for the traceback)",
    EXIT_IO: "a file or folder given on the command line cannot be read or written",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

ENV_CACHE = "BILLCAST_CACHE_DIR: segment cache folder (default ~/.cache/billcast/segments)"
ENV_ASSETS = "BILLCAST_ASSETS_DIR: fonts, images and audio beds (default: the packaged ones); --assets wins"
ENV_LINK = ("BILLCAST_LINK_SECRET (or the campaign's link_secret_env): the secret links are derived from; "
            "AWS_* for an s3:// store")
ENV_SERVICE = ("BILLCAST_ADMIN_TOKEN: opens reports and the studio; STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET: "
               "real payments (without them, the demo provider); BILLCAST_SESSION_SECRET, BILLCAST_CAMPAIGNS, "
               "BILLCAST_WORKERS, BILLCAST_TRUSTED_PROXIES and the rest of docs/CONFIGURATION.md; each secret "
               "also as NAME_FILE")


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 64 (EX_USAGE): 2 means an invalid storyboard."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _command(sub: argparse._SubParsersAction, name: str, help: str, env: Sequence[str] = ()) -> argparse.ArgumentParser:
    epilog = ("environment:\n" + "\n".join(f"  {line}" for line in env)) if env else None
    return sub.add_parser(name, help=help, description=help, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _exit_codes_text() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="billcast", description="Personalized bill videos and microsites.",
                  epilog=_exit_codes_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"billcast {__version__}")
    top.add_argument("-v", "--verbose", action="count", default=0, help="more log lines (-vv: debug)")
    top.add_argument("-q", dest="quiet_logs", action="store_true", help="only errors in the log")
    top.add_argument("--debug", action="store_true", help="show the traceback of a failure instead of one line")
    top.add_argument("--assets", metavar="DIR",
                     help="fonts, images and audio beds for storyboards (default: $BILLCAST_ASSETS_DIR, else the "
                          "packaged ones)")
    top.add_argument("--config", metavar="FILE",
                     help="a TOML file of settings (default: $BILLCAST_CONFIG; docs/CONFIGURATION.md)")
    top.add_argument("--log-format", choices=("text", "json"),
                     help="the log on stderr as text lines or JSON objects (default: $BILLCAST_LOG_FORMAT, else text)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(sub, "check", "validate storyboards; exit 2 if any is invalid", [ENV_ASSETS])
    p.add_argument("storyboards", nargs="+")
    p.add_argument("--customer", action="append", metavar="FILE",
                   help="also plan each storyboard for this customer record (JSON); repeatable")
    p.set_defaults(func=cmd_check)

    p = _command(sub, "render", "render one customer's video, poster, captions, thumbnail and CTAs",
                 [ENV_ASSETS, ENV_CACHE])
    _render_options(p)
    p.add_argument("--out", required=True, help="output folder (replaced whole when done)")
    p.add_argument("--engine", choices=ENGINES, default=ENGINES[0],
                   help="fast (ffmpeg composes, segments cached; the default) or moviepy (the reference)")
    p.add_argument("--cache", metavar="DIR",
                   help="segment cache folder (default: $BILLCAST_CACHE_DIR or ~/.cache/billcast/segments; "
                        "'off' for none)")
    p.set_defaults(func=cmd_render, options={"cache": "cache_dir"})

    p = _command(sub, "preview", "write the frame at a time, without encoding video", [ENV_ASSETS])
    _render_options(p)
    p.add_argument("--at", type=float, required=True, help="seconds from the start")
    p.add_argument("--out", required=True, help="a .png or .jpg file")
    p.set_defaults(func=cmd_preview)

    p = _command(sub, "demo", "run the sample campaign end to end into a folder and print links to open",
                 ["BILLCAST_LINK_SECRET: the link secret (default: one made and kept in OUT/link_secret)",
                  ENV_CACHE])
    p.add_argument("--out", default="var", metavar="DIR",
                   help="where the store, ledger, outputs and the demo's campaign file go (default: ./var)")
    p.add_argument("--campaign", help="run this campaign file instead of the packaged sample")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=cmd_demo)

    p = _command(sub, "run", "render, build and publish every recipient of a campaign (resumable)",
                 [ENV_LINK, ENV_CACHE, ENV_ASSETS + " and the campaign's `assets`"])
    p.add_argument("campaign", help="a campaign TOML file (see docs/CAMPAIGNS.md)")
    p.add_argument("--workers", type=int, help="worker processes with --executor local (default: the campaign's, "
                   "else one per core)")
    p.add_argument("--executor", metavar="local|tcp://HOST:PORT|FILE.json",
                   help="where recipients are rendered: 'local' (a process pool, the default), or a Dask "
                        "scheduler's address or scheduler file (default: $BILLCAST_EXECUTOR; docs/SCALING.md)")
    p.add_argument("--chunk", type=int, metavar="N",
                   help="recipients a task (default: enough for four tasks a worker, at most 8)")
    p.add_argument("--shared-cache", action="store_true",
                   help="share encoded segments between hosts through the store (cache/segments/); for many "
                        "workers on many hosts")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--wave", type=int, metavar="N",
                   help="an [experiment]'s waves up to N (default: all); see docs/EXPERIMENTS.md")
    p.set_defaults(func=cmd_run, options={"executor": "executor"})

    p = _command(sub, "serve", "serve campaigns' pages and take payments, webhooks and events, under gunicorn",
                 [ENV_SERVICE])
    p.add_argument("campaigns", nargs="*", help="campaign TOML files (default: $BILLCAST_CAMPAIGNS, else "
                   "./var/campaign.toml, the demo's)")
    p.add_argument("--host", help="address to listen on (default: $BILLCAST_HOST, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: $BILLCAST_PORT, else 8000)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="gunicorn worker processes (default: $BILLCAST_WORKERS, else 2 x cores + 1, at most 8)")
    p.add_argument("--dev", action="store_true",
                   help="Flask's development server instead (one process, reloads on code changes)")
    p.add_argument("--insecure-cookies", action="store_true",
                   help="let the admin sign-in cookie travel over plain http (local use only)")
    side = p.add_mutually_exclusive_group()  # both at once: refused (exit 64); neither: both sides on one port
    side.add_argument("--public", dest="side", action="store_const", const="public", default="both",
                      help="the public side only: pages, pay, webhooks, beacons, opt-out, disputes (no admin token)")
    side.add_argument("--admin", dest="side", action="store_const", const="admin", help="the admin side only: "
                      "sign-in, reports, the studio (needs $BILLCAST_ADMIN_TOKEN; at niceness $BILLCAST_ADMIN_NICE)")
    p.set_defaults(func=cmd_serve, options={"campaigns": "campaigns", "host": "host", "port": "port",
                                            "workers": "workers"})

    p = _command(sub, "doctor", "print the resolved settings (secrets masked) and check the store, the ledger, "
                 "Stripe's mode, ffmpeg and the fonts; exit 0 if all are ok", [ENV_SERVICE, ENV_ASSETS])
    p.add_argument("campaigns", nargs="*", help="campaign TOML files (default: $BILLCAST_CAMPAIGNS, else "
                   "./var/campaign.toml)")
    p.set_defaults(func=cmd_doctor, options={"campaigns": "campaigns"})

    p = _command(sub, "report", "print a campaign's funnel, collection and payments; write the paid ones as CSV")
    p.add_argument("campaign", help="a campaign TOML file")
    p.add_argument("--payments-csv", type=Path, metavar="FILE",
                   help="also write the paid payments to FILE, for reconciliation")
    p.set_defaults(func=cmd_report)

    p = _command(sub, "expire", "take down the pages of recipients whose links have expired", ["AWS_* for an s3:// store"])
    p.add_argument("campaign", help="a campaign TOML file")
    p.set_defaults(func=cmd_expire)

    db_cli.add_parsers(sub, _command)

    p = _command(sub, "site", "build one customer's personal page (a folder of static files) from a render",
                 [ENV_ASSETS])
    p.add_argument("--customer", required=True, help="one customer record as a JSON file")
    p.add_argument("--video-dir", required=True, help="the folder `billcast render` wrote for this customer")
    p.add_argument("--out", required=True, help="output folder (replaced whole when done)")
    p.add_argument("--storyboard", help="the storyboard the video came from; its disclosure text, if any, is shown")
    p.add_argument("--token", help="the recipient's link token (default: a new random one)")
    p.add_argument("--locale", help="override the record's locale (BCP 47, like it-IT)")
    p.add_argument("--public-url", default=DEFAULT_URL, help="base of the page link")
    p.add_argument("--pay-url", default=None, help="base of the pay links (default: --public-url)")
    p.add_argument("--contact-url", help="the contact link (may hold {token}; default: PUBLIC_URL/contact)")
    p.add_argument("--optout-url", help="the opt-out link (may hold {token}; default: PUBLIC_URL/r/TOKEN/optout)")
    p.add_argument("--brand", help="the brand name shown (default: the catalogue's)")
    p.add_argument("--catalogs", help="a folder of edited page catalogues (default: the shipped ones)")
    p.set_defaults(func=cmd_site)

    experiment_cli.add_parsers(sub, _command)
    compliance_cli.add_parsers(sub, _command)
    collect_cli.add_parsers(sub, _command)

    p = _command(sub, "schema", "print the JSON Schema of a storyboard, a campaign file or a customer record")
    p.add_argument("model", choices=SCHEMAS, help="which file's schema")
    p.set_defaults(func=cmd_schema)
    return top


def _log_level(args: argparse.Namespace, setting: str | None = None, default: int = logging.WARNING) -> int:
    """-v, -vv and -q first, then the ``log_level`` setting, then ``default``."""
    if args.quiet_logs:
        return logging.ERROR
    if args.verbose:
        return logging.INFO if args.verbose == 1 else logging.DEBUG
    return getattr(logging, setting.upper()) if setting else default


def _settings(args: argparse.Namespace):
    """The settings, with the command line's options over the environment and the --config file."""
    from .settings import load_settings

    given = {"assets_dir": args.assets, "log_format": args.log_format}
    for option, name in getattr(args, "options", {}).items():
        given[name] = getattr(args, option)
    if given.get("campaigns") == []:
        given["campaigns"] = None
    if getattr(args, "insecure_cookies", False):
        given["secure_cookies"] = False
    return load_settings(os.environ, args.config, **given)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.settings = _settings(args)
    except BillcastError as exc:
        return _report(exc)
    from .logs import configure_logging

    serving = args.command == "serve"
    configure_logging(args.settings.log_format,
                      _log_level(args, args.settings.log_level, logging.INFO if serving else logging.WARNING))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            raise
        return _report(exc)


def _report(exc: Exception) -> int:
    """One line per problem on stderr, and the exit code of the failure's kind."""
    if isinstance(exc, StoryboardErrors):
        for err in exc.errors:
            print(err, file=sys.stderr)
        return exc.exit_code
    if isinstance(exc, BillcastError):
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_IO
    print(f"error: unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback, and "
          "report it)", file=sys.stderr)
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())

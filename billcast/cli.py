"""The ``billcast`` command: the one place that ties the packages together."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from billcast.renderer import (ENGINES, BillcastError, SegmentCache, StoryboardErrors, default_cache_dir,
                      load_storyboard, plan, preview, render)

from billcast.jobs.links import random_token, recipient_links
from billcast.jobs.record_files import load_record_file
from billcast.jobs.records import record_values
from billcast.jobs.storyboard_check import Sample, check_storyboard_file

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


def _timeline(args: argparse.Namespace):
    board = load_storyboard(args.storyboard)
    record = load_record_file(args.customer)
    values = record_values(record)
    return plan(board, values, _links(args), size=args.size, fps=args.fps, locale=args.locale)


def cmd_check(args: argparse.Namespace) -> int:
    """Check each storyboard as the studio does: parsed, then planned for each --customer in every language."""
    samples = [Sample(who=path, values=record_values(load_record_file(path))) for path in args.customer or ()]
    links = _links(_DEFAULT_LINK_ARGS)
    bad = 0
    for path in args.storyboards:
        checked = check_storyboard_file(path, samples, links)
        for problem in checked.problems:
            print(problem, file=sys.stderr)
        if checked.ok:
            print(f"{path}: ok")
        else:
            bad += 1
    return 2 if bad else 0


def segment_cache(folder: str | None) -> SegmentCache | None:
    """The segment cache: ``folder``, else ``$BILLCAST_CACHE_DIR``, else the user's cache folder; "off" for none."""
    folder = folder or os.environ.get("BILLCAST_CACHE_DIR")
    if folder == "off":
        return None
    return SegmentCache(folder or default_cache_dir())


def cmd_render(args: argparse.Namespace) -> int:
    started = time.monotonic()
    timeline = _timeline(args)
    result = render(timeline, args.out, engine=args.engine, cache=segment_cache(args.cache))
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
    from .demo import DEFAULT_CAMPAIGN, run_demo

    return run_demo(Path(args.campaign) if args.campaign else DEFAULT_CAMPAIGN, workers=args.workers)


def cmd_site(args: argparse.Namespace) -> int:
    from billcast.microsite import Disclosure, SiteSettings, build_site, load_catalogs, page_link, read_video, write_site

    from billcast.jobs.records import amount_due

    record = load_record_file(args.customer)
    video = read_video(args.video_dir)
    disclosure = None
    if args.storyboard:
        board = load_storyboard(args.storyboard)
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
    from billcast.jobs.links import link_secret
    from billcast.jobs.run import run_campaign

    campaign = _campaign(args.campaign)
    secret = link_secret(campaign.link_secret_env, environ=os.environ)
    workers = args.workers or campaign.workers or os.cpu_count() or 1
    started = time.monotonic()
    counts = run_campaign(campaign, secret=secret, workers=workers, show_progress=not args.quiet,
                          executor=args.executor, chunk=args.chunk, shared_cache=args.shared_cache or None)
    minutes = (time.monotonic() - started) / 60
    where = (f"{workers} workers" if counts.executor == "local"
             else f"{counts.slots} Dask worker threads at {args.executor}")
    print(f"{campaign.id}: {counts.published} published, {counts.unchanged} unchanged, {counts.refused} refused, "
          f"{counts.failed} failed in {minutes * 60:.1f} s with {where}"
          + (f" ({counts.published / minutes:.0f} recipients/min)" if counts.published and minutes > 0 else ""))
    print(f"manifest: {campaign.out / 'manifest.csv'}")
    if counts.refused or counts.failed:
        print(f"errors:   {campaign.out / 'errors.csv'}" + ("; run again to retry the failed ones"
                                                           if counts.failed else ""))
    return counts.exit_code


def cmd_serve(args: argparse.Namespace) -> int:
    from billcast.service.app import ServiceSettings, create_app

    from .demo import DEFAULT_CAMPAIGN

    campaigns = tuple(_campaign(path) for path in args.campaigns or [str(DEFAULT_CAMPAIGN)])
    keep = campaigns[0].out.parent / ".billcast-service"  # the demo webhook secret and the session key, kept
    settings = ServiceSettings.from_environ(campaigns, os.environ, keep=keep,
                                            secure_cookies=not args.insecure_cookies)
    app = create_app(settings)
    print(f"Serving {', '.join(c.id for c in campaigns)} on http://{args.host}:{args.port}/ "
          f"({'demo payments' if settings.demo_payments else 'Stripe'}; reports at /reports/)")
    app.run(host=args.host, port=args.port, threaded=True)
    return 0


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


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="billcast", description="Personalized bill videos and microsites.")
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="validate storyboards; exit 2 if any is invalid")
    p.add_argument("storyboards", nargs="+")
    p.add_argument("--customer", action="append", metavar="FILE",
                   help="also plan each storyboard for this customer record (JSON); repeatable")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("render", help="render one customer's video, poster, captions, thumbnail and CTAs")
    _render_options(p)
    p.add_argument("--out", required=True, help="output folder (replaced whole when done)")
    p.add_argument("--engine", choices=ENGINES, default=ENGINES[0],
                   help="fast (ffmpeg composes, segments cached; the default) or moviepy (the reference)")
    p.add_argument("--cache", metavar="DIR",
                   help="segment cache folder (default: $BILLCAST_CACHE_DIR or ~/.cache/billcast/segments; "
                        "'off' for none)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("preview", help="write the frame at a time, without encoding video")
    _render_options(p)
    p.add_argument("--at", type=float, required=True, help="seconds from the start")
    p.add_argument("--out", required=True, help="a .png or .jpg file")
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("demo", help="run the sample campaign end to end into ./var and print links to open")
    p.add_argument("--campaign", help="another campaign file (default: examples/campaign.toml)")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="render, build and publish every recipient of a campaign (resumable)")
    p.add_argument("campaign", help="a campaign TOML file (see docs/CAMPAIGNS.md)")
    p.add_argument("--workers", type=int, help="worker processes with --executor local (default: the campaign's, "
                   "else one per core)")
    p.add_argument("--executor", default="local", metavar="local|tcp://HOST:PORT|FILE.json",
                   help="where recipients are rendered: 'local' (a process pool, the default), or a Dask "
                        "scheduler's address or scheduler file (see docs/SCALING.md)")
    p.add_argument("--chunk", type=int, metavar="N",
                   help="recipients a task (default: enough for four tasks a worker, at most 8)")
    p.add_argument("--shared-cache", action="store_true",
                   help="share encoded segments between hosts through the store (cache/segments/); for many "
                        "workers on many hosts")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("serve", help="serve campaigns' pages locally and take payments, webhooks and events")
    p.add_argument("campaigns", nargs="*", help="campaign TOML files (default: the sample campaign)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--insecure-cookies", action="store_true",
                   help="let the admin sign-in cookie travel over plain http (local use only)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("report", help="print a campaign's funnel, collection and payments; write the paid ones as CSV")
    p.add_argument("campaign", help="a campaign TOML file")
    p.add_argument("--payments-csv", type=Path, metavar="FILE",
                   help="also write the paid payments to FILE, for reconciliation")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("expire", help="take down the pages of recipients whose links have expired")
    p.add_argument("campaign", help="a campaign TOML file")
    p.set_defaults(func=cmd_expire)

    p = sub.add_parser("site", help="build one customer's personal page (a folder of static files) from a render")
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
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except StoryboardErrors as exc:
        for err in exc.errors:
            print(err, file=sys.stderr)
        return exc.exit_code
    except BillcastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

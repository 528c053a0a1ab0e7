"""``billcast db upgrade|current``: the ledger's schema revision, and bringing it to this Billcast's."""

from __future__ import annotations

import argparse

ENV_LEDGER = ("BILLCAST_LEDGER_URL: the ledger when neither --ledger nor a campaign file is given "
              "(default sqlite:///var/billcast.db)")


def _ledger_url(args: argparse.Namespace) -> str:
    """``--ledger``, else the campaign file's ledger, else the ``ledger_url`` setting, else the default SQLite file."""
    from billcast.jobs.ledger import DEFAULT_URL

    if args.ledger:
        return args.ledger
    if args.campaign:
        from billcast.jobs.campaign import load_campaign

        return load_campaign(args.campaign).ledger
    return args.settings.ledger_url or DEFAULT_URL


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from billcast.jobs.ledger import upgrade_schema

    url = _ledger_url(args)
    before, after = upgrade_schema(url)
    done = "already at" if before.at_head else f"upgraded from {before.revision or 'an empty database'} to"
    print(f"{_shown(url)}: {done} revision {after.revision} (head)")
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    """The ledger's revision and whether it is at head: exit 0 at head, 8 otherwise."""
    from billcast.jobs.ledger import schema_state

    url = _ledger_url(args)
    state = schema_state(url)
    old = " (a schema_version table from before Alembic)" if state.legacy else ""
    if state.at_head:
        print(f"{_shown(url)}: revision {state.revision} (head)")
        return 0
    if state.empty:
        print(f"{_shown(url)}: no ledger yet; `billcast db upgrade` or its first use makes it at {state.head}")
    elif state.known:
        print(f"{_shown(url)}: revision {state.revision}{old}, behind the head {state.head}; run `billcast db upgrade`")
    else:
        print(f"{_shown(url)}: revision {state.revision}{old}, which this Billcast does not know (its newest is "
              f"{state.head}); upgrade Billcast")
    return 8


def add_parsers(sub: argparse._SubParsersAction, command) -> None:
    """The ``db`` command and its actions; ``command`` makes a documented subparser."""
    p = command(sub, "db", "the ledger's schema: show its revision (current) or bring it to this Billcast's (upgrade)",
                 [ENV_LEDGER])
    actions = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, func, what in (("upgrade", cmd_db_upgrade, "upgrade the ledger's schema to this Billcast's revision"),
                             ("current", cmd_db_current, "print the ledger's schema revision; exit 0 at head, 8 not")):
        q = command(actions, name, what, [ENV_LEDGER])
        q.add_argument("campaign", nargs="?", help="a campaign TOML file: its `ledger`")
        q.add_argument("--ledger", metavar="URL",
                       help="the ledger's URL, e.g. postgresql+psycopg://user@host/billcast (default: the campaign's, "
                            "else $BILLCAST_LEDGER_URL, else sqlite:///var/billcast.db)")
        q.set_defaults(func=func)

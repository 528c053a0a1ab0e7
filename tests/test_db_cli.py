"""``billcast db upgrade|current``: which ledger, what they print, their exit codes; the service on a ledger behind.

On SQLite and a real PostgreSQL server. A PostgreSQL ledger behind this code
stops ``billcast serve`` at start (exit 8, one line naming ``billcast db upgrade``)
until the operator upgrades it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from billcast.cli import main
from billcast.jobs.ledger import LedgerError, schema_state
from billcast.service import create_app

from ledgers import HEAD, execute, make_legacy, query
from test_events import settings_for, write_campaign
from ledgers import HEAD

BILLCAST = Path(sys.executable).with_name("billcast")


def billcast(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``billcast ARGS`` in this process: its exit code, stdout and stderr."""
    try:
        code = main(list(args))
    except SystemExit as exc:      # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_upgrade_makes_and_current_reads_the_ledger(ledger_url: str, capsys) -> None:
    shown = make_url(ledger_url).render_as_string(hide_password=True)
    assert billcast(capsys, "db", "current", "--ledger", ledger_url) == (
        8, f"{shown}: no ledger yet; `billcast db upgrade` or its first use makes it at {HEAD}\n", "")
    assert billcast(capsys, "db", "upgrade", "--ledger", ledger_url) == (
        0, f"{shown}: upgraded from an empty database to revision {HEAD} (head)\n", "")
    assert billcast(capsys, "db", "upgrade", "--ledger", ledger_url) == (
        0, f"{shown}: already at revision {HEAD} (head)\n", "")
    assert billcast(capsys, "db", "current", "--ledger", ledger_url) == (0, f"{shown}: revision {HEAD} (head)\n", "")
    assert ledger_url.startswith("sqlite") or ":***@" in shown   # a password is never printed


def test_a_ledger_from_before_alembic_is_behind_until_upgraded(ledger_url: str, capsys) -> None:
    make_legacy(ledger_url, 1)
    code, out, _ = billcast(capsys, "db", "current", "--ledger", ledger_url)
    assert code == 8 and out.endswith(": revision 0001 (a schema_version table from before Alembic), behind the "
                                      f"head {HEAD}; run `billcast db upgrade`\n")
    code, out, _ = billcast(capsys, "db", "upgrade", "--ledger", ledger_url)
    assert code == 0 and out.endswith(f": upgraded from 0001 to revision {HEAD} (head)\n")
    assert query(ledger_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]


def test_a_ledger_newer_than_this_billcast_is_refused(ledger_url: str, capsys) -> None:
    assert billcast(capsys, "db", "upgrade", "--ledger", ledger_url)[0] == 0
    execute(ledger_url, "UPDATE alembic_version SET version_num = 'abc123'")
    code, out, _ = billcast(capsys, "db", "current", "--ledger", ledger_url)
    assert code == 8 and out.endswith(f": revision abc123, which this Billcast does not know (its newest is {HEAD}); "
                                      "upgrade Billcast\n")
    code, out, err = billcast(capsys, "db", "upgrade", "--ledger", ledger_url)
    assert (code, out) == (8, "") and err.startswith("error: ") and err.count("\n") == 1
    assert "schema: the database is at revision abc123, which this Billcast does not know" in err


def test_which_ledger_the_commands_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BILLCAST_LEDGER_URL", raising=False)
    campaign = write_campaign(tmp_path / "campaign", ledger=f"sqlite:///{tmp_path / 'campaign.db'}")
    env_url, flag_url = f"sqlite:///{tmp_path / 'env.db'}", f"sqlite:///{tmp_path / 'flag.db'}"
    assert billcast(capsys, "db", "current")[1].startswith("sqlite:///var/billcast.db: no ledger yet")
    assert not (tmp_path / "var").exists()                       # looking makes nothing
    monkeypatch.setenv("BILLCAST_LEDGER_URL", env_url)
    assert billcast(capsys, "db", "upgrade")[1].startswith(f"{env_url}: upgraded")
    assert billcast(capsys, "db", "upgrade", str(campaign.path))[1].startswith(f"sqlite:///{tmp_path}/campaign.db:")
    assert billcast(capsys, "db", "upgrade", str(campaign.path), "--ledger", flag_url)[1].startswith(f"{flag_url}:")
    assert {path.name for path in tmp_path.glob("*.db")} == {"env.db", "campaign.db", "flag.db"}


@pytest.mark.parametrize("args, code, message", [
    (["db"], 64, "the following arguments are required: ACTION"),
    (["db", "migrate"], 64, "invalid choice: 'migrate'"),
    (["db", "current", "--ledger", "mysql://billcast:secret@db/billcast"], 8,
     "error: mysql://billcast:***@db/billcast: url: the ledger runs on SQLite or PostgreSQL"),
    (["db", "upgrade", "--ledger", "not a url"], 8, "error: ledger: url: not a SQLAlchemy URL"),
    (["db", "upgrade", "no-such-campaign.toml"], 2, "no-such-campaign.toml"),
])
def test_mistakes_are_one_line_and_an_exit_code(args, code, message, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    got, out, err = billcast(capsys, *args)
    assert (got, out) == (code, "") and message in err and "Traceback" not in err and "secret" not in err


def test_the_service_refuses_to_start_on_a_postgresql_ledger_behind_it(postgres, tmp_path: Path, monkeypatch,
                                                                       capsys) -> None:
    with postgres.database() as url:
        make_legacy(url, 3)                                  # as the previous Billcast left it
        campaign = write_campaign(tmp_path / "campaign", ledger=url)
        with pytest.raises(LedgerError, match=r"schema_version table from before Alembic \(revision 0003\), "
                                              f"this Billcast needs alembic_version at {HEAD}; run `billcast db "
                                              "upgrade`") as caught:
            create_app(settings_for(campaign))
        assert caught.value.exit_code == 8
        served = subprocess.run([str(BILLCAST), "serve", str(campaign.path), "--port", "1"], capture_output=True,
                                text=True, timeout=120, cwd=tmp_path)
        assert served.returncode == 8, served.stderr
        assert served.stderr.count("\n") == 1 and "`billcast db upgrade`" in served.stderr
        assert not schema_state(url).at_head                  # nothing was changed on the way
        assert billcast(capsys, "db", "upgrade", str(campaign.path))[0] == 0
        app = create_app(settings_for(campaign))              # now it starts
        app.extensions["billcast"].close()


def test_a_sqlite_ledger_behind_upgrades_itself_when_the_service_starts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    make_legacy(url, 1)
    campaign = write_campaign(tmp_path / "campaign", ledger=url)
    app = create_app(settings_for(campaign))
    app.extensions["billcast"].close()
    assert schema_state(url).at_head


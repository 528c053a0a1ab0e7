"""The ``billcast`` command as a user meets it: one line per error, a distinct exit code per kind, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from billcast import __version__
from billcast.cli import EXIT_CODES, EXIT_INTERNAL, EXIT_IO, EXIT_USAGE, main, parser
from billcast.demo import DEMO_CAMPAIGN, demo_campaign
from billcast.jobs.campaign import load_campaign
from billcast.renderer import packaged

from conftest import ROOT

BOARD = ROOT / "storyboards" / "bill_explainer.yaml"
MARIA = ROOT / "examples" / "maria.json"


def run(*argv: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed command in a child process, as a user runs it."""
    return subprocess.run([sys.executable, "-P", "-m", "billcast", *argv], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"billcast {__version__}"
    assert __version__[0].isdigit()


def test_a_missing_customer_file_is_one_line_naming_it(tmp_path) -> None:
    missing = tmp_path / "missing.json"
    proc = run("render", str(BOARD), "--customer", str(missing), "--out", str(tmp_path / "out"))
    one_line_error(proc, 3, str(missing), "cannot read", "No such file")
    assert not (tmp_path / "out").exists()


def test_a_missing_storyboard_is_one_line_naming_it(tmp_path) -> None:
    missing = tmp_path / "nope.yaml"
    one_line_error(run("check", str(missing)), 2, str(missing), "cannot read")


def test_an_unreadable_storyboard_is_one_line(tmp_path) -> None:
    folder = tmp_path / "a_folder.yaml"
    folder.mkdir()
    one_line_error(run("preview", str(folder), "--customer", str(MARIA), "--at", "1", "--out",
                       str(tmp_path / "f.png")), 2, str(folder), "cannot read")


def test_a_storyboard_that_is_not_utf8_is_one_line(tmp_path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    one_line_error(run("check", str(bad)), 2, str(bad), "UTF-8")


def test_an_invalid_storyboard_names_file_line_and_field(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BOARD.read_text(encoding="utf-8").replace("fps: 25", "fps: -3", 1), encoding="utf-8")
    proc = run("check", str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{bad}:" in proc.stderr and "fps" in proc.stderr


def test_bad_toml_is_one_line_with_its_line(tmp_path) -> None:
    bad = tmp_path / "campaign.toml"
    bad.write_text('id = "x"\ninput = \n', encoding="utf-8")
    one_line_error(run("run", str(bad)), 2, f"{bad}:2")


def test_a_missing_campaign_file_is_one_line(tmp_path) -> None:
    missing = tmp_path / "no.toml"
    for command in ("run", "report", "expire"):
        one_line_error(run(command, str(missing)), 2, str(missing), "cannot read")


def test_a_records_file_of_the_wrong_kind_is_one_line(tmp_path) -> None:
    bad = tmp_path / "customers.xlsx"
    bad.write_bytes(b"PK\x03\x04")
    one_line_error(run("render", str(BOARD), "--customer", str(bad), "--out", str(tmp_path / "o")), 3, str(bad))


def test_a_records_file_that_is_not_json_is_one_line(tmp_path) -> None:
    bad = tmp_path / "maria.json"
    bad.write_text("{not json", encoding="utf-8")
    one_line_error(run("render", str(BOARD), "--customer", str(bad), "--out", str(tmp_path / "o")), 3, str(bad))


def test_an_unreachable_store_is_exit_5_naming_the_store(tmp_path) -> None:
    (tmp_path / "customers.jsonl").write_text(MARIA.read_text(encoding="utf-8").replace("\n", " ") + "\n",
                                              encoding="utf-8")
    (tmp_path / "campaign.toml").write_text(f"""
id = "unreachable"
input = "customers.jsonl"
store = "s3://billcast-nowhere/pages"
store_endpoint_url = "http://127.0.0.1:9"
public_url = "https://bills.example"
ledger = "sqlite:///{tmp_path}/ledger.db"
[[rules]]
storyboard = "{BOARD}"
""", encoding="utf-8")
    proc = run("run", str(tmp_path / "campaign.toml"), "--quiet", "--workers", "1",
               env={"BILLCAST_LINK_SECRET": "s" * 40, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"})
    assert proc.returncode == 5, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "s3://billcast-nowhere" in proc.stderr


def test_a_link_secret_that_is_not_set_names_the_variable(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BILLCAST_LINK_SECRET"}
    proc = subprocess.run([sys.executable, "-P", "-m", "billcast", "run", str(ROOT / "examples" / "campaign.toml")],
                          capture_output=True, text=True, env=env, timeout=60)
    one_line_error(proc, 2, "BILLCAST_LINK_SECRET")


def test_a_bad_assets_folder_names_the_setting(tmp_path) -> None:
    one_line_error(run("--assets", str(tmp_path / "none"), "check", str(BOARD)), 10, "--assets")
    one_line_error(run("check", str(BOARD), env={"BILLCAST_ASSETS_DIR": str(tmp_path / "none")}), 10,
                   "BILLCAST_ASSETS_DIR")


def test_an_assets_folder_without_a_logo_the_storyboard_names_is_refused(tmp_path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    proc = run("--assets", str(assets), "check", str(BOARD))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{BOARD}:" in proc.stderr


def test_usage_errors_exit_64_not_2(tmp_path) -> None:
    for argv in (["frobnicate"], ["render", str(BOARD)], ["preview", str(BOARD), "--customer", str(MARIA),
                                                          "--at", "soon", "--out", "x.png"], []):
        proc = run(*argv)
        assert proc.returncode == EXIT_USAGE, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr and "usage:" in proc.stderr


def test_an_output_that_cannot_be_written_is_exit_74(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(run("preview", str(BOARD), "--customer", str(MARIA), "--at", "5", "--size", "160x90",
                       "--out", str(blocker / "frame.png")), EXIT_IO, str(blocker))


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys) -> None:
    import billcast.cli as cli

    def boom(args):
        raise ZeroDivisionError("the unexpected")

    monkeypatch.setattr(cli, "cmd_check", boom)
    assert main(["check", str(BOARD)]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" not in err and "ZeroDivisionError: the unexpected" in err and "--debug" in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "check", str(BOARD)])


def test_exit_codes_are_distinct_per_kind_and_documented() -> None:
    from billcast.jobs.executors import ExecutorError
    from billcast.jobs.ledger import LedgerError
    from billcast.microsite import SiteError
    from billcast.renderer import (EncodeError, PaymentError, PublishError, RecordError, SettingsError,
                                   StoryboardError)
    kinds = (StoryboardError, RecordError, EncodeError, PublishError, PaymentError, SiteError, LedgerError,
             ExecutorError, SettingsError)
    codes = [kind.exit_code for kind in kinds]
    assert len(set(codes)) == len(codes)
    assert set(codes) <= set(EXIT_CODES)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code in EXIT_CODES:
        assert f"| {code} |" in readme, f"exit code {code} is not in the README's table"


@pytest.mark.parametrize("command", ["check", "render", "preview", "demo", "run", "serve", "doctor", "report",
                                     "expire", "site", "schema"])
def test_each_commands_help_names_the_environment_it_reads(command, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        parser().parse_args([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    expected = {"check": "BILLCAST_ASSETS_DIR", "render": "BILLCAST_CACHE_DIR", "preview": "BILLCAST_ASSETS_DIR",
                "demo": "BILLCAST_LINK_SECRET", "run": "BILLCAST_LINK_SECRET", "serve": "BILLCAST_ADMIN_TOKEN",
                "doctor": "STRIPE_API_KEY",
                "report": None, "expire": "AWS_", "site": "BILLCAST_ASSETS_DIR", "schema": None}[command]
    if expected:
        assert "environment:" in out and expected in out
    else:
        assert "environment:" not in out


def test_verbosity_sets_the_log_level() -> None:
    import logging

    from billcast.cli import _log_level

    levels = {tuple(argv): _log_level(parser().parse_args([*argv, "check", "x.yaml"]))
              for argv in ([], ["-v"], ["-vv"], ["-q"])}
    assert levels == {(): logging.WARNING, ("-v",): logging.INFO, ("-vv",): logging.DEBUG, ("-q",): logging.ERROR}


@pytest.mark.parametrize("model", ["storyboard", "campaign", "record"])
def test_schema_prints_a_json_schema_that_describes_the_shipped_files(model, capsys) -> None:
    assert main(["schema", model]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].endswith("/2020-12/schema") and schema["type"] == "object"
    assert schema.get("additionalProperties") is False
    required = set(schema.get("required", ()))
    shipped = {"storyboard": __import__("yaml").safe_load(BOARD.read_text(encoding="utf-8")),
               "campaign": tomllib.loads((ROOT / "examples" / "campaign.toml").read_text(encoding="utf-8")),
               "record": json.loads(MARIA.read_text(encoding="utf-8"))}[model]
    assert required <= set(shipped), required - set(shipped)
    assert set(shipped) <= set(schema["properties"]), set(shipped) - set(schema["properties"])


def test_the_demo_campaign_points_at_packaged_data_and_keeps_everything_else_in_its_folder(tmp_path) -> None:
    (tmp_path / DEMO_CAMPAIGN).write_text(demo_campaign(tmp_path), encoding="utf-8")
    campaign = load_campaign(tmp_path / DEMO_CAMPAIGN)
    assert campaign.input == packaged("examples") / "customers.jsonl"
    assert campaign.store == f"file://{tmp_path}/store"
    assert campaign.ledger == f"sqlite:///{tmp_path}/billcast.db"
    assert campaign.out.is_relative_to(tmp_path)
    boards = {rule_board for rule in campaign.rules for rule_board in (v.storyboard for v in rule.variants)}
    assert boards and all(board.parent == packaged("storyboards") for board in boards)


def test_serve_without_a_campaign_outside_a_demo_folder_says_what_to_do(tmp_path) -> None:
    one_line_error(run("serve", cwd=tmp_path), 10, "billcast demo")


def test_a_campaigns_assets_folder_is_checked_and_used_for_its_storyboards(tmp_path) -> None:
    from billcast.demo import sample_rules
    from billcast.jobs.campaign import CampaignErrors

    (tmp_path / "customers.jsonl").write_text("", encoding="utf-8")
    text = f'id = "assets"\ninput = "customers.jsonl"\nassets = "brand"\n{sample_rules()}'
    (tmp_path / "campaign.toml").write_text(text, encoding="utf-8")
    one_line_error(run("run", str(tmp_path / "campaign.toml"), env={"BILLCAST_LINK_SECRET": "s" * 40}), 2,
                   "assets: no such folder")
    (tmp_path / "brand").mkdir()  # a folder without the logo the storyboards name: each is refused
    with pytest.raises(CampaignErrors) as refused:
        load_campaign(tmp_path / "campaign.toml")
    assert "is not a valid storyboard" in str(refused.value) and "logo" in str(refused.value)
    campaign = load_campaign(tmp_path / "campaign.toml", assets=packaged("assets"))  # --assets wins
    assert campaign.assets == packaged("assets")

"""``billcast doctor``: the resolved settings with secrets masked, each part checked, the first failure's exit code."""

from __future__ import annotations

import shutil

import pytest

from billcast.doctor import checks
from billcast.settings import load_settings

from test_cli import run
from test_events import write_campaign

ADMIN = "admin-token-for-doctor-tests-0123456789"
LIVE = "sk_live_" + "d" * 24
WHSEC = "whsec_" + "e" * 32


def test_all_ok_prints_masked_settings_and_exits_0(tmp_path) -> None:
    campaign = write_campaign(tmp_path / "c")
    proc = run("doctor", str(campaign.path), cwd=tmp_path,
               env={"BILLCAST_ADMIN_TOKEN": ADMIN, "STRIPE_API_KEY": LIVE, "STRIPE_WEBHOOK_SECRET": WHSEC})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for secret in (ADMIN, LIVE, WHSEC):
        assert secret not in out
    assert "admin_token            admi… (39 chars)" in out and "sk_l… (32 chars)" in out
    for name in ("campaign ", "store ", "ledger ", "stripe ", "ffmpeg ", "fonts "):
        assert f"  {name}" in out and "FAILED" not in out
    assert "live mode" in out and "ffmpeg version" in out and "7 fonts load" in out
    from billcast.jobs.ledger import head_revision

    assert f"empty: its schema is made on first use" in out or f"at revision {head_revision()}" in out


def test_the_demo_provider_is_reported_as_such(tmp_path) -> None:
    results = {r.name: r for r in checks(load_settings({}), ())}
    assert results["stripe"].ok and "demo provider" in results["stripe"].text
    assert results["campaign"].ok and "none given" in results["campaign"].text


def test_a_store_that_does_not_answer_is_exit_5(tmp_path) -> None:
    campaign = write_campaign(tmp_path / "c", store="s3://bucket/prefix")
    text = campaign.path.read_text(encoding="utf-8")
    campaign.path.write_text(text.replace('store = "s3://bucket/prefix"\n', 'store = "s3://bucket/prefix"\n'
                                          'store_endpoint_url = "http://127.0.0.1:9"\n'), encoding="utf-8")
    proc = run("doctor", str(campaign.path), cwd=tmp_path, env={"AWS_ACCESS_KEY_ID": "test",
                                                                "AWS_SECRET_ACCESS_KEY": "test"})
    assert proc.returncode == 5, proc.stdout
    assert "store     FAILED:" in proc.stdout and "Could not connect" in proc.stdout
    assert "ledger    ok:" in proc.stdout and "fonts     ok:" in proc.stdout  # the others still ran


def test_a_ledger_ahead_of_this_code_is_exit_8(tmp_path) -> None:
    import sqlite3

    campaign = write_campaign(tmp_path / "c")
    db = campaign.ledger.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (99)")
    proc = run("doctor", str(campaign.path), cwd=tmp_path)
    assert proc.returncode == 8 and "ledger    FAILED:" in proc.stdout and "version 99" in proc.stdout


def test_missing_fonts_are_exit_2(tmp_path) -> None:
    from billcast.renderer import packaged

    assets = tmp_path / "assets"
    shutil.copytree(packaged("assets"), assets)
    (assets / "fonts" / "NotoSansArabic-Bold.ttf").unlink()
    proc = run("--assets", str(assets), "doctor", cwd=tmp_path)
    assert proc.returncode == 2
    assert "fonts     FAILED:" in proc.stdout and "NotoSansArabic-Bold.ttf" in proc.stdout


def test_a_bad_campaign_file_is_exit_2_and_a_plain_http_link_exit_10(tmp_path) -> None:
    (tmp_path / "bad.toml").write_text('id = "x"\n')
    proc = run("doctor", str(tmp_path / "bad.toml"), cwd=tmp_path)
    assert proc.returncode == 2 and "campaign  FAILED:" in proc.stdout
    http = write_campaign(tmp_path / "h", public_url="http://bills.lumen.test")
    proc = run("doctor", str(http.path), cwd=tmp_path)
    assert proc.returncode == 10 and "public_url" in proc.stdout


def test_unsafe_settings_are_one_line_before_any_check(tmp_path) -> None:
    proc = run("doctor", cwd=tmp_path, env={"STRIPE_API_KEY": LIVE})
    assert proc.returncode == 10 and proc.stdout == ""
    assert proc.stderr.strip().startswith("error: STRIPE_WEBHOOK_SECRET:")


@pytest.mark.parametrize("kind", ["ffmpeg"])
def test_a_broken_ffmpeg_is_exit_4(monkeypatch, kind) -> None:
    import imageio_ffmpeg

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: "/bin/false")
    results = {r.name: r for r in checks(load_settings({}), ())}
    assert not results["ffmpeg"].ok and results["ffmpeg"].exit_code == 4

"""The one settings model: where each setting is read from, what wins, what is refused, and its documentation."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from billcast.jobs.campaign import load_campaign
from billcast.renderer import SettingsError
from billcast.settings import (Settings, campaign_link_secret, demo_webhook_secret, documented_rows, load_settings,
                               mask, service_settings, shown)

from conftest import ROOT
from test_cli import one_line_error, run
from test_events import write_campaign

ADMIN = "a" * 40
SESSION = "s" * 48
LIVE = "sk_live_" + "k" * 24
WHSEC = "whsec_" + "w" * 32


def refused(environ: dict[str, str], setting: str, *words: str, **options) -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings(environ, **options)
    assert raised.value.setting == setting, str(raised.value)
    for word in words:
        assert word in str(raised.value)
    return str(raised.value)


# --- where settings are read from ----------------------------------------------------------------

def test_defaults_need_nothing() -> None:
    settings = load_settings({})
    assert (settings.host, settings.port, settings.threads, settings.trusted_proxies) == ("127.0.0.1", 8000, 4, 0)
    assert 1 <= settings.workers <= 8 and settings.workers == min(2 * (os.cpu_count() or 1) + 1, 8)
    assert settings.campaigns == () and settings.stripe_mode == "demo" and settings.secret("admin_token") is None


def test_the_existing_names_are_read() -> None:
    settings = load_settings({"STRIPE_API_KEY": "sk_test_abc", "STRIPE_WEBHOOK_SECRET": WHSEC,
                              "BILLCAST_ADMIN_TOKEN": ADMIN, "BILLCAST_CACHE_DIR": "/tmp/segments",
                              "BILLCAST_ASSETS_DIR": str(ROOT / "assets"), "BILLCAST_CAMPAIGNS": "a.toml:b/c.toml",
                              "BILLCAST_LINK_SECRET": "l" * 32})
    assert settings.secret("stripe_api_key") == "sk_test_abc" and settings.stripe_mode == "test"
    assert settings.secret("stripe_webhook_secret") == WHSEC and settings.secret("admin_token") == ADMIN
    assert settings.segment_cache_dir() == Path("/tmp/segments") and settings.assets_dir == ROOT / "assets"
    assert settings.campaigns == (Path("a.toml"), Path("b/c.toml")) and settings.secret("link_secret") == "l" * 32
    assert load_settings({"BILLCAST_STRIPE_API_KEY": "sk_test_x", "BILLCAST_STRIPE_WEBHOOK_SECRET": WHSEC}
                         ).secret("stripe_api_key") == "sk_test_x"
    assert load_settings({"BILLCAST_CACHE_DIR": "off"}).segment_cache_dir() is None


def test_every_field_is_read_from_its_variable() -> None:
    values = {"host": "0.0.0.0", "port": "9001", "workers": "3", "threads": "2", "timeout": "45",
              "trusted_proxies": "2", "secure_cookies": "false", "events_per_minute": "30", "log_format": "json",
              "log_level": "debug", "executor": "tcp://10.0.0.5:8786", "state_dir": "/var/lib/billcast",
              "stripe_api_base": "http://127.0.0.1:12111"}
    settings = load_settings({f"BILLCAST_{name.upper()}": value for name, value in values.items()})
    assert {name: str(getattr(settings, name)).lower() for name in values} == {k: v.lower() for k, v in values.items()}


def test_secrets_are_read_from_files(tmp_path) -> None:
    files = {}
    for name, value in {"BILLCAST_ADMIN_TOKEN": ADMIN, "STRIPE_API_KEY": LIVE, "STRIPE_WEBHOOK_SECRET": WHSEC,
                        "BILLCAST_LINK_SECRET": "l" * 40, "BILLCAST_SESSION_SECRET": SESSION}.items():
        (tmp_path / name).write_text(value + "\n")
        files[f"{name}_FILE"] = str(tmp_path / name)
    settings = load_settings(files)
    assert settings.secret("admin_token") == ADMIN and settings.secret("stripe_api_key") == LIVE
    assert settings.secret("stripe_webhook_secret") == WHSEC and settings.stripe_mode == "live"
    assert settings.secret("link_secret") == "l" * 40 and settings.secret("session_secret") == SESSION


@pytest.mark.parametrize("content, problem", [(None, "cannot read"), ("", "is empty"), ("x" * 5000, "over 4096"),
                                              (b"\xff\xfe", "not UTF-8")])
def test_a_secret_file_that_is_not_one_is_refused(tmp_path, content, problem) -> None:
    path = tmp_path / "secret"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    refused({"BILLCAST_ADMIN_TOKEN_FILE": str(path)}, "BILLCAST_ADMIN_TOKEN_FILE", problem, str(path))


def test_a_secret_and_its_file_together_are_refused(tmp_path) -> None:
    (tmp_path / "key").write_text(LIVE)
    refused({"STRIPE_API_KEY": LIVE, "STRIPE_API_KEY_FILE": str(tmp_path / "key")}, "STRIPE_API_KEY_FILE",
            "set only one")


def test_a_toml_file_then_the_environment_then_the_options(tmp_path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "admin").write_text(ADMIN)
    config = tmp_path / "etc" / "billcast.toml"
    config.write_text('campaigns = ["nov.toml", "/abs/dec.toml"]\nport = 8100\nworkers = 6\n'
                      'admin_token_file = "admin"\nlog_format = "json"\n')
    settings = load_settings({"BILLCAST_CONFIG": str(config), "BILLCAST_PORT": "8200"}, workers=7)
    assert settings.campaigns == (tmp_path / "etc" / "nov.toml", Path("/abs/dec.toml"))
    assert (settings.port, settings.workers, settings.log_format) == (8200, 7, "json")
    assert settings.secret("admin_token") == ADMIN and settings.admin_token_file == tmp_path / "etc" / "admin"
    other = tmp_path / "other.toml"
    other.write_text("port = 8300\n")
    assert load_settings({"BILLCAST_CONFIG": str(config)}, config=other).port == 8300  # --config wins


@pytest.mark.parametrize("text, setting, words", [
    ("wrokers = 4\n", "{path}: wrokers", ["is not a setting"]),
    ("port = 'eighty'\n", "{path}: port", ["valid integer"]),
    ("port = [\n", "--config", ["not valid TOML"]),
])
def test_a_bad_toml_file_is_refused_naming_file_and_key(tmp_path, text, setting, words) -> None:
    path = tmp_path / "billcast.toml"
    path.write_text(text)
    refused({}, setting.format(path=path), *words, config=path)


def test_a_missing_config_file_is_refused(tmp_path) -> None:
    refused({"BILLCAST_CONFIG": str(tmp_path / "nope.toml")}, "BILLCAST_CONFIG", "cannot read")


@pytest.mark.parametrize("environ, options, setting, words", [
    ({"BILLCAST_PORT": "eighty"}, {}, "BILLCAST_PORT", ["valid integer", "'eighty'"]),
    ({}, {"port": 0}, "--port", ["greater than or equal to 1"]),
    ({"BILLCAST_WORKERS": "0"}, {}, "BILLCAST_WORKERS", []),
    ({"BILLCAST_LOG_FORMAT": "xml"}, {}, "BILLCAST_LOG_FORMAT", ["'text' or 'json'"]),
    ({"BILLCAST_ASSETS_DIR": "/nonexistent"}, {}, "BILLCAST_ASSETS_DIR", ["is not a folder"]),
    ({}, {"assets_dir": "/nonexistent"}, "--assets", ["is not a folder"]),
    ({"BILLCAST_STRIPE_API_BASE": "ftp://x"}, {}, "BILLCAST_STRIPE_API_BASE", ["http(s) URL"]),
])
def test_a_malformed_value_is_refused_naming_where_it_was_given(environ, options, setting, words) -> None:
    refused(environ, setting, *words, **options)


# --- unsafe settings -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["BILLCAST_ADMIN_TOKEN", "BILLCAST_SESSION_SECRET", "BILLCAST_LINK_SECRET"])
def test_a_short_secret_is_refused_without_showing_it(name) -> None:
    message = refused({name: "tooshort-secret"}, name, "is 15 characters; use at least 32")
    assert "tooshort" not in message


def test_a_stripe_key_needs_its_webhook_secret_and_must_be_one() -> None:
    message = refused({"STRIPE_API_KEY": LIVE}, "STRIPE_WEBHOOK_SECRET", "live Stripe key", "whsec_")
    assert LIVE not in message
    refused({"STRIPE_API_KEY": "sk_test_abc"}, "STRIPE_WEBHOOK_SECRET", "test Stripe key")
    message = refused({"STRIPE_API_KEY": "pk_live_publishable0123", "STRIPE_WEBHOOK_SECRET": WHSEC},
                      "STRIPE_API_KEY", "does not look like a Stripe secret key")
    assert "pk_live_publishable0123" not in message and "pk_l… (23 chars)" in message


@pytest.mark.parametrize("public, pay, refused_key", [
    ("https://bills.lumen.test", "https://pay.lumen.test", None),
    ("http://127.0.0.1:8000", "http://localhost:8000", None),
    ("http://[::1]:8000", "http://127.0.0.2:8000", None),
    ("http://bills.lumen.test", "https://pay.lumen.test", "public_url"),
    ("https://bills.lumen.test", "http://10.0.0.7", "pay_url"),
])
def test_plain_http_is_only_for_this_machine(tmp_path, public, pay, refused_key) -> None:
    campaign = write_campaign(tmp_path / "c", public_url=public, pay_url=pay)
    settings = load_settings({"BILLCAST_STATE_DIR": str(tmp_path / "state")})
    if refused_key is None:
        assert service_settings(settings, (campaign,)).campaigns == (campaign,)
        return
    with pytest.raises(SettingsError) as raised:
        service_settings(settings, (campaign,))
    assert raised.value.setting == f"{campaign.source}: {refused_key}" and "https://" in str(raised.value)


def test_unsafe_settings_stop_the_command_in_one_line(tmp_path) -> None:
    one_line_error(run("serve", env={"BILLCAST_ADMIN_TOKEN": "short"}, cwd=tmp_path), 10, "BILLCAST_ADMIN_TOKEN",
                   "at least 32")
    one_line_error(run("check", "x.yaml", env={"STRIPE_API_KEY": LIVE}, cwd=tmp_path), 10,
                   "STRIPE_WEBHOOK_SECRET")
    one_line_error(run("--config", str(tmp_path / "none.toml"), "check", "x.yaml", cwd=tmp_path), 10, "--config")


# --- what the service gets -----------------------------------------------------------------------

def test_workers_agree_on_the_kept_session_secret_and_the_demo_webhook_secret(tmp_path) -> None:
    campaign = write_campaign(tmp_path / "c")
    environ = {"BILLCAST_STATE_DIR": str(tmp_path / "state")}
    first, again = (service_settings(load_settings(environ), (campaign,)) for _ in range(2))
    assert first.session_secret == again.session_secret and len(first.session_secret) == 64
    assert first.webhook_secret == again.webhook_secret == demo_webhook_secret(first.session_secret)
    assert first.webhook_secret.startswith("whsec_demo_") and first.demo_payments
    assert stat.S_IMODE(os.stat(tmp_path / "state" / "session_secret").st_mode) == 0o600
    default = service_settings(load_settings({}), (campaign,))  # beside the campaign's outputs
    assert (campaign.out.parent / ".billcast-service" / "session_secret").is_file() and default.session_secret


def test_configured_secrets_go_to_the_service_as_plain_values(tmp_path) -> None:
    campaign = write_campaign(tmp_path / "c")
    settings = load_settings({"BILLCAST_SESSION_SECRET": SESSION, "STRIPE_API_KEY": LIVE,
                              "STRIPE_WEBHOOK_SECRET": WHSEC, "BILLCAST_ADMIN_TOKEN": ADMIN,
                              "BILLCAST_EVENTS_PER_MINUTE": "7", "BILLCAST_TRUSTED_PROXIES": "1",
                              "BILLCAST_SECURE_COOKIES": "0"})
    service = service_settings(settings, (campaign,))
    assert (service.session_secret, service.webhook_secret, service.admin_token) == (SESSION.encode(), WHSEC, ADMIN)
    assert (service.stripe_api_key, service.events_per_minute, service.trusted_proxies) == (LIVE, 7, 1)
    assert not service.secure_cookies and not service.demo_payments
    assert not (tmp_path / "c" / ".billcast-service").exists()  # nothing kept: everything was given


def test_a_campaigns_own_link_secret_variable_and_its_file(tmp_path) -> None:
    campaign = write_campaign(tmp_path / "c")
    settings = load_settings({"BILLCAST_LINK_SECRET": "l" * 32})
    assert campaign_link_secret(settings, campaign, {}) == b"l" * 32
    import dataclasses

    own = dataclasses.replace(campaign, link_secret_env="NOV_LINK_SECRET")
    (tmp_path / "nov").write_text("n" * 40 + "\n")
    assert campaign_link_secret(settings, own, {"NOV_LINK_SECRET_FILE": str(tmp_path / "nov")}) == b"n" * 40
    assert campaign_link_secret(settings, own, {"NOV_LINK_SECRET": "m" * 33}) == b"m" * 33


# --- showing and documenting ---------------------------------------------------------------------

def test_secrets_are_shown_masked_and_never_printed_whole() -> None:
    settings = load_settings({"BILLCAST_ADMIN_TOKEN": ADMIN, "STRIPE_API_KEY": LIVE, "STRIPE_WEBHOOK_SECRET": WHSEC})
    table = dict(shown(settings))
    assert table["admin_token"] == mask(ADMIN) == "aaaa… (40 chars)"
    assert table["stripe_api_key"] == "sk_l… (32 chars)" and table["session_secret"] == "unset"
    for secret in (ADMIN, LIVE, WHSEC):
        assert secret not in repr(settings) and secret not in str(table)


def test_the_configuration_doc_lists_every_setting_as_the_model_does() -> None:
    doc = (ROOT / "docs" / "CONFIGURATION.md").read_text(encoding="utf-8")
    documented = [tuple(cell.strip() for cell in line.strip("|").split(" | "))
                  for line in doc.splitlines() if re.match(r"\| `[a-z_]+` \|", line)]
    expected = documented_rows()
    table = "\n".join("| " + " | ".join(row) + " |" for row in expected)
    assert documented == expected, f"docs/CONFIGURATION.md's table should read:\n{table}"
    assert len(expected) == len(Settings.model_fields)


def test_the_readme_and_deploy_doc_name_settings_that_exist() -> None:
    known = {env for row in documented_rows() for env in re.findall(r"`([A-Z_]+)`", row[1])}
    known |= {"BILLCAST_CONFIG", "BILLCAST_TEST_SECRET"}
    for doc in ("README.md", "docs/DEPLOY.md"):
        named = set(re.findall(r"\b((?:BILLCAST|STRIPE)_[A-Z_]+)\b", (ROOT / doc).read_text(encoding="utf-8")))
        assert named <= known, f"{doc} names {named - known}, which are not settings"


def test_load_campaign_of_the_demo_is_served_without_complaint(tmp_path) -> None:
    from billcast.demo import demo_campaign

    (tmp_path / "campaign.toml").write_text(demo_campaign(tmp_path), encoding="utf-8")
    campaign = load_campaign(tmp_path / "campaign.toml")
    assert campaign.public_url.startswith("http://127.0.0.1")
    assert service_settings(load_settings({}), (campaign,)).demo_payments

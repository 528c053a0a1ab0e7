"""The reference deployment's files (docs/deploy/) work: gunicorn runs with its config, the systemd units parse
and run real ``billcast`` commands, and nginx's limits agree with the app's."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from billcast.cli import parser
from billcast.service import ADMIN_PREFIXES
from billcast.service.app import BODY_LIMITS, DEFAULT_BODY_LIMIT
from billcast.settings import documented_rows

from conftest import ROOT
from served import ADMIN, Served, published_campaign
from test_sides import niceness, workers_of

DEPLOY = ROOT / "docs" / "deploy"
SIDES = {"billcast-public.service": "billcast", "billcast-admin.service": "billcast_admin"}  # unit: upstream
UNITS = (*SIDES, "billcast-expire.service", "billcast-expire.timer")
SETTING_VARIABLES = {env.strip("`") for row in documented_rows() for env in row[1].split(", ")}


def unit(name: str) -> configparser.ConfigParser:
    config = configparser.ConfigParser(strict=False, interpolation=None)
    config.optionxform = str  # systemd keys are case-sensitive
    config.read_string((DEPLOY / name).read_text(encoding="utf-8"))
    return config


def lines(name: str, key: str) -> list[str]:
    """Every value of a key that may repeat (configparser keeps the last one only)."""
    return [line.split("=", 1)[1].strip() for line in (DEPLOY / name).read_text(encoding="utf-8").splitlines()
            if line.startswith(f"{key}=")]


@pytest.mark.parametrize("name", UNITS)
def test_the_units_parse(name) -> None:
    config = unit(name)
    kind = "Timer" if name.endswith(".timer") else "Service"
    assert {"Unit", kind} <= set(config.sections())
    assert config["Unit"]["Description"]


@pytest.mark.parametrize("name", [n for n in UNITS if n.endswith(".service")])
def test_every_command_a_unit_runs_is_a_real_billcast_command(name) -> None:
    commands = lines(name, "ExecStart") + lines(name, "ExecStartPre")
    assert commands
    for command in commands:
        argv = shlex.split(command)
        assert Path(argv[0]).name == "billcast", command
        args = parser().parse_args(argv[1:])  # exits 64 on an unknown command or option
        assert args.func.__name__ == f"cmd_{args.command}"
    assert unit(name)["Service"]["User"] == "billcast"


@pytest.mark.parametrize("name", [n for n in UNITS if n.endswith(".service")])
def test_the_units_set_only_settings_that_exist(name) -> None:
    for assignment in lines(name, "Environment"):
        variable = assignment.split("=", 1)[0]
        assert variable in SETTING_VARIABLES | {"BILLCAST_CONFIG"}, variable


def test_the_timer_runs_the_expire_service_daily() -> None:
    timer = unit("billcast-expire.timer")["Timer"]
    assert timer["OnCalendar"].startswith("*-*-* ") and timer["Persistent"] == "true"
    assert (DEPLOY / "billcast-expire.service").is_file()  # the timer's unit, by its name
    assert unit("billcast-expire.service")["Service"]["Type"] == "oneshot"
    assert all(shlex.split(c)[1] == "expire" for c in lines("billcast-expire.service", "ExecStart"))


def test_systemd_finds_nothing_wrong_in_the_units(tmp_path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    billcast = Path(sys.executable).with_name("billcast")
    for name in UNITS:  # the units as installed, pointing at this checkout's command
        text = (DEPLOY / name).read_text(encoding="utf-8").replace("/opt/billcast/bin/billcast", str(billcast))
        (tmp_path / name).write_text(text, encoding="utf-8")
    done = subprocess.run([analyze, "verify", *(str(tmp_path / n) for n in UNITS)], capture_output=True, text=True,
                          timeout=120)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if str(tmp_path) in line]
    assert done.returncode == 0 and not problems, problems


@pytest.mark.slow
def test_gunicorn_runs_the_wsgi_entry_with_the_config_file(tmp_path) -> None:
    campaign = published_campaign(tmp_path / "campaign")
    env = {"BILLCAST_CAMPAIGNS": str(campaign), "BILLCAST_WORKERS": "2", "BILLCAST_LOG_FORMAT": "json",
           "BILLCAST_STATE_DIR": str(tmp_path / "state")}
    with Served(["gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py"), "billcast.wsgi:app"], env, tmp_path) as server:
        assert json.loads(server.request("GET", "/healthz").body) == {"status": "ok"}
        assert server.request("GET", "/readyz").status == 200
        server.stop()
        records = [json.loads(line) for line in server.log.splitlines()]
    assert sum(1 for r in records if r["message"].startswith("Booting worker")) == 2
    assert any(r["logger"] == "billcast.access" and r["route"] == "/readyz" for r in records)
    assert not any("127.0.0.1" in json.dumps(r) for r in records)


def test_the_wsgi_entry_without_campaigns_stops_in_one_line(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-P", "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py"),
                           "billcast.wsgi:app"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BILLCAST_PORT": "1"})
    assert done.returncode == 10, done.stderr
    assert "error: BILLCAST_CAMPAIGNS: is not set" in done.stderr and "Traceback" not in done.stderr


def test_a_bad_setting_stops_gunicorn_at_its_config_file(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-P", "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py"),
                           "billcast.wsgi:app"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BILLCAST_WORKERS": "many"})
    assert done.returncode == 10 and done.stderr.strip().splitlines()[-1].startswith("error: BILLCAST_WORKERS:")


def location(conf: str, path: str) -> str:
    """The body of the location block nginx picks for ``path``: exact, then regular expression, then longest prefix."""
    exact = dict(re.findall(r"location = (\S+) \{(.*?)\}", conf, re.S))
    if path in exact:
        return exact[path]
    for pattern, body in re.findall(r"location ~ (\S+) \{(.*?)\}", conf, re.S):
        if re.search(pattern, path):
            return body
    prefixes = dict(re.findall(r"location ([^=~\s]\S*) \{(.*?)\}", conf, re.S))
    return prefixes[max((p for p in prefixes if path.startswith(p)), key=len)]


def test_nginx_agrees_with_the_app() -> None:
    conf = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    sizes = {"k": 1024, "m": 1024 * 1024}

    def limit(text: str) -> int:
        return int(text[:-1]) * sizes[text[-1]]

    everywhere = limit(re.search(r"^\s+client_max_body_size (\w+);", conf, re.M).group(1))
    for prefix, app_limit in BODY_LIMITS:
        own = re.search(r"client_max_body_size (\w+);", location(conf, prefix))
        edge = limit(own.group(1)) if own else everywhere
        assert edge >= app_limit, (prefix, edge, app_limit)  # the app, not the edge, answers 413 in its own words
    assert everywhere >= DEFAULT_BODY_LIMIT
    # One proxy, setting every header ProxyFix reads; nothing it logs names the address or the path.
    for header in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Request-Id"):
        assert f"proxy_set_header {header} " in conf
    log_format = re.search(r"log_format billcast_private (.*?);", conf, re.S).group(1)
    for leak in ("$remote_addr", "$request ", "$request_uri", "$uri", "$http_referer", "$args"):
        assert leak not in log_format
    assert re.search(r"access_log \S+ billcast_private;", conf)


def test_nginx_sends_the_admin_paths_to_the_admin_side_only() -> None:
    conf = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    upstreams = dict(re.findall(r"upstream (\w+) \{\s*server 127\.0\.0\.1:(\d+);", conf))
    for name, upstream in SIDES.items():  # each unit listens where its upstream points
        command = next(c for c in lines(name, "ExecStart"))
        assert f"--port {upstreams[upstream]}" in command and "--host 127.0.0.1" in command
        assert ("--admin" if upstream == "billcast_admin" else "--public") in command
    t = "A" * 22
    admin = [*(p + s for p in ADMIN_PREFIXES for s in ("", "/")), "/reports/c-1/experiment.csv", "/studio/x/validate"]
    public = ["/", f"/r/{t}/", f"/pay/{t}", f"/e/{t}", "/stripe/webhook", "/demo/checkout/cs_1", "/healthz",
              "/reportsx", "/signing", f"/r/{t}/reports/", "/studios"]
    for path in admin:
        block = location(conf, path)
        assert "proxy_pass http://billcast_admin;" in block and "deny all;" in block, path
    for path in public:
        assert "proxy_pass http://billcast;" in location(conf, path), path


def test_the_admin_unit_needs_no_payment_key_and_the_public_one_no_admin_token() -> None:
    public = "\n".join(lines("billcast-public.service", "Environment"))
    admin = "\n".join(lines("billcast-admin.service", "Environment"))
    assert "BILLCAST_ADMIN_TOKEN" not in public and "STRIPE_WEBHOOK_SECRET_FILE" in public
    assert "BILLCAST_ADMIN_TOKEN_FILE" in admin and "STRIPE" not in admin
    assert int(unit("billcast-admin.service")["Service"]["CPUWeight"]) < 100  # below the default weight


@pytest.mark.slow
def test_gunicorn_runs_each_side_from_its_wsgi_entry(tmp_path) -> None:
    campaign = published_campaign(tmp_path / "campaign")
    mine = niceness(os.getpid())
    env = {"BILLCAST_CAMPAIGNS": str(campaign), "BILLCAST_WORKERS": "1", "BILLCAST_STATE_DIR": str(tmp_path / "state"),
           "BILLCAST_ADMIN_NICE": str(min(mine + 3, 19)), "BILLCAST_ADMIN_TOKEN_FILE": "", "BILLCAST_ADMIN_TOKEN": ""}
    gunicorn = ["gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py")]
    with Served([*gunicorn, "billcast.wsgi:public_app"], env, tmp_path) as public, \
            Served([*gunicorn, "billcast.wsgi:admin_app"], {**env, "BILLCAST_ADMIN_TOKEN": ADMIN}, tmp_path) as admin:
        bearer = {"Authorization": f"Bearer {ADMIN}"}
        assert public.request("GET", "/reports/", headers=bearer).status == 404
        assert admin.request("GET", "/reports/", headers=bearer).status == 200
        assert admin.request("POST", "/stripe/webhook", b"{}").status == 404
        assert [niceness(pid) for pid in workers_of(admin.process.pid)] == [min(mine + 3, 19)]
        assert [niceness(pid) for pid in workers_of(public.process.pid)] == [mine]

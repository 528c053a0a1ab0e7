"""The service's two sides: the public app registers no admin route, the admin app no public one, and the
combined app (the demo's) serves both; each side starts on its own under gunicorn, the public one without an
admin token, the admin one at its lower CPU priority."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from billcast.jobs.campaign import load_campaign
from billcast.service import ADMIN_PREFIXES, create_admin_app, create_app, create_public_app
from billcast.settings import load_settings, service_settings

from served import ADMIN, Served, published_campaign, token

pytestmark = pytest.mark.slow
BEARER = {"Authorization": f"Bearer {ADMIN}"}
ADMIN_PAGES = ("/reports/", "/reports/test-2026-11", "/reports/test-2026-11/experiment", "/reports/static/reports.css",
               "/studio/", "/studio/bill_explainer", "/studio/_schema.json", "/signin")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def campaign_file(tmp_path_factory) -> Path:
    return published_campaign(tmp_path_factory.mktemp("sides"))


@pytest.fixture(scope="module")
def apps(campaign_file, tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    settings = service_settings(load_settings({"BILLCAST_STATE_DIR": str(state), "BILLCAST_ADMIN_TOKEN": ADMIN}),
                                (load_campaign(campaign_file),))
    made = {"public": create_public_app(settings), "admin": create_admin_app(settings), "both": create_app(settings)}
    yield made
    for app in made.values():
        app.extensions["billcast"].close()


def public_paths() -> list[tuple[str, str]]:
    t = token("IT-000123")
    return [("GET", f"/r/{t}/"), ("GET", f"/r/{t}/index.html"), ("GET", f"/pay/{t}?option=full&src=qr"),
            ("POST", f"/e/{t}"), ("OPTIONS", f"/e/{t}"), ("POST", "/stripe/webhook"),
            ("GET", "/demo/checkout/cs_demo_x"), ("GET", f"/r/{t}/optout"), ("POST", f"/r/{t}/optout"),
            ("GET", f"/r/{t}/dispute"), ("POST", f"/r/{t}/dispute")]


def test_the_public_app_has_no_admin_route(apps) -> None:
    public = apps["public"]
    rules = [rule.rule for rule in public.url_map.iter_rules()]
    assert not [rule for rule in rules if rule.startswith(ADMIN_PREFIXES)], rules
    assert not [name for name in public.view_functions if name.split(".")[0] in ("auth", "reports", "studio",
                                                                                   "experiments")]
    client = public.test_client()
    for path in ADMIN_PAGES:
        for headers in ({}, BEARER, {"Accept": "text/html"}):
            assert client.get(path, headers=headers).status_code == 404, path
    made_up = client.post("/no-such-page", data="token=x", headers=FORM)
    for path in ("/signin", "/signout", "/studio/bill_explainer/validate"):  # as any path nobody serves
        answer = client.post(path, data=f"token={ADMIN}", headers={**FORM, **BEARER})
        assert (answer.status_code, answer.headers.get("Allow")) == (made_up.status_code, made_up.headers.get("Allow"))
        assert "set-cookie" not in answer.headers


def test_the_public_app_holds_no_admin_token_and_sets_no_session(apps) -> None:
    public = apps["public"]
    assert public.extensions["billcast"].settings.admin_token is None
    assert public.secret_key is None and public.config["SESSION_COOKIE_NAME"] != "billcast_admin"
    assert apps["admin"].extensions["billcast"].settings.admin_token == ADMIN


def test_the_admin_app_serves_no_public_route(apps) -> None:
    client = apps["admin"].test_client()
    for method, path in public_paths():
        answer = client.open(path, method=method, data=b'{"kind": "view"}', headers=BEARER)
        assert answer.status_code == 404, (method, path, answer.status_code)
    assert client.get("/", headers=BEARER).headers["Location"] == "/reports/"


def test_each_side_answers_its_own_routes(apps) -> None:
    public, admin = apps["public"].test_client(), apps["admin"].test_client()
    t = token("IT-000123")
    assert public.get(f"/r/{t}/").status_code == 200
    assert public.post(f"/e/{t}", data=b'{"kind": "view"}', content_type="text/plain").status_code == 204
    assert admin.get("/reports/", headers=BEARER).status_code == 200
    assert admin.get("/reports/test-2026-11", headers=BEARER).status_code == 200
    assert admin.get("/studio/", headers=BEARER).status_code == 200
    assert admin.get("/reports/", headers={"Accept": "text/html"}).headers["Location"].startswith("/signin")
    signed = admin.post("/signin", data={"token": ADMIN, "next": "/reports/"})
    assert signed.status_code == 303 and "billcast_admin=" in signed.headers["Set-Cookie"]
    for app in apps.values():
        health = app.test_client().get("/readyz")
        assert health.status_code == 200 and health.get_json()["status"] == "ok"


def test_the_combined_app_serves_both_sides(apps) -> None:
    client = apps["both"].test_client()
    t = token("DE-000456")
    assert client.get(f"/r/{t}/").status_code == 200
    assert client.get(f"/pay/{t}?option=full&src=qr").status_code == 303
    assert client.get("/reports/", headers=BEARER).status_code == 200
    assert client.get("/studio/", headers=BEARER).status_code == 200
    both = {rule.rule for rule in apps["both"].url_map.iter_rules()}
    sides = {rule.rule for side in ("public", "admin") for rule in apps[side].url_map.iter_rules()} - {"/"}
    assert sides <= both  # nothing either side has is missing from the demo's


def test_both_sides_answer_errors_headers_and_limits_alike(apps) -> None:
    public, admin = apps["public"].test_client(), apps["admin"].test_client()
    for client in (public, admin):
        page = client.get("/nothing-here", headers={"Accept": "text/html", "Accept-Language": "de"})
        assert page.status_code == 404 and page.mimetype == "text/html" and 'lang="de"' in page.get_data(as_text=True)
        api = client.get("/healthz/more")
        assert api.get_json()["request_id"] == api.headers["X-Request-Id"]
        for header in ("Referrer-Policy", "X-Robots-Tag", "X-Content-Type-Options", "X-Frame-Options"):
            assert header in page.headers
        assert client.post("/healthz", data=b"x" * (64 * 1024 + 1)).status_code == 413
    assert public.post(f"/e/{token('IT-000123')}", data=b"x" * 5000, content_type="text/plain").status_code == 413
    assert admin.post("/studio/bill_explainer/validate", data=b"x" * (1024 * 1024 + 1),
                      content_type="application/json", headers=BEARER).status_code == 413


def test_no_page_of_the_public_side_leads_to_the_admin_side(apps) -> None:
    client = apps["public"].test_client()
    t = token("IT-000123")
    for path in (f"/r/{t}/", f"/r/{t}/optout", f"/r/{t}/dispute", "/nothing-here", "/reports/"):
        text = client.get(path, headers={"Accept": "text/html"}).get_data(as_text=True).lower()
        for admin in ("/signin", "/reports", "/studio", "sign in"):
            assert admin not in text, (path, admin)


def test_the_admin_side_needs_the_admin_token_and_the_public_side_does_not(campaign_file, tmp_path) -> None:
    from billcast.renderer import SettingsError
    from billcast.wsgi import app_from_environ

    env = {"BILLCAST_CAMPAIGNS": str(campaign_file), "BILLCAST_STATE_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match="BILLCAST_ADMIN_TOKEN: is not set: the admin side"):
        app_from_environ(env, "admin")
    public = app_from_environ(env, "public")
    assert public.extensions["billcast"].settings.admin_token is None
    public.extensions["billcast"].close()


def test_serve_admin_without_a_token_stops_in_one_line(campaign_file, tmp_path) -> None:
    from test_cli import one_line_error, run

    env = {"BILLCAST_ADMIN_TOKEN": "", "BILLCAST_STATE_DIR": str(tmp_path)}
    one_line_error(run("serve", str(campaign_file), "--admin", cwd=tmp_path, env=env), 10, "BILLCAST_ADMIN_TOKEN")
    both = run("serve", str(campaign_file), "--public", "--admin", cwd=tmp_path, env=env)
    assert both.returncode == 64 and "not allowed with argument --public" in both.stderr.splitlines()[-1]


def test_the_development_server_runs_the_side_asked_for(campaign_file, tmp_path, monkeypatch) -> None:
    from billcast import server

    ran = []
    monkeypatch.setattr(server, "serve_dev", lambda app, settings: ran.append(app))
    monkeypatch.setattr(server, "serve_gunicorn", lambda *args: pytest.fail("--dev runs no gunicorn"))
    settings = load_settings({"BILLCAST_STATE_DIR": str(tmp_path), "BILLCAST_ADMIN_TOKEN": ADMIN,
                              "BILLCAST_ADMIN_NICE": "0"}, port=1)
    monkeypatch.setattr(server, "check_free", lambda settings: None)
    for side in ("public", "admin"):
        server.serve(settings, (campaign_file,), dev=True, side=side)
    public, admin = ran
    assert public.test_client().get("/reports/", headers=BEARER).status_code == 404
    assert admin.test_client().get("/reports/", headers=BEARER).status_code == 200


# --- each side on its own, under gunicorn ----------------------------------------------------------


def niceness(pid: int) -> int:
    """A process's nice value, as the kernel keeps it (/proc/PID/stat, field 19)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def autogroup_nice(pid: int) -> int | None:
    """The nice value of the scheduler group of a process's session (``/autogroup-N nice V``).

    None for a process in no autogroup: the kernel prints nothing for the root group
    (a session never started since boot) or when the process's cgroup schedules it.
    """
    shown = Path(f"/proc/{pid}/autogroup").read_text().split()
    return int(shown[-1]) if shown else None


def workers_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def test_each_side_starts_on_its_own_under_gunicorn(campaign_file, tmp_path) -> None:
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    level = min(mine + 7, 19)
    base = {"BILLCAST_STATE_DIR": str(tmp_path / "state"), "BILLCAST_ADMIN_NICE": str(level)}
    t = token("IT-000123")
    public_env = {**base, "BILLCAST_ADMIN_TOKEN": "", "BILLCAST_ADMIN_TOKEN_FILE": ""}  # the public side needs none
    argv = ["billcast", "serve", str(campaign_file), "--workers", "2", "--insecure-cookies"]
    with Served([*argv, "--public"], public_env, tmp_path, own_session=True) as public, \
            Served([*argv, "--admin"], {**base, "BILLCAST_ADMIN_TOKEN": ADMIN}, tmp_path, own_session=True) as admin:
        assert public.request("GET", f"/pay/{t}?option=full&src=qr").status == 303
        assert public.request("GET", "/reports/", headers=BEARER).status == 404
        assert public.request("GET", "/studio/", headers=BEARER).status == 404
        assert admin.request("GET", "/reports/", headers=BEARER).status == 200
        assert admin.request("GET", f"/pay/{t}?option=full&src=qr").status == 404
        assert admin.request("POST", f"/e/{t}", b'{"kind": "view"}', {"Content-Type": "text/plain"}).status == 404
        signed = admin.request("POST", "/signin", f"token={ADMIN}&next=/studio/".encode(), FORM)
        assert signed.status == 303 and signed.headers["location"] == "/studio/"
        admin_workers, public_workers = workers_of(admin.process.pid), workers_of(public.process.pid)
        assert len(admin_workers) == len(public_workers) == 2
        assert [niceness(pid) for pid in (admin.process.pid, *admin_workers)] == [level] * 3
        assert [niceness(pid) for pid in (public.process.pid, *public_workers)] == [mine] * 3
        if autogroup_nice(admin.process.pid) is not None:  # each leads its own session: the admin's group yields too
            assert autogroup_nice(admin.process.pid) == level
            assert autogroup_nice(public.process.pid) == 0

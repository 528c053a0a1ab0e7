"""The studio as a careless or malicious author (or a page on another site) uses it.

Every POST needs the session's CSRF token and a same-origin request; a storyboard text that would
compute without bound is answered with its line and field, in the studio as in ``billcast check``.
"""

from __future__ import annotations

import re

import pytest

from test_studio import Studio, make_app


@pytest.fixture
def st(tmp_path) -> Studio:
    return Studio(make_app(tmp_path), tmp_path)


def post_routes(st: Studio) -> list[str]:
    paths = []
    for rule in st.app.url_map.iter_rules():
        if "POST" in (rule.methods or ()) and rule.rule.startswith("/studio"):
            paths.append(re.sub(r"<[^>]+>", "bill_explainer", rule.rule))
    return sorted(paths)


def test_every_studio_post_refuses_a_forged_or_missing_csrf_token_and_other_origins(st: Studio) -> None:
    paths = post_routes(st)
    assert paths, "the studio has POST routes"
    before = st.live()
    body = {"text": before.replace("Hello", "Pwned"), "t": 1.0}
    for path in paths:
        assert st.client.post(path, json=body).status_code == 403, path
        assert st.client.post(path, json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403, path
        assert st.post(path, body, Origin="https://evil.example").status_code == 403, path
        assert st.post(path, body, Origin="null").status_code == 403, path
    assert st.live() == before  # nothing was saved


def test_a_studio_post_without_the_admin_token_is_refused(st: Studio) -> None:
    anonymous = st.app.test_client()
    for path in post_routes(st):
        assert anonymous.post(path, json={"text": "x"}, headers={"X-CSRF-Token": st.csrf}).status_code in (302, 401,
                                                                                                         403), path


@pytest.mark.parametrize("template", ['{{ "x"|center(10**9) }}', '{{ "%999999999d"|format(1) }}',
                                      '{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}{% endfor %}'])
def test_a_text_that_computes_without_bound_is_an_answer_not_a_hang(st: Studio, template: str) -> None:
    text = st.live().replace('greeting: "Hello {{ first_name }},"', "greeting: '" + template.replace("'", "''") + "'")
    assert text != st.live()
    response = st.post("/studio/bill_explainer/frame", {"text": text, "t": 1.0})
    assert response.status_code == 422
    [error] = response.get_json()["errors"]
    assert error["field"] == "translations.en.greeting" and "allowed" in error["message"]

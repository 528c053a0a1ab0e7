"""Signing in leads back to a page of this site, never elsewhere, whatever ``next`` holds."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest

from billcast.service.auth import same_site_path


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example", "/\\evil.example", "\\\\evil.example", "/\t/evil.example",
    "/\n/evil.example", "/\r\n/evil.example", "/\x00/evil.example", " //evil.example", "javascript:alert(1)",
    "/%09/evil.example".replace("%09", "\t"), "evil.example", "", "/\u2028/evil.example",
])
def test_a_next_that_would_leave_the_site_stays_on_it(target: str) -> None:
    kept = same_site_path(target)
    assert kept.startswith("/") and not kept.startswith("//")
    assert all(ch.isprintable() and ch != "\\" for ch in kept)
    assert urlsplit(urljoin("https://billcast.example/reports/", kept)).netloc == "billcast.example"


@pytest.mark.parametrize("target", ["/", "/reports/", "/reports/demo-2026-11?x=1", "/studio/bill_explainer"])
def test_a_path_of_this_site_is_kept(target: str) -> None:
    assert same_site_path(target) == target

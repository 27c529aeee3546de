"""The pages and the admin satisfy the Content-Security-Policy: no inline script, style or handler.

The policy allows scripts and styles from our origin only. A browser would silently drop an
inline ``<script>``, a ``style="..."`` attribute, a ``<style>`` element or an ``onclick=``, so
these tests look for them in the HTML that real views render and in the project's sources
(where an admin's ``format_html`` would put them).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse

from jobs.testing import run_due_jobs
from tests.jobs import sample_jobs
from tests.jobs.helpers import enqueue

ROOT = Path(__file__).resolve().parents[2]
INLINE = {
    "inline script": re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "style attribute": re.compile(r"<[a-z][^>]*\sstyle\s*=", re.IGNORECASE),
    "style element": re.compile(r"<style\b", re.IGNORECASE),
    "event handler attribute": re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}
# JSON data islands are not executed, so the policy does not block them.
DATA_SCRIPT = re.compile(r"<script\b[^>]*type=\"application/(?:ld\+)?json\"", re.IGNORECASE)


def violations(html: str) -> list[str]:
    html = DATA_SCRIPT.sub("", html)
    return [
        f"{name}: {match.group(0)[:120]}"
        for name, rx in INLINE.items()
        for match in rx.finditer(html)
    ]


def admin_urls() -> list[str]:
    """The admin index and, for every registered model, its list, add and first change page."""
    urls = ["/admin/", "/admin/password_change/", "/admin/dashboard/"]
    for model in admin.site._registry:
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        urls.append(reverse(f"{info}_changelist"))
        with contextlib.suppress(NoReverseMatch):
            urls.append(reverse(f"{info}_add"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse(f"{info}_change", args=[first.pk]))
    return urls


def test_the_policy_is_sent_on_every_page(client):
    response = client.get("/accounts/login/")

    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "style-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_json_answers_skip_the_policy_that_only_documents_need(client):
    response = client.get("/healthz")

    assert response["Content-Type"] == "application/json"
    assert "Content-Security-Policy" not in response


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/accounts/login/",
        "/accounts/signup/",
        "/accounts/signup/done/",
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        "/accounts/activate/MQ/bad-token/",
        "/admin/login/",
    ],
)
def test_public_pages_have_no_inline_code(client, url):
    response = client.get(url)

    assert response.status_code == 200
    assert violations(response.content.decode()) == []


@pytest.mark.django_db
def test_admin_pages_have_no_inline_code(admin_client, admin_user):
    enqueue(sample_jobs.refuses, target="tests:1")  # a dead job with a traceback: badges, <pre>
    run_due_jobs()
    found = {}
    for url in admin_urls():
        response = admin_client.get(url)
        if response.status_code == 200:
            found[url] = violations(response.content.decode())

    assert "/admin/auth/user/" in found  # the crawl did reach the model pages
    assert any(url.startswith("/admin/jobs/job/") and "change" in url for url in found)
    assert "/admin/dashboard/" in found
    assert {url: v for url, v in found.items() if v} == {}


@pytest.mark.django_db
def test_lockout_and_rate_limit_pages_have_no_inline_code(client, settings):
    settings.SIGNUP_RATE = "0/h"
    limited = client.post("/accounts/signup/", {"username": "x"})
    for _ in range(settings.AXES_FAILURE_LIMIT):
        locked = client.post("/accounts/login/", {"username": "x", "password": "y"})

    assert (limited.status_code, locked.status_code) == (429, 429)
    assert violations(limited.content.decode()) == []
    assert violations(locked.content.decode()) == []


def project_sources() -> list[Path]:
    """Our templates and Python modules that render HTML (not tests, not e-mail bodies)."""
    skip = {".venv", "var", "tests", "bench", "node_modules", ".git"}
    files = [
        path
        for pattern in ("**/*.html", "**/*.py")
        for path in ROOT.glob(pattern)
        if not skip.intersection(path.relative_to(ROOT).parts)
        and "emails" not in path.relative_to(ROOT).parts
    ]
    return sorted(files)


def test_project_templates_and_admin_code_have_no_inline_code():
    sources = project_sources()
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in sources
        if (found := violations(path.read_text(encoding="utf-8")))
    }

    assert any(path.name == "base.html" for path in sources)
    assert offenders == {}


def test_the_checker_catches_what_the_policy_blocks():
    blocked = [
        "<script>alert(1)</script>",
        '<span style="color: red">dead</span>',
        "<style>p { color: red }</style>",
        '<button onclick="go()">',
        '<a href="javascript:go()">',
    ]
    allowed = [
        '<script src="/static/admin/js/core.js"></script>',
        '<script id="data" type="application/json">{"a": 1}</script>',
        '<span class="status-dead">dead</span>',
    ]

    assert all(violations(html) for html in blocked)
    assert [violations(html) for html in allowed] == [[], [], []]

"""Security headers on every page, no inline script in templates, a CSRF token in every POST form.

The pages are every URL without parameters in the root URLconf, fetched as a stranger, a citizen, a clerk,
a reviewer and an admin, so a page added later is covered without touching this file.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RegexPattern, RoutePattern

from tests.test_deployment import ROOT, production_env

TEMPLATE_DIRS = [ROOT / "templates", *sorted(ROOT.glob("*/templates"))]
# Regex routes (the admin's) and routes with converters need objects; these stay out of the walk.
SKIPPED_PREFIXES = ("/admin/", "/static/")

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*?\son[a-z]+\s*=", re.IGNORECASE | re.DOTALL)
STYLE_ATTRIBUTE = re.compile(r"<[a-z][^>]*?\sstyle\s*=", re.IGNORECASE | re.DOTALL)
STYLE_ELEMENT = re.compile(r"<style\b", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)
POST_FORM = re.compile(r"<form\b[^>]*\bmethod\s*=\s*[\"']?post[\"']?[^>]*>(.*?)</form>", re.IGNORECASE | re.DOTALL)


def _plain_paths(patterns: list, prefix: str = "/") -> Iterator[str]:
    """Every URL of the URLconf that needs no argument."""
    for entry in patterns:
        pattern = entry.pattern
        if isinstance(pattern, RoutePattern):
            if pattern.converters:
                continue
            piece = str(pattern)
        elif isinstance(pattern, RegexPattern):
            piece = pattern._regex.removeprefix("^").removesuffix("$")
            if re.search(r"[()\[\]\\.*+?|{}]", piece):
                continue
        else:  # pragma: no cover - a pattern type Django may add
            continue
        if isinstance(entry, URLResolver):
            yield from _plain_paths(entry.url_patterns, prefix + piece)
        elif isinstance(entry, URLPattern):
            yield prefix + piece


def page_paths() -> list[str]:
    paths = sorted(set(_plain_paths(get_resolver().url_patterns)))
    return [path for path in paths if not path.startswith(SKIPPED_PREFIXES)]


def template_files() -> list[Path]:
    return sorted(path for folder in TEMPLATE_DIRS for path in folder.rglob("*.html"))


def assert_security_headers(response, path: str) -> None:
    policy = response.get("Content-Security-Policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives.get("script-src") == ["'self'"], (path, policy)
    assert directives.get("default-src") == ["'self'"], (path, policy)
    assert directives.get("object-src") == ["'none'"], (path, policy)
    assert directives.get("frame-ancestors") == ["'none'"], (path, policy)
    assert directives.get("base-uri") == ["'self'"], (path, policy)
    if path != "/api/docs/":  # Swagger UI alone may use inline styles (portal/urls.py)
        assert directives.get("style-src") == ["'self'"], (path, policy)
    assert response.get("X-Frame-Options") == "DENY", path
    assert response.get("X-Content-Type-Options") == "nosniff", path
    assert response.get("Referrer-Policy") in {"same-origin", "strict-origin-when-cross-origin"}, path
    assert response.get("Cross-Origin-Opener-Policy") == "same-origin", path
    assert directives.get("report-uri") == [reverse("csp_report")], (path, policy)
    features = dict(part.strip().split("=", 1) for part in response.get("Permissions-Policy", "").split(","))
    assert features.get("camera") == "(self)", (path, features)  # the face step and the counter's QR scan
    for feature in ("geolocation", "microphone", "payment", "usb"):
        assert features.get(feature) == "()", (path, feature, features)


@pytest.fixture
def personas(citizen_a, clerk_x, reviewer, admin_user) -> dict[str, object]:
    return {"stranger": None, "citizen": citizen_a, "clerk": clerk_x, "reviewer": reviewer, "admin": admin_user}


def test_the_walk_finds_the_portals_pages():
    paths = page_paths()

    for expected in ("/", "/accounts/login/", "/family/", "/card/", "/counter/", "/staff/review/", "/api/docs/"):
        assert expected in paths


def test_it_sends_the_security_headers_on_every_page_for_every_persona(personas):
    seen = 0
    for name, user in personas.items():
        client = Client(raise_request_exception=False)
        if user is not None:
            client.force_login(user)
        for path in page_paths():
            response = client.get(path)
            assert response.status_code < 500, (name, path, response.status_code)
            assert_security_headers(response, path)
            seen += 1
            if response.get("Content-Type", "").startswith("text/html"):
                html = response.content.decode()
                for form in POST_FORM.findall(html):
                    assert 'name="csrfmiddlewaretoken"' in form, (name, path, "POST form without a CSRF token")
    assert seen > 50


def test_pages_take_only_get_and_post_outside_the_api(client, db):
    """portal/middleware.py: an HTML form sends GET or POST, so a page refuses the rest before its view runs
    (allauth's login view would otherwise handle PUT as a login)."""
    for method in ("put", "patch", "delete", "options"):
        response = getattr(client, method)(reverse("account_login"))
        assert response.status_code == 405, method
        assert response["Allow"] == "GET, HEAD, POST"
        assert_security_headers(response, reverse("account_login"))
    assert client.head(reverse("account_login")).status_code == 200
    assert client.options(reverse("api_schema")).status_code == 200  # DRF answers the API's methods itself


def test_error_pages_send_the_headers_too(client, db):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert_security_headers(response, "/no-such-page/")


def test_swagger_ui_keeps_its_script_in_a_file(client, db):
    page = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")

    html = page.content.decode()
    assert page.status_code == 200
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert all("src=" in attrs for attrs in SCRIPT_TAG.findall(html)), "Swagger UI with an inline script"
    assert "'unsafe-inline'" in page["Content-Security-Policy"].split("style-src")[1].split(";")[0]


@pytest.mark.parametrize("template", template_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_template_has_inline_script_handlers_or_styles(template):
    text = template.read_text(encoding="utf-8")

    for attrs in SCRIPT_TAG.findall(text):
        assert "src=" in attrs or "application/json" in attrs, f"inline <script> in {template}: move it to static/js"
    assert not EVENT_HANDLER.search(text), f"on*= handler in {template}: use addEventListener in static/js"
    assert not STYLE_ATTRIBUTE.search(text), f'style="" in {template}: use a class in static/css'
    assert not STYLE_ELEMENT.search(text), f"<style> in {template}: move it to static/css"
    assert not JAVASCRIPT_URL.search(text), f"javascript: URL in {template}"


@pytest.mark.parametrize("template", template_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_post_form_in_templates_has_a_csrf_token(template):
    text = template.read_text(encoding="utf-8")

    for body in POST_FORM.findall(text):
        assert "{% csrf_token %}" in body, f"POST form without {{% csrf_token %}} in {template}"


def _production_settings(tmp_path: Path, **overrides: str) -> dict[str, str]:
    code = (
        "from django.conf import settings as s\n"
        "for name in ('SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SESSION_COOKIE_SECURE',"
        " 'CSRF_COOKIE_SECURE', 'SECURE_SSL_REDIRECT', 'SECURE_CONTENT_TYPE_NOSNIFF', 'X_FRAME_OPTIONS',"
        " 'SECURE_REFERRER_POLICY'):\n"
        "    print(name, getattr(s, name))\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=production_env(tmp_path, **overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


def test_production_settings_turn_on_hsts_and_secure_cookies(tmp_path):
    values = _production_settings(tmp_path)

    assert values["SECURE_HSTS_SECONDS"] == "31536000"  # a year unless DJANGO_SECURE_HSTS_SECONDS says otherwise
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] == "True"
    assert values["SESSION_COOKIE_SECURE"] == "True"
    assert values["CSRF_COOKIE_SECURE"] == "True"
    assert values["SECURE_SSL_REDIRECT"] == "True"
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] == "True"
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["SECURE_REFERRER_POLICY"] == "same-origin"


def test_hsts_max_age_comes_from_the_environment(tmp_path):
    values = _production_settings(tmp_path, DJANGO_SECURE_HSTS_SECONDS="600")

    assert values["SECURE_HSTS_SECONDS"] == "600"

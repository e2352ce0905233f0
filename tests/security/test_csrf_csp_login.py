"""CSRF on every unsafe request (session and token auth both), the Content-Security-Policy on every page, and the
login's rate limit."""

from __future__ import annotations

import re
from types import SimpleNamespace

import django_ratelimit.core
import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.security.conftest import ROLES
from tests.security.test_access import GET, POST


def test_every_unsafe_request_without_the_csrf_token_is_refused(world, django_capture_on_commit_callbacks):
    """Logged in as the admin (who may do everything), but posting from another site: no CSRF token, no effect."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["admin"])
    for url in POST:
        with django_capture_on_commit_callbacks(execute=False):
            response = client.post(url.format(**world.ids), {}, content_type="application/json")
        assert response.status_code == 403, url
        assert b"CSRF" in response.content, url


def test_the_login_form_itself_wants_the_token():
    assert Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "x"}).status_code == 403


def test_token_auth_needs_no_csrf_token_and_still_checks_the_role(world):
    """An API client with a token is not a browser: nothing for another site to ride on, so no CSRF token; the
    role still decides."""
    annotator = APIClient(enforce_csrf_checks=True)
    annotator.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=world.users['annotator']).key}")
    # Past authentication and CSRF: the service's own answer (409: this product is not the annotator's to skip).
    skipped = annotator.post("/api/v1/annotations/skip/", {"product": world.ids["product"]}, format="json")
    assert skipped.status_code not in (401, 403)
    assert annotator.post("/api/v1/queues/", {"name": "x"}, format="json").status_code == 403
    assert APIClient().get("/api/v1/products/", HTTP_AUTHORIZATION="Token not-a-token").status_code == 401


INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(rb"<[^>]+\son[a-z]+\s*=", re.I)


def test_every_page_has_a_csp_without_inline_scripts_and_uses_none(world):
    admin = world.client("admin")
    checked = 0
    for url in GET:
        response = admin.get(url.format(**world.ids))
        policy = response.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy, url
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0], url
        assert "unsafe-eval" not in policy, url
        if response.status_code == 200 and response.get("Content-Type", "").startswith("text/html"):
            assert not INLINE_SCRIPT.search(response.content), url
            assert not INLINE_HANDLER.search(response.content), url
            assert b"javascript:" not in response.content, url
            checked += 1
    assert checked > 20  # the pages and partials themselves, not only redirects


@pytest.fixture
def fresh_rate_limits(monkeypatch):
    """An empty counter and a stopped clock: django-ratelimit counts in fixed windows on the wall clock, so on a slow
    machine the attempts of one test could straddle a window's end and start counting from zero again."""
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: 1_800_000_000.0))
    cache.clear()
    yield
    cache.clear()


def test_the_login_is_rate_limited_by_address_and_by_username(world, fresh_rate_limits, settings):
    settings.ACCOUNTS_LOGIN_RATE = "5/m"
    world.users["manager"].set_password("right")
    world.users["manager"].save()
    client = Client()
    for _ in range(5):
        assert client.post("/accounts/login/", {"username": "mgr", "password": "wrong"}).status_code == 200
    refused = client.post("/accounts/login/", {"username": "mgr", "password": "right"})
    assert refused.status_code == 429  # even the right password: guessing stops here
    assert "Too many attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address, same username: still refused (a botnet guessing one account).
    other = Client(REMOTE_ADDR="10.0.0.9")
    assert other.post("/accounts/login/", {"username": "mgr", "password": "right"}).status_code == 429
    # Another user from a fresh address logs in.
    world.users["admin"].set_password("right")
    world.users["admin"].save()
    fresh = Client(REMOTE_ADDR="10.0.0.10")
    assert fresh.post("/accounts/login/", {"username": "adm", "password": "right"}).status_code == 302


def test_behind_a_proxy_the_address_is_the_one_it_appended(world, fresh_rate_limits, settings):
    """With ACCOUNTS_CLIENT_ADDRESS_HEADER set, clients behind one proxy are told apart by the address the proxy
    appended (the last entry), and a client cannot dodge the limit by writing its own entries first."""
    settings.ACCOUNTS_LOGIN_RATE = "2/m"
    settings.ACCOUNTS_CLIENT_ADDRESS_HEADER = "HTTP_X_FORWARDED_FOR"
    proxy = Client(REMOTE_ADDR="10.0.0.1")
    for spoof in ("1.1.1.1", "2.2.2.2"):
        proxy.post(
            "/accounts/login/",
            {"username": f"u-{spoof}", "password": "x"},
            HTTP_X_FORWARDED_FOR=f"{spoof}, 203.0.113.7",
        )
    held = proxy.post(
        "/accounts/login/", {"username": "u-3", "password": "x"}, HTTP_X_FORWARDED_FOR="3.3.3.3, 203.0.113.7"
    )
    assert held.status_code == 429  # the same client (203.0.113.7), whatever it wrote before
    other = proxy.post("/accounts/login/", {"username": "u-4", "password": "x"}, HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert other.status_code == 200  # another client behind the same proxy


def test_the_api_token_endpoint_is_rate_limited_too(world, fresh_rate_limits, settings):
    settings.ACCOUNTS_LOGIN_RATE = "3/m"
    client = APIClient()
    for _ in range(3):
        assert client.post("/api/v1/auth/token/", {"username": "ann", "password": "wrong"}).status_code == 400
    response = client.post("/api/v1/auth/token/", {"username": "ann", "password": "wrong"})
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"


def test_roles_are_what_the_matrix_names():
    assert ROLES == ("anonymous", "annotator", "manager", "admin")

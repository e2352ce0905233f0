"""Request typing shared by the apps' views (as django-htmx's docs recommend for mypy)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from core.errors import ApplicationError


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def signed_in(request: HttpRequest) -> User:
    """The request's user, for views behind login_required / IsAuthenticated."""
    user = request.user
    if not isinstance(user, User):
        raise ApplicationError("Log in first.", code="not_authenticated")
    return user

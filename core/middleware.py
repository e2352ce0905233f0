"""Checks every request gets before any view reads it."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.translation import gettext as _


class NulInQueryMiddleware:
    """A NUL byte in the query string (`?q=%00`) answers 400. PostgreSQL text cannot hold one, so wherever a
    parameter reaches a query (a search box, an API filter) it ended in a 500. Form and JSON bodies are already
    refused field by field (Django's and DRF's CharField validators); query parameters have no such layer, so the
    check is here once rather than in every view that reads one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()):
            message = _("A query parameter contains a NUL byte (%00), which no search can hold. Remove it and retry.")
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message, "code": "invalid"}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

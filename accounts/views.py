from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_ratelimit.core import is_ratelimited
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.services import user_language_set
from core.errors import ApplicationError


@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """Remember the language on the user (so it follows them to any browser); anonymous visitors get a cookie."""
    from django.conf import settings

    language = request.POST.get("language", "")
    next_url = request.POST.get("next", "/")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "/"
    response = HttpResponseRedirect(next_url)
    if language not in dict(settings.LANGUAGES):
        return response
    if request.user.is_authenticated:
        try:
            user_language_set(user=request.user, language=language)
        except ApplicationError:
            return response
    translation.activate(language)
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax")
    return response


class LoginView(auth_views.LoginView):
    """Django's login, with a rate limit on attempts (ACCOUNTS_LOGIN_RATE, per address and per username, counted in
    the shared cache): password guessing gets a 429 and a clear word, not another try."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if login_limited(request):
            # An unbound form: a bound one would check the password (authenticate) while refusing to.
            form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
            refusal = _("Too many attempts to log in. Wait a minute and try again.")
            return self.render_to_response(self.get_context_data(form=form, refusal=refusal), status=429)
        return super().post(request, *args, **kwargs)


def _address(group: str, request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind one trusted reverse proxy the last entry it appended to the
    header named by ACCOUNTS_CLIENT_ADDRESS_HEADER (earlier entries are the client's own word). Behind a proxy without
    it, every client shares the proxy's address and the per-username limit is what still tells them apart. A server
    that sets no address counts those requests together rather than failing."""
    header = settings.ACCOUNTS_CLIENT_ADDRESS_HEADER
    forwarded = str(request.META.get(header, "")) if header else ""
    if forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return str(request.META.get("REMOTE_ADDR", ""))


def login_limited(request: HttpRequest) -> bool:
    """Counts this attempt; True when the address or the username is over ACCOUNTS_LOGIN_RATE."""
    rate = settings.ACCOUNTS_LOGIN_RATE
    by_address = is_ratelimited(request, group="login", key=_address, rate=rate, method="POST", increment=True)
    by_name = is_ratelimited(request, group="login-user", key="post:username", rate=rate, method="POST", increment=True)
    return bool(by_address or by_name)


class TokenObtainView(ObtainAuthToken):
    """POST username + password, get the token for `Authorization: Token <key>`; rate-limited as the login is."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if login_limited(request):
            return Response(
                {"detail": _("Too many attempts to log in. Wait a minute and try again."), "code": "throttled"},
                status=429,
            )
        return super().post(request, *args, **kwargs)

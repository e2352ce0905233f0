from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.views import LoginView, TokenObtainView, language_set

urlpatterns = [
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/language/", language_set, name="language-set"),
    # POST username + password, get the token for `Authorization: Token <key>` (rate-limited like the login).
    path("api/v1/auth/token/", TokenObtainView.as_view(), name="api-token"),
]

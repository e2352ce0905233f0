from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.views import language_set

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/language/", language_set, name="language-set"),
]

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.views import language_set
from config.views import healthz
from labeling import views as labeling_views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="catalog:product-list", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/language/", language_set, name="language-set"),
    path("catalog/", include("catalog.urls")),
    path("models/", include("mlcore.urls")),
    path("label/", include("labeling.urls")),
    path("review/", labeling_views.review, name="review"),
    path("review/agreement/", labeling_views.agreement, name="review-agreement"),
    path("api/v1/", include("catalog.api.urls")),
    path("api/v1/", include("mlcore.api.urls")),
    path("api/v1/", include("labeling.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]

"""The composition root: each app's URLs, included; no view lives here."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("core.urls")),
    path("", include("accounts.urls")),
    path("catalog/", include("catalog.urls")),
    path("dashboard/", include("mlcore.dashboard_urls")),
    path("models/", include("mlcore.urls")),
    path("label/", include("labeling.urls")),
    path("review/", include("labeling.review_urls")),
    path("reclassify/", include("labeling.reclassify_urls")),
    path("api/v1/", include("catalog.api.urls")),
    path("api/v1/", include("mlcore.api.urls")),
    path("api/v1/", include("labeling.api.urls")),
    path("admin/", admin.site.urls),
]

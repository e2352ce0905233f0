from __future__ import annotations

from django.urls import re_path
from rest_framework.routers import DefaultRouter

from mlcore.api.views import LabelAuditViewSet, ModelVersionViewSet, RescoreJobViewSet, TrainingRunViewSet, suggestions

router = DefaultRouter()
router.register("model-versions", ModelVersionViewSet, basename="model-version")
router.register("training-runs", TrainingRunViewSet, basename="training-run")
router.register("rescore-jobs", RescoreJobViewSet, basename="rescore-job")
router.register("label-audits", LabelAuditViewSet, basename="label-audit")
urlpatterns = [
    # With or without the trailing slash: the issue names it without, DRF's routers write it with.
    re_path(r"^products/(?P<product_id>[0-9]+)/suggestions/?$", suggestions, name="product-suggestions"),
    *router.urls,
]

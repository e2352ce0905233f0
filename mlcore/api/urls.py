from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from mlcore.api.views import ModelVersionViewSet, RescoreJobViewSet, TrainingRunViewSet, suggestions

router = DefaultRouter()
router.register("model-versions", ModelVersionViewSet, basename="model-version")
router.register("training-runs", TrainingRunViewSet, basename="training-run")
router.register("rescore-jobs", RescoreJobViewSet, basename="rescore-job")
urlpatterns = [
    path("products/<int:product_id>/suggestions/", suggestions, name="product-suggestions"),
    path("products/<int:product_id>/suggestions", suggestions),
    *router.urls,
]

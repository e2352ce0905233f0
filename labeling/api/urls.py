from __future__ import annotations

from django.urls import re_path
from rest_framework.routers import DefaultRouter

from labeling.api.reclassification import (
    ReclassificationAuditViewSet,
    ReclassificationBatchViewSet,
    ReclassificationJobViewSet,
)
from labeling.api.views import AnnotationViewSet, LabelingQueueViewSet, QueueNextView, ReviewItemViewSet

router = DefaultRouter()
# The clients POST to /api/v1/annotations with no slash; DRF's routers take "/?" only when set afterwards.
router.trailing_slash = "/?"
router.register("annotations", AnnotationViewSet, basename="annotation")
router.register("reviews", ReviewItemViewSet, basename="review")
router.register("queues", LabelingQueueViewSet, basename="labeling-queue")
router.register("reclassification-batches", ReclassificationBatchViewSet, basename="reclassification-batch")
router.register("reclassification-jobs", ReclassificationJobViewSet, basename="reclassification-job")
router.register("reclassification-audits", ReclassificationAuditViewSet, basename="reclassification-audit")
urlpatterns = [
    re_path(r"^queue/next/?$", QueueNextView.as_view(), name="queue-next"),
    *router.urls,
]

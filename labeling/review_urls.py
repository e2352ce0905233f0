"""Review pages live at /review/ (beside the workspace's /label/), without a namespace as before."""

from __future__ import annotations

from django.urls import path

from labeling import views

urlpatterns = [
    path("", views.review, name="review"),
    path("agreement/", views.agreement, name="review-agreement"),
]

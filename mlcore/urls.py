from __future__ import annotations

from django.urls import path

from mlcore import views

app_name = "mlcore"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("train/", views.training_start, name="training-start"),
    path("fast/", views.fast_version, name="fast-version"),
    path("label-audits/", views.label_audit, name="label-audit"),
    path("<str:kind>/<int:job_id>/cancel/", views.job_cancel, name="job-cancel"),
    path("versions/<int:version_id>/", views.version_detail, name="version-detail"),
    path("versions/<int:version_id>/activate/", views.version_activate, name="version-activate"),
    path("products/<int:product_id>/suggestions/", views.suggestions_partial, name="product-suggestions"),
    path("panels/model/", views.panel_model, name="panel-model"),
    path("panels/policy/", views.panel_policy, name="panel-policy"),
    path("policy/", views.policy_update, name="policy"),
    path("panels/workers/", views.panel_workers, name="panel-workers"),
]

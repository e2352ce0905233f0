from __future__ import annotations

from django.urls import path

from labeling import reclassify_views as views

app_name = "reclassify"
urlpatterns = [
    path("", views.batch_list, name="list"),
    path("waiting/", views.waiting, name="waiting"),
    path("products/<int:product_id>/", views.product_proposal, name="product"),
    path("<int:batch_id>/", views.batch_detail, name="batch"),
    path("<int:batch_id>/group/", views.group_detail, name="group"),
    path("<int:batch_id>/decide/", views.decide, name="decide"),
    path("<int:batch_id>/rebuild/", views.rebuild, name="rebuild"),
    path("<int:batch_id>/export.csv", views.export, name="export"),
    path("<int:batch_id>/audits/", views.audit_create, name="audit-create"),
    path("audits/<int:audit_id>/", views.audit_page, name="audit"),
    path("audits/<int:audit_id>/answer/", views.audit_answer_view, name="audit-answer"),
    path("<int:batch_id>/<str:action>/", views.run_job, name="job"),
]

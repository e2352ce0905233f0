"""/dashboard/: the admin's home. Its panels are each app's partials (hx-get): mlcore's model, jobs and workers,
labeling's labels and reclassification."""

from __future__ import annotations

from django.urls import path

from mlcore import views

app_name = "dashboard"
urlpatterns = [path("", views.home, name="home")]

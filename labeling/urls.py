from __future__ import annotations

from django.urls import path

from labeling import views

app_name = "labeling"
urlpatterns = [
    path("", views.workspace, name="workspace"),
    path("answer/", views.answer, name="answer"),
    path("deck/", views.deck, name="deck"),
    path("picker/", views.picker, name="picker"),
    path("panels/labels/", views.panel_labels, name="panel-labels"),
]

from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app shares: errors, request typing, the API's error handler and permission, the durable task
    base and the abstract Job with its claim, heartbeat, cancel and reaper."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "core"

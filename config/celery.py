"""The Celery app. Queues: `default` for catalog work, `ml` for model work (GPU workers, one process each)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A worker's log is read by people: transformers draws a progress bar for every model it loads (each re-score, each
# training run), a line of carriage returns there. Set before transformers is imported, which reads it once.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

app = Celery("shelfwise")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

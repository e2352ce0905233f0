"""mlcore/control.py: what a worker says about itself when it starts and when the dashboard asks."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from mlcore import control


def consumer_taking(*names: str) -> SimpleNamespace:
    """What worker_ready sends: the worker's consumer, whose task consumer holds the queues of its -Q list."""
    return SimpleNamespace(task_consumer=SimpleNamespace(queues=[SimpleNamespace(name=name) for name in names]))


@pytest.fixture
def described(monkeypatch):
    # Asking torch about the device is not what these tests are about.
    monkeypatch.setattr(control, "_device", {"device": "cpu"})


def test_a_scoring_worker_without_the_fast_queue_is_warned_at_start(described, caplog):
    """A worker started with a -Q list from before the fast queue existed re-scores, but nobody fits fast versions
    or scores new products: it says so in its own log as it starts, not only on the dashboard."""
    with caplog.at_level(logging.WARNING, logger="mlcore.control"):
        control._warm(sender=consumer_taking("default", "scoring"))
    assert "takes 'scoring' but not 'fast'" in caplog.text
    assert "add fast to its -Q list" in caplog.text


@pytest.mark.parametrize(
    "queues", [("fast", "default", "scoring"), ("training",), ("default",), ("fast", "training", "scoring")]
)
def test_workers_as_the_readme_starts_them_start_quietly(described, caplog, queues):
    with caplog.at_level(logging.WARNING, logger="mlcore.control"):
        control._warm(sender=consumer_taking(*queues))
    assert caplog.text == ""


def test_a_sender_without_queues_is_not_an_error(described, caplog):
    with caplog.at_level(logging.WARNING, logger="mlcore.control"):
        control._warm(sender=None)
    assert caplog.text == ""

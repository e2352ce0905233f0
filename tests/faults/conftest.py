"""Real processes on loopback for the fault suite: a Redis of its own (so it can be killed and restarted), Celery
workers and beat as subprocesses against the test database, and ways to kill them as the world does (SIGKILL of the
prefork child, as an out-of-memory kill does; SIGKILL of the whole worker, as a lost host)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], *, seconds: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


@dataclass
class Cluster:
    tmp: Path
    env: dict[str, str]
    redis_port: int
    redis: subprocess.Popen[bytes] | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # --- the broker -------------------------------------------------------------------------------------------------
    def redis_start(self) -> None:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        # No persistence, as a Redis restarted without AOF: every queued message is lost with it.
        self.redis = subprocess.Popen(
            [server, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_for(answers, seconds=10, what="redis-server")

    def redis_kill(self) -> None:
        assert self.redis is not None
        self.redis.kill()
        self.redis.wait(timeout=10)

    # --- workers ----------------------------------------------------------------------------------------------------
    def _celery(self) -> str:
        return shutil.which("celery", path=os.path.dirname(sys.executable)) or "celery"

    def worker(self, name: str, queues: str, **extra_env: str) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}.log"
        process = subprocess.Popen(
            [
                self._celery(),
                "-A",
                "config",
                "worker",
                "-n",
                f"{name}@%h",
                "-Q",
                queues,
                "-P",
                "prefork",
                "-c",
                "1",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "INFO",
            ],
            cwd=REPO,
            env={**self.env, **extra_env},
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = process
        wait_for(lambda: b"ready." in log.read_bytes(), seconds=60, what=f"worker {name} to be ready", every=0.2)
        return process

    def beat(self) -> subprocess.Popen[bytes]:
        log = self.tmp / "beat.log"
        process = subprocess.Popen(
            [self._celery(), "-A", "config", "beat", "-s", str(self.tmp / "beat-schedule"), "-l", "INFO"],
            cwd=REPO,
            env=self.env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.processes["beat"] = process
        return process

    def kill_child(self, name: str) -> int:
        """SIGKILL the prefork child running the task, as the kernel's out-of-memory killer would."""
        children = psutil.Process(self.processes[name].pid).children()
        assert children, f"worker {name} has no pool process"
        for child in children:
            os.kill(child.pid, signal.SIGKILL)
        return children[0].pid

    def kill_worker(self, name: str) -> None:
        """SIGKILL the whole worker, parent and children, as a lost host: nothing is handed back to the broker."""
        process = self.processes.pop(name)
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
        process.kill()
        process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}" for log in self.tmp.glob("*.log"))

    def stop(self) -> None:
        for process in self.processes.values():
            for child in psutil.Process(process.pid).children(recursive=True) if process.poll() is None else []:
                child.kill()
            process.kill()
            process.wait(timeout=10)
        self.processes.clear()
        if self.redis is not None and self.redis.poll() is None:
            self.redis_kill()


def _point_celery_at(url: str | None) -> None:
    """This test process sends its tasks to the cluster's broker too (the app's pools are built lazily). Celery
    reads CELERY_BROKER_URL from the environment before its settings, so the read and write URLs are set."""
    from celery import current_app

    current_app.conf.broker_read_url = url
    current_app.conf.broker_write_url = url
    # Dropped, not closed: kombu keeps one pool per broker URL for the whole process, and a closed one would be
    # handed to the next test that uses the same URL.
    current_app._pool = None
    current_app.amqp._producer_pool = None


@pytest.fixture
def cluster(transactional_db, settings, tiny_encoder: Path, tmp_path: Path) -> Iterator[Cluster]:
    from django.db import connection

    port = _free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    database = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.update(
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        CELERY_BROKER_URL=broker,
        SHELFWISE_VAR_DIR=str(tmp_path / "var"),
        DJANGO_MEDIA_ROOT=str(settings.MEDIA_ROOT),
        MLCORE_BASE_MODEL=str(tiny_encoder),
        MLCORE_ARTIFACT_DIR=str(tmp_path / "models"),
        MLCORE_DEVICE="cpu",
        MLCORE_MAX_LENGTH="16",
        MLCORE_QUANTIZE="0",
        MLCORE_LABEL_AUDIT_AFTER_TRAINING="0",
        JOBS_HEARTBEAT_SECONDS="1",
        JOBS_STALE_AFTER_SECONDS="60",
        JOBS_REQUEUE_AFTER_SECONDS="2",
        JOBS_REAP_EVERY_SECONDS="1",
    )
    # The same settings in this process, which starts jobs and runs some of them itself.
    settings.CELERY_BROKER_URL = broker
    settings.MLCORE_BASE_MODEL = str(tiny_encoder)
    settings.MLCORE_ARTIFACT_DIR = tmp_path / "models"
    settings.MLCORE_DEVICE = "cpu"
    settings.MLCORE_MAX_LENGTH = 16
    settings.MLCORE_QUANTIZE = False
    settings.MLCORE_LABEL_AUDIT_AFTER_TRAINING = False
    from mlcore.services.scoring import scoring_caches_clear

    scoring_caches_clear()
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Cluster(tmp=logs, env=env, redis_port=port)
    running.redis_start()
    _point_celery_at(broker)
    try:
        yield running
    finally:
        running.stop()
        print(running.logs())  # shown by pytest only when the test failed
        _point_celery_at(None)

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO


def test_healthz_checks_database_and_broker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_says_which_part_is_down(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"].startswith("error")
    assert response.json()["database"] == "ok"


def test_production_settings_pass_check_deploy():
    # Only what production has: the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE is rightly an error there.
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "x" * 64 + "-a-real-secret-for-the-check-deploy",
        "DJANGO_ALLOWED_HOSTS": "shelfwise.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_the_development_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"} | {"DJANGO_DEBUG": "0"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_every_compose_service_runs_a_command_the_project_has():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "mlworker", "beat"} <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service, name
    assert services["mlworker"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "-Q fast,training,scoring" in services["mlworker"]["command"]
    assert "--appendonly yes" in services["redis"]["command"]
    assert "redisdata:/data" in services["redis"]["volumes"]
    assert "--concurrency=1" in services["mlworker"]["command"]
    for name in ("web", "worker", "mlworker", "beat"):
        command = services[name]["command"]
        for celery_app in re.findall(r"celery -A (\S+)", command):
            assert celery_app == "config"
            assert (REPO / "config" / "celery.py").exists()
        for wsgi in re.findall(r"gunicorn (\S+)", command):
            module, attr = wsgi.split(":")
            assert (REPO / (module.replace(".", "/") + ".py")).exists()
            assert attr == "application"
        for manage in re.findall(r"manage.py (\w+)", command):
            from django.core.management import get_commands

            assert manage in get_commands(), manage
    assert (REPO / "Dockerfile").exists()


@pytest.mark.slow
def test_embedded_default_runs_a_real_worker_without_any_server(tmp_path):
    """No DATABASE_URL, no CELERY_BROKER_URL: SQLite under var/ and the filesystem broker, with a real worker."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env["SHELFWISE_VAR_DIR"] = str(tmp_path / "var")
    manage = [sys.executable, str(REPO / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True, timeout=300)
    assert (tmp_path / "var" / "shelfwise.sqlite3").exists()
    celery = shutil.which("celery", path=os.path.dirname(sys.executable))
    worker = subprocess.Popen(
        [celery, "-A", "config", "worker", "-Q", "fast,default,training,scoring", "--pool=solo", "-l", "WARNING"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    script = """
import time
from django.core.files.uploadedfile import SimpleUploadedFile
from catalog.services.jobs import import_job_create
from catalog.models import Product
job = import_job_create(kind="products", upload=SimpleUploadedFile("s.csv", b"sku,title\\nE1,Embedded\\n"), user=None)
for _ in range(300):
    job.refresh_from_db()
    if job.is_finished:
        break
    time.sleep(0.2)
print("STATUS", job.status, Product.objects.filter(sku="E1").count())
"""
    try:
        result = subprocess.run(
            [*manage, "shell", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert "STATUS succeeded 1" in result.stdout, result.stdout + result.stderr


def test_every_model_change_has_its_migration(db):
    # A model edited without `makemigrations` would migrate a fresh database short of what the code expects.
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:  # --check exits 1 when a migration is missing
        pytest.fail(f"models and migrations differ (exit {exc.code}): {out.getvalue()}")
    assert "No changes detected" in out.getvalue()

"""Shared set-up for benchmarks: a separate PostgreSQL database (never the one you work in), migrated and empty."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse, urlunparse

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/shelfwise"


def bench_database(name: str = "shelfwise_bench") -> str:
    base = os.environ.get("DATABASE_URL", DEFAULT_URL)
    if not base.startswith("postgres"):
        sys.exit("Benchmarks measure PostgreSQL, as production runs: set DATABASE_URL=postgres://...")
    parsed = urlparse(base)
    import psycopg

    admin = urlunparse(parsed._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunparse(parsed._replace(path=f"/{name}"))
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url

"""Common set-up for benchmarks: a fresh database of their own, never the demo's."""

import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def django_with_fresh_db(name: str):
    """Point Django at bench/out/<name>.sqlite3 (or DATABASE_URL if set), migrated and empty."""
    OUT.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    if not os.environ.get("DATABASE_URL"):
        db = OUT / f"{name}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        os.environ["SQLITE_PATH"] = str(db)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if os.environ.get("DATABASE_URL"):
        call_command("flush", verbosity=0, interactive=False)
        call_command("migrate", verbosity=0, interactive=False)


def machine() -> str:
    from django.db import connection

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {connection.vendor}"
    )


@contextmanager
def timed(results: dict, key: str):
    started = time.perf_counter()
    yield
    results[key] = time.perf_counter() - started

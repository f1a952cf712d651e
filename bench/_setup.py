"""Common set-up for benchmarks: a fresh database of their own, never the demo's; the machine;
and each benchmark's results in a machine-readable file for bench/run.py's RESULTS.md."""

import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def django_with_fresh_db(name: str):
    """Point Django at bench/out/<name>.sqlite3 (or DATABASE_URL if set), migrated and empty."""
    OUT.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("DATABASE_URL"):
        db = OUT / f"{name}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
    django_with_db(name)
    if os.environ.get("DATABASE_URL"):
        from django.core.management import call_command

        call_command("flush", verbosity=0, interactive=False)
        call_command("migrate", verbosity=0, interactive=False)


def django_with_db(name: str):
    """Point Django at bench/out/<name>.sqlite3 (or DATABASE_URL if set) as it is, migrated."""
    OUT.mkdir(parents=True, exist_ok=True)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    if not os.environ.get("DATABASE_URL"):
        os.environ["SQLITE_PATH"] = str(OUT / f"{name}.sqlite3")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def query_plan(sql, params=None) -> str:
    """How the database runs ``sql``: EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL (it runs the
    query), EXPLAIN QUERY PLAN on SQLite; one indented line per row of the plan."""
    from django.db import connection

    explain = (
        "EXPLAIN (ANALYZE, BUFFERS) "
        if connection.vendor == "postgresql"
        else "EXPLAIN QUERY PLAN "
    )
    with connection.cursor() as cursor:
        cursor.execute(explain + sql, params)
        return "\n".join("  " + " | ".join(str(c) for c in row) for row in cursor.fetchall())


def machine() -> str:
    """One line: the machine and the database this process uses."""
    from django.db import connection

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {connection.vendor}"
    )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def postgresql_version() -> str | None:
    """The newest PostgreSQL server installed (what scripts/with-postgres.sh starts)."""
    binaries = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)] or [0],
    )
    if not binaries:
        return None
    result = subprocess.run([binaries[-1], "--version"], capture_output=True, text=True)
    # "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    words = result.stdout.split()
    return words[2] if len(words) > 2 else None


def machine_info() -> dict:
    """What the figures were measured on (no Django needed)."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgresql_version(),
        "load": os.getloadavg(),
    }


@contextmanager
def timed(results: dict, key: str):
    started = time.perf_counter()
    yield
    results[key] = time.perf_counter() - started


# --- Machine-readable results: bench/out/<name>.json, read by bench/run.py ----------------------


def result_row(
    measure: str,
    figure,
    unit: str = "",
    *,
    baseline=None,
    baseline_label: str = "",
    target: str = "",
    met: bool | None = None,
    notes: str = "",
) -> dict:
    """One line of a benchmark's table. ``met`` is None where no target applies."""
    return {
        "measure": measure,
        "figure": figure,
        "unit": unit,
        "baseline": baseline,
        "baseline_label": baseline_label,
        "target": target,
        "met": met,
        "notes": notes,
    }


def result_path(name: str) -> Path:
    return OUT / f"{name}.json"


def write_results(
    name: str,
    rows: list[dict],
    *,
    title: str,
    ok: bool = True,
    data: str = "",
    notes=(),
    measured_at: str | None = None,
) -> Path:
    """Write bench/out/<name>.json: the rows of the table RESULTS.md shows for this benchmark.

    ``ok`` is False when part of the benchmark did not run or failed: RESULTS.md says so.
    """
    OUT.mkdir(parents=True, exist_ok=True)
    path = result_path(name)
    path.write_text(
        json.dumps(
            {
                "bench": name,
                "title": title,
                "ok": ok,
                "measured_at": measured_at or datetime.now(UTC).isoformat(timespec="seconds"),
                "argv": sys.argv[1:],
                "machine": machine_info(),
                "data": data,
                "rows": rows,
                "notes": list(notes),
            },
            ensure_ascii=False,
            indent=1,
        )
    )
    return path


def summarised_from(paths):
    """A note naming when each per-database result file was written, and the earliest time
    (what a summarised table was measured at)."""
    stamps = [
        time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(path.stat().st_mtime))
        for path in paths
    ]
    note = "summarised from the per-database results written at " + ", ".join(stamps)
    return note, min(stamps) if stamps else None


def logged_in_sessions(members, batch_size=1000) -> list[str]:
    """A database session for each of ``members`` (logged in, as the login view leaves it);
    returns their keys, in the order of ``members``."""
    from datetime import timedelta

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.base import VALID_KEY_CHARS
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    from core.middleware import SESSION_STARTED_KEY

    store = SessionStore()
    expire = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    keys = [get_random_string(32, VALID_KEY_CHARS) for _ in members]
    now = time.time()
    Session.objects.bulk_create(
        [
            Session(
                session_key=key,
                session_data=store.encode(
                    {
                        SESSION_KEY: str(member.user.pk),
                        BACKEND_SESSION_KEY: "members.backends.PhoneOrUsernameBackend",
                        HASH_SESSION_KEY: member.user.get_session_auth_hash(),
                        SESSION_STARTED_KEY: now,
                    }
                ),
                expire_date=expire,
            )
            for key, member in zip(keys, members, strict=True)
        ],
        batch_size=batch_size,
    )
    return keys

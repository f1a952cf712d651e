"""Page speed: server time of the pages people open most, on the 300,000-member scale city.

Pages, each as the person who opens it (logged in, Chinese UI):
  home            the member's home page /
  lesson          a lesson page of the round the member can watch (the player is shown)
  coverage_branch the branch secretary's coverage page (their branch)
  coverage_county the county secretary's coverage page (their county, ~25,000 members)
  coverage_city   the trainer's coverage page for the whole city (reported; no target)

Server time is the time of django.test.Client.get() in this process: the whole middleware
stack, the view and the template, the same settings as the product (DEBUG off), no network.
After a warm-up, --requests of each page are taken in turns, so that a busy moment on the
machine falls on all of them alike; p50, p95 and max per page. The SQL statements of one
request are counted with CaptureQueriesContext, and timed around cursor.execute.

Targets: p95 <= 100 ms for home, lesson, branch and county coverage; SQL queries per page that
do not grow with the data. Baseline, measured in the same run: the same pages, people and
builder on a 3,000-member city (bench_coverage.build_data at 3,000 members).

Data: bench_coverage's data set (the scale city, 1 % inactive, last quarter's closed round
and the current round with participation rows for ~70 % of members), plus watch progress
consistent with those rows. On SQLite the 300k set is copied from bench/out/coverage.sqlite3
(written by bench_coverage.py) when that is present and valid, else built; on PostgreSQL it is
built in a throwaway cluster (scripts/with-postgres.sh). Every page answers 200 with its
expected content (names, figures checked against a count of their own) or the run stops.
Pages over the target, and the slowest page with a target, are profiled (own time by layer,
cProfile, their slowest SQL and its plan) into bench/out/pages_profile-<db>.txt; every page's
SQL goes to bench/out/pages_queries-<db>-<size>.txt. CPU time of each request (this thread's:
on SQLite it includes the database) and the CPU other processes took meanwhile are reported,
as wall times on a shared machine mean little without them.

    .venv/bin/python bench/bench_pages.py [--members 300000] [--small 3000] [--requests 60]
        [--db sqlite|postgresql --size large|small] [--quiet-wait SECONDS] [--summarize]
"""

import argparse
import gc
import json
import math
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
DBS = ("sqlite", "postgresql")
SIZES = ("small", "large")
TARGET_P95_MS = 100
PAGES = (
    ("home", "member's home page /"),
    ("lesson", "lesson page"),
    ("coverage_branch", "coverage, branch secretary"),
    ("coverage_county", "coverage, county secretary"),
    ("coverage_city", "coverage, city trainer"),
)
TARGETED = ("home", "lesson", "coverage_branch", "coverage_county")
LABELS = dict(PAGES)
LOGIN_BACKEND = "members.backends.PhoneOrUsernameBackend"
SOURCE_DB = OUT / "coverage.sqlite3"  # bench_coverage.py's 300k data set


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--members", type=int, default=int(os.environ.get("BENCH_PAGES_MEMBERS", 300_000))
    )
    parser.add_argument("--small", type=int, default=3000, help="members of the baseline city")
    parser.add_argument("--requests", type=int, default=60, help="timed requests of each page")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests of each page")
    parser.add_argument("--profile-requests", type=int, default=10)
    parser.add_argument("--db", choices=DBS, help="one database only (the default runs both)")
    parser.add_argument("--size", choices=SIZES, help="with --db: one data set only")
    parser.add_argument(
        "--quiet-wait",
        type=int,
        default=0,
        help="wait up to this many seconds for other processes to leave the CPU before timing",
    )
    parser.add_argument(
        "--summarize",
        action="store_true",
        help="measure nothing: the summary and pages.json from the results in bench/out",
    )
    return parser.parse_args()


def child_result(db, size):
    return OUT / f"pages-{db}-{size}.json"


# --- Parent: every database and data set, one child process each -------------------------------


def run_all(args):
    """Re-run this script per database and data set; PostgreSQL under with-postgres.sh."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    results, failures = {}, []
    for db in DBS:
        for size in SIZES:
            path = child_result(db, size)
            if args.summarize:
                if path.exists():
                    results[db, size] = json.loads(path.read_text())
                else:
                    failures.append(f"{db} {size}: no results in {path.name}")
                continue
            path.unlink(missing_ok=True)
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                f"--members={args.members}",
                f"--small={args.small}",
                f"--requests={args.requests}",
                f"--warmup={args.warmup}",
                f"--profile-requests={args.profile_requests}",
                f"--quiet-wait={args.quiet_wait}",
                f"--db={db}",
                f"--size={size}",
            ]
            if db == "postgresql":
                command = [str(ROOT / "scripts" / "with-postgres.sh"), *command]
            returncode = subprocess.run(command, cwd=ROOT, env=env).returncode
            if path.exists():
                results[db, size] = json.loads(path.read_text())
            elif db == "postgresql" and returncode == 0:
                failures.append(f"{db} {size}: NOT run (no PostgreSQL on this machine)")
            else:
                failures.append(f"{db} {size}: did NOT complete (exit {returncode})")
    for failure in failures:
        print(f"!!! bench_pages: {failure}")
    print_summary(results)
    ok = not failures and all(not r["failures"] for r in results.values())
    write_summary(args, results, failures, ok)
    return 0 if ok else 1


def met_p95(key, page):
    return page["p95"] <= TARGET_P95_MS if key in TARGETED else None


def print_summary(results):
    print(
        f"bench_pages summary (targets: p95 <= {TARGET_P95_MS} ms for "
        + ", ".join(TARGETED)
        + "; SQL queries per page the same on the large as on the small city)"
    )
    for db in DBS:
        large, small = results.get((db, "large")), results.get((db, "small"))
        if large is None:
            print(f"  {db:<11}!!! NO FIGURES for the large data set")
            continue
        print(f"  [{db}] data: {large['data']}")
        if small:
            print(f"  [{db}] baseline data: {small['data']}")
        c = large["contention"]
        print(
            f"  [{db}] while timing: other processes used {c['other_cores']:.2f} of "
            f"{os.cpu_count()} cores, load average " + " / ".join(f"{x:.1f}" for x in c["load"])
        )
        print(
            f"  {'database':<11}{'page':<30}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}"
            f"{'CPU p95':>8}{'SQL ms':>8}{'queries':>8}{'small p95':>10}{'small q':>8}  targets"
        )
        for key, label in PAGES:
            page = large["pages"][key]
            base = small["pages"][key] if small else None
            verdicts = []
            if key in TARGETED:
                verdicts.append(f"p95 {'met' if met_p95(key, page) else 'NOT met'}")
            if base:
                same = page["queries"] == base["queries"]
                verdicts.append(f"queries {'met' if same else 'NOT met'}")
            print(
                f"  {db:<11}{label:<30}{page['p50']:>8.1f}{page['p95']:>8.1f}{page['max']:>8.1f}"
                f"{page['cpu_p95']:>8.1f}{page['sql_ms']:>8.1f}{page['queries']:>8}"
                + (f"{base['p95']:>10.1f}{base['queries']:>8}" if base else f"{'-':>10}{'-':>8}")
                + "  "
                + ", ".join(verdicts or ["(reported)"])
            )


def write_summary(args, results, failures, ok):
    from _setup import result_row, write_results

    rows, data, contention = [], [], []
    for db in DBS:
        large, small = results.get((db, "large")), results.get((db, "small"))
        if large is None:
            rows.append(
                result_row(f"[{db}] all pages", "no figures", met=False, notes="run failed")
            )
            continue
        data.append(f"{db}: {large['data']}" + (f"; baseline {small['data']}" if small else ""))
        c = large["contention"]
        contention.append(
            f"{db}: while the large city was timed, other processes used "
            f"{c['other_cores']:.2f} of {os.cpu_count()} cores (load average "
            + " / ".join(f"{x:.1f}" for x in c["load"])
            + ")"
        )
        small_members = f"{small['members']:,}" if small else "?"
        for key, label in PAGES:
            page = large["pages"][key]
            base = small["pages"][key] if small else None
            rows.append(
                result_row(
                    f"[{db}] {label}: p95",
                    round(page["p95"], 1),
                    "ms",
                    baseline=round(base["p95"], 1) if base else None,
                    baseline_label=f"same page, {small_members}-member city",
                    target=f"<= {TARGET_P95_MS} ms" if key in TARGETED else "(reported)",
                    met=met_p95(key, page),
                    notes=(
                        f"p50 {page['p50']:.1f}, max {page['max']:.1f} ms over "
                        f"{page['requests']} requests; CPU p95 {page['cpu_p95']:.1f} ms; "
                        f"SQL {page['sql_ms']:.1f} of {page['timed_ms']:.1f} ms"
                    ),
                )
            )
            rows.append(
                result_row(
                    f"[{db}] {label}: SQL queries",
                    page["queries"],
                    "queries",
                    baseline=base["queries"] if base else None,
                    baseline_label=f"{small_members}-member city",
                    target="same as the small city",
                    met=(page["queries"] == base["queries"]) if base else False,
                )
            )
    measured_at = None
    if args.summarize and results:
        measured_at = min(r["measured_at"] for r in results.values())
    write_results(
        "pages",
        rows,
        measured_at=measured_at,
        title="Page speed on the scale city (server time in-process, SQL queries)",
        ok=ok,
        data="; ".join(data),
        notes=[
            *failures,
            "server time: django.test.Client.get() in-process, whole middleware stack, "
            "DEBUG off; CPU: this thread's CPU time per request (on SQLite that includes the "
            "database); SQL time measured around cursor.execute",
            *contention,
            f"profiles of the pages over {TARGET_P95_MS} ms and of the slowest page with a "
            "target: bench/out/pages_profile-<db>.txt; every page's SQL: "
            "bench/out/pages_queries-<db>-<size>.txt",
        ],
    )


# --- Child: one database, one data set -----------------------------------------------------------


def source_db_valid(path: Path, members: int) -> bool:
    """bench_coverage's SQLite data set, complete: the scale city, its members, the round."""
    if not path.exists():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            checks = (
                ("SELECT COUNT(*) FROM members_organization WHERE code = 'S'", 1),
                ("SELECT COUNT(*) FROM members_member", members),
                ("SELECT COUNT(*) > 0 FROM rounds_round WHERE state = 'published'", 1),
                ("SELECT COUNT(*) > 0 FROM rounds_participation", 1),
            )
            return all(con.execute(sql).fetchone()[0] == expected for sql, expected in checks)
    except sqlite3.Error:
        return False


def copy_sqlite(source: Path, target: Path):
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def open_data_set(args):
    """Django on this run's database, the data set in it; a line saying where it came from."""
    from _setup import django_with_db, django_with_fresh_db

    members = args.members if args.size == "large" else args.small
    if args.db == "sqlite" and args.size == "large":
        name = "pages-large"
        own = OUT / f"{name}.sqlite3"
        fresh_source = source_db_valid(SOURCE_DB, members) and (
            not own.exists() or SOURCE_DB.stat().st_mtime > own.stat().st_mtime
        )
        if fresh_source:
            started = time.perf_counter()
            copy_sqlite(SOURCE_DB, own)
            django_with_db(name)
            return f"copied from {SOURCE_DB.name} in {time.perf_counter() - started:.0f} s"
        if source_db_valid(own, members):
            django_with_db(name)
            return f"reused {own.name}"
        django_with_fresh_db(name)
    else:
        django_with_fresh_db(f"pages-{args.size}")
    import bench_coverage

    started = time.perf_counter()
    bench_coverage.build_data(members)
    return f"built in {time.perf_counter() - started:.0f} s"


def scale_round_and_nodes():
    from itertools import pairwise

    from bench_coverage import LEVELS

    from members.demo import SCALE_ROOT_CODE
    from members.models import Organization
    from rounds.models import Round

    city = Organization.objects.get(code=SCALE_ROOT_CODE)
    training_round = (
        Round.objects.filter(state=Round.State.PUBLISHED, scope_roots=city).order_by("pk").last()
    )
    nodes = {"city": city}
    for parent, level in pairwise(LEVELS):
        nodes[level] = Organization.objects.filter(
            path__startswith=nodes[parent].path, depth=nodes[parent].depth + 1
        ).order_by("path")[0]
    return training_round, nodes


def fill_progress(training_round, lessons):
    """Watch progress consistent with the round's participation rows (once per database):
    every required lesson complete for the completed, lessons_done (+ one half-watched) for
    those in progress."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from courses.models import LessonProgress, hours_for_seconds
    from rounds.models import Participation

    if LessonProgress.objects.filter(lesson__in=lessons).exists():
        return 0
    done_at = timezone.now() - timedelta(days=3)
    rows = Participation.objects.filter(
        round=training_round,
        status__in=(Participation.Status.COMPLETED, Participation.Status.IN_PROGRESS),
    ).values_list("member_id", "lessons_done")
    created = 0
    batch = []
    with transaction.atomic():
        for member_id, lessons_done in rows.iterator(chunk_size=5000):
            for index, lesson in enumerate(lessons):
                duration = float(lesson.video.duration)
                if index < lessons_done:
                    watched = duration
                elif index == lessons_done:
                    watched = duration / 2
                else:
                    break
                complete = watched >= duration
                batch.append(
                    LessonProgress(
                        member_id=member_id,
                        lesson=lesson,
                        duration=duration,
                        segments=[[0, watched]],
                        watched_seconds=watched,
                        furthest=watched,
                        last_position=watched,
                        completed_at=done_at if complete else None,
                        hours_earned=hours_for_seconds(duration) if complete else 0,
                    )
                )
            if len(batch) >= 5000:
                LessonProgress.objects.bulk_create(batch)
                created += len(batch)
                batch = []
        LessonProgress.objects.bulk_create(batch)
    return created + len(batch)


def staff_user(username, name):
    from django.contrib.auth import get_user_model

    user, _created = get_user_model().objects.get_or_create(
        username=username, defaults={"first_name": name, "password": "!bench"}
    )
    return user


def people(training_round, nodes):
    """The member, the branch secretary, the county secretary, the trainer (idempotent)."""
    from members import services
    from members.models import Member, Role
    from rounds.models import Participation

    branch_members = Member.objects.filter(organization=nodes["branch"], is_active=True)
    in_progress = set(
        Participation.objects.filter(
            round=training_round, status=Participation.Status.IN_PROGRESS
        ).values_list("member_id", flat=True)
    )
    secretary = (
        branch_members.filter(position=Member.Position.SECRETARY).order_by("pk").first()
        or branch_members.order_by("pk").first()
    )
    others = list(branch_members.exclude(pk=secretary.pk).order_by("pk"))
    member = next((m for m in others if m.pk in in_progress), others[0])
    services.role_assign(user=secretary.user, role=Role.SECRETARY, organization=nodes["branch"])
    county = staff_user("bench-county", "区委组织部")
    services.role_assign(user=county, role=Role.SECRETARY, organization=nodes["county"])
    trainer = staff_user("bench-trainer", "培训管理员")
    services.role_assign(user=trainer, role=Role.TRAINER, organization=nodes["city"])
    return member, secretary.user, county, trainer


class Page:
    def __init__(self, key, user, url, expect, figure=None):
        from django.test import Client

        self.key, self.url, self.expect, self.figure = key, url, expect, figure
        self.user = user
        self.client = Client(HTTP_HOST="localhost")
        self.login()

    def login(self):
        self.client.force_login(self.user, backend=LOGIN_BACKEND)

    def get(self):
        return self.client.get(self.url)

    def check(self):
        """200 with the expected content, not a login page or a redirect."""
        response = self.get()
        if response.status_code != 200:
            raise SystemExit(
                f"!!! {self.key} {self.url}: {response.status_code} {response.get('Location', '')}"
            )
        text = response.content.decode()
        for needle in self.expect:
            if needle not in text:
                raise SystemExit(f"!!! {self.key} {self.url}: {needle!r} not in the page")
        if self.figure is not None:
            match = re.search(r'data-figure="in_scope">([\d,]+)<', text)
            shown = int(match.group(1).replace(",", "")) if match else None
            if shown != self.figure:
                raise SystemExit(f"!!! {self.key}: in scope shows {shown}, counted {self.figure}")
        return len(response.content)


def build_pages(training_round, nodes, lessons):
    from django.urls import reverse

    member, secretary, county, trainer = people(training_round, nodes)
    lesson = lessons[0]
    coverage = reverse("rounds:coverage", args=[training_round.pk])

    def in_scope(node):
        return (
            training_round.members_in_scope()
            .filter(organization__path__startswith=node.path)
            .count()
        )

    return [
        Page("home", member.user, "/", [member.name, training_round.title]),
        Page("lesson", member.user, lesson.url, [lesson.title, 'id="lesson-player"']),
        *(
            Page(
                f"coverage_{level}",
                user,
                coverage,
                [training_round.title, nodes[level].name],
                figure=in_scope(nodes[level]),
            )
            for level, user in (("branch", secretary), ("county", county), ("city", trainer))
        ),
    ]


def percentile(values, share):
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class SqlTimer:
    """connection.execute_wrapper: each statement's time around cursor.execute."""

    def __init__(self):
        self.statements = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((time.perf_counter() - started, sql, params))


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent busy so far (/proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, *rest = (int(x) for x in fields)
    return (user + nice + system + irq + softirq + (rest[0] if rest else 0)) / os.sysconf(
        "SC_CLK_TCK"
    )


def process_cpu(pid) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_pid():
    """The PostgreSQL server process serving this connection (None on SQLite)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def wait_for_quiet(limit):
    """Up to ``limit`` seconds: wait until other processes use under half a core."""
    waited, started = 0.0, time.monotonic()
    while True:
        before, own = machine_cpu(), time.process_time()
        time.sleep(3)
        others = (machine_cpu() - before - (time.process_time() - own)) / 3
        waited = time.monotonic() - started
        if others < 0.5 or waited >= limit:
            return waited, others
        time.sleep(min(20, max(0.0, limit - waited)))


def measure(pages, args):
    """Wall time and this thread's CPU time of each request; SQL counted and timed apart."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    backend = backend_pid()
    waited, others = wait_for_quiet(args.quiet_wait) if args.quiet_wait else (0.0, None)
    if args.quiet_wait:
        print(f"  waited {waited:.0f} s for a quiet machine (others then {others:.2f} cores)")
        for page in pages:
            page.login()  # sessions end after SESSION_IDLE_MINUTES without a request
    sizes = {page.key: page.check() for page in pages}
    # What this process built before measuring (the data set, migrations, clients) stays
    # alive and would be scanned by every full collection: one such collection (about 170 ms
    # at 30,000 members) landed on one request in each pass. Collected and frozen here, as
    # deploy/gunicorn.conf.py freezes what its workers inherit from the preloaded app.
    gc.collect()
    gc.freeze()
    for _ in range(args.warmup):
        for page in pages:
            page.get()
    runs = {page.key: [] for page in pages}
    cpu = {page.key: [] for page in pages}
    machine_before, own_before = machine_cpu(), time.process_time()
    backend_before = process_cpu(backend) if backend else 0.0
    started_all = time.perf_counter()
    for _ in range(args.requests):
        for page in pages:
            started, started_cpu = time.perf_counter(), time.thread_time()
            response = page.get()
            runs[page.key].append((time.perf_counter() - started) * 1000)
            cpu[page.key].append((time.thread_time() - started_cpu) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"!!! {page.key}: {response.status_code} during the run")
    elapsed = time.perf_counter() - started_all
    own = time.process_time() - own_before
    database = (process_cpu(backend) - backend_before) if backend else 0.0
    contention = {
        "seconds": elapsed,
        "own_cores": own / elapsed,
        "database_cores": database / elapsed,
        "other_cores": max(0.0, machine_cpu() - machine_before - own - database) / elapsed,
        "load": os.getloadavg(),
        "waited": waited,
    }
    results = {}
    for page in pages:
        # The session is renewed at most once a minute (one more UPDATE): the fewest of three.
        captured = []
        for _ in range(3):
            with CaptureQueriesContext(connection) as context:
                page.get()
            captured.append(context.captured_queries)
        queries = min(captured, key=len)
        timer = SqlTimer()
        timed = []
        with connection.execute_wrapper(timer):
            for _ in range(5):
                started = time.perf_counter()
                page.get()
                timed.append((time.perf_counter() - started) * 1000)
        times = runs[page.key]
        results[page.key] = {
            "url": page.url,
            "bytes": sizes[page.key],
            "requests": len(times),
            "p50": statistics.median(times),
            "p95": percentile(times, 0.95),
            "max": max(times),
            "mean": statistics.fmean(times),
            "runs": [round(t, 2) for t in times],
            "cpu_p50": statistics.median(cpu[page.key]),
            "cpu_p95": percentile(cpu[page.key], 0.95),
            "queries": len(queries),
            "queries_max": max(map(len, captured)),
            "sql": [" ".join(q["sql"].split()) for q in queries],
            "sql_ms": sum(t for t, _sql, _params in timer.statements) * 1000 / 5,
            "timed_ms": statistics.fmean(timed),
            "slowest": slowest_statements(timer.statements, 5),
        }
    return results, contention


def slowest_statements(statements, runs):
    by_sql = {}
    for seconds, sql, params in statements:
        entry = by_sql.setdefault(sql, [0.0, 0, params])
        entry[0] += seconds
        entry[1] += 1
    ordered = sorted(by_sql.items(), key=lambda item: -item[1][0])
    return [
        {
            "ms": total * 1000 / runs,
            "calls": calls // runs,
            "sql": sql,
            "params": [str(p) for p in params] if params else [],
        }
        for sql, (total, calls, params) in ordered[:3]
    ]


def explain(sql, params):
    """The plan of ``sql`` (``_setup.query_plan``), indented under the statement it explains."""
    from _setup import query_plan

    return ["  " + line for line in query_plan(sql, params).splitlines()]


def layer(path, function):
    """Which layer a profiled function belongs to, by its file."""
    if path == "~":  # built-ins: the database drivers' C code shows here
        if "sqlite3" in function or "psycopg" in function or "Cursor" in function:
            return "database driver: SQL execution and row fetching"
        return "Python built-ins (getattr, isinstance, str ...)"
    rules = (
        ("/psycopg", "database driver: SQL execution and row fetching"),
        ("django/db/backends", "Django database backend (cursor wrappers)"),
        ("django/db/models", "Django ORM: query building, compiling, model instances"),
        ("django/template", "Django templates: rendering"),
        ("django/utils/translation", "translation (gettext)"),
        ("django/test/", "test client (outside the server)"),
        ("/wagtail/", "Wagtail, treebeard, modelcluster"),
        ("/treebeard/", "Wagtail, treebeard, modelcluster"),
        ("/modelcluster/", "Wagtail, treebeard, modelcluster"),
        ("/django/", "Django: middleware, sessions, auth, URLs, forms, other"),
    )
    for needle, name in rules:
        if needle in path:
            return name
    if path.startswith(str(ROOT)) and "/.venv/" not in path and "/bench/" not in path:
        return "Lunxun code (views, services, template tags)"
    return "other libraries and the standard library"


def breakdown(stats) -> list[str]:
    """Own time by layer, and the Lunxun functions with the most time below them."""
    totals = {}
    for (path, _line, function), (_cc, _nc, own, _cum, _callers) in stats.items():
        name = layer(path, function)
        totals[name] = totals.get(name, 0.0) + own
    whole = sum(totals.values()) or 1.0
    lines = ["  own time by layer (cProfile inflates Python code against C and the database):"]
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        lines.append(f"    {name:<58}{seconds / whole * 100:6.1f} %")
    ours = [
        (cum, f"{path.replace(str(ROOT) + '/', '')}:{line}({function})")
        for (path, line, function), (_cc, _nc, _own, cum, _callers) in stats.items()
        if path.startswith(str(ROOT)) and "/.venv/" not in path and "/bench/" not in path
    ]
    lines.append("  Lunxun functions by time spent in and below them (share of the request):")
    for cum, name in sorted(ours, reverse=True)[:12]:
        lines.append(f"    {cum / whole * 100:6.1f} %  {name}")
    return lines


def profile(page, count):
    """cProfile of ``count`` requests of ``page`` and the plan of its slowest statement."""
    import cProfile
    import io
    import pstats

    from django.db import connection

    timer = SqlTimer()
    profiler = cProfile.Profile()
    with connection.execute_wrapper(timer):
        profiler.enable()
        for _ in range(count):
            page.get()
        profiler.disable()
    site_packages = str(Path(sys.executable).parent.parent / "lib")

    def tidy(text):
        text = re.sub(re.escape(site_packages) + r"/python[\d.]+/site-packages/", "", text)
        return text.replace(str(ROOT) + "/", "").replace(sys.base_prefix, "<python>").strip()

    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("tottime").print_stats(20)
    stats.print_callers(6)
    lines = [f"--- {page.key} {page.url}: cProfile of {count} requests", *breakdown(stats.stats)]
    lines += [f"--- {page.key}: the functions with the most own time, and their callers"]
    lines.append(tidy(buffer.getvalue()))
    statements = slowest_statements(timer.statements, count)
    lines.append(f"--- {page.key}: slowest SQL per request (time around cursor.execute)")
    for entry in statements:
        lines.append(f"  {entry['ms']:.1f} ms x{entry['calls']}: {entry['sql']}")
        lines.append(f"    params: {entry['params']}")
    by_sql = {sql: params for _t, sql, params in timer.statements}
    if statements:
        sql = statements[0]["sql"]
        lines.append(f"--- {page.key}: plan of the slowest statement")
        try:
            lines += explain(sql, by_sql[sql])
        except Exception as error:
            lines.append(f"    (no plan: {error})")
    return "\n".join(lines)


def run_one(args):
    if args.db == "postgresql" and not os.environ.get("DATABASE_URL"):
        raise SystemExit("--db=postgresql needs DATABASE_URL (run under scripts/with-postgres.sh)")
    if args.db == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    os.environ["DEBUG"] = "false"
    sys.path.insert(0, str(HERE))
    started = time.perf_counter()
    origin = open_data_set(args)

    from _setup import machine
    from django.db import connection

    from members.models import Member, Organization

    training_round, nodes = scale_round_and_nodes()
    lessons = sorted(training_round.lessons.select_related("video"), key=lambda lesson: lesson.path)
    progress_rows = fill_progress(training_round, lessons)
    import bench_coverage

    bench_coverage.rebuild_derived()  # the completed lessons' hours, inserted in bulk
    pages = build_pages(training_round, nodes, lessons)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # as autovacuum would have, after a bulk load
    from courses.models import LessonProgress

    data = (
        f"{Member.objects.count():,} members in {Organization.objects.count():,} organisations, "
        f"{LessonProgress.objects.count():,} progress rows ({origin}; "
        f"ready in {time.perf_counter() - started:.0f} s)"
    )
    members = Member.objects.count()
    print(f"bench_pages [{args.db}, {args.size}]  machine: {machine()}")
    print(f"  data: {data}" + (f"; {progress_rows:,} progress rows added" if progress_rows else ""))
    results, contention = measure(pages, args)
    print(
        f"  {'page':<30}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'CPU p95':>8}{'SQL ms':>8}"
        f"{'queries':>8}{'KB':>6}  url"
    )
    for key, label in PAGES:
        r = results[key]
        spread = "" if r["queries"] == r["queries_max"] else f" (up to {r['queries_max']})"
        print(
            f"  {label:<30}{r['p50']:>8.1f}{r['p95']:>8.1f}{r['max']:>8.1f}{r['cpu_p95']:>8.1f}"
            f"{r['sql_ms']:>8.1f}{r['queries']:>8}{r['bytes'] / 1024:>6.0f}  {r['url']}{spread}"
        )
    print(
        f"  during the {contention['seconds']:.0f} s of timed requests: this process "
        f"{contention['own_cores']:.2f} cores, the database server "
        f"{contention['database_cores']:.2f}, other processes {contention['other_cores']:.2f} "
        f"(of {os.cpu_count()}); load average " + " / ".join(f"{x:.1f}" for x in contention["load"])
    )
    if contention["other_cores"] > 0.25:
        print(
            "  !!! other processes competed for the CPU: wall times are higher than this "
            "machine gives alone (CPU p95 is this thread's CPU time, less affected)"
        )
    query_lines = [f"bench_pages SQL per request [{args.db}, {args.size}]: {data}"]
    for key, label in PAGES:
        query_lines.append(f"--- {label} ({key}): {results[key]['queries']} queries")
        query_lines += [f"  {i + 1:>2}. {sql}" for i, sql in enumerate(results[key]["sql"])]
    queries_path = OUT / f"pages_queries-{args.db}-{args.size}.txt"
    queries_path.write_text("\n".join(query_lines) + "\n")
    print(f"  SQL of each page: {queries_path}")
    if args.size == "large":
        # Every page over the target, and the slowest page with a target in any case.
        slowest = max((p for p in pages if p.key in TARGETED), key=lambda p: results[p.key]["p95"])
        slow = [p for p in pages if results[p.key]["p95"] > TARGET_P95_MS or p is slowest]
        sections = [
            f"bench_pages profiles [{args.db}]: pages with p95 > {TARGET_P95_MS} ms and the "
            f"slowest targeted page; {data}"
        ]
        for page in slow:
            sections.append(profile(page, args.profile_requests))
        profile_path = OUT / f"pages_profile-{args.db}.txt"
        profile_path.write_text("\n\n".join(sections) + "\n")
        if slow:
            print(f"  profiles of {', '.join(p.key for p in slow)}: {profile_path}")
    child_result(args.db, args.size).write_text(
        json.dumps(
            {
                "db": args.db,
                "size": args.size,
                "members": members,
                "data": data,
                "machine": machine(),
                "pages": results,
                "contention": contention,
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "failures": [],
            },
            ensure_ascii=False,
        )
    )
    return 0


def main():
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.db and args.size and not args.summarize:
        return run_one(args)
    if (args.db or args.size) and not args.summarize:
        raise SystemExit("--db and --size go together (the default runs every combination)")
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())

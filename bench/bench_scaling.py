"""How cost grows: the scaling table of the coverage and page benchmarks (issue 18, item 3).

The same pages on scale cities of 30,000, 100,000, 300,000 and 1,000,000 members, on SQLite and
on PostgreSQL (a throwaway cluster via scripts/with-postgres.sh):

  coverage_city   the trainer's coverage page for the whole city (rounds:coverage URL)
  coverage_county the county secretary's coverage page (their county)
  home            a member's own home page /
  report          a progress report: a real form POST to courses:progress_report with a viewing
                  token (a viewing started through courses.services.progress_start, bound to the
                  member's login session, CSRF token in cookie and body, as bench_progress
                  sends them); each report adds 5 s of watching and never completes the lesson

Server time is the time of django.test.Client in this process (whole middleware stack, the
view, the template; DEBUG off; no network), as bench_pages measures it, with the same code
(bench_pages.measure: after a warm-up, --requests of each page in turns; p50 and p95; the SQL
statements of one request counted with CaptureQueriesContext).

Target, stated per page: flat, p95 at 1,000,000 members <= 1.5x p95 at 30,000. Baseline: the
same page at 30,000 members (the smallest size of the run) measured in the same run. The SQL
query count per request is shown beside each figure and should not grow either.

Data: each size is bench_coverage.build_data (the scale city of members.demo.seed_scale_city,
1 % inactive, last quarter's closed round, the current round with participation rows for ~70 %
of members) plus bench_pages.fill_progress (watch progress consistent with those rows): the
data set bench_coverage and bench_pages measure, at four sizes. Each (database, size) runs in a
child process of its own. SQLite data sets are kept in bench/out/scaling-<size>.sqlite3 and
reused by the next run when complete (a build that did not finish is not reused; --rebuild
forces a build; --drop-sqlite deletes them after measuring); PostgreSQL ones are built in one
throwaway cluster, a database per size, deleted with it. Build time and size on disk are
reported: 300,000 members take 223 MB on SQLite and 366 MB on PostgreSQL (so about 0.75 and
1.2 GB at 1,000,000), and their build 1,110 s and 1,082 s on a heavily loaded machine (load
average 15-28 on 2 cores; bench_pages saw 125 s on PostgreSQL on a quiet one).

    .venv/bin/python bench/bench_scaling.py [--sizes 30000,100000,300000,1000000]
        [--requests 40] [--db sqlite|postgresql --size N] [--rebuild] [--drop-sqlite]
        [--summarize]
"""

import argparse
import json
import math
import os
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
SIZES = (30_000, 100_000, 300_000, 1_000_000)
TARGET_RATIO = 1.5
PAGES = (
    ("coverage_city", "coverage page, city (trainer)"),
    ("coverage_county", "coverage page, county (secretary)"),
    ("home", "member's home page /"),
    ("report", "progress report POST (viewing token)"),
)
LABELS = dict(PAGES)
REPORT_MEMBERS = 10
REPORT_STEP = 5  # seconds of watching added by each report


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="members of each city, comma-separated; the smallest is the baseline",
    )
    parser.add_argument(
        "--requests", type=int, default=15, help="timed requests of each page in each pass"
    )
    parser.add_argument(
        "--passes",
        type=int,
        default=3,
        help="rounds over every size, so that a busy spell falls on all sizes alike",
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests of each page")
    parser.add_argument("--db", choices=DBS, help="one database only (the default runs both)")
    parser.add_argument("--size", type=int, help="with --db: one size only (a child process)")
    parser.add_argument("--build-only", action="store_true", help="child: the data set only")
    parser.add_argument("--pass-number", type=int, default=1, help="child: which pass")
    parser.add_argument("--rebuild", action="store_true", help="build SQLite data sets anew")
    parser.add_argument(
        "--drop-sqlite",
        action="store_true",
        help="delete each SQLite data set after measuring it (default: keep it for next time)",
    )
    parser.add_argument(
        "--summarize",
        action="store_true",
        help="measure nothing: the summary and scaling.json from the results in bench/out",
    )
    args = parser.parse_args()
    args.sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    return args


def build_file(db, size):
    return OUT / f"scaling-{db}-{size}-data.json"


def pass_file(db, size, number):
    return OUT / f"scaling-{db}-{size}-pass{number}.json"


def db_result(db):
    return OUT / f"scaling-{db}.json"


def sqlite_path(size):
    return OUT / f"scaling-{size}.sqlite3"


def ratio_of(figure, base):
    return figure / base if base else float("inf")


def percentile(values, share):
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


# --- Parent: both databases ---------------------------------------------------------------------


def run_all(args):
    """SQLite here; PostgreSQL in a throwaway cluster (one database per size in it)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    results, failures = {}, []
    for db in DBS if not args.db else (args.db,):
        path = db_result(db)
        if args.summarize:
            if path.exists():
                results[db] = json.loads(path.read_text())
                failures += results[db]["failures"]
            elif collected := collect(args, db):
                results[db] = collected  # a run that stopped early: the passes it finished
                failures += collected["failures"]
            else:
                failures.append(f"{db}: no results in {path.name}")
            continue
        path.unlink(missing_ok=True)
        started = time.monotonic()
        if db == "sqlite":
            returncode = run_db(args, db)
        elif os.environ.get("DATABASE_URL"):
            returncode = run_db(args, db)  # already under scripts/with-postgres.sh
        else:
            command = [
                str(ROOT / "scripts" / "with-postgres.sh"),
                sys.executable,
                str(Path(__file__).resolve()),
                *passed(args),
                "--db=postgresql",
            ]
            returncode = subprocess.run(command, cwd=ROOT, env=env).returncode
        print(f"  ({db}: {time.monotonic() - started:.0f} s in all)")
        if path.exists():
            results[db] = json.loads(path.read_text())
            failures += results[db]["failures"]
        elif db == "postgresql" and returncode == 0:
            failures.append(f"{db}: NOT run (no PostgreSQL on this machine)")
        else:
            failures.append(f"{db}: did NOT complete (exit {returncode})")
    if args.db and os.environ.get("DATABASE_URL"):
        return 1 if failures else 0  # the parent outside the cluster writes the summary
    for failure in failures:
        print(f"!!! bench_scaling: {failure}")
    print_summary(results)
    write_summary(args, results, failures)
    return 1 if failures else 0


def passed(args):
    return [
        "--sizes=" + ",".join(map(str, args.sizes)),
        f"--requests={args.requests}",
        f"--passes={args.passes}",
        f"--warmup={args.warmup}",
        *(["--rebuild"] if args.rebuild else []),
        *(["--drop-sqlite"] if args.drop_sqlite else []),
    ]


def size_env(db, size):
    """The environment of a child for ``size``: on PostgreSQL its own database in the cluster."""
    env = dict(os.environ)
    if db == "postgresql":
        import psycopg

        base = os.environ["DATABASE_URL"]
        name = f"scaling_{size}"
        with psycopg.connect(base, autocommit=True) as con:
            exists = con.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                con.execute(f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + name
    else:
        env.pop("DATABASE_URL", None)
    return env


def run_db(args, db):
    """Every size of one database: build (or reuse) each data set, then --passes rounds over
    the sizes, each (size, pass) a child process; bench/out/scaling-<db>.json."""
    failures, sizes = [], {}
    child = [sys.executable, str(Path(__file__).resolve()), f"--db={db}", f"--warmup={args.warmup}"]
    for size in args.sizes:
        build_file(db, size).unlink(missing_ok=True)
        started = time.monotonic()
        command = [*child, f"--size={size}", "--build-only"]
        if args.rebuild:
            command.append("--rebuild")
        returncode = subprocess.run(command, cwd=ROOT, env=size_env(db, size)).returncode
        if returncode or not build_file(db, size).exists():
            failures.append(f"{db} {size:,}: the data set was NOT built (exit {returncode})")
            continue
        sizes[size] = json.loads(build_file(db, size).read_text())
        print(f"  [{db}] {size:,}: data set ready ({time.monotonic() - started:.0f} s)")
    passes = {size: [] for size in sizes}
    for number in range(1, args.passes + 1):
        for size in sizes:
            pass_file(db, size, number).unlink(missing_ok=True)
            command = [
                *child,
                f"--size={size}",
                f"--requests={args.requests}",
                f"--pass-number={number}",
            ]
            if args.drop_sqlite and number == args.passes:
                command.append("--drop-sqlite")
            returncode = subprocess.run(command, cwd=ROOT, env=size_env(db, size)).returncode
            if returncode or not pass_file(db, size, number).exists():
                failures.append(f"{db} {size:,}: pass {number} did NOT complete ({returncode})")
                continue
            passes[size].append(json.loads(pass_file(db, size, number).read_text()))
    merged = {}
    for size, runs in passes.items():
        if runs:
            merged[str(size)] = merge(sizes[size], runs)
    db_result(db).write_text(
        json.dumps(
            {
                "db": db,
                "sizes": merged,
                "failures": failures,
                "passes": args.passes,
                "requests": args.requests,
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            ensure_ascii=False,
        )
    )
    return 1 if failures else 0


def collect(args, db):
    """What a run of ``db`` that did not finish left in bench/out: the sizes it built and the
    passes it finished (a size missing a pass is said to be so)."""
    merged, failures, counts = {}, [], set()
    for size in args.sizes:
        if not build_file(db, size).exists():
            failures.append(f"{db} {size:,}: no data set was built")
            continue
        runs = [
            json.loads(pass_file(db, size, n).read_text())
            for n in range(1, args.passes + 1)
            if pass_file(db, size, n).exists()
        ]
        if not runs:
            failures.append(f"{db} {size:,}: no pass finished")
            continue
        counts.add(len(runs))
        merged[str(size)] = merge(json.loads(build_file(db, size).read_text()), runs)
    if not merged:
        return None
    if len(counts) > 1:
        failures.append(f"{db}: sizes measured in unequal numbers of passes {sorted(counts)}")
    return {
        "db": db,
        "sizes": merged,
        "failures": [
            f"{db}: the run stopped early; summarised from the passes it finished",
            *failures,
        ],
        "passes": min(counts),
        "requests": args.requests,
        "measured_at": min(s["measured_at"] for s in merged.values()),
    }


def merge(built, runs):
    """One size: the timed requests of every pass together; p50 and p95 over all of them."""
    pages = {}
    for key in LABELS:
        times = [t for run in runs for t in run["pages"][key]["runs"]]
        last = runs[-1]["pages"][key]
        pages[key] = {
            "url": last["url"],
            "requests": len(times),
            "p50": statistics.median(times),
            "p95": percentile(times, 0.95),
            "max": max(times),
            "queries": last["queries"],
            "queries_max": max(run["pages"][key]["queries_max"] for run in runs),
            "sql_ms": statistics.fmean(run["pages"][key]["sql_ms"] for run in runs),
        }
    return {
        "data": built["data"],
        "members": built["members"],
        "build_seconds": built["build_seconds"],
        "disk_bytes": built["disk_bytes"],
        "pages": pages,
        "other_cores": statistics.fmean(run["contention"]["other_cores"] for run in runs),
        "loads": [run["load_text"] for run in runs],
        "measured_at": runs[0]["measured_at"],
    }


def table_rows(r):
    sizes = sorted(r["sizes"], key=int)
    return sizes, sizes[0], sizes[-1]


def print_summary(results):
    print(
        f"bench_scaling summary (target per page: flat, p95 at the largest city <= "
        f"{TARGET_RATIO:g}x p95 at the smallest, measured in the same run)"
    )
    for db in DBS:
        r = results.get(db)
        if not r or not r["sizes"]:
            print(f"  {db:<11}!!! NO FIGURES")
            continue
        sizes, base_size, top = table_rows(r)
        for size in sizes:
            s = r["sizes"][size]
            print(
                f"  [{db}] {int(size):,}: {s['data']}; other processes {s['other_cores']:.2f} "
                f"cores while timing; load average at the end of each pass: {', '.join(s['loads'])}"
            )
        print(
            f"  {'database':<11}{'page':<40}{'members':>11}{'p50 ms':>8}{'p95 ms':>8}"
            f"{'queries':>8}{'x base':>8}  target"
        )
        for key, label in PAGES:
            base = r["sizes"][base_size]["pages"][key]
            for size in sizes:
                page = r["sizes"][size]["pages"][key]
                ratio = ratio_of(page["p95"], base["p95"])
                verdict = ""
                if size == top and top != base_size:
                    met = "met" if ratio <= TARGET_RATIO else "NOT met"
                    verdict = f"<= {TARGET_RATIO:g}x {met}"
                print(
                    f"  {db:<11}{label:<40}{int(size):>11,}{page['p50']:>8.1f}{page['p95']:>8.1f}"
                    f"{page['queries']:>8}{ratio:>8.2f}  {verdict}"
                )


def write_summary(args, results, failures):
    sys.path.insert(0, str(HERE))
    from _setup import result_row, write_results

    rows, data, notes = [], [], list(failures)
    for db in DBS:
        r = results.get(db)
        if not r or not r["sizes"]:
            rows.append(result_row(f"[{db}] scaling table", "no figures", met=False))
            continue
        sizes, base_size, top = table_rows(r)
        for size in sizes:
            s = r["sizes"][size]
            data.append(f"{db} {int(size):,}: {s['data']}")
            notes.append(
                f"{db} {int(size):,}: other processes used {s['other_cores']:.2f} of "
                f"{os.cpu_count()} cores while it was timed; load average after each pass "
                + ", ".join(s["loads"])
            )
        for key, label in PAGES:
            base = r["sizes"][base_size]["pages"][key]
            for size in sizes:
                page = r["sizes"][size]["pages"][key]
                ratio = ratio_of(page["p95"], base["p95"])
                is_top = size == top and top != base_size
                rows.append(
                    result_row(
                        f"[{db}] {label}, {int(size):,} members: p95",
                        round(page["p95"], 1),
                        "ms",
                        baseline=round(base["p95"], 1),
                        baseline_label=f"same page, {int(base_size):,} members",
                        target=(
                            f"flat: p95 at {int(top):,} <= {TARGET_RATIO:g}x p95 at "
                            f"{int(base_size):,}"
                            if is_top
                            else "(row of the table)"
                        ),
                        met=(ratio <= TARGET_RATIO) if is_top else None,
                        notes=f"p50 {page['p50']:.1f} ms over {page['requests']} requests; "
                        f"{page['queries']} SQL queries ({base['queries']} at "
                        f"{int(base_size):,}); {ratio:.2f}x the baseline's p95",
                    )
                )
    measured_at = None
    if args.summarize and results:
        measured_at = min(r["measured_at"] for r in results.values())
    any_result = next(iter(results.values()), {"passes": args.passes, "requests": args.requests})
    notes.append(
        "server time: django.test.Client in-process (whole middleware stack, DEBUG off); "
        f"{any_result['passes']} passes over the sizes, {any_result['requests']} timed requests "
        "of each page per pass after a warm-up, so a busy spell falls on every size alike; "
        "each (size, pass) in its own process; PostgreSQL: one throwaway cluster, a database "
        "per size; SQL of each page: bench/out/scaling_queries-<db>-<size>.txt"
    )
    write_results(
        "scaling",
        rows,
        measured_at=measured_at,
        title="How cost grows: coverage, member home and progress report at 30k to 1M members",
        ok=not failures,
        data="; ".join(data),
        notes=notes,
    )


# --- Child: one database, one size ---------------------------------------------------------------


def data_set_complete(path: Path, size: int) -> bool:
    """A kept SQLite data set whose build finished (its marker written after the last step)."""
    marker = Path(str(path) + ".complete")
    if not (path.exists() and marker.exists()):
        return False
    from bench_pages import source_db_valid

    return marker.read_text().strip() == str(size) and source_db_valid(path, size)


def disk_size():
    """Bytes the database takes on disk."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            return cursor.fetchone()[0]
    name = Path(connection.settings_dict["NAME"])
    return sum(
        Path(str(name) + suffix).stat().st_size
        for suffix in ("", "-wal", "-shm")
        if Path(str(name) + suffix).exists()
    )


def build_data_set(args):
    """Django on this size's database with the data set in it: kept (SQLite, complete) or
    built; (origin, build seconds or None)."""
    from _setup import django_with_db, django_with_fresh_db

    if args.db == "sqlite":
        path = sqlite_path(args.size)
        marker = Path(str(path) + ".complete")
        if not args.rebuild and data_set_complete(path, args.size):
            django_with_db(path.stem)
            return f"reused {path.name}", None
        marker.unlink(missing_ok=True)
        django_with_fresh_db(path.stem)
    else:
        django_with_fresh_db(f"scaling-{args.size}")  # DATABASE_URL: this size's database
    import bench_coverage
    import bench_pages
    from django.db import connection

    started = time.perf_counter()
    training_round, _nodes = bench_coverage.build_data(args.size)
    lessons = sorted(training_round.lessons.select_related("video"), key=lambda x: x.path)
    bench_pages.fill_progress(training_round, lessons)
    bench_coverage.rebuild_derived()  # the completed lessons' hours, inserted in bulk
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE")  # as autovacuum would have, after a bulk load
        else:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    built = time.perf_counter() - started
    if args.db == "sqlite":
        Path(str(sqlite_path(args.size)) + ".complete").write_text(str(args.size))
    return "built", built


def open_data_set(args):
    """Django on this size's database, built by --build-only before."""
    from _setup import django_with_db

    if args.db == "sqlite" and not data_set_complete(sqlite_path(args.size), args.size):
        raise SystemExit(f"!!! no complete data set in {sqlite_path(args.size).name}")
    django_with_db(f"scaling-{args.size}")


def run_build(args):
    """--build-only: the data set (built or reused), its build time and size on disk."""
    started = time.perf_counter()
    origin, built = build_data_set(args)
    from courses.models import LessonProgress
    from members.models import Member, Organization

    members = Member.objects.count()
    if members != args.size:
        raise SystemExit(f"!!! {members:,} members in the data set, expected {args.size:,}")
    size = disk_size()
    data = (
        f"{members:,} members in {Organization.objects.count():,} organisations, "
        f"{LessonProgress.objects.count():,} progress rows; {origin}"
        + (f" in {built:.0f} s" if built is not None else "")
        + f"; {size / 1024**2:,.0f} MB on disk"
    )
    print(f"bench_scaling [{args.db}, {args.size:,}] data: {data}")
    build_file(args.db, args.size).write_text(
        json.dumps(
            {
                "members": members,
                "data": data,
                "build_seconds": built,
                "disk_bytes": size,
                "seconds": time.perf_counter() - started,
            },
            ensure_ascii=False,
        )
    )
    return 0


class ReportPage:
    """Progress reports of a few members, each through its own logged-in client: a viewing
    started as the lesson page starts it, then form POSTs to the report URL, as a player sends
    them (segments growing by REPORT_STEP seconds; never reaching the end of the lesson; each
    carrying the signed row of the last answer, so after the first it needs no read)."""

    key = "report"

    def __init__(self, members, lesson):
        from datetime import timedelta

        from django.conf import settings
        from django.middleware.csrf import _get_new_csrf_string
        from django.test import Client
        from django.urls import reverse
        from django.utils import timezone

        from courses import services
        from courses.models import LessonProgress

        # The same start on every run of a kept data set: these members' progress of the lesson
        # is removed (benchmark data only), then their viewings begin anew.
        LessonProgress.objects.filter(member__in=members, lesson=lesson).delete()
        self.duration = float(lesson.video.duration)
        self.players = []
        for member in members:
            client = Client(enforce_csrf_checks=True, HTTP_HOST="localhost")
            client.force_login(member.user, backend="members.backends.PhoneOrUsernameBackend")
            csrf = _get_new_csrf_string()
            client.cookies[settings.CSRF_COOKIE_NAME] = csrf
            progress = services.progress_start(
                member=member, lesson=lesson, session_key=client.session.session_key
            )
            self.players.append(
                {
                    "client": client,
                    "csrf": csrf,
                    "viewing": str(progress.viewing),
                    "url": reverse("courses:progress_report", args=[progress.pk]),
                    "pk": progress.pk,
                    "seconds": 0.0,
                }
            )
        # Started two hours ago: reports credit real time (never beyond the wall clock).
        LessonProgress.objects.filter(pk__in=[p["pk"] for p in self.players]).update(
            viewing_started_at=timezone.now() - timedelta(hours=2)
        )
        self.url = self.players[0]["url"]
        self.turn = 0

    def login(self):
        pass  # each player's session stays alive by its reports

    def get(self):
        player = self.players[self.turn % len(self.players)]
        self.turn += 1
        seconds = player["seconds"] + REPORT_STEP
        if seconds >= self.duration:
            raise SystemExit("!!! report: more reports than the lesson has seconds; fewer requests")
        player["seconds"] = seconds
        data = {
            "csrfmiddlewaretoken": player["csrf"],
            "viewing": player["viewing"],
            "segments": json.dumps([[0, seconds]]),
            "position": seconds,
        }
        if player.get("state"):
            data["state"] = player["state"]  # as the player does: the last answer's signed row
        response = player["client"].post(player["url"], data)
        if response.status_code == 200:
            player["state"] = response.json()["state"]
        return response

    def check(self):
        response = self.get()
        if response.status_code != 200:
            raise SystemExit(f"!!! report {self.url}: {response.status_code} {response.content!r}")
        body = response.json()
        if not body.get("watched"):
            raise SystemExit(f"!!! report credited nothing: {body!r}")
        return len(response.content)


def report_members(nodes):
    """Members of the township's last branch (not the branch whose member opens the home page;
    at 30,000 members a village has one branch only)."""
    from members.models import Member, Organization

    township = nodes["township"]
    branch = (
        Organization.objects.filter(path__startswith=township.path, depth=township.depth + 2)
        .exclude(pk=nodes["branch"].pk)
        .order_by("-path")[0]
    )
    members = list(
        Member.objects.filter(organization=branch, is_active=True)
        .select_related("user")
        .order_by("pk")[:REPORT_MEMBERS]
    )
    if not members:
        raise SystemExit(f"!!! no active member in {branch.code} to report progress")
    return members


def run_one(args):
    if args.db == "postgresql" and not os.environ.get("DATABASE_URL"):
        raise SystemExit("--db=postgresql needs DATABASE_URL (run under scripts/with-postgres.sh)")
    if args.db == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    os.environ["DEBUG"] = "false"
    sys.path.insert(0, str(HERE))
    if args.build_only:
        return run_build(args)
    open_data_set(args)

    import bench_pages
    from _setup import machine
    from django.db import connection

    training_round, nodes = bench_pages.scale_round_and_nodes()
    lessons = sorted(training_round.lessons.select_related("video"), key=lambda x: x.path)
    pages = [p for p in bench_pages.build_pages(training_round, nodes, lessons) if p.key in LABELS]
    pages.append(ReportPage(report_members(nodes), lessons[-1]))
    pages.sort(key=lambda p: list(LABELS).index(p.key))
    title = f"bench_scaling [{args.db}, {args.size:,}, pass {args.pass_number}]"
    print(f"{title}  machine: {machine()}")
    measure_args = argparse.Namespace(requests=args.requests, warmup=args.warmup, quiet_wait=0)
    results, contention = bench_pages.measure(pages, measure_args)
    print(f"  {'page':<40}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'SQL ms':>8}{'queries':>8}  url")
    for key, label in PAGES:
        r = results[key]
        print(
            f"  {label:<40}{r['p50']:>8.1f}{r['p95']:>8.1f}{r['max']:>8.1f}{r['sql_ms']:>8.1f}"
            f"{r['queries']:>8}  {r['url']}"
        )
    load_text = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"  during the {contention['seconds']:.0f} s of timed requests other processes used "
        f"{contention['other_cores']:.2f} of {os.cpu_count()} cores; load average {load_text}"
    )
    queries_path = OUT / f"scaling_queries-{args.db}-{args.size}.txt"
    lines = [f"bench_scaling SQL per request [{args.db}, {args.size:,} members]"]
    for key, label in PAGES:
        lines.append(f"--- {label} ({key}): {results[key]['queries']} queries")
        lines += [f"  {i + 1:>2}. {sql}" for i, sql in enumerate(results[key]["sql"])]
    queries_path.write_text("\n".join(lines) + "\n")
    pass_file(args.db, args.size, args.pass_number).write_text(
        json.dumps(
            {
                "pages": {
                    key: {k: v for k, v in r.items() if k != "sql"} for key, r in results.items()
                },
                "contention": contention,
                "load_text": load_text,
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            ensure_ascii=False,
        )
    )
    if args.db == "sqlite" and args.drop_sqlite:
        connection.close()
        path = sqlite_path(args.size)
        for suffix in ("", "-wal", "-shm", ".complete"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        print(f"  deleted {path.name} (--drop-sqlite)")
    return 0


def main():
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.db and args.size and not args.summarize:
        return run_one(args)
    if args.size:
        raise SystemExit("--size goes with --db (the default runs every combination)")
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())

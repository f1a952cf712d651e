"""The city-wide study-hours list (/hours/org/, 学时档案) on the 300,000-member scale city: server
time of the page (p50, p95) for the city's trainer, all members and below-requirement only,
beside a same-run baseline: the same page's queries (count and first page) summed live from the
three sources, as the list did before the yearly summary (``ledger_for_members_live``).

Data: bench_plans' city (bench_coverage's scale city, watch progress, categories, two years of
approved study records) plus a group session a third of the active members attended. The
summary is built from that data by ``hours_summary_rebuild`` (what ``manage.py ledger_summary
--all --repair`` and migration rounds.0012 do for existing data): its time is reported. Both
lists are checked to give the same first page and count before anything is timed.

    .venv/bin/python bench/bench_hours.py [--members 300000] [--requests 20]
        [--db sqlite|postgresql] [--summarize]

Target: p95 <= 300 ms for the city-wide list on both databases.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
DBS = ("sqlite", "postgresql")
TARGET_MS = 300
NOW_YEAR = 2026


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=20, help="timed requests of each list")
    parser.add_argument("--db", choices=DBS, help="one database only (the default runs both)")
    parser.add_argument("--summarize", action="store_true", help="report the last results only")
    return parser.parse_args()


# --- Parent: both databases, one child process each -------------------------------------------


def run_both(args):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    results, problems = {}, []
    for db in DBS:
        path = OUT / f"hours-{db}.json"
        if not args.summarize:
            path.unlink(missing_ok=True)
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                f"--members={args.members}",
                f"--requests={args.requests}",
                f"--db={db}",
            ]
            if db == "postgresql":
                command = [str(ROOT / "scripts" / "with-postgres.sh"), *command]
            returncode = subprocess.run(command, cwd=ROOT, env=env).returncode
            if not path.exists():
                problems.append(f"{db}: did NOT complete (exit {returncode})")
                continue
        if path.exists():
            results[db] = json.loads(path.read_text())
        else:
            problems.append(f"{db}: no results")
    for problem in problems:
        print(f"!!! bench_hours: {problem}")
    for db, result in results.items():
        for line in table(db, result):
            print(line)
    write_summary(args, results, problems)
    met = all(case["met"] for r in results.values() for case in r["cases"].values())
    return 0 if met and not problems else 1


def table(db, result):
    yield f"bench_hours [{db}]  {result['machine']}  load {result['load']}"
    yield f"  data: {result['data']}"
    yield (
        f"  {'list':<22} {'p50 ms':>8} {'p95 ms':>8} {'target':>8} {'queries':>8} "
        f"{'baseline p50':>13} {'baseline p95':>13}"
    )
    for name, case in result["cases"].items():
        yield (
            f"  {name:<22} {case['p50']:>8.1f} {case['p95']:>8.1f} {'≤ ' + str(TARGET_MS):>8} "
            f"{case['queries']:>8} {case['baseline_p50']:>13.1f} {case['baseline_p95']:>13.1f}"
            f"  {'met' if case['met'] else 'NOT met'}"
        )
    yield (
        f"  summary built from the sources in {result['rebuild_s']:.1f} s ({result['rows']:,} rows)"
    )


def write_summary(args, results, problems):
    sys.path.insert(0, str(HERE))
    from _setup import result_row, summarised_from, write_results

    rows, data, notes = [], [], list(problems)
    for db in DBS:
        result = results.get(db)
        if result is None:
            rows.append(result_row(f"[{db}] study-hours list", "no figures", met=False))
            continue
        data.append(f"{db}: {result['data']}")
        for name, case in result["cases"].items():
            rows.append(
                result_row(
                    f"[{db}] {name}: server time p95",
                    round(case["p95"], 1),
                    "ms",
                    baseline=round(case["baseline_p95"], 1),
                    baseline_label="the same count and page summed live from the sources",
                    target=f"≤ {TARGET_MS} ms",
                    met=case["met"],
                    notes=f"p50 {case['p50']:.1f} ms; {case['queries']} queries"
                    + (
                        f", the slowest {case['slowest'][0][0]:.0f} ms ({case['slowest'][0][1]})"
                        if case.get("slowest")
                        else ""
                    )
                    + f"; baseline p50 {case['baseline_p50']:.1f} ms; load {result['load']}",
                )
            )
        rows.append(
            result_row(
                f"[{db}] building the summary from existing data",
                round(result["rebuild_s"], 1),
                "s",
                notes=f"{result['rows']:,} rows (hours_summary_rebuild)",
            )
        )
    measured_at = None
    if args.summarize:
        note, measured_at = summarised_from([OUT / f"hours-{db}.json" for db in results])
        notes.append(note)
    write_results(
        "hours",
        rows,
        title="The city-wide study-hours list (学时档案) on the scale city",
        ok=not problems,
        data="; ".join(data),
        notes=notes,
        measured_at=measured_at,
    )


# --- Child: one database ----------------------------------------------------------------------


def add_attendance(city, rng):
    """A group session in the city that a third of the active members attended."""
    from django.db import transaction

    from members.models import Member
    from rounds.models import Attendance, Round
    from tests.rounds import builders as round_builders

    training_round = Round.objects.filter(kind=Round.Kind.QUARTERLY).order_by("-opens_on").first()
    start = round_builders.aware(NOW_YEAR, 11, 12, 9, 0)
    session = round_builders.session(training_round, city, start=start, title="11月集中学习")
    sitting = round_builders.sitting(session)
    members = list(Member.objects.filter(is_active=True).values_list("pk", flat=True))
    present = rng.sample(members, len(members) // 3)
    rows = [
        Attendance(
            sitting=sitting,
            member_id=pk,
            status=rng.choice((Attendance.Status.PRESENT, Attendance.Status.LATE)),
            method=Attendance.Method.PAPER,
            recorded_at=start + timedelta(minutes=5),
        )
        for pk in present
    ]
    with transaction.atomic():
        Attendance.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def page_rows(user, ledger_for_members, below):
    """What /hours/org/ asks: the count and the first page (rounds/views/ledger.py)."""
    from django.core.paginator import Paginator

    from members import access
    from rounds import ledger
    from rounds.views.ledger import LEDGER_PAGE_SIZE, LEDGER_ROLES

    members = access.visible_members(user, LEDGER_ROLES).active().party_members()
    rows = ledger_for_members(members_qs=members, year=NOW_YEAR)
    if below:
        rows = ledger.below_requirement(rows)
    page = Paginator(rows.select_related("organization"), LEDGER_PAGE_SIZE).get_page(1)
    return page.paginator.count, [
        (m.pk, m.hours_lessons, m.hours_sessions, m.hours_records, m.hours_total, m.is_below)
        for m in page.object_list
    ]


SLOW_MS = 20


def what_query(sql):
    """A query, named by what it reads: its first table and whether it counts."""
    words = sql.split()
    table = next((w for prev, w in pairwise(words) if prev == "FROM"), "?")
    return ("COUNT " if "COUNT(" in sql[:40] else "SELECT ") + table.strip('"')


def explain_slow(name, timed):
    """The plans of the queries of one request that took over SLOW_MS ms, as the database
    runs them (_setup.query_plan)."""
    from _setup import query_plan

    return [
        f"--- {name}: {ms:.1f} ms\n{sql}\n{query_plan(sql)}" for ms, sql in timed if ms >= SLOW_MS
    ]


def percentile(values, share):
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


def timed_runs(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def run_one(args):
    if args.db == "postgresql" and not os.environ.get("DATABASE_URL"):
        raise SystemExit("--db=postgresql needs DATABASE_URL (run under scripts/with-postgres.sh)")
    if args.db == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(HERE))
    import time_machine
    from _setup import django_with_fresh_db, machine

    django_with_fresh_db("hours")
    from bench_plans import build, staff_client
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse
    from django.utils import timezone

    from core.planner import planner_statistics_refresh
    from members.models import Member, Role
    from rounds import ledger
    from rounds.hours import hours_summary_rebuild

    settings.ALLOWED_HOSTS = ["*"]
    rng = random.Random(2026)
    frozen = timezone.make_aware(timezone.datetime(NOW_YEAR, 12, 1, 10))
    started = time.perf_counter()
    with time_machine.travel(frozen, tick=True):
        nodes, (_participations, records) = build(args.members, rng)
        attended = add_attendance(nodes["city"], rng)
        built = time.perf_counter() - started
        rebuild_started = time.perf_counter()
        summary_rows = hours_summary_rebuild()
        rebuild_s = time.perf_counter() - rebuild_started
        # As the product does after a bulk load (core/planner.py: the seeds, an import, a
        # rebuild by command): the planner's statistics. PostgreSQL is also vacuumed, as
        # autovacuum would have done by the time a city holds this much.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
        else:
            planner_statistics_refresh()
        client = staff_client("bench_trainer", Role.TRAINER, nodes["city"])
        user = get_user_model().objects.get(username="bench_trainer")
        url = reverse("rounds:ledger_org")
        cases, plans = {}, []
        for name, below in (("city-wide list", False), ("city-wide, below only", True)):
            ours = page_rows(user, ledger.ledger_for_members, below)
            theirs = page_rows(user, ledger.ledger_for_members_live, below)
            assert ours == theirs, (name, ours[0], theirs[0])
            query = f"?year={NOW_YEAR}" + ("&below=1" if below else "")

            def get(query=query):
                assert client.get(url + query).status_code == 200

            times = timed_runs(get, args.requests)
            with CaptureQueriesContext(connection) as captured:
                get()
            slowest = sorted(
                ((float(q["time"]) * 1000, q["sql"]) for q in captured.captured_queries),
                reverse=True,
            )
            plans += explain_slow(name, slowest)
            base = timed_runs(
                lambda below=below: page_rows(user, ledger.ledger_for_members_live, below),
                max(3, args.requests // 5),
            )
            p95 = percentile(times, 0.95)
            cases[name] = {
                "p50": statistics.median(times),
                "p95": p95,
                "met": p95 <= TARGET_MS,
                "queries": len(captured),
                "slowest": [(ms, what_query(sql)) for ms, sql in slowest[:3]],
                "baseline_p50": statistics.median(base),
                "baseline_p95": percentile(base, 0.95),
                "count": ours[0],
            }
    people = Member.objects.count()
    result = {
        "machine": machine(),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "data": f"{people:,} people, {records:,} study records, {attended:,} attendances, "
        f"watch progress of the scale city (built in {built:.0f} s)",
        "cases": cases,
        "rebuild_s": rebuild_s,
        "rows": summary_rows,
    }
    for line in table(args.db, result):
        print(line)
    (OUT / f"hours_plans-{args.db}.txt").write_text(
        f"bench_hours: the queries of each list over {SLOW_MS} ms, with their plans [{args.db}]"
        "\n\n" + "\n\n".join(plans)
    )
    print(f"  query plans: {OUT / f'hours_plans-{args.db}.txt'}")
    (OUT / f"hours-{args.db}.json").write_text(json.dumps(result))
    return 0


def main():
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.db and not args.summarize:
        return run_one(args)
    return run_both(args)


if __name__ == "__main__":
    sys.exit(main())

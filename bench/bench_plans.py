"""The five-year plan page on the 300,000-member scale city, with categories and two years of
ledger history: server time (p50, p95) and SQL queries of the city plan page (the trainer's)
and a county plan page (a county secretary's), beside a same-run baseline: the same figures
from one hand-written SQL query per target and year.

Data: bench_coverage's scale city and rounds (1 % inactive, last quarter's round closed, this
quarter's under way), watch progress consistent with it (bench_pages.fill_progress), and on
top: every secretary with the date they took office (a sixth within the last year), village
and community branches, 1 % of people as 发展对象, a 书记专题培训 and a 新任书记培训 with their
participation rows, and for every active member approved study records in the two years
(2025, 2026). The plan has the six targets of the demo city's plan.

Both the page and the baseline are checked to give the same figures before anything is timed.
Queries are counted on the 300,000-member city and on a 3,000-member one (--small): they must
not grow with the data.

    .venv/bin/python bench/bench_plans.py [--members 300000] [--small 3000] [--requests 30]
        [--db sqlite|postgresql] [--summarize]

Targets: p95 <= 300 ms for the city page, <= 100 ms for a county page.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
DBS = ("sqlite", "postgresql")
TARGETS_MS = {"city": 300, "county": 100}
YEARS = (2025, 2026)
NOW_YEAR = 2026


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=300_000)
    parser.add_argument("--small", type=int, default=3_000, help="members of the query-count city")
    parser.add_argument("--requests", type=int, default=30, help="timed requests of each page")
    parser.add_argument("--db", choices=DBS, help="one database only (the default runs both)")
    parser.add_argument("--size", choices=("small", "large"), help="with --db: one city only")
    parser.add_argument("--summarize", action="store_true", help="print the last results only")
    return parser.parse_args()


# --- Parent: both databases, one child process each -------------------------------------------


def run_both(args):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    results, failures = {}, []
    for db in DBS:
        paths = {size: OUT / f"plans-{db}-{size}.json" for size in ("small", "large")}
        for size, path in paths.items():
            if args.summarize:
                continue
            path.unlink(missing_ok=True)
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                f"--members={args.members}",
                f"--small={args.small}",
                f"--requests={args.requests}",
                f"--db={db}",
                f"--size={size}",
            ]
            if db == "postgresql":
                command = [str(ROOT / "scripts" / "with-postgres.sh"), *command]
            returncode = subprocess.run(command, cwd=ROOT, env=env).returncode
            if not path.exists():
                failures.append(f"{db} {size}: did NOT complete (exit {returncode})")
        if all(path.exists() for path in paths.values()):
            result = json.loads(paths["large"].read_text())
            result["small_queries"] = json.loads(paths["small"].read_text())["queries"]
            result["flat"] = result["small_queries"] == result["large_queries"]
            results[db] = result
        elif args.summarize:
            failures.append(f"{db}: no results")
    for failure in failures:
        print(f"!!! bench_plans: {failure}")
    ok = not failures
    for db, result in results.items():
        for line in table(db, result):
            print(line)
        ok = ok and all(page["met"] for page in result["pages"].values()) and result["flat"]
    _write_rows(results, failures, args.summarize)
    return 0 if ok else 1


def table(db, result):
    yield f"bench_plans [{db}]  {result['machine']}"
    yield f"  data: {result['data']}"
    yield (
        f"  {'page':<8} {'p50 ms':>8} {'p95 ms':>8} {'target':>8} {'queries':>8} "
        f"{'baseline p95 ms':>16} {'baseline queries':>17}"
    )
    for name, page in result["pages"].items():
        yield (
            f"  {name:<8} {page['p50']:>8.1f} {page['p95']:>8.1f} {'≤ ' + str(page['target']):>8} "
            f"{page['queries']:>8} {page['baseline_p95']:>16.1f} {page['baseline_queries']:>17}"
            f"  {'met' if page['met'] else 'NOT met'}"
        )
    if result["flat"] is not None:
        yield (
            f"  queries on {result['small']:,} members: {result['small_queries']}; on "
            f"{result['members']:,}: {result['large_queries']} "
            f"({'flat' if result['flat'] else 'NOT flat'})"
        )
    for line in result.get("slowest", []):
        yield f"  slowest: {line}"


def _write_rows(results, failures, summarize=False):
    """bench/out/plans.json, the rows RESULTS.md shows (_setup.write_results)."""
    sys.path.insert(0, str(HERE))
    from _setup import result_row, summarised_from, write_results

    rows, notes = [], list(failures)
    for db in DBS:
        if db not in results:
            rows.append(result_row(f"{db}: plan pages", "no figures", met=False))
    for db, result in results.items():
        for name, page in result["pages"].items():
            rows.append(
                result_row(
                    f"{db}: {name} plan page p95",
                    round(page["p95"], 1),
                    "ms",
                    baseline=round(page["baseline_p95"], 1),
                    baseline_label="one SQL query per target and year",
                    target=f"≤ {page['target']} ms",
                    met=page["met"],
                    notes=f"{page['queries']} queries",
                )
            )
        rows.append(
            result_row(
                f"{db}: queries, {result['small']:,} vs {result['members']:,} members",
                f"{result['small_queries']} / {result['large_queries']}",
                target="flat",
                met=result["flat"],
            )
        )
    measured_at = None
    if summarize:
        paths = [OUT / f"plans-{db}-large.json" for db in results]
        note, measured_at = summarised_from(paths)
        notes.append(note)
    write_results(
        "plans",
        rows,
        title="The five-year plan page on the scale city",
        ok=not failures,
        data="; ".join(f"{db}: {result['data']}" for db, result in results.items()),
        notes=notes,
        measured_at=measured_at,
    )


# --- Child: one database ----------------------------------------------------------------------


def add_categories_and_history(city, rng):
    """Secretaries' start dates, village and community branches, 发展对象, the secretaries'
    trainings and two years of approved study records, in bulk."""
    from django.db import connection, transaction
    from django.utils import timezone

    from members.models import Member, Organization
    from rounds.models import Participation, Round, StudyRecord
    from tests.rounds import builders as round_builders

    branches = list(
        Organization.objects.filter(kind="branch", path__startswith=city.path).values_list(
            "pk", flat=True
        )
    )
    community = rng.sample(branches, len(branches) // 3)
    with transaction.atomic():
        for start in range(0, len(community), 500):
            Organization.objects.filter(pk__in=community[start : start + 500]).update(
                domain=Organization.Domain.COMMUNITY
            )
    members = list(Member.objects.filter(is_active=True).values_list("pk", "position"))
    secretaries = [pk for pk, position in members if position == Member.Position.SECRETARY]
    candidates = rng.sample(
        [pk for pk, position in members if position == "member"], len(members) // 100
    )
    with transaction.atomic():
        batch = []
        for pk in secretaries:
            recent = rng.random() < 1 / 6
            since = (
                date(NOW_YEAR, rng.randint(1, 10), rng.randint(1, 28))
                if recent
                else date(rng.randint(2015, 2025), rng.randint(1, 12), rng.randint(1, 28))
            )
            batch.append(Member(pk=pk, position_since=since))
        Member.objects.bulk_update(batch, ["position_since"], batch_size=2000)
        for start in range(0, len(candidates), 2000):
            Member.objects.filter(pk__in=candidates[start : start + 2000]).update(
                status=Member.Status.CANDIDATE
            )

    lessons = list(Round.objects.filter(kind=Round.Kind.QUARTERLY).first().lessons.all())
    secretary_round = round_builders.training_round(
        [city],
        lessons,
        title="2026年村（社区）书记专题培训",
        kind=Round.Kind.SECRETARY,
        positions=["secretary", "deputy_secretary"],
        domains=["rural", "community"],
        opens_on=date(NOW_YEAR, 3, 1),
    )
    new_round = round_builders.training_round(
        [city],
        lessons,
        title="2026年新任书记培训",
        kind=Round.Kind.NEW_SECRETARY,
        positions=["secretary"],
        new_in_position_months=12,
        opens_on=date(NOW_YEAR, 1, 1),
    )
    finished = timezone.make_aware(timezone.datetime(NOW_YEAR, 11, 10, 12))
    rows = [
        Participation(
            round=training_round,
            member_id=pk,
            status=Participation.Status.COMPLETED,
            method="online",
            lessons_done=len(lessons),
            lessons_required=len(lessons),
            completed_at=finished - timedelta(days=rng.randrange(200)),
        )
        for training_round, share in ((secretary_round, 0.7), (new_round, 0.5))
        for pk in secretaries
        if rng.random() < share
    ]
    records = [
        StudyRecord(
            member_id=pk,
            kind=StudyRecord.Kind.SEASONAL,
            title="冬训",
            studied_on=date(year, rng.randint(1, 11), rng.randint(1, 28)),
            hours=Decimal(rng.choice(("8", "16", "24", "32", "40", "56"))),
            state=StudyRecord.State.APPROVED,
            form_token=f"bench-{year}-{pk}",
        )
        for year in YEARS
        for pk, _position in members
    ]
    with transaction.atomic():
        Participation.objects.bulk_create(rows, batch_size=5000)
        StudyRecord.objects.bulk_create(records, batch_size=5000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return len(rows), len(records)


def make_plan(city):
    """The demo city's plan: the same targets."""
    from rounds.demo import CITY_PLAN_TARGETS, add_plan_targets
    from rounds.models import StudyPlan

    plan = StudyPlan.objects.create(title="五年规划", organization=city, first_year=YEARS[0])
    add_plan_targets(plan, CITY_PLAN_TARGETS)
    return plan


# The baseline: one hand-written statement per target and year, giving (in the target, met).

AUDIENCE_SQL = {
    "members": "m.status IN ('full', 'probationary')",
    "secretaries": "m.status IN ('full', 'probationary') "
    "AND m.position IN ('secretary', 'deputy_secretary')",
    "village_secretaries": "m.status IN ('full', 'probationary') "
    "AND m.position IN ('secretary', 'deputy_secretary') AND o.domain IN ('rural', 'community')",
    "party_workers": "m.status IN ('full', 'probationary') AND m.position = 'party_worker'",
    "candidates": "m.status = 'candidate'",
}


def _hours_sql(year_filtered: bool) -> str:
    lesson = "completed_at IS NOT NULL" + (
        " AND completed_at >= %s AND completed_at < %s" if year_filtered else ""
    )
    session = "a.status IN ('present', 'late')" + (
        " AND st.start >= %s AND st.start < %s" if year_filtered else ""
    )
    record = "state = 'approved'" + (
        " AND studied_on >= %s AND studied_on < %s" if year_filtered else ""
    )
    return f"""
        SELECT COUNT(*), COUNT(CASE WHEN ROUND(
            COALESCE(l.h, 0) + COALESCE(s.h, 0) + COALESCE(r.h, 0), 1) >= %s THEN 1 END)
        FROM members_member m JOIN members_organization o ON o.id = m.organization_id
        LEFT JOIN (SELECT member_id, SUM(hours_earned) AS h FROM courses_lessonprogress
                   WHERE {lesson} GROUP BY member_id) l ON l.member_id = m.id
        LEFT JOIN (SELECT a.member_id, SUM(se.hours) AS h FROM rounds_attendance a
                   JOIN rounds_sitting st ON st.id = a.sitting_id
                   JOIN rounds_session se ON se.id = st.session_id
                   WHERE {session} GROUP BY a.member_id) s ON s.member_id = m.id
        LEFT JOIN (SELECT member_id, SUM(hours) AS h FROM rounds_studyrecord
                   WHERE {record} GROUP BY member_id) r ON r.member_id = m.id
        WHERE m.is_active AND o.path >= %s AND o.path < %s AND {{audience}}"""


def baseline(plan, node):
    """{(target id, year): (in the target, met)} by one statement per target and year."""
    from django.db import connection

    from rounds.ledger import year_bounds
    from rounds.plans import plan_years

    vendor = connection.vendor
    low, high = node.path, node.path[:-1] + chr(ord(node.path[-1]) + 1)
    found = {}
    with connection.cursor() as cursor:
        for target in plan.targets.all():
            audience = AUDIENCE_SQL[target.audience]
            years = [None] if target.kind == "hours_before_admission" else plan_years(plan)
            for year in years:
                if target.kind in ("hours", "hours_before_admission"):
                    sql = _hours_sql(year is not None).replace("{audience}", audience)
                    params = []
                    if year is not None:
                        start, end = (
                            connection.ops.adapt_datetimefield_value(moment)
                            for moment in year_bounds(year)
                        )
                        params = [start, end, start, end, date(year, 1, 1), date(year + 1, 1, 1)]
                    # A number, not a Decimal: SQLite would compare it as text.
                    params = [float(target.number), *params, low, high]
                elif target.kind == "trained":
                    sql = f"""
                        SELECT COUNT(*), COUNT(CASE WHEN EXISTS (
                            SELECT 1 FROM rounds_participation p
                            JOIN rounds_round r ON r.id = p.round_id
                            WHERE p.member_id = m.id AND p.status = 'completed' AND r.kind = %s
                              AND r.opens_on >= %s AND r.opens_on < %s) THEN 1 END)
                        FROM members_member m JOIN members_organization o
                          ON o.id = m.organization_id
                        WHERE m.is_active AND o.path >= %s AND o.path < %s AND {audience}"""
                    params = [
                        target.training_kind,
                        date(year, 1, 1),
                        date(year + 1, 1, 1),
                        low,
                        high,
                    ]
                else:  # new in the position: took office in the year, trained within N months
                    months = int(target.number)
                    if vendor == "postgresql":
                        due = f"(m.position_since + INTERVAL '{months} months')::date"
                        done_day = "(p.completed_at AT TIME ZONE 'Asia/Shanghai')::date"
                    else:
                        due = f"date(m.position_since, '+{months} months')"
                        done_day = "date(p.completed_at, '+8 hours')"
                    sql = f"""
                        SELECT COUNT(*), COUNT(CASE WHEN EXISTS (
                            SELECT 1 FROM rounds_participation p
                            JOIN rounds_round r ON r.id = p.round_id
                            WHERE p.member_id = m.id AND p.status = 'completed' AND r.kind = %s
                              AND p.completed_at IS NOT NULL AND {done_day} <= {due})
                          THEN 1 END)
                        FROM members_member m JOIN members_organization o
                          ON o.id = m.organization_id
                        WHERE m.is_active AND o.path >= %s AND o.path < %s AND {audience}
                          AND m.position_since >= %s AND m.position_since < %s"""
                    params = [
                        target.training_kind,
                        low,
                        high,
                        date(year, 1, 1),
                        date(year + 1, 1, 1),
                    ]
                cursor.execute(sql, params)
                count, met = cursor.fetchone()
                found[target.pk, year or NOW_YEAR] = (count, met)
    return found


def page_figures(plan, node):
    from rounds import plans

    return {
        (item.target.pk, figure.year): (figure.audience, figure.met)
        for item in plans.target_figures(plan, node)
        for figure in item.years
    }


def percentile(values, share):
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))
    return ordered[index]


def measure_page(client, url, requests):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        assert client.get(url).status_code == 200
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    slowest = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:2]
    return times, len(captured), [f"{q['time']} s: {q['sql'][:160]}" for q in slowest]


def measure_baseline(plan, node, requests):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    baseline(plan, node)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        baseline(plan, node)
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as captured:
        baseline(plan, node)
    return times, len(captured)


def query_count(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def build(members, rng):
    sys.path.insert(0, str(HERE))
    from bench_coverage import build_data
    from bench_pages import fill_progress

    current, nodes = build_data(members)
    fill_progress(current, list(current.lessons.all()))
    added = add_categories_and_history(nodes["city"], rng)
    return nodes, added


def build_hours_summary():
    """The yearly hours summary of the data the bulk inserts above wrote without it (what
    ``manage.py ledger_summary --all --repair`` does for existing data)."""
    from django.db import connection

    from rounds.hours import hours_summary_rebuild

    rows = hours_summary_rebuild()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return rows


def staff_client(username, role, node):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from members import services

    user = get_user_model().objects.create_user(username=username, password="x")
    services.role_assign(user=user, role=role, organization=node)
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user, backend="members.backends.PhoneOrUsernameBackend")
    return client


def run_one(args):
    if args.db == "postgresql" and not os.environ.get("DATABASE_URL"):
        raise SystemExit("--db=postgresql needs DATABASE_URL (run under scripts/with-postgres.sh)")
    if args.db == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(HERE))
    import time_machine
    from _setup import django_with_fresh_db, machine

    size = args.size or "large"
    django_with_fresh_db(f"plans-{size}")
    from django.conf import settings
    from django.urls import reverse
    from django.utils import timezone

    from members.models import Member, Role

    settings.ALLOWED_HOSTS = ["*"]
    rng = random.Random(2026)
    frozen = timezone.make_aware(timezone.datetime(NOW_YEAR, 12, 1, 10))
    path = OUT / f"plans-{args.db}-{size}.json"
    started = time.perf_counter()
    with time_machine.travel(frozen, tick=True):
        members = args.small if size == "small" else args.members
        nodes, (participations, records) = build(members, rng)
        build_hours_summary()
        built = time.perf_counter() - started
        plan = make_plan(nodes["city"])
        url = reverse("rounds:plan", args=[plan.pk])
        clients = {
            "city": staff_client("bench_trainer", Role.TRAINER, nodes["city"]),
            "county": staff_client("bench_county", Role.SECRETARY, nodes["county"]),
        }
        if size == "small":
            queries = query_count(clients["city"], url)
            print(f"bench_plans [{args.db}] {members:,} members: {queries} queries (city page)")
            path.write_text(json.dumps({"queries": queries}))
            return 0
        people = Member.objects.count()
        candidates = Member.objects.filter(status="candidate").count()
        data = (
            f"{people:,} people ({candidates:,} 发展对象), {participations:,} secretaries' "
            f"training rows, {records:,} study records in {len(YEARS)} years "
            f"(built in {built:.0f} s)"
        )
        pages = {}
        slowest = []
        for name, client in clients.items():
            node = nodes[name]
            ours = page_figures(plan, node)
            theirs = baseline(plan, node)
            assert ours == theirs, (name, ours, theirs)
            times, queries, heavy = measure_page(client, url + f"?org={node.pk}", args.requests)
            base_times, base_queries = measure_baseline(plan, node, max(5, args.requests // 3))
            p95 = percentile(times, 0.95)
            pages[name] = {
                "node": f"{node.code} (depth {node.depth})",
                "p50": statistics.median(times),
                "p95": p95,
                "target": TARGETS_MS[name],
                "met": p95 <= TARGETS_MS[name],
                "queries": queries,
                "baseline_p95": percentile(base_times, 0.95),
                "baseline_queries": base_queries,
            }
            slowest += [f"{name} {line}" for line in heavy]
        large_queries = query_count(clients["city"], url)
    result = {
        "machine": machine(),
        "data": data,
        "members": args.members,
        "small": args.small,
        "pages": pages,
        "small_queries": None,
        "large_queries": large_queries,
        "flat": None,
        "slowest": slowest,
    }
    for line in table(args.db, result):
        print(line)
    path.write_text(json.dumps(result))
    return 0


def main():
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.db and not args.summarize:
        return run_one(args)
    return run_both(args)


if __name__ == "__main__":
    sys.exit(main())

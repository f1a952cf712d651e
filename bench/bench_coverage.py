"""Coverage (覆盖率) of a round on the scale city: the whole city and one county, per child node.

Coverage is read from the round's coverage counters (rounds.counters). Targets (issue 18), on
both databases: the coverage PAGE (through its URL, in-process: middleware, view, template, the
member list) p95 <= 50 ms at every level, city included; the city figure (coverage_children)
<= 0.1 of the baseline; a number of SQL queries that does not grow with the tree (the same for
the city, a county, a township, a village and a branch).

Baseline, measured in the same run on the same rows: ONE hand-written GROUP BY (members joined
to their organisation, LEFT JOIN their participation in the round, grouped by the child-level
path prefix with conditional counts) through connection.cursor(). Its figures must equal
rounds.coverage.coverage_children's, or the run stops.

The data set: the scale city (members.demo.seed_scale_city), 1 % of members inactive, a
published round over the whole city with 3 required lessons and participation rows for ~70 %
of members, plus last quarter's closed round with rows for ~90 % (so the table holds other
rounds' rows, as it does in production). The rows are inserted directly, so the counters are
then rebuilt once from them (timed: what ``manage.py coverage_counters --repair`` costs). Both
databases: the embedded default (SQLite) and
PostgreSQL (a throwaway cluster via scripts/with-postgres.sh). Query plans of the city case go
to bench/out/coverage_plans-<db>.txt.

    .venv/bin/python bench/bench_coverage.py [--members 300000] [--repeat 7] [--db sqlite]
"""

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
DBS = ("sqlite", "postgresql")
TARGET_PAGE_P95_MS = 50
TARGET_CITY_RATIO = 0.1
PAGE_RUNS = 40  # page requests per level for the p95
FIGURES = ("in_scope", "completed", "in_progress", "on_leave", "exempt")
# Share of members per status in the current round; the rest have no row (not started).
CURRENT_MIX = (("completed", 0.55), ("in_progress", 0.10), ("leave", 0.03), ("exempt", 0.02))
EARLIER_MIX = (("completed", 0.85), ("in_progress", 0.03), ("leave", 0.01), ("exempt", 0.01))
INACTIVE_SHARE = 0.01
LEVELS = ("city", "county", "township", "village", "branch")


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--members", type=int, default=int(os.environ.get("BENCH_COVERAGE_MEMBERS", 300_000))
    )
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each case")
    parser.add_argument("--db", choices=DBS, help="one database only (the default runs both)")
    parser.add_argument(
        "--summarize",
        action="store_true",
        help="measure nothing: the summary and coverage.json from the per-database results "
        "already in bench/out",
    )
    return parser.parse_args()


# --- Both databases: one child process each ------------------------------------------------------


def run_both(args):
    """Re-run this script once per database; PostgreSQL under scripts/with-postgres.sh."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    failed = 0
    results = {}
    problems = []
    for db in DBS:
        result_file = OUT / f"coverage-{db}.json"
        if args.summarize:
            if result_file.exists():
                results[db] = json.loads(result_file.read_text())
            else:
                problems.append(f"{db}: no results in {result_file.name}")
                failed += 1
            continue
        result_file.unlink(missing_ok=True)
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            f"--members={args.members}",
            f"--repeat={args.repeat}",
            f"--db={db}",
        ]
        if db == "postgresql":
            command = [str(ROOT / "scripts" / "with-postgres.sh"), *command]
        returncode = subprocess.run(command, cwd=ROOT, env=env).returncode
        if result_file.exists():
            results[db] = json.loads(result_file.read_text())
        elif db == "postgresql" and returncode == 0:
            # with-postgres.sh found no PostgreSQL and said so: a failure only under CI.
            print("!!! bench_coverage: the PostgreSQL part was NOT run (no PostgreSQL here)")
            problems.append(f"{db}: NOT run (no PostgreSQL on this machine)")
            failed += bool(os.environ.get("CI"))
        else:
            print(f"!!! bench_coverage: the {db} run did NOT complete (exit {returncode})")
            problems.append(f"{db}: did NOT complete (exit {returncode})")
            failed += 1
    print_summary(results)
    write_summary(args, results, problems)
    return 1 if failed else 0


def write_summary(args, results, problems):
    """bench/out/coverage.json for RESULTS.md: per database, each level and the query count."""
    sys.path.insert(0, str(HERE))
    from _setup import result_row, summarised_from, write_results

    rows, data, notes = [], [], list(problems)
    for db in DBS:
        r = results.get(db)
        if r is None:
            rows.append(result_row(f"[{db}] coverage", "no figures", met=False))
            continue
        data.append(f"{db}: {r['data']}")
        for level in LEVELS:
            case = r["cases"][level]
            measured, base = case["ours"], case["baseline"]
            ratio = measured["median"] / base["median"] if base["median"] else float("inf")
            targets, met = [], None
            if level == "city":
                targets.append(f"<= {TARGET_CITY_RATIO:g}x the baseline")
                met = ratio <= TARGET_CITY_RATIO
            page = case["page"]
            rows.append(
                result_row(
                    f"[{db}] {level} {case['node']}: coverage PAGE, p95 server time",
                    round(page["p95"], 1),
                    "ms",
                    baseline=round(base["median"], 1),
                    baseline_label="one hand-written GROUP BY (median)",
                    target=f"<= {TARGET_PAGE_P95_MS} ms",
                    met=page["p95"] <= TARGET_PAGE_P95_MS,
                    notes=f"{len(page['runs'])} requests in-process; median "
                    f"{page['median']:.1f} ms, max {page['max']:.1f} ms; this process's CPU "
                    f"median {page['cpu_median']:.1f} ms",
                )
            )
            rows.append(
                result_row(
                    f"[{db}] {level} {case['node']}: coverage_children (the figures), median",
                    round(measured["median"], 1),
                    "ms",
                    baseline=round(base["median"], 1),
                    baseline_label="one hand-written GROUP BY",
                    target=" and ".join(targets) or "(reference)",
                    met=met,
                    notes=f"{case['in_scope']:,} in scope; ratio {ratio:.3f}; "
                    f"min-max {measured['min']:.1f}-{measured['max']:.1f} ms",
                )
            )
        rows.append(
            result_row(
                f"[{db}] counters rebuilt for every round from the rows (coverage_counters "
                "--all --repair)",
                round(r.get("counters_built_s", 0), 1),
                "s",
                target="(reference)",
            )
        )
        if "recount" in r:
            rows.append(
                result_row(
                    f"[{db}] a status change's recount: one branch's counter rows and the "
                    "subtree rows of the branch and its ancestors, locked root first, median",
                    round(r["recount"]["median"], 1),
                    "ms",
                    target="(reference)",
                    notes=f"{r['recount']['queries']} queries; max "
                    f"{r['recount']['max']:.1f} ms over {len(r['recount']['runs'])} runs",
                )
            )
        counts = [r["cases"][level]["queries"] for level in LEVELS]
        rows.append(
            result_row(
                f"[{db}] SQL queries per call, " + ", ".join(LEVELS),
                " / ".join(map(str, counts)),
                baseline=r["cases"]["city"]["baseline_queries"],
                baseline_label="query for the hand-written GROUP BY",
                target="the same at every level",
                met=len(set(counts)) == 1,
            )
        )
    measured_at = None
    if args.summarize:
        note, measured_at = summarised_from([OUT / f"coverage-{db}.json" for db in results])
        notes.append(note)
    notes.append("query plans: bench/out/coverage_plans-<db>.txt")
    write_results(
        "coverage",
        rows,
        title="Coverage of a round on the scale city, per child node",
        ok=not problems,
        data="; ".join(data),
        notes=notes,
        measured_at=measured_at,
    )


def print_summary(results):
    print(
        f"bench_coverage summary (targets: every coverage page p95 <= {TARGET_PAGE_P95_MS} ms; "
        f"the city figure <= {TARGET_CITY_RATIO:g}x the baseline; queries the same at every "
        "level)"
    )
    for db, r in results.items():
        print(f"  [{db}] machine: {r['machine']}")
        print(f"  [{db}] data: {r['data']}")
        for line in table(db, r):
            print(line)
    for db in DBS:
        if db not in results:
            print(f"  {db:<11}!!! NO FIGURES: this database's run did not happen")


def table(db, r):
    header = (
        f"  {'database':<11}{'case':<10}{'page p95':>9}{'median ms':>10}{'min-max ms':>16}"
        f"{'queries':>8}{'baseline ms':>12}{'ratio':>7}  target"
    )
    lines = [header]
    for level in LEVELS:
        case = r["cases"][level]
        measured, base = case["ours"], case["baseline"]
        ratio = measured["median"] / base["median"] if base["median"] else float("inf")
        p95 = case["page"]["p95"]
        verdicts = [
            f"page <= {TARGET_PAGE_P95_MS} ms {'met' if p95 <= TARGET_PAGE_P95_MS else 'NOT met'}"
        ]
        if level == "city":
            verdicts.append(
                f"ratio <= {TARGET_CITY_RATIO:g} "
                + ("met" if ratio <= TARGET_CITY_RATIO else "NOT met")
            )
        spread = f"{measured['min']:.1f}-{measured['max']:.1f}"
        lines.append(
            f"  {db:<11}{level:<10}{p95:>9.1f}{measured['median']:>10.1f}{spread:>16}"
            f"{case['queries']:>8}{base['median']:>12.1f}{ratio:>7.3f}  " + ", ".join(verdicts)
        )
    counts = {r["cases"][level]["queries"] for level in LEVELS}
    lines.append(
        f"  {db:<11}queries per call: "
        + ", ".join(f"{level} {r['cases'][level]['queries']}" for level in LEVELS)
        + f" -> constant {'met' if len(counts) == 1 else 'NOT met'}"
    )
    return lines


# --- One database: data set, measurements ---------------------------------------------------------


def aware(*args):
    from django.utils import timezone

    return timezone.make_aware(datetime(*args))


def pick(rng, mix):
    draw = rng.random()
    for status, share in mix:
        if draw < share:
            return status
        draw -= share
    return None


def participations(training_round, member_ids, mix, rng, lessons_required, finished_at):
    """Participation rows as participation_refresh would leave them, for a draw of members."""
    from rounds.models import Participation

    for member_id in member_ids:
        status = pick(rng, mix)
        if status is None:
            continue  # no row: not started
        done = {"completed": lessons_required, "in_progress": rng.randrange(1, lessons_required)}
        yield Participation(
            round=training_round,
            member_id=member_id,
            status=status,
            method=rng.choice(("online", "session", "mixed")) if status == "completed" else "",
            lessons_done=done.get(status, 0),
            lessons_required=lessons_required,
            completed_at=finished_at - timedelta(minutes=rng.randrange(60 * 24 * 60))
            if status == "completed"
            else None,
        )


def rebuild_derived():
    """What the product keeps beside its rows (coverage counters, the yearly study-hours
    summary), built from data bulk-inserted past the services that keep it, as
    ``manage.py coverage_counters --all --repair`` and ``ledger_summary --all --repair`` would."""
    from rounds.counters import counters_recount
    from rounds.hours import hours_summary_rebuild
    from rounds.models import Round

    for training_round in Round.objects.order_by("pk"):
        counters_recount(training_round=training_round)
    hours_summary_rebuild()


def build_data(members_count):
    """The scale city, its rounds and participation rows; returns (round, nodes by level)."""
    from django.db import connection, transaction

    from members.demo import SCALE_ROOT_CODE, seed_scale_city
    from members.models import Member, Organization
    from rounds.models import Participation, Round
    from tests.courses import builders as course_builders
    from tests.rounds import builders as round_builders

    seed_scale_city(members_count)
    city = Organization.objects.get(code=SCALE_ROOT_CODE)
    rng = random.Random(2026)
    member_ids = list(Member.objects.order_by("pk").values_list("pk", flat=True))
    inactive = rng.sample(member_ids, int(len(member_ids) * INACTIVE_SHARE))
    with transaction.atomic():
        for start in range(0, len(inactive), 500):
            Member.objects.filter(pk__in=inactive[start : start + 500]).update(is_active=False)

    course = course_builders.course(title="规模测试课程")
    lessons = [course_builders.lesson(course, title=f"第{i}课") for i in (1, 2, 3)]
    earlier = round_builders.training_round(
        [city],
        lessons,
        title="2026年第三季度专题轮训",
        opens_on=date(2026, 7, 1),
        closes_on=date(2026, 9, 30),
        makeup_deadline=date(2026, 10, 31),
        state=Round.State.CLOSED,
    )
    current = round_builders.training_round([city], lessons, title="2026年第四季度专题轮训")
    # Rows are inserted directly, not through participation_refresh (one member at a time would
    # take hours at this scale): this benchmark measures reading coverage, not deriving status.
    for training_round, mix, finished in (
        (earlier, EARLIER_MIX, aware(2026, 9, 30, 18)),
        (current, CURRENT_MIX, aware(2026, 12, 20, 18)),
    ):
        rows = participations(training_round, member_ids, mix, rng, len(lessons), finished)
        with transaction.atomic():
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) == 5000:
                    Participation.objects.bulk_create(batch)
                    batch = []
            Participation.objects.bulk_create(batch)
    rebuild_derived()
    if connection.vendor == "postgresql":
        # In production autovacuum has vacuumed and analysed these tables; right after a bulk
        # load it has not yet (no planner statistics, no visibility map for index-only scans).
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")

    def first_child(node):
        return Organization.objects.filter(
            path__startswith=node.path, depth=node.depth + 1
        ).order_by("path")[0]

    nodes = {"city": city}
    for parent, level in pairwise(LEVELS):
        nodes[level] = first_child(nodes[parent])
    return current, nodes


def baseline_sql():
    """One hand-written GROUP BY: the node's members in scope, per child-level path prefix."""
    from members.models import Member, Organization
    from rounds.models import Participation

    counts = ",\n  ".join(
        f"COUNT(CASE WHEN p.status = '{status}' THEN 1 END) AS {name}"
        for name, status in (
            ("completed", "completed"),
            ("in_progress", "in_progress"),
            ("on_leave", "leave"),
            ("exempt", "exempt"),
        )
    )
    return f"""SELECT substr(o.path, 1, %s) AS prefix,
  COUNT(*) AS in_scope,
  {counts}
FROM {Member._meta.db_table} m
JOIN {Organization._meta.db_table} o ON o.id = m.organization_id
LEFT JOIN {Participation._meta.db_table} p ON p.member_id = m.id AND p.round_id = %s
WHERE m.is_active = %s AND o.path LIKE %s AND o.path LIKE %s
GROUP BY substr(o.path, 1, %s)"""


def baseline(training_round, scope, node):
    """{prefix: (in_scope, completed, in_progress, on_leave, exempt)} from the hand-written SQL."""
    from django.db import connection

    from members.models import Organization

    width = (node.depth + 1) * Organization.steplen
    params = [width, training_round.pk, True, scope.path + "%", node.path + "%", width]
    with connection.cursor() as cursor:
        cursor.execute(baseline_sql(), params)
        return {row[0]: tuple(row[1:]) for row in cursor.fetchall()}


def ours(training_round, node):
    from rounds.coverage import coverage_children

    return coverage_children(training_round=training_round, node=node)


def as_figures(coverage):
    """coverage_children's answer in the baseline's shape, and the node's total."""
    head, rows = coverage.head, coverage.rows
    per_child = {
        row.organization.path: tuple(getattr(row.figures, k) for k in FIGURES) for row in rows
    }
    return per_child, tuple(getattr(head.figures, k) for k in FIGURES)


def timings(functions, repeat):
    """Run each of ``functions`` once to warm up, then ``repeat`` times each, taking turns so
    that a busy moment on the machine falls on all of them alike; times in ms per function."""
    for function in functions.values():
        function()  # warm-up: caches, statement preparation
    times = {name: [] for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            times[name].append((time.perf_counter() - started) * 1000)
    return {
        name: {"median": statistics.median(t), "min": min(t), "max": max(t), "runs": t}
        for name, t in times.items()
    }


def page_timings(client, url, runs):
    """The coverage page through its URL, in-process (middleware, view, template): ms per
    request after one warm-up, with the p95."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    # The data set and everything built before stay alive: frozen, so that no full garbage
    # collection of them lands on a timed request (as bench_pages.measure does).
    gc.collect()
    gc.freeze()
    times, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    ordered = sorted(times)
    return {
        "p95": ordered[max(0, round(0.95 * len(ordered)) - 1)],
        "median": statistics.median(times),
        "max": ordered[-1],
        # This process's CPU time (SQLite runs inside it; PostgreSQL's share is not in it):
        # what the page costs when the machine is not shared.
        "cpu_median": statistics.median(cpu),
        "runs": times,
    }


def trainer_client(city):
    """A logged-in client of a trainer over the whole city (what a city trainer sees)."""
    from django.test import Client

    from members.models import Role
    from tests import factories

    user = factories.staff("bench_trainer", Role.TRAINER, city)
    client = Client()
    client.force_login(user, backend="members.backends.PhoneOrUsernameBackend")
    return client


def query_heads(function):
    """The start of each SQL statement ``function`` runs, to show what the queries are."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        function()
    return [" ".join(q["sql"].split())[:90] for q in context.captured_queries]


def write_plans(db, training_round, city):
    """EXPLAIN of the city case: the queries coverage_children runs, the live grouped count
    (what the domain filter still counts) and the baseline."""
    from _setup import query_plan
    from django.db import connection
    from django.db.models.functions import Substr
    from django.test.utils import CaptureQueriesContext

    from members.models import Organization
    from rounds.coverage import _grouped, coverage_children, members_in_node

    width = (city.depth + 1) * Organization.steplen

    grouped = _grouped(
        members_in_node(training_round, city),
        training_round,
        "prefix",
        Substr("organization__path", 1, width),
    )
    live_sql, live_params = grouped.query.sql_with_params()
    base_params = [width, training_round.pk, True, city.path + "%", city.path + "%", width]
    with CaptureQueriesContext(connection) as context:
        coverage_children(training_round=training_round, node=city)
    # Captured with their values filled in: EXPLAIN them as they are.
    ours = [
        (f"coverage_children, query {i}", q["sql"], None)
        for i, q in enumerate(context.captured_queries, 1)
    ]
    sections = []
    for label, sql, params in (
        *ours,
        ("the live grouped count (coverage_children_live)", live_sql, live_params),
        ("baseline", baseline_sql(), base_params),
    ):
        if params is None:
            sections.append(f"--- {label}\n{sql}\n{query_plan(sql, ())}")
            continue
        plan = query_plan(sql, params)
        shown = sql % tuple("'" + str(p) + "'" if isinstance(p, str) else p for p in params)
        sections.append(f"--- {label}\n{shown}\n{plan}")
    path = OUT / f"coverage_plans-{db}.txt"
    path.write_text(f"bench_coverage query plans [{db}], city case\n\n" + "\n\n".join(sections))
    return path


def run_one(args):
    if args.db == "postgresql" and not os.environ.get("DATABASE_URL"):
        raise SystemExit("--db=postgresql needs DATABASE_URL (run under scripts/with-postgres.sh)")
    if args.db == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(HERE))
    from _setup import django_with_fresh_db, machine

    django_with_fresh_db("coverage")

    from members.models import Member, Organization
    from rounds.counters import counters_check, counters_recount
    from rounds.models import Participation, Round

    started = time.perf_counter()
    training_round, nodes = build_data(args.members)
    built = time.perf_counter() - started
    started = time.perf_counter()
    for each in Round.objects.order_by("pk"):
        counters_recount(training_round=each)
    counters_built = time.perf_counter() - started
    assert counters_check(training_round=training_round) == []
    data = (
        f"{Member.objects.count():,} members ({Member.objects.filter(is_active=True).count():,} "
        f"active) in {Organization.objects.count():,} organisations; "
        f"{Participation.objects.filter(round=training_round).count():,} participation rows in "
        f"the round, {Participation.objects.count():,} in all (built in {built:.0f} s)"
    )

    from django.test.utils import override_settings
    from django.urls import reverse

    client = trainer_client(nodes["city"])
    page_url = reverse("rounds:coverage", args=[training_round.pk])
    cases = {}
    for level, node in nodes.items():
        answer, total = as_figures(ours(training_round, node))
        expected = baseline(training_round, nodes["city"], node)
        assert answer == expected, (level, answer, expected)
        summed = tuple(map(sum, zip(*expected.values(), strict=True)))
        assert total == summed, (level, total, summed)
        sql = query_heads(lambda node=node: ours(training_round, node))
        cases[level] = {
            "node": f"{node.code} (depth {node.depth}, {len(answer)} rows)",
            "sql": sql,
            "in_scope": total[0],
            "queries": len(sql),
            "baseline_queries": len(
                query_heads(lambda node=node: baseline(training_round, nodes["city"], node))
            ),
            **timings(
                {
                    "ours": lambda node=node: ours(training_round, node),
                    "baseline": lambda node=node: baseline(training_round, nodes["city"], node),
                },
                args.repeat,
            ),
        }
        with override_settings(ALLOWED_HOSTS=["*"]):
            cases[level]["page"] = page_timings(
                client, f"{page_url}?org={node.pk}", max(PAGE_RUNS, args.repeat)
            )
    plans = write_plans(args.db, training_round, nodes["city"])
    # What a status change costs the counters: one branch's direct rows recounted and the
    # difference added to the subtree rows of the branch and its ancestors, under their locks.
    branch = nodes["branch"]

    def recount():
        counters_recount(training_round=training_round, organization_ids={branch.pk})

    recount_times = timings({"recount": recount}, 20)["recount"]
    recount_times["queries"] = len(query_heads(recount))
    assert counters_check(training_round=training_round) == []

    result = {
        "machine": machine(),
        "data": data,
        "cases": cases,
        "counters_built_s": counters_built,
        "recount": recount_times,
        "load_average": os.getloadavg(),
    }
    print(f"bench_coverage [{args.db}]  machine: {result['machine']}")
    print(f"  data: {data}")
    print(
        f"  counters rebuilt for every round in {counters_built:.1f} s; "
        "load average %.2f %.2f %.2f" % os.getloadavg()
    )
    for level, case in cases.items():
        print(
            f"  {level:<9} {case['node']}: {case['in_scope']:,} in scope; ours "
            + " ".join(f"{t:.1f}" for t in case["ours"]["runs"])
            + " ms; baseline "
            + " ".join(f"{t:.1f}" for t in case["baseline"]["runs"])
            + f" ms ({case['baseline_queries']} query); page p95 {case['page']['p95']:.1f} ms"
            + f" (CPU median {case['page']['cpu_median']:.1f} ms)"
        )
    print("  figures: equal to the baseline's at every level (checked)")
    print(
        f"  a status change's recount (branch {branch.code}, depth {branch.depth}): median "
        f"{recount_times['median']:.1f} ms, max {recount_times['max']:.1f} ms, "
        f"{recount_times['queries']} queries"
    )
    print(f"  the {len(cases['city']['sql'])} queries of one call (city):")
    for sql in cases["city"]["sql"]:
        print(f"    {sql}")
    for line in table(args.db, result):
        print(line)
    print(f"  query plans: {plans}")
    (OUT / f"coverage-{args.db}.json").write_text(json.dumps(result))
    return 0


def main():
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.db and not args.summarize:
        return run_one(args)
    return run_both(args)


if __name__ == "__main__":
    sys.exit(main())

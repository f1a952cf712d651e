"""Members' video players POSTing watch-progress reports to a multi-worker gunicorn server.

Targets, on both databases (the embedded default, SQLite, and PostgreSQL, a throwaway cluster
via scripts/with-postgres.sh), in the same run: reports/s at least 0.6 of what the same server
answers on a bare Django JSON view (the normal middleware stack, no database, no work of ours:
bench/progress_urls.py; issue 18), p99 <= 150 ms, no failed request and no lost second (after
the run, every member's row in the database holds at least what its last report sent claimed);
and >= 1,400 reports/s on PostgreSQL. Reports take the lean path (core/lean.py).

Each member has a session, a CSRF token and a started viewing (backdated two hours so reports
credit real time); wrk (bench/progress_report.lua) sends each request as a different member's
report, with segments growing by 15 s a report. A short cProfile of the report view in-process
goes to bench/out/progress_profile.txt.

    .venv/bin/python bench/bench_progress.py [--members 2000] [--seconds 20] [--connections 64]
"""

import argparse
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
LUA = HERE / "progress_report.lua"
SETTINGS = "bench.progress_settings"
TARGET_RPS = 1400
TARGET_P99_MS = 150
TARGET_RATIO = 0.6
STEP_SECONDS = 15
LESSON_SECONDS = 3600
GTHREAD_THREADS = 4
DBS = ("sqlite", "postgresql")


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=20, help="each measured wrk run")
    parser.add_argument("--trial-seconds", type=int, default=5, help="each worker-config trial")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--profile-requests", type=int, default=300)
    parser.add_argument("--db", choices=DBS, help="one database only (the default runs both)")
    parser.add_argument(
        "--summarize",
        action="store_true",
        help="measure nothing: the summary and progress.json from the per-database results "
        "already in bench/out",
    )
    return parser.parse_args()


# --- Both databases: one child process each ------------------------------------------------------


def run_both(args):
    """Re-run this script once per database; PostgreSQL under scripts/with-postgres.sh."""
    passed = [
        f"--members={args.members}",
        f"--seconds={args.seconds}",
        f"--trial-seconds={args.trial_seconds}",
        f"--connections={args.connections}",
        f"--wrk-threads={args.wrk_threads}",
        f"--profile-requests={args.profile_requests}",
    ]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    failed = 0
    results = {}
    problems = []
    for db in DBS:
        result_file = OUT / f"progress-{db}.json"
        if args.summarize:
            if result_file.exists():
                results[db] = json.loads(result_file.read_text())
            else:
                problems.append(f"{db}: no results in {result_file.name}")
                failed += 1
            continue
        result_file.unlink(missing_ok=True)
        command = [sys.executable, str(Path(__file__).resolve()), *passed, f"--db={db}"]
        if db == "postgresql":
            command = [str(ROOT / "scripts" / "with-postgres.sh"), *command]
        returncode = subprocess.run(command, cwd=ROOT, env=env).returncode
        if not result_file.exists():
            print(f"!!! bench_progress: the {db} run did NOT complete (exit {returncode})")
            problems.append(f"{db}: did NOT complete (exit {returncode})")
            failed += 1
            continue
        results[db] = json.loads(result_file.read_text())
    profiles = [OUT / f"progress_profile-{db}.txt" for db in results]
    if not args.summarize:
        (OUT / "progress_profile.txt").write_text(
            "\n\n".join(path.read_text() for path in profiles if path.exists())
        )
    print_summary(results)
    errors = sum(r["errors"] for r in results.values())
    write_summary(args, results, problems)
    return 1 if failed or errors else 0


def write_summary(args, results, problems):
    """bench/out/progress.json for RESULTS.md: per database, reports/s, p99 and the ratio."""
    sys.path.insert(0, str(HERE))
    from _setup import result_row, summarised_from, write_results

    rows, notes = [], list(problems)
    bare_label = "bare Django view on the same server (no database)"
    for db in DBS:
        r = results.get(db)
        if r is None:
            rows.append(result_row(f"[{db}] progress reports", "no figures", met=False))
            continue
        rep, bare = r["reports"], r["bare"]
        primary = db == "postgresql"
        met = rep["rps"] >= TARGET_RPS and rep["p99"] <= TARGET_P99_MS
        rows += [
            result_row(
                f"[{db}] progress reports per second, gunicorn {r['config']}",
                round(rep["rps"]),
                "/s",
                baseline=round(bare["rps"]),
                baseline_label=bare_label,
                target=f">= {TARGET_RPS:,}/s with p99 <= {TARGET_P99_MS} ms"
                + ("" if primary else " (PostgreSQL's; reference)"),
                met=met if primary else None,
                notes=f"{rep['requests']:,} reports, p50 {rep['p50']:.1f} ms",
            ),
            result_row(
                f"[{db}] progress reports, p99 latency",
                round(rep["p99"], 1),
                "ms",
                baseline=round(bare["p99"], 1),
                baseline_label=bare_label,
                target=f"<= {TARGET_P99_MS} ms",
                met=rep["p99"] <= TARGET_P99_MS,
            ),
            result_row(
                f"[{db}] reports/s divided by bare requests/s",
                round(r["ratio"], 2),
                target=f">= {TARGET_RATIO}",
                met=r["ratio"] >= TARGET_RATIO,
            ),
            result_row(
                f"[{db}] failed requests (non-2xx, socket errors) or lost reports",
                r["errors"],
                target="0",
                met=r["errors"] == 0,
            ),
            result_row(
                f"[{db}] seconds lost: claimed by the last report sent to a member, missing "
                "from its row in the database after the run",
                "no figure" if r.get("lost_seconds") is None else round(r["lost_seconds"], 1),
                "s",
                target="0",
                met=r.get("lost_seconds") == 0,
                notes=f"{r.get('checked_members', 0):,} members checked",
            ),
        ]
    measured_at = None
    if args.summarize:
        note, measured_at = summarised_from([OUT / f"progress-{db}.json" for db in results])
        notes.append(note)
    notes.append("profiles: bench/out/progress_profile-<db>.txt")
    write_results(
        "progress",
        rows,
        title="Progress reports against gunicorn (wrk, every request a different member)",
        ok=not problems and all(r["errors"] == 0 for r in results.values()),
        notes=notes,
        measured_at=measured_at,
    )


def print_summary(results):
    print(
        f"bench_progress summary (targets: reports/s / bare req/s >= {TARGET_RATIO}, p99 <= "
        f"{TARGET_P99_MS} ms, 0 lost seconds on both databases; >= {TARGET_RPS:,} reports/s "
        "on PostgreSQL)"
    )
    print(
        f"  {'database':<11}{'gunicorn':<18}{'reports/s':>10}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'non-2xx':>9}{'bare/s':>9}{'bare p99':>9}{'ratio':>7}{'lost s':>8}  targets"
    )
    for db, r in results.items():
        rep, bare = r["reports"], r["bare"]
        verdicts = [
            f"ratio {'met' if r['ratio'] >= TARGET_RATIO else 'NOT met'}",
            f"p99 {'met' if rep['p99'] <= TARGET_P99_MS else 'NOT met'}",
            f"lost {'met' if r.get('lost_seconds') == 0 else 'NOT met'}",
        ]
        if db == "postgresql":
            met = rep["rps"] >= TARGET_RPS and rep["p99"] <= TARGET_P99_MS
            verdicts.insert(0, f"reports/s+p99 {'met' if met else 'NOT met'}")
        print(
            f"  {db:<11}{r['config']:<18}{rep['rps']:>10,.0f}{rep['p50']:>8.1f}{rep['p99']:>8.1f}"
            f"{rep['bad']:>9,}{bare['rps']:>9,.0f}{bare['p99']:>9.1f}{r['ratio']:>7.2f}"
            f"{r.get('lost_seconds') if r.get('lost_seconds') is not None else math.nan:>8.1f}  "
            + ", ".join(verdicts)
        )
        if r["errors"]:
            print(f"  !!! {db}: {r['errors']:,} FAILED REQUESTS: its figures are not valid")
    for db in DBS:
        if db not in results:
            print(f"  {db:<11}!!! NO FIGURES: this database's run did not happen")
    print(f"  profiles: {OUT / 'progress_profile.txt'}")


# --- One database: data set, gunicorn, wrk --------------------------------------------------------


@dataclass
class Row:
    progress: int
    session: str
    csrf: str
    viewing: str


def build_data(members_count):
    """Members with a session, a CSRF token and a viewing started two hours ago."""
    from datetime import timedelta

    from _setup import logged_in_sessions
    from django.conf import settings
    from django.contrib.auth import (
        get_user_model,
    )
    from django.db import transaction
    from django.middleware.csrf import _get_new_csrf_string
    from django.utils import timezone
    from wagtail.models import Collection, Locale, Page, Site

    from courses import services
    from courses.models import (
        CourseIndexPage,
        CoursePage,
        HomePage,
        LessonPage,
        LessonProgress,
        LessonVideo,
    )
    from members.models import Member, Organization

    User = get_user_model()
    branch = Organization.add_root(code="BENCH", name="基准党支部", kind=Organization.Kind.BRANCH)
    users = []
    for i in range(members_count):
        user = User(username=f"bench{i:06d}", first_name="基准")
        user.set_unusable_password()
        users.append(user)
    User.objects.bulk_create(users, batch_size=500)
    users = list(User.objects.filter(username__startswith="bench").order_by("username"))
    Member.objects.bulk_create(
        [
            Member(user=user, name=f"党员{i}", phone=f"177{i:08d}", organization=branch)
            for i, user in enumerate(users)
        ],
        batch_size=500,
    )
    members = list(Member.objects.select_related("user").order_by("user__username"))

    home = HomePage.objects.first()
    if home is None:
        # _setup flushes a DATABASE_URL database, pages and sites with it: rebuild the root.
        locale = Locale.objects.get_or_create(language_code=settings.LANGUAGE_CODE)[0]
        root = Page.get_first_root_node() or Page.add_root(
            instance=Page(title="Root", slug="root", locale=locale)
        )
        home = root.add_child(instance=HomePage(title="轮训", slug="home", locale=locale))
        Site.objects.create(hostname="localhost", root_page=home, is_default_site=True)
    if Collection.get_first_root_node() is None:
        Collection.add_root(name="Root")
    index = CourseIndexPage.objects.first()
    if index is None:
        index = CourseIndexPage(title="课程中心", slug="courses")
        home.add_child(instance=index)
    course = CoursePage(title="基准课程", slug="bench-course")
    index.add_child(instance=course)
    video = LessonVideo.objects.create(
        title="基准视频",
        type="video",
        file="videos/sources/bench.mp4",
        duration=LESSON_SECONDS,
        width=640,
        height=360,
        state=LessonVideo.State.READY,
        master_playlist="videos/hls/bench/master.m3u8",
        audio_playlist="videos/hls/bench/audio/index.m3u8",
        mp4_fallback="videos/hls/bench/fallback.mp4",
        poster="videos/hls/bench/poster.jpg",
    )
    lesson = LessonPage(title="第一课", slug="bench-lesson", video=video)
    course.add_child(instance=lesson)
    lesson = LessonPage.objects.select_related("video").get(pk=lesson.pk)

    keys = logged_in_sessions(members, batch_size=500)
    # Each viewing bound to its member's session, as the viewing start view does.
    with transaction.atomic():
        progresses = [
            services.progress_start(member=m, lesson=lesson, session_key=key)
            for key, m in zip(keys, members, strict=True)
        ]
    LessonProgress.objects.update(viewing_started_at=timezone.now() - timedelta(hours=2))
    return [
        Row(progress.pk, key, _get_new_csrf_string(), str(progress.viewing))
        for key, progress in zip(keys, progresses, strict=True)
    ]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report_body(row, step):
    from urllib.parse import urlencode

    seconds = step * STEP_SECONDS
    return urlencode(
        {
            "csrfmiddlewaretoken": row.csrf,
            "viewing": row.viewing,
            "segments": json.dumps([[0, seconds]]),
            "position": seconds,
        }
    )


class Server:
    """gunicorn serving the project (with /bench/bare/) under bench.progress_settings."""

    def __init__(self, db, workers, worker_class):
        self.workers, self.worker_class = workers, worker_class
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = OUT / f"progress-gunicorn-{db}.log"
        gunicorn = Path(sys.executable).parent / "gunicorn"
        command = [
            str(gunicorn if gunicorn.exists() else shutil.which("gunicorn")),
            "config.wsgi:application",
            f"--bind=127.0.0.1:{self.port}",
            f"--workers={workers}",
            f"--worker-class={worker_class}",
            f"--threads={GTHREAD_THREADS if worker_class == 'gthread' else 1}",
            f"--chdir={ROOT}",
            "--log-level=warning",
            f"--error-logfile={self.log}",
        ]
        env = dict(os.environ, DJANGO_SETTINGS_MODULE=SETTINGS, PYTHONPATH=str(ROOT))
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(f"{self.url}/bench/bare/", data=b"x=1")
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"!!! gunicorn did not start; see {self.log}")
            time.sleep(0.2)

    @property
    def label(self):
        if self.worker_class == "gthread":
            return f"{self.workers}w gthread×{GTHREAD_THREADS}"
        return f"{self.workers}w {self.worker_class}"

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def cpu_seconds(server=None):
    """CPU seconds used so far by every process, by (pid, command name), from /proc. The
    processes of ``server``'s session (gunicorn's master and workers, which /proc names after
    their interpreter, "python3") are named "gunicorn"."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if server is not None and int(fields[3]) == server.process.pid:  # its session id
            name = "gunicorn"
        used[pid, name] = (int(fields[11]) + int(fields[12])) / ticks
    return used


def cpu_share(before, after, seconds, wrk_cpu):
    """Cores' worth of CPU each kind of process used between two cpu_seconds() snapshots."""
    share = {"wrk": wrk_cpu / seconds}
    for (pid, name), spent in after.items():
        kind = name if name in ("gunicorn", "postgres", "wrk") else "other"
        share[kind] = share.get(kind, 0.0) + (spent - before.get((pid, name), 0.0)) / seconds
    share["idle"] = max(0.0, (os.cpu_count() or 1) - sum(share.values()))
    return share


def cpu_per_request(cores_used, result):
    return f"{cores_used / result['rps'] * 1000:.2f} ms" if result["rps"] else "n/a"


class Load:
    """wrk runs against one server, keeping each member's report counter going up."""

    def __init__(self, args, lines_file, members):
        self.args, self.lines_file, self.members = args, lines_file, members
        self.base = 1  # the smoke test sent report 1 for the first member

    def run(self, server, mode, seconds):
        threads = self.args.wrk_threads
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{self.args.connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(LUA),
            server.url + "/",
            "--",
            str(self.lines_file),
            str(self.base),
            mode,
            str(threads),
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        output = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 120, check=True
        ).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = parse_wrk(output)
        # wrk is gone before anyone can read its /proc entry: its CPU, once reaped.
        result["cpu"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        result["base"] = self.base
        self.base += result["maxn"]
        (OUT / f"progress-wrk-{self.args.db}-{mode}.txt").write_text(output)
        return result


def parse_wrk(output):
    def number(pattern, default=0.0):
        match = re.search(pattern, output, re.M)
        return float(match.group(1)) if match else default

    units = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
    latency = {
        int(p): float(v) * units[u]
        for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)
    }
    status = dict(re.findall(r"(\dxx)=(\d+)", output))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    sample = re.search(r"^SAMPLE (.*)$", output, re.M)
    ok = int(status.get("2xx", 0))
    result = {
        "rps": number(r"^Requests/sec:\s+([\d.]+)"),
        "requests": int(number(r"^\s+(\d+) requests in")),
        "p50": latency.get(50, math.nan),
        "p75": latency.get(75, math.nan),
        "p90": latency.get(90, math.nan),
        "p99": latency.get(99, math.nan),
        "ok": ok,
        # Anything but 2xx is a failed report: a 302 is login_required sending us to the login.
        "bad": sum(int(status.get(k, 0)) for k in ("3xx", "4xx", "5xx")),
        "status": status,
        "sockets": [int(n) for n in sockets.groups()] if sockets else [0, 0, 0, 0],
        "maxn": int(number(r"^MAXN (\d+)")),
        # Per wrk thread: (thread id, requests sent, members owned).
        "sent": [tuple(map(int, m)) for m in re.findall(r"^SENT (\d+) (\d+) (\d+)$", output, re.M)],
        "sample": sample.group(1)[:200] if sample else "",
    }
    result["errors"] = result["bad"] + result["sockets"][0] + result["sockets"][3]
    if not status:
        result["errors"] += 1
        result["sample"] = "wrk printed no STATUS line: " + output[-300:]
    return result


def last_claims(result, members, threads):
    """{member's line index: seconds its last report in this run claimed}, from wrk's SENT
    lines: member i belongs to thread i % threads, at i // threads in its round-robin."""
    claims = {}
    for thread, sent, owned in result["sent"]:
        if not owned:
            continue
        for position in range(owned):
            count = sent // owned + (1 if position < sent % owned else 0)
            if count:
                seconds = min(LESSON_SECONDS, (result["base"] + count) * STEP_SECONDS)
                claims[position * threads + thread] = seconds
    return claims


def lost_seconds(rows, claims):
    """Seconds that members' last reports claimed and their rows in the database lack."""
    from courses.models import LessonProgress

    ids = {rows[index].progress: seconds for index, seconds in claims.items()}
    watched = dict(
        LessonProgress.objects.filter(pk__in=list(ids)).values_list("pk", "watched_seconds")
    )
    return sum(max(0.0, seconds - watched.get(pk, 0.0)) for pk, seconds in ids.items())


def figures(result):
    text = (
        f"{result['rps']:>8,.0f}/s  p50 {result['p50']:6.1f} ms  p90 {result['p90']:6.1f} ms  "
        f"p99 {result['p99']:6.1f} ms  non-2xx {result['bad']:,}"
    )
    connect, read, write, timeout = result["sockets"]
    if connect or read or write or timeout:
        text += f"  socket errors c/r/w/t {connect}/{read}/{write}/{timeout}"
    if result["errors"]:
        text += f"\n    !!! ERRORS in this run: {result['status']} first: {result['sample']}"
    return text


def smoke_test(server, row):
    """One report through the server, before any load: it must be credited, as JSON."""
    request = urllib.request.Request(
        f"{server.url}/progress/{row.progress}/",
        data=report_body(row, 1).encode(),
        headers={
            "Cookie": cookie_header(row),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise SystemExit(
            f"!!! smoke test: report answered {error.code}: {error.read()[:300]!r}"
        ) from None
    if body.get("watched") != STEP_SECONDS:
        raise SystemExit(f"!!! smoke test: report credited {body!r}, expected {STEP_SECONDS} s")


def cookie_header(row):
    from django.conf import settings

    return f"{settings.SESSION_COOKIE_NAME}={row.session}; {settings.CSRF_COOKIE_NAME}={row.csrf}"


def profile(db, rows, base, count):
    """The report view in-process (django.test.Client, same settings): where the time goes."""
    import cProfile
    import io
    import pstats
    from urllib.parse import urlencode

    from django.conf import settings
    from django.db import connection
    from django.test import Client

    client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
    form = "application/x-www-form-urlencoded"

    states = {}  # as the player does: each report sends back its last answer's signed row

    def post(mode, i, step):
        row = rows[i % len(rows)]
        client.cookies.clear()
        if mode != "bare":
            client.cookies[settings.SESSION_COOKIE_NAME] = row.session
            client.cookies[settings.CSRF_COOKIE_NAME] = row.csrf
        path = f"/progress/{row.progress}/" if mode == "report" else "/bench/bare/"
        body = report_body(row, step)
        if mode == "report" and row.progress in states:
            body += "&" + urlencode({"state": states[row.progress]})
        response = client.post(path, body, content_type=form)
        if response.status_code != 200:
            raise SystemExit(f"!!! profile: {mode} answered {response.status_code}")
        if mode == "report":
            states[row.progress] = response.json()["state"]

    for i in range(20):  # warm-up: imports, URL resolver, translations
        post("report", i, base)
        post("bare", i, base)
    base += 1
    per_request = {}
    for mode in ("bare", "bare-session", "report"):
        started = time.perf_counter()
        for i in range(count):
            post(mode, i, base)
        per_request[mode] = (time.perf_counter() - started) / count * 1000
    base += 1
    # The request_started signal empties the query log: what is left is this request's.
    connection.force_debug_cursor = True
    try:
        post("report", 0, base)  # a member whose last answer gave it its row
        queries = list(connection.queries_log)
    finally:
        connection.force_debug_cursor = False
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(count):
        post("report", i, base + 1)
    profiler.disable()

    breakdown_lines = breakdown(pstats.Stats(profiler).stats, len(queries))
    site_packages = str(Path(sys.executable).parent.parent / "lib")
    stats_text = []
    for order in ("cumulative", "tottime"):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats(order).print_stats(15)
        text = buffer.getvalue()
        text = re.sub(re.escape(site_packages) + r"/python[\d.]+/site-packages/", "", text)
        text = text.replace(str(ROOT) + "/", "").replace(sys.base_prefix, "<python>")
        stats_text.append(text.strip())
    lines = [
        f"bench_progress profile [{db}]: in-process (django.test.Client), same settings and "
        f"middleware as the server",
        f"  mean per request over {count}: bare view (anonymous) "
        f"{per_request['bare']:.2f} ms, bare view with a member's session cookie "
        f"{per_request['bare-session']:.2f} ms, progress report {per_request['report']:.2f} ms",
        f"  SQL for one progress report ({len(queries)} queries):",
        *(f"    {i + 1:>2}. {query['sql'][:160]}" for i, query in enumerate(queries)),
        *breakdown_lines,
        f"  cProfile of {count} progress reports, top 15 by cumulative time:",
        stats_text[0],
        f"  cProfile of the same {count} reports, top 15 by own time:",
        stats_text[1],
    ]
    path = OUT / f"progress_profile-{db}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, per_request, len(queries)


def breakdown(stats, query_count):
    """Where one report's time goes, from cProfile's table: shares of the request by layer."""

    def cumulative(path, *names):
        """Time inside the matching functions, not counting their calls to each other."""
        keys = [k for k in stats if k[0].endswith(path) and k[2] in names]
        inner = sum(
            timing[3] for k in keys for caller, timing in stats[k][4].items() if caller in keys
        )
        return sum(stats[k][3] for k in keys) - inner

    def own(path):
        return sum(v[2] for (f, _l, _n), v in stats.items() if f.endswith(path))

    handler = cumulative("django/core/handlers/base.py", "get_response")
    view = cumulative("courses/views.py", "progress_report")
    service = cumulative("courses/services.py", "progress_report")
    rows = [
        ("  middleware and URL resolving (outside the view)", handler - view),
        ("  view, outside the service (form parsing, JSON reply)", view - service),
        ("  service courses.services.progress_report", service),
        ("of which, anywhere in the request:", None),
        (
            f"  SQL statements in the database driver ({query_count})",
            cumulative("django/db/backends/utils.py", "_execute"),
        ),
        (
            "  transaction begin and commit",
            cumulative("django/db/backends/base/base.py", "set_autocommit", "commit"),
        ),
        ("  ORM SQL compilation", cumulative("django/db/models/sql/compiler.py", "as_sql")),
        (
            "  ORM query building (filters)",
            cumulative("django/db/models/sql/query.py", "build_filter"),
        ),
        ("  model instances from rows", cumulative("django/db/models/base.py", "from_db")),
        ("  segment arithmetic (own time)", own("courses/segments.py")),
    ]
    lines = [
        "  where a report's time goes, share of the request through Django's handler "
        "(cProfile; it inflates Python code against C and the database):"
    ]
    for label, seconds in rows:
        value = "" if seconds is None else f"{seconds / handler * 100:6.1f} %"
        lines.append(f"    {label:<58}{value}")
    return lines


def run_one(args):
    if args.db == "postgresql" and not os.environ.get("DATABASE_URL"):
        raise SystemExit("--db=postgresql needs DATABASE_URL (run under scripts/with-postgres.sh)")
    if args.db == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    if not shutil.which("wrk"):
        raise SystemExit("!!! wrk is not installed (apt-get install -y wrk)")
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    sys.path.insert(0, str(HERE))
    from _setup import django_with_fresh_db, machine

    started = time.perf_counter()
    django_with_fresh_db("progress")
    migrated = time.perf_counter() - started

    from django.db import connection
    from django.db.models import Count, Max, Q, Sum
    from django.utils import timezone

    from courses.models import LessonProgress

    started = time.perf_counter()
    rows = build_data(args.members)
    built = time.perf_counter() - started
    lines_file = OUT / f"progress-{args.db}.requests"
    lines_file.write_text(
        "".join(f"{r.progress}\t{cookie_header(r)}\t{r.csrf}\t{r.viewing}\n" for r in rows)
    )
    vendor = connection.vendor
    machine_line = machine()
    connection.close()  # the server's workers have the database to themselves
    load = Load(args, lines_file, len(rows))

    # Worker configuration: 2 x cores and 4 workers, sync and gthread; the best reports/s wins.
    cores = os.cpu_count() or 1
    trials = []
    for workers in sorted({2 * cores, 4}):
        for worker_class in ("sync", "gthread"):
            server = Server(args.db, workers, worker_class)
            try:
                if not trials:
                    smoke_test(server, rows[0])
                load.run(server, "bare", 2)  # warm-up
                result = load.run(server, "report", args.trial_seconds)
            finally:
                server.stop()
            trials.append(((workers, worker_class), server.label, result))
    best = max(trials, key=lambda t: (t[2]["errors"] == 0, t[2]["rps"]))
    (workers, worker_class), label, _result = best

    server = Server(args.db, workers, worker_class)
    try:
        load.run(server, "bare", 2)  # warm-up
        bare_cpu, bare_started = cpu_seconds(server), time.monotonic()
        bare = load.run(server, "bare", args.seconds)
        bare_share = cpu_share(
            bare_cpu, cpu_seconds(server), time.monotonic() - bare_started, bare["cpu"]
        )
        measured_from, cpu_before = timezone.now(), cpu_seconds(server)
        reports = load.run(server, "report", args.seconds)
        measured_to, cpu_after = timezone.now(), cpu_seconds(server)
        bare_session = load.run(server, "bare-session", max(5, args.seconds // 2))
    finally:
        server.stop()

    # The server has finished every request it received: what the last report sent to each
    # member claimed must be in its row (a report in flight when wrk stopped counts as sent).
    claims = last_claims(reports, len(rows), args.wrk_threads)
    lost = lost_seconds(rows, claims)
    check = LessonProgress.objects.aggregate(
        updated=Count("pk", filter=Q(updated_at__gte=measured_from, updated_at__lte=measured_to)),
        credited=Count("pk", filter=Q(watched_seconds__gt=0)),
        watched=Sum("watched_seconds"),
        most=Max("watched_seconds"),
    )
    profile_path, per_request, query_count = profile(
        args.db, rows, load.base, args.profile_requests
    )

    ratio = reports["rps"] / bare["rps"] if bare["rps"] else 0.0
    errors = sum(r["errors"] for r in (reports, bare, bare_session)) + sum(
        t[2]["errors"] for t in trials
    )
    met = reports["rps"] >= TARGET_RPS and reports["p99"] <= TARGET_P99_MS
    wrk_line = f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.seconds}s"
    print(f"bench_progress [{args.db}]  machine: {machine_line}")
    print(
        f"  gunicorn {label} (2 x {cores} cores = {2 * cores}; tried "
        + ", ".join(f"{t[1]} {t[2]['rps']:,.0f} reports/s" for t in trials)
        + f" over {args.trial_seconds} s each; best kept)"
    )
    for _config, trial_label, trial in trials:
        if trial["errors"]:
            print(f"  trial {trial_label}: {figures(trial)}")
    print(
        f"  data: {len(rows):,} members, each with a session and a viewing of a 3600 s lesson "
        f"(migrate {migrated:.1f} s, build {built:.1f} s)"
    )
    print(f"  load: {wrk_line}, every request a different member's report")
    print(f"  progress reports        : {figures(reports)}")
    print(f"  baseline: bare view     : {figures(bare)}")
    print(f"  bare view + session     : {figures(bare_session)}  (session and user, no view)")
    share = cpu_share(
        cpu_before, cpu_after, (measured_to - measured_from).total_seconds(), reports["cpu"]
    )
    print(
        f"  CPU while reporting, in cores of {cores}: "
        + ", ".join(f"{kind} {cores_used:.2f}" for kind, cores_used in sorted(share.items()))
    )
    if share.get("other", 0) > 0.25:
        print(
            f"  !!! other processes on this machine used {share['other']:.2f} cores during the "
            "measured run: these figures are lower than the machine can do; run it again"
        )
    print(
        f"  gunicorn CPU per request: report {cpu_per_request(share.get('gunicorn', 0), reports)}, "
        f"bare view {cpu_per_request(bare_share.get('gunicorn', 0), bare)}"
        + (
            f"; PostgreSQL server CPU per report {cpu_per_request(share['postgres'], reports)}"
            if "postgres" in share
            else ""
        )
    )
    print(
        f"  reports/s / bare req/s  : {ratio:.2f} (target >= {TARGET_RATIO} -> "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'})"
    )
    target = f">= {TARGET_RPS:,} reports/s with p99 <= {TARGET_P99_MS} ms"
    if vendor == "postgresql":
        print(f"  target {target}: {'met' if met else 'NOT met'}")
    else:
        print(
            f"  target {target} is PostgreSQL's; here for reference: "
            f"{'would be met' if met else 'would NOT be met'}"
        )
    print(
        f"  DB check: {check['updated']:,} of {len(rows):,} progress rows written during the "
        f"measured run ({reports['ok']:,} reports answered 200); {check['credited']:,} rows "
        f"credited, {(check['watched'] or 0) / 3600:,.1f} h watched in all, most "
        f"{check['most'] or 0:,.0f} s"
    )
    print(
        f"  in-process per request: bare {per_request['bare']:.2f} ms, bare + session "
        f"{per_request['bare-session']:.2f} ms, report {per_request['report']:.2f} ms "
        f"({query_count} SQL queries); profile: {profile_path}"
    )
    if errors:
        print(f"  !!! {errors:,} FAILED REQUESTS in this run (see the !!! lines above)")
    print(
        f"  lost seconds: {lost:,.1f} (claimed by the last report sent to each of "
        f"{len(claims):,} members, missing from their rows; target 0)"
    )
    if not check["updated"]:
        print("  !!! NO REPORT LANDED IN THE DATABASE")
        errors += 1
    if not claims:
        print("  !!! NO REPORT COUNTED FOR THE LOST-SECONDS CHECK")
    (OUT / f"progress-{args.db}.json").write_text(
        json.dumps(
            {
                "config": label,
                "reports": reports,
                "bare": bare,
                "bare_session": bare_session,
                "ratio": ratio,
                "errors": errors,
                "lost_seconds": lost if claims else None,
                "checked_members": len(claims),
            }
        )
    )
    return 1 if errors else 0


def main():
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.db and not args.summarize:
        return run_one(args)
    return run_both(args)


if __name__ == "__main__":
    sys.exit(main())

"""Members submitting quiz answers to a multi-worker gunicorn server (issue 16).

Target: submissions/s at least 0.6 of what the same server answers on a bare Django view
(bench/progress_urls.py: same middleware stack, no database), measured in the same run (issue
18: submits take the lean path, core/lean.py); p99 <= 150 ms; 0 failed and 0 lost (every
attempt whose first submit was answered is submitted in the database). The database is the
environment's: the embedded SQLite, or PostgreSQL under scripts/with-postgres.sh
(DATABASE_URL); bench/out/quiz.json keeps the rows of the last run on each database.

The data set is the scale city (members.demo.seed_scale_city, --city members, 300,000 by
default); --members of them, spread over the whole city, each have a login session, a CSRF token
and an open attempt (five questions drawn from a bank of ten, options shuffled, as attempt_start
draws them) whose page was shown to that session (the attempt's token issued to it, as
quizzes.services.attempt_token does). wrk (bench/quiz_submit.lua) sends each request as the next
member's submission, as their page's form sends it (/quizzes/attempts/<id>/submit/ with the
token, the answers, the CSRF token and the member's cookies): the token check, the scoring, the
conditional write and the audit record.

    .venv/bin/python bench/bench_quiz.py [--city 300000] [--members 5000] [--seconds 10]
    scripts/with-postgres.sh .venv/bin/python bench/bench_quiz.py
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
LUA = HERE / "quiz_submit.lua"
TARGET_P99_MS = 150
TARGET_RATIO = 0.6


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--city", type=int, default=300_000, help="members in the scale city")
    parser.add_argument("--members", type=int, default=5000, help="of them, taking the quiz")
    parser.add_argument("--seconds", type=int, default=10, help="each measured wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (2 x cores)")
    parser.add_argument(
        "--profile-requests", type=int, default=300, help="members kept for the in-process profile"
    )
    return parser.parse_args()


def build_data(city_size, members_count):
    """The scale city; ``members_count`` of its members with a session, a CSRF token and an
    open attempt whose token was issued to that session; returns the wrk lines."""
    import random
    import uuid

    from _setup import logged_in_sessions
    from django.conf import settings
    from django.middleware.csrf import _get_new_csrf_string
    from wagtail.models import Locale, Page, Site

    from courses.models import CourseIndexPage, CoursePage, HomePage
    from members.demo import seed_scale_city
    from members.models import Member
    from quizzes.models import Attempt, Choice, Question, Quiz

    seed_scale_city(city_size)
    ids = list(Member.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))
    if members_count > len(ids):
        raise SystemExit(f"!!! --members {members_count} > the city's {len(ids)} members")
    chosen = sorted(random.Random(300).sample(ids, members_count))
    members = []
    for start in range(0, len(chosen), 5000):
        members += Member.objects.select_related("user").filter(pk__in=chosen[start : start + 5000])

    home = HomePage.objects.first()
    if home is None:
        locale = Locale.objects.get_or_create(language_code=settings.LANGUAGE_CODE)[0]
        root = Page.get_first_root_node() or Page.add_root(
            instance=Page(title="Root", slug="root", locale=locale)
        )
        home = root.add_child(instance=HomePage(title="轮训", slug="home", locale=locale))
        Site.objects.create(hostname="localhost", root_page=home, is_default_site=True)
    index = CourseIndexPage.objects.first()
    if index is None:
        index = CourseIndexPage(title="课程中心", slug="courses")
        home.add_child(instance=index)
    course = CoursePage(title="基准课程", slug="bench-course")
    index.add_child(instance=course)
    bank = []
    for n in range(10):
        question = Question.objects.create(course=course, text=f"第{n + 1}题", explanation="解析")
        for k in range(4):
            Choice.objects.create(question=question, text=f"选项{k}", is_correct=k == 0)
        bank.append((question.pk, list(question.choices.values_list("pk", flat=True))))
    quiz = Quiz.objects.create(course=course, title="基准测试", question_count=5, pass_mark=4)

    rng = random.Random(16)
    drawn = []
    for _member in members:
        picked = rng.sample(bank, 5)
        drawn.append([{"question": q, "choices": rng.sample(c, len(c))} for q, c in picked])
    keys = logged_in_sessions(members)
    tokens = [uuid.uuid4() for _ in members]
    Attempt.objects.bulk_create(
        [
            Attempt(
                quiz=quiz,
                member=m,
                number=1,
                drawn=d,
                total=5,
                needed=4,
                token=token,
                token_session=key,
            )
            for m, d, token, key in zip(members, drawn, tokens, keys, strict=True)
        ],
        batch_size=1000,
    )
    attempts = dict(Attempt.objects.values_list("member_id", "pk"))

    lines = []
    for key, token, member, chosen in zip(keys, tokens, members, drawn, strict=True):
        csrf = _get_new_csrf_string()
        cookie = f"{settings.SESSION_COOKIE_NAME}={key}; {settings.CSRF_COOKIE_NAME}={csrf}"
        # Each answer a random option: some members pass, most do not.
        body = urlencode(
            [("csrfmiddlewaretoken", csrf), ("token", str(token))]
            + [(f"q{item['question']}", rng.choice(item["choices"])) for item in chosen]
        )
        lines.append(f"{attempts[member.pk]}\t{cookie}\t{body}\n")
    return lines


def run_wrk(args, url, lines_file, mode, seconds):
    command = [
        "wrk",
        f"-t{args.wrk_threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(LUA),
        url + "/",
        "--",
        str(lines_file),
        mode,
        str(args.wrk_threads),
    ]
    output = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 120, check=True
    ).stdout
    (OUT / f"quiz-wrk-{mode}.txt").write_text(output)
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latency = {
        int(p): float(v) * units[u]
        for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    }
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    status = re.search(r"^STATUS ok=(\d+) bad=(\d+)", output, re.M)
    sockets = re.search(r"Socket errors: connect (\d+), read \d+, write \d+, timeout (\d+)", output)
    sample = re.search(r"^SAMPLE (.*)$", output, re.M)
    result = {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": latency.get(50, math.nan),
        "p99": latency.get(99, math.nan),
        "ok": int(status.group(1)) if status else 0,
        "bad": int(status.group(2)) if status else 1,
        "socket_errors": sum(int(n) for n in sockets.groups()) if sockets else 0,
        "sample": sample.group(1)[:200] if sample else "",
    }
    result["errors"] = result["bad"] + result["socket_errors"]
    return result


def profile(db, lines):
    """Submits in-process (django.test.Client, same settings and middleware as the server), one
    at a time, beside the bare view: where a submit's time goes without any contention. Each
    of ``lines`` is submitted once; the wrk runs never see them."""
    import cProfile
    import io
    import pstats

    from django.db import connection
    from django.test import Client

    client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")

    def post(line, bare):
        attempt, cookie, body = line.rstrip("\n").split("\t")
        path = "/bench/bare/" if bare else f"/quizzes/attempts/{attempt}/submit/"
        response = client.generic(
            "POST", path, body, "application/x-www-form-urlencoded", HTTP_COOKIE=cookie
        )
        if response.status_code != (200 if bare else 302):
            raise SystemExit(f"!!! profile: {path} answered {response.status_code}")

    warm, timed, traced, profiled = lines[:20], lines[20:120], lines[120], lines[121:]
    for line in warm:  # imports, URL resolver, translations
        post(line, bare=False)
        post(line, bare=True)
    per_request = {}
    for bare in (True, False):
        started = time.perf_counter()
        for line in timed:
            post(line, bare)
        per_request["bare" if bare else "submit"] = (time.perf_counter() - started) / len(timed)
    connection.force_debug_cursor = True  # request_started empties the log: this submit's SQL
    try:
        post(traced, bare=False)
        queries = list(connection.queries_log)
    finally:
        connection.force_debug_cursor = False
    profiler = cProfile.Profile()
    profiler.enable()
    for line in profiled:
        post(line, bare=False)
    profiler.disable()
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(25)
    site_packages = str(Path(sys.executable).parent.parent / "lib")
    stats = re.sub(
        re.escape(site_packages) + r"/python[\d.]+/site-packages/", "", buffer.getvalue()
    )
    text = "\n".join(
        [
            f"bench_quiz profile [{db}]: in-process, one request at a time, same settings",
            f"  mean per request over {len(timed)}: bare view {per_request['bare'] * 1000:.2f} ms,"
            f" quiz submit {per_request['submit'] * 1000:.2f} ms",
            f"  SQL for one submit ({len(queries)} statements):",
            *(f"    {i + 1:>2}. {q['sql'][:160]}" for i, q in enumerate(queries)),
            f"  cProfile of {len(profiled)} submits, top 25 by cumulative time:",
            stats.replace(str(ROOT) + "/", "").strip(),
        ]
    )
    path = OUT / f"quiz_profile-{db}.txt"
    path.write_text(text + "\n")
    return path, per_request, len(queries)


def main():
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not shutil.which("wrk"):
        raise SystemExit("!!! wrk is not installed (apt-get install -y wrk)")
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.progress_settings"
    sys.path.insert(0, str(HERE))
    from _setup import django_with_fresh_db, machine, result_row, write_results
    from bench_progress import Server

    django_with_fresh_db("quiz")
    from django.db import connection

    from quizzes.models import Attempt

    started = time.perf_counter()
    lines = build_data(args.city, args.members)
    built = time.perf_counter() - started
    db = connection.vendor
    kept = max(args.profile_requests, 130)
    lines, kept_lines = lines[:-kept], lines[-kept:]
    profile_path, in_process, query_count = profile(db, kept_lines)
    lines_file = OUT / "quiz.requests"
    lines_file.write_text("".join(lines))
    machine_line = machine()
    connection.close()

    workers = args.workers or 2 * (os.cpu_count() or 1)
    server = Server(f"quiz-{db}", workers, "sync")
    try:
        run_wrk(args, server.url, lines_file, "bare", 2)  # warm-up
        bare = run_wrk(args, server.url, lines_file, "bare", args.seconds)
        submit = run_wrk(args, server.url, lines_file, "submit", args.seconds)
    finally:
        server.stop()

    # The profile's submits are not the server's: count the server's alone.
    served = Attempt.objects.exclude(pk__in=[int(line.split("\t")[0]) for line in kept_lines])
    submitted = served.filter(state=Attempt.State.SUBMITTED).count()
    passed = served.filter(passed=True).count()
    # Every request before wrapping round was a member's first submit.
    first_submits = min(submit["ok"], len(lines))
    lost = first_submits - submitted
    ratio = submit["rps"] / bare["rps"] if bare["rps"] else 0.0
    errors = submit["errors"] + bare["errors"] + max(lost, 0)
    print(f"bench_quiz [{db}]  machine: {machine_line}")
    print(
        f"  gunicorn {workers}w sync; data: the {args.city:,}-member city, {args.members:,} of"
        f" them with an open attempt (build {built:.1f} s)"
    )
    print(f"  load: wrk -t{args.wrk_threads} -c{args.connections} -d{args.seconds}s")
    for label, r in (("quiz submissions", submit), ("baseline: bare view", bare)):
        print(
            f"  {label:<22}: {r['rps']:>8,.0f}/s  p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms"
            f"  failed {r['errors']:,}" + (f"  first: {r['sample']}" if r["sample"] else "")
        )
    print(f"  submissions/s / bare req/s: {ratio:.2f} (target >= {TARGET_RATIO})")
    alone = in_process["bare"] / in_process["submit"]
    print(
        f"  in-process, one at a time: bare {in_process['bare'] * 1000:.2f} ms, submit"
        f" {in_process['submit'] * 1000:.2f} ms ({query_count} SQL statements): ratio {alone:.2f}"
        f"; profile: {profile_path}"
    )
    print(
        f"  DB check: {submitted:,} attempts submitted ({passed:,} passed) for {first_submits:,} "
        f"first submits answered; lost {max(lost, 0):,}"
    )
    rows = [
        result_row(
            f"[{db}] quiz submissions per second, gunicorn {workers}w sync",
            round(submit["rps"]),
            "/s",
            baseline=round(bare["rps"]),
            baseline_label="bare Django view on the same server (no database)",
            target=f">= {TARGET_RATIO} of the baseline",
            met=ratio >= TARGET_RATIO,
            notes=(
                f"ratio {ratio:.2f}; in-process, one at a time: {alone:.2f} ({query_count} SQL"
                f" statements; bench/out/quiz_profile-{db}.txt)"
            ),
        ),
        result_row(
            f"[{db}] quiz submissions, p99 latency",
            round(submit["p99"], 1),
            "ms",
            target=f"<= {TARGET_P99_MS} ms",
            met=submit["p99"] <= TARGET_P99_MS,
        ),
        result_row(
            f"[{db}] failed requests or lost submissions",
            errors,
            target="0",
            met=errors == 0,
        ),
    ]
    # RESULTS.md shows both databases: this run's rows beside the other database's last ones.
    (OUT / f"quiz-rows-{db}.json").write_text(json.dumps(rows, ensure_ascii=False))
    other = "postgresql" if db == "sqlite" else "sqlite"
    other_rows = OUT / f"quiz-rows-{other}.json"
    notes = []
    if other_rows.exists():
        rows = rows + json.loads(other_rows.read_text())
        notes.append(f"{other}'s rows are from its last run (bench/out/{other_rows.name})")
    write_results(
        "quiz",
        rows,
        notes=notes,
        title="Quiz submissions against gunicorn (wrk, every request a different member)",
        ok=errors == 0,
        data=f"the {args.city:,}-member scale city, {args.members:,} of them with an open attempt",
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

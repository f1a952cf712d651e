"""Under load nothing is lost (issue 6): 50 members' players report progress at once to a
multi-worker gunicorn on the product's database settings, and every credited second lands.

The server is a real gunicorn (4 processes x 4 threads) running config.settings.production on
the test database: the SQLite file with its default options (WAL, IMMEDIATE, busy timeout),
or the PostgreSQL test database when DATABASE_URL is set. Fifty threads, each a member with
their own session, play one lesson the way the player does, on a compressed clock: a report
every fraction of a second carrying the viewing's whole segment list. The server credits only
real elapsed time, so each report claims no more than the time since its viewing began; all
of it is legitimately credited, and the test knows exactly what must be in the database.

Some members retry every report while the first attempt is still in flight and resend older
reports late; some seek back and watch a part again; some reload the page mid-lesson (a new
viewing, the old tab's late beacon refused with 409). Starting and completing the lesson also
update the member's status in a round requiring it, so those writes run under load as well.
"""

import json
import random
import re
import secrets
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from courses.models import LessonProgress
from rounds.models import Participation
from tests import factories
from tests.rounds.builders import training_round

from .builders import lesson
from .server import Gunicorn, database_env

pytestmark = pytest.mark.django_db(transaction=True)

MEMBERS = 50
DURATION = 12.0  # seconds of video in the lesson
HOURS = Decimal("0.5")
PLAY_SECONDS = 14.0  # each member pauses this long after their first viewing began
GRID = 0.25  # reported positions are multiples of this: every sum below is exact in binary
REPORT_GAP = (0.08, 0.2)  # seconds between one member's reports
RELOAD_AT = 4.0  # the "reload" members reload the page at this point of the lesson
REWATCH = (6.0, 2.0)  # the "rewatch" members seek back from 6 s to 2 s
MAX_REQUESTS_PER_MEMBER = 600
HARD_DEADLINE = 60.0  # seconds from the start of the load: every loop has stopped by then
REQUEST_TIMEOUT = 30.0  # longer than SQLite's busy timeout (20 s): a lock wait shows as such
PLANS = ("straight", "double", "rewatch", "reload", "straight")  # by member index
# deploy/gunicorn.conf.py's access_log_format: '%(h)s "%(r)s" %(s)s ...'
ACCESS_LINE = re.compile(r'^\S+ "(\w+) \S+ [^"]*" (\d{3}) ', re.MULTILINE)
LOG_ALARMS = (
    "database is locked",
    "OperationalError",
    "Traceback",
    "Internal Server Error",
    "WORKER TIMEOUT",
)


# --- Segment arithmetic, written independently of courses/segments.py -------------------------


def union(segments):
    merged = []
    for start, end in sorted([float(s), float(e)] for s, e in segments if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def seconds(segments):
    return sum(end - start for start, end in segments)


def on_grid(value):
    return int(value / GRID) * GRID


# --- Data -----------------------------------------------------------------------------------------


@dataclass
class Account:
    index: int
    member_id: int
    session_key: str
    csrf: str


@pytest.fixture
def scene(settings):
    """A lesson with a ready 12 s video in a round, 50 members each logged in (a session)."""
    started = time.monotonic()
    # The server signs and checks sessions with the same key; production wants a strong one.
    settings.SECRET_KEY = secrets.token_urlsafe(50)
    branch = factories.org("负载测试党支部", factories.org("负载测试市委"))
    page = lesson(duration=DURATION, hours=HOURS, title="负载测试课")
    today = timezone.localdate()
    training_round(
        [branch],
        [page],
        opens_on=today - timedelta(days=1),
        closes_on=today + timedelta(days=30),
        makeup_deadline=today + timedelta(days=60),
    )
    accounts = []
    for index in range(MEMBERS):
        member = factories.member(branch, name=f"党员{index:02d}")
        client = Client()
        client.force_login(member.user, backend="members.backends.PhoneOrUsernameBackend")
        accounts.append(
            Account(
                index=index,
                member_id=member.pk,
                session_key=client.cookies[settings.SESSION_COOKIE_NAME].value,
                csrf=secrets.token_hex(16),  # 32 characters, as Django's CSRF cookie
            )
        )
    print(f"progress load: data built in {time.monotonic() - started:.1f} s")
    return page, accounts, settings.SECRET_KEY


@pytest.fixture
def server(scene, tmp_path):
    """gunicorn on the test database: SQLite file or PostgreSQL, the product's options."""
    _page, _accounts, secret_key = scene
    connection.close()  # the test process stays out of the way while the server works
    env = {**database_env(connection.settings_dict), "SECRET_KEY": secret_key}
    gunicorn = Gunicorn(env=env, log_dir=tmp_path)
    started = time.monotonic()
    gunicorn.start()
    gunicorn.start_seconds = time.monotonic() - started
    yield gunicorn
    gunicorn.stop()


# --- The players --------------------------------------------------------------------------------


@dataclass
class Record:
    kind: str
    status: int | None
    seconds: float
    body: str


class Load:
    """What every player shares: the server, the clock, counters of requests in flight."""

    def __init__(self, server, members):
        self.server = server
        self.barrier = threading.Barrier(members)
        self.started = None
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0

    def begin(self):
        """Called by each player; the last to arrive starts the clock for all."""
        if self.barrier.wait() == 0:
            self.started = time.monotonic()
        self.barrier.wait()

    def enter(self):
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def leave(self):
        with self.lock:
            self.in_flight -= 1


class Player:
    """One member's player on a compressed clock: a report every REPORT_GAP seconds."""

    def __init__(self, account, load):
        self.account = account
        self.load = load
        self.plan = PLANS[account.index % len(PLANS)]
        self.random = random.Random(account.index)
        self.records: list[Record] = []
        self.problems: list[str] = []
        self.credited = []  # the union of every segment the server acknowledged
        self.acks: list[float] = []  # "watched" of every accepted report, in order
        self.stale_refused = 0

    # HTTP ------------------------------------------------------------------------------------

    def http(self):
        session = requests.Session()
        session.trust_env = False  # never through a proxy: 127.0.0.1 only
        session.headers.update(self.load.server.proxy_headers())
        session.headers["Cookie"] = (
            f"{settings.SESSION_COOKIE_NAME}={self.account.session_key}; "
            f"{settings.CSRF_COOKIE_NAME}={self.account.csrf}"
        )
        session.headers["X-CSRFToken"] = self.account.csrf
        return session

    def post(self, http, kind, path, data=None):
        """POST as the player does (form-encoded, CSRF token in the body); None on failure."""
        if len(self.records) >= MAX_REQUESTS_PER_MEMBER:
            raise TimeoutError("request budget spent")
        self.load.enter()
        started = time.monotonic()
        try:
            response = http.post(
                self.load.server.direct_url + path,
                data={"csrfmiddlewaretoken": self.account.csrf, **(data or {})},
                timeout=REQUEST_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            self.records.append(Record(kind, None, time.monotonic() - started, repr(error)))
            self.problems.append(f"{kind}: no answer: {error!r}")
            return None
        finally:
            self.load.leave()
        self.records.append(
            Record(kind, response.status_code, time.monotonic() - started, response.text[:500])
        )
        return response

    def start_viewing(self, http):
        response = self.post(http, "start", f"/lessons/{self.page_id}/viewings/")
        if response is None or response.status_code != 200:
            status = None if response is None else response.status_code
            raise AssertionError(f"member {self.account.index}: viewing start answered {status}")
        body = response.json()
        if body["duration"] != DURATION or body["segments"] != self.credited:
            self.problems.append(f"viewing start: unexpected {body!r}")
        return body, time.monotonic()

    def report(self, http, viewing, segments, position, kind="report"):
        return self.post(
            http,
            kind,
            viewing["report_url"],
            {
                "viewing": viewing["viewing"],
                "segments": json.dumps(segments),
                "position": str(position),
            },
        )

    def check_ack(self, response, segments, kind="report", racing=None):
        """A 200 whose "watched" is exactly what has been sent so far, this report included.

        ``racing``: the segments of a report in flight at the same time, which the server may
        have applied first.
        """
        if response is None:
            return
        if response.status_code != 200:
            self.problems.append(f"{kind}: {response.status_code} {response.text[:200]}")
            return
        expected = {seconds(union([*self.credited, *segments]))}
        if racing is not None:
            expected.add(seconds(union([*self.credited, *segments, *racing])))
        watched = response.json()["watched"]
        if watched not in expected:
            self.problems.append(
                f"{kind}: server says {watched} s watched, expected {sorted(expected)} s"
            )
        if racing is None:
            self.acks.append(watched)

    def accept(self, segments):
        self.credited = union([*self.credited, *segments])

    # Playing -----------------------------------------------------------------------------------

    def run(self, page_id):
        self.page_id = page_id
        http = self.http()
        try:
            self.load.begin()
            self.deadline = self.load.started + HARD_DEADLINE
            viewing, began = self.start_viewing(http)
            self.pause_at = began + PLAY_SECONDS
            if self.plan == "reload":
                self.play(http, viewing, began, lambda e: _from(0.0, e), until=RELOAD_AT)
                viewing, began = self.reload(http, viewing)
                resume = viewing["position"]
                self.play(http, viewing, began, lambda e: _from(resume, e))
            elif self.plan == "rewatch":
                self.play(http, viewing, began, _rewatching)
            else:
                self.play(http, viewing, began, lambda e: _from(0.0, e))
        except TimeoutError as error:
            self.problems.append(f"stopped early: {error}")
        except Exception as error:  # reported by the test, not lost in a thread
            self.problems.append(f"player failed: {error!r}")
        finally:
            http.close()
        return self

    def play(self, http, viewing, began, timeline, until=None):
        """Report the viewing's segments until the video ends, the player pauses or ``until``."""
        duplicate = self.http() if self.plan == "double" else None
        previous = None
        count = 0
        try:
            while True:
                time.sleep(self.random.uniform(*REPORT_GAP))
                now = time.monotonic()
                if now > self.deadline:
                    raise TimeoutError("hard deadline")
                elapsed = on_grid(now - began)
                if elapsed <= 0:
                    continue
                segments, position = timeline(elapsed)
                pausing = now >= self.pause_at
                ended = position >= DURATION
                if duplicate is None:
                    self.check_ack(self.report(http, viewing, segments, position), segments)
                    self.accept(segments)
                elif previous is None or count % 2 == 0:
                    # The same report twice at once: a retry racing the original.
                    self.race(http, duplicate, viewing, (segments, position), (segments, position))
                else:
                    # The previous report, delayed, arrives while this one is in flight; then
                    # it arrives once more on its own, and its answer shows what the database
                    # holds: a lost update would show here as seconds missing.
                    self.race(http, duplicate, viewing, (segments, position), previous)
                    late = self.report(http, viewing, *previous, kind="late")
                    self.check_ack(late, previous[0], kind="late")
                count += 1
                if count == 5:
                    response = self.post(http, "keepalive", "/session/keepalive/")
                    if response is not None and response.status_code != 204:
                        self.problems.append(f"keepalive: {response.status_code}")
                previous = (segments, position)
                if ended or pausing or (until is not None and elapsed >= until):
                    return
        finally:
            if duplicate is not None:
                duplicate.close()

    def race(self, http, duplicate, viewing, report, other):
        """``report`` and ``other`` (the same or an older one) sent at the same moment."""
        answers = {}

        def second():
            answers["other"] = self.report(duplicate, viewing, *other, kind="retry")

        racing = threading.Thread(target=second)
        racing.start()
        answers["report"] = self.report(http, viewing, *report)
        racing.join(REQUEST_TIMEOUT + 5)
        if report == other:
            self.check_ack(answers["report"], report[0])
            self.check_ack(answers.get("other"), report[0], kind="retry")
        else:
            self.check_ack(answers["report"], report[0], racing=other[0])
            self.check_ack(answers.get("other"), other[0], kind="retry", racing=report[0])
        self.accept(report[0])

    def reload(self, http, viewing):
        """The page reloads: the old tab's beacon, a new viewing, the old beacon again (late)."""
        segments = union(self.credited)
        position = segments[-1][1]
        beacon = {"segments": segments, "position": position}
        self.check_ack(self.report(http, viewing, **beacon), segments, kind="beacon")
        self.accept(segments)
        new_viewing, began = self.start_viewing(http)
        if new_viewing["position"] != position:
            self.problems.append(f"reload resumes at {new_viewing['position']}, not {position}")
        late = self.report(http, viewing, kind="stale", **beacon)
        if late is None or late.status_code != 409 or late.json() != {"superseded": True}:
            status = None if late is None else (late.status_code, late.text[:200])
            self.problems.append(f"stale viewing's report: expected 409 superseded, got {status}")
        else:
            self.stale_refused += 1
        return new_viewing, began


def _from(resume, elapsed):
    """Playing on from ``resume``: one segment growing in real time."""
    position = min(resume + elapsed, DURATION)
    return [[resume, position]], position


def _rewatching(elapsed):
    """Play to 6 s, seek back to 2 s, play on: the player closes a segment at the seek."""
    seek_from, seek_to = REWATCH
    if elapsed <= seek_from:
        return [[0.0, elapsed]], elapsed
    position = min(seek_to + elapsed - seek_from, DURATION)
    return [[0.0, seek_from], [seek_to, position]], position


# --- The test -----------------------------------------------------------------------------------


def test_fifty_members_reporting_at_once_lose_nothing(scene, server):
    page, accounts, _key = scene
    load = Load(server, MEMBERS)
    players = [Player(account, load) for account in accounts]
    with ThreadPoolExecutor(max_workers=MEMBERS) as pool:
        list(pool.map(lambda player: player.run(page.pk), players))
    finished = time.monotonic()
    server.stop()
    stopped = time.monotonic() - finished
    log = server.log

    records = [record for player in players for record in player.records]
    figures = _figures(records, finished - load.started, load.most_in_flight, connection.vendor)
    figures += f"; gunicorn ready in {server.start_seconds:.1f} s, stopped in {stopped:.1f} s"
    print(figures)

    # Every request was answered, as expected: no 5xx, no lock error anywhere.
    alarms = [line for line in log.splitlines() if any(alarm in line for alarm in LOG_ALARMS)]
    problems = [f"member {p.account.index} ({p.plan}): {x}" for p in players for x in p.problems]
    assert not problems, "\n".join(
        [*problems[:30], figures, "gunicorn log, alarming lines:", *alarms[:20]]
    )
    unexpected = [r for r in records if r.status not in (200, 204) and r.kind != "stale"]
    assert not unexpected, unexpected[:10]
    assert not [r for r in records if "database is locked" in r.body]
    assert not alarms, f"gunicorn log:\n{log[-6000:]}"
    # The server's own account agrees: it answered every request the players sent, no 5xx.
    answered = ACCESS_LINE.findall(server.access_log)
    posts = [status for method, status in answered if method == "POST"]
    assert len(posts) == len(records), (len(posts), len(records))
    assert not [status for status in posts if status.startswith("5")]
    assert sum(p.stale_refused for p in players) == PLANS.count("reload") * MEMBERS // len(PLANS)

    # It was load: every member at once, many reports each.
    assert load.most_in_flight >= MEMBERS // 2, figures
    assert len(records) >= MEMBERS * 5, figures

    # Every credited second is in the database, exactly once.
    rows = {row.member_id: row for row in LessonProgress.objects.filter(lesson=page)}
    assert len(rows) == MEMBERS
    threshold = settings.LUNXUN_COMPLETION_THRESHOLD * DURATION
    statuses = dict(
        Participation.objects.filter(round__lessons=page).values_list("member_id", "status")
    )
    completed = 0
    for player in players:
        row = rows[player.account.member_id]
        who = f"member {player.account.index} ({player.plan})"
        assert row.segments == player.credited, who
        assert row.watched_seconds == seconds(player.credited), who
        assert row.watched_seconds == max(player.acks), who
        assert player.acks == sorted(player.acks), f"{who}: a report took seconds back"
        assert row.furthest == player.credited[-1][1], who
        complete = row.watched_seconds >= threshold
        assert (row.completed_at is not None) == complete, who
        assert row.hours_earned == (HOURS if complete else Decimal("0")), who
        # The status in the round followed, under load too.
        wanted = Participation.Status.COMPLETED if complete else Participation.Status.IN_PROGRESS
        assert statuses.get(player.account.member_id) == wanted, who
        completed += complete
    print(
        f"progress load: {sum(row.watched_seconds for row in rows.values()):.2f} s credited "
        f"and stored for {MEMBERS} members, {completed} of them completed the lesson"
    )
    # Both ways through the service ran: members who completed, members who did not.
    assert 0 < completed < MEMBERS


def _figures(records, duration, most_in_flight, vendor):
    by_kind = {}
    for record in records:
        by_kind.setdefault(record.kind, {}).setdefault(record.status, 0)
        by_kind[record.kind][record.status] += 1
    times = sorted(record.seconds * 1000 for record in records)

    def percentile(share):
        return times[min(len(times) - 1, int(len(times) * share))]

    kinds = ", ".join(
        f"{kind} " + "/".join(f"{count}x{status}" for status, count in sorted(statuses.items()))
        for kind, statuses in sorted(by_kind.items())
    )
    return (
        f"progress load [{vendor}]: {len(records)} requests in {duration:.1f} s "
        f"({len(records) / duration:.0f}/s), {MEMBERS} members, at most {most_in_flight} "
        f"in flight; latency ms p50 {statistics.median(times):.0f} p95 {percentile(0.95):.0f} "
        f"p99 {percentile(0.99):.0f} max {times[-1]:.0f}; {kinds}"
    )

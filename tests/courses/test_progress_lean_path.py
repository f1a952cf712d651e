"""A progress report takes the lean path (core/lean.py): the view is called by the first
middleware, the session, the user, CSRF and the rest of the stack never run, and every rule of a
report still holds (its token, its session alive, one viewing per member, the wall clock, the
audit of completion)."""

import json
import re
from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import resolve, reverse
from django.utils import timezone

from core.lean import lean_match
from courses import progress_sql
from courses.models import LessonProgress

from .builders import course, lesson

SECURITY_HEADERS = (
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "X-Frame-Options",
    "Content-Security-Policy",
)


@pytest.fixture
def page(city):
    return lesson(course(title="学习党章"), duration=120, title="第一课")


def _start(client, page):
    return client.post(reverse("courses:viewing_start", args=[page.pk])).json()


def _body(started, seconds):
    return {
        "viewing": started["viewing"],
        "segments": json.dumps([[0, seconds]]),
        "position": str(seconds),
    }


def test_a_report_is_answered_without_session_user_or_the_rest_of_the_stack(
    page, city, client_for, clock
):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=30))
    with CaptureQueriesContext(connection) as captured:
        response = client.post(started["report_url"], _body(started, 30))
    assert response.status_code == 200 and response.json()["watched"] == 30
    request = response.wsgi_request
    assert request.lean_path
    # SessionMiddleware, AuthenticationMiddleware and MessageMiddleware never ran.
    assert not hasattr(request, "session") and not hasattr(request, "user")
    assert not hasattr(request, "_messages")
    statements = [q["sql"] for q in captured.captured_queries]
    # The session is asked about only inside the report's own query (EXISTS), never read.
    assert len(statements) == 2
    assert statements[0].startswith("SELECT") and statements[1].startswith("UPDATE")
    assert not [s for s in statements if re.match(r'SELECT [^()]* FROM "django_session"', s)]
    assert not [s for s in statements if re.match(r'SELECT [^()]* FROM "auth_user"', s)]


def test_the_lean_answer_keeps_the_headers_the_whole_stack_sends(page, city, client_for):
    client = client_for(city.member_a.user)
    whole = client.post(reverse("courses:viewing_start", args=[page.pk]))
    started = whole.json()
    lean = client.post(started["report_url"], _body(started, 0))
    assert lean.status_code == 200 and lean.wsgi_request.lean_path
    for header in SECURITY_HEADERS:
        assert lean.has_header(header), header
        assert lean[header] == whole[header], header
    assert lean["Content-Length"] == str(len(lean.content))
    assert "Accept-Language" in lean["Vary"]


def test_the_status_is_in_the_members_language(page, city, client_for, clock):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=30))
    chinese = client.post(started["report_url"], _body(started, 30)).json()
    assert chinese["status"] == "已观看 25%，需达到 90% 才算完成"
    client.cookies["django_language"] = "en"
    english = client.post(started["report_url"], _body(started, 30)).json()
    assert english["status"] == "Watched 25%; 90% is needed to complete this lesson."


def test_a_report_needs_no_csrf_token_since_its_viewing_token_is_the_credential(page, city, clock):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(city.member_a.user, backend="members.backends.PhoneOrUsernameBackend")
    browser.get(page.url)
    token = browser.cookies["csrftoken"].value
    started = browser.post(
        reverse("courses:viewing_start", args=[page.pk]), HTTP_X_CSRFTOKEN=token
    ).json()
    clock.shift(timedelta(seconds=20))
    # A page on another site can make the browser send the cookies, never the viewing token:
    # the cookies say whose progress it is (409), and nothing is written.
    forged = browser.post(started["report_url"], {"segments": "[[0, 20]]", "position": "20"})
    assert forged.status_code == 409
    assert LessonProgress.objects.get().watched_seconds == 0
    # The player's own report, with the token and without any CSRF token, counts.
    own = browser.post(started["report_url"], _body(started, 20))
    assert own.status_code == 200 and own.json()["watched"] == 20


def test_a_dead_sessions_token_is_refused_and_credits_nothing(page, city, client_for, clock):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=30))
    client.logout()
    assert client.post(started["report_url"], _body(started, 30)).status_code == 404
    # The same member signed in elsewhere hears why this player stops counting.
    other = client_for(city.member_a.user)
    refused = other.post(started["report_url"], _body(started, 30))
    assert refused.status_code == 409 and refused.json() == {"ended": True}
    assert LessonProgress.objects.get().watched_seconds == 0


def test_a_refused_report_is_answered_by_the_whole_stack(page, city, client_for):
    client = client_for(city.member_a.user)
    first = _start(client, page)
    _start(client, page)  # one viewing per member: the first stops counting
    with CaptureQueriesContext(connection) as captured:
        response = client.post(first["report_url"], _body(first, 1))
    assert response.status_code == 409 and response.json() == {"superseded": True}
    request = response.wsgi_request
    assert not request.lean_path and request.user == city.member_a.user
    # The lean pass read the row once; the whole stack asked only whose it is.
    reads = [q["sql"] for q in captured.captured_queries if "courses_lessonprogress" in q["sql"]]
    assert len(reads) == 3  # the lean read, why it was refused, whose progress it is


def test_credit_never_passes_the_wall_clock_on_the_lean_path(page, city, client_for, clock):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=10))
    assert client.post(started["report_url"], _body(started, 60)).json()["watched"] == 10
    clock.shift(timedelta(seconds=5))
    assert client.post(started["report_url"], _body(started, 60)).json()["watched"] == 15


def test_the_report_that_completes_the_lesson_is_audit_logged_once(page, city, client_for, clock):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=120))
    done = client.post(started["report_url"], _body(started, 120), REMOTE_ADDR="10.1.2.3")
    assert done.json()["complete"]
    client.post(started["report_url"], _body(started, 120))
    entry = LogEntry.objects.get(additional_data__event="lesson_completed")
    progress = LessonProgress.objects.get()
    assert entry.actor_id == city.member_a.user.pk
    assert entry.object_pk == str(progress.pk)
    assert entry.remote_addr == "10.1.2.3"
    assert entry.additional_data["lesson"] == page.pk
    assert entry.additional_data["hours"] == str(progress.hours_earned)


def test_a_write_that_lost_a_race_changes_nothing(page, city, client_for, clock):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=30))
    now = timezone.now()
    mine = progress_sql.earning_row(
        progress_id=started["progress"], viewing=started["viewing"], now=now
    )
    read_at = mine.updated_at
    # Another report of the same viewing lands between this one's read and its write.
    client.post(started["report_url"], _body(started, 10))
    mine.segments, mine.watched_seconds, mine.updated_at = [[0, 30]], 30, now
    fields = ["segments", "watched_seconds", "updated_at"]
    assert not progress_sql.credit_write(
        progress=mine, fields=fields, viewing=started["viewing"], read_at=read_at
    )
    assert LessonProgress.objects.get().watched_seconds == 10


def test_a_reports_statements_are_prepared_once_per_connection(page, city, client_for, clock):
    """On PostgreSQL the two statements are parsed and planned once per connection, then run
    prepared; a report's answer is the same either way. SQLite runs them on Django's cursor."""
    client = client_for(city.member_a.user)
    started = _start(client, page)
    for seconds in range(5, 35, 5):
        clock.shift(timedelta(seconds=5))
        assert client.post(started["report_url"], _body(started, seconds)).status_code == 200
    assert LessonProgress.objects.get().watched_seconds == 30
    with CaptureQueriesContext(connection) as captured:
        clock.shift(timedelta(seconds=5))
        assert client.post(started["report_url"], _body(started, 35)).status_code == 200
    # Logged with their values, prepared or not (what DEBUG and the query log show).
    logged = [q["sql"] for q in captured.captured_queries]
    assert len(logged) == 2 and str(started["progress"]) in logged[0], logged
    assert logged[1].startswith("UPDATE") and "35" in logged[1], logged
    if connection.vendor != "postgresql":
        assert type(progress_sql._cursor().cursor) is type(connection.cursor().cursor)
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        prepared = [row[0] for row in cursor.fetchall()]
    table = LessonProgress._meta.db_table
    assert any(s.startswith("SELECT") and table in s for s in prepared), prepared
    assert any(s.startswith(f'UPDATE "{table}"') for s in prepared), prepared


def test_the_wsgi_handler_takes_the_same_lean_path(page, city, client_for, clock):
    """gunicorn and runserver call Django's WSGIHandler, not the test client's handler."""
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=30))
    environ = RequestFactory().post(started["report_url"], _body(started, 30)).environ
    answered = []
    # As the test client does: the test's transaction must outlive the request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        response = WSGIHandler()(
            environ, lambda status, headers: answered.append((status, dict(headers)))
        )
        body = b"".join(response)
        response.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    status, headers = answered[0]
    assert status.startswith("200") and json.loads(body)["watched"] == 30
    assert headers["X-Frame-Options"] == "DENY" and "Content-Security-Policy" in headers
    assert LessonProgress.objects.get().watched_seconds == 30


def test_the_lean_routes_resolve_as_django_resolves_them():
    for path in ("/progress/7/", "/quizzes/attempts/7/submit/"):
        lean, django = lean_match(path), resolve(path)
        assert lean.func is django.func and lean.kwargs == django.kwargs
        assert lean.view_name == django.view_name and lean.route == django.route
    assert lean_match("/progress/7/extra/") is None and lean_match("/bench/bare/") is None


def test_only_a_post_takes_the_lean_path(page, city, client_for):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    response = client.get(started["report_url"])
    assert response.status_code == 405 and not hasattr(response.wsgi_request, "lean_path")

"""A report that brings back the signed row its last answer carried (courses/progress_state.py)
is one statement, and every rule of a report still holds: the session alive, the member and
their account active, one viewing per member, the wall clock, nothing counted twice, the audit
of completion. A token that is stale, forged or someone else's changes nothing but the path."""

import json
from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from courses import progress_state
from courses.models import LessonProgress

from .builders import course, lesson


@pytest.fixture
def page(city):
    return lesson(course(title="学习党章"), duration=120, title="第一课")


def _start(client, page):
    return client.post(reverse("courses:viewing_start", args=[page.pk])).json()


def _report(client, started, seconds, state, **extra):
    body = {
        "viewing": started["viewing"],
        "segments": json.dumps([[0, seconds]]),
        "position": str(seconds),
    }
    if state is not None:
        body["state"] = state
    return client.post(started["report_url"], body, **extra)


def _statements(client, started, seconds, state):
    with CaptureQueriesContext(connection) as captured:
        response = _report(client, started, seconds, state)
    return response, [q["sql"] for q in captured.captured_queries]


def _watched():
    return LessonProgress.objects.get().watched_seconds


def test_a_report_with_its_rows_state_is_one_update(page, city, client_for, clock):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    assert started["state"].startswith(f"{started['progress']}:")
    clock.shift(timedelta(seconds=20))
    first, statements = _statements(client, started, 20, started["state"])
    assert first.status_code == 200 and first.json()["watched"] == 20
    assert len(statements) == 1 and statements[0].startswith("UPDATE"), statements
    clock.shift(timedelta(seconds=20))
    second, statements = _statements(client, started, 40, first.json()["state"])
    assert second.json()["watched"] == 40 and len(statements) == 1
    assert second.json()["state"] != first.json()["state"]
    row = LessonProgress.objects.get()
    assert row.watched_seconds == 40 and row.segments == [[0.0, 40.0]]
    # The answer's token is the row as it now stands in the database, all but the session key.
    token = progress_state.read(second.json()["state"], progress_id=row.pk, viewing=row.viewing)
    names = [name for name, _load in progress_state._columns()]
    assert "viewing_session" not in names
    assert len(names) == len(LessonProgress._meta.concrete_fields) - 1
    for name in names:
        assert getattr(token, name) == getattr(row, name), name


def test_no_answer_reveals_the_session_key(page, city, client_for, clock):
    """The session cookie is HttpOnly: a page's scripts must not read its value in a token."""
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=20))
    answer = _report(client, started, 20, started["state"])
    key = client.session.session_key
    for token in (started["state"], answer.json()["state"]):
        _pk, payload, _signature = token.split(":")
        assert key not in signing.b64_decode(payload.encode()).decode()
    assert key not in answer.content.decode()


def test_a_stale_state_is_read_again_and_counts_nothing_twice(page, city, client_for, clock):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=30))
    first = _report(client, started, 30, started["state"]).json()
    assert first["watched"] == 30
    clock.shift(timedelta(seconds=10))
    # The start's token again: the row has changed since, so the write matches nothing and the
    # report reads the row. Had it credited from the old row, its watch clock would have
    # allowed 40 s for the same 10 s of wall clock.
    replay, statements = _statements(client, started, 70, started["state"])
    assert replay.json()["watched"] == 40
    assert [s.split()[0] for s in statements] == ["UPDATE", "SELECT", "UPDATE"]
    assert _watched() == 40


def test_credit_never_passes_the_wall_clock_with_a_state(page, city, client_for, clock):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=10))
    answer = _report(client, started, 60, started["state"]).json()
    assert answer["watched"] == 10
    clock.shift(timedelta(seconds=5))
    assert _report(client, started, 60, answer["state"]).json()["watched"] == 15


def test_a_tampered_state_is_ignored(page, city, client_for, clock):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=10))
    # The row with its watch clock an hour back, re-encoded: the signature no longer holds.
    pk, payload, signature = started["state"].split(":")
    values = json.loads(signing.b64_decode(payload.encode()))
    names = [f.attname for f in LessonProgress._meta.concrete_fields]
    values[names.index("viewing_started_at")] = (timezone.now() - timedelta(hours=1)).isoformat()
    forged_payload = signing.b64_encode(json.dumps(values).encode()).decode()
    forged = f"{pk}:{forged_payload}:{signature}"
    assert progress_state.read(forged, progress_id=int(pk), viewing=None) is None
    response, statements = _statements(client, started, 3600, forged)
    assert response.json()["watched"] == 10
    assert [s.split()[0] for s in statements] == ["SELECT", "UPDATE"]
    assert _report(client, started, 20, "garbage").status_code == 200


def test_a_state_signed_with_another_key_is_ignored(page, city, client_for, clock, settings):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=10))
    with_key = started["state"]
    settings.SECRET_KEY = "another-key-" + "x" * 50
    assert (
        progress_state.read(
            with_key, progress_id=started["progress"], viewing=LessonProgress.objects.get().viewing
        )
        is None
    )


def test_another_rows_state_is_ignored(page, city, client_for, clock):
    mine = client_for(city.member_a.user)
    theirs = client_for(city.member_b.user)
    started = _start(mine, page)
    other = _start(theirs, page)
    clock.shift(timedelta(seconds=10))
    # Member B's valid token sent with A's report: not A's row, so not used.
    assert (
        progress_state.read(other["state"], progress_id=started["progress"], viewing=None) is None
    )
    response, statements = _statements(mine, started, 10, other["state"])
    assert response.json()["watched"] == 10 and len(statements) == 2
    assert LessonProgress.objects.get(pk=other["progress"]).watched_seconds == 0


@pytest.mark.parametrize("ended", ["logout", "member", "account"])
def test_a_state_does_not_outlive_the_viewings_right_to_earn(page, city, client_for, clock, ended):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=10))
    answer = _report(client, started, 10, started["state"]).json()
    if ended == "logout":
        client.logout()
    elif ended == "member":
        type(city.member_a).objects.filter(pk=city.member_a.pk).update(is_active=False)
    else:
        type(city.member_a.user).objects.filter(pk=city.member_a.user.pk).update(is_active=False)
    clock.shift(timedelta(seconds=10))
    refused = _report(client, started, 20, answer["state"])
    assert refused.status_code in (404, 409)
    assert b"state" not in refused.content
    assert _watched() == 10


def test_a_superseded_viewings_state_credits_nothing(page, city, client_for, clock):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=10))
    answer = _report(client, started, 10, started["state"]).json()
    other = lesson(course(title="党史"), duration=300, title="第二课")
    _start(client, other)  # one viewing per member: this one stops counting
    clock.shift(timedelta(seconds=10))
    refused = _report(client, started, 20, answer["state"])
    assert refused.status_code == 409 and refused.json() == {"superseded": True}
    assert LessonProgress.objects.get(lesson=page).watched_seconds == 10


def test_the_completing_report_with_a_state_is_audit_logged_once(page, city, client_for, clock):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    clock.shift(timedelta(seconds=120))
    done, statements = _statements(client, started, 120, started["state"])
    assert done.json()["complete"]
    # The lesson's hours are read to record them; the progress row is not.
    assert not [s for s in statements if s.startswith('SELECT p."id"')], statements
    again = _report(client, started, 120, done.json()["state"])
    assert again.json()["complete"]
    entry = LogEntry.objects.get(additional_data__event="lesson_completed")
    progress = LessonProgress.objects.get()
    assert entry.actor_id == city.member_a.user.pk and entry.object_pk == str(progress.pk)
    assert progress.hours_earned == page.hours_override and progress.completed_at is not None
    # The yearly study-hours summary heard of it in the same transaction.
    summary = city.member_a.hours_summaries.get()
    assert summary.lessons == page.hours_override


def test_a_schema_change_retires_every_token(page, city, client_for, clock, monkeypatch):
    client = client_for(city.member_a.user)
    started = _start(client, page)
    row = LessonProgress.objects.get()
    columns = progress_state._columns()
    progress_state._salt.cache_clear()
    monkeypatch.setattr(progress_state, "_columns", lambda: columns[:-1])
    try:
        assert (
            progress_state.read(started["state"], progress_id=row.pk, viewing=row.viewing) is None
        )
    finally:
        progress_state._salt.cache_clear()

"""Listening with the screen off changes nothing on the server: a report sent by beacon from a
hidden page, however it describes itself, earns what any report earns, never more seconds than
have passed since the viewing began."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse

from courses.models import LessonProgress

from .builders import lesson


def begin(client, page):
    started = client.post(reverse("courses:viewing_start", args=[page.pk]))
    assert started.status_code == 200, started.content
    return started.json()


def send(client, started, segments, **claims):
    # As navigator.sendBeacon sends it: form-encoded (the test client skips CSRF checks).
    return client.post(
        started["report_url"],
        {
            "viewing": started["viewing"],
            "segments": json.dumps(segments),
            "position": "100",
            **claims,
        },
    )


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"mode": "audio", "hidden": "1", "rate": "1", "seconds": "100", "watched_seconds": "100"},
    ],
    ids=["plain", "claims-hidden-listening"],
)
def test_a_forged_listening_report_earns_no_more_than_the_clock(city, client_for, clock, claims):
    page = lesson(duration=100)
    client = client_for(city.member_a.user)
    started = begin(client, page)
    clock.shift(timedelta(seconds=20))
    # More seconds than have passed, as if played while hidden: clamped to the 20 s that did.
    response = send(client, started, [[0, 100]], **claims)
    assert response.status_code == 200, response.content
    progress = LessonProgress.objects.get(member=city.member_a, lesson=page)
    assert progress.watched_seconds == 20
    # Sent again at once (the beacon on pagehide after the report on hide): nothing more.
    send(client, started, [[0, 100]], **claims)
    send(client, started, [[0, 60], [60, 100]], **claims)
    progress.refresh_from_db()
    assert progress.watched_seconds == 20
    assert progress.completed_at is None

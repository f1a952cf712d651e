import json
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from courses.models import LessonProgress

from .builders import course, lesson


@pytest.fixture
def page(city):
    return lesson(course(title="学习党章", lecturer="王老师"), duration=120, title="第一课")


def test_course_centre_lists_filters_and_searches(city, client_for):
    from courses.models import Topic

    history = Topic.objects.create(name="党史", slug="history")
    first = course(title="党史学习")
    first.topics.add(history)
    first.save_revision().publish()
    course(title="党章学习").save_revision().publish()
    client = client_for(city.member_a.user)
    index = first.get_parent()
    assert client.get(index.url).context["courses"].paginator.count == 2
    assert [c.title for c in client.get(index.url + "?topic=history").context["courses"]] == [
        "党史学习"
    ]
    assert [c.title for c in client.get(index.url + "?q=党章").context["courses"]] == ["党章学习"]


def test_lesson_page_needs_login(page, client):
    response = client.get(page.url)
    assert response.status_code == 302
    assert reverse("members:login") in response["Location"]


def test_lesson_page_shows_player_and_status(page, city, client_for):
    response = client_for(city.member_a.user).get(page.url)
    text = response.content.decode()
    assert response.status_code == 200
    assert "lesson-player" in text
    assert "仅音频（省流量）" in text
    assert "达到 90%" in text
    config = response.context["player"]
    assert config["master_url"].endswith("master.m3u8")
    assert config["fixed_speed"] and config["block_seek_ahead"]


def test_course_page_query_count_is_flat(city, client_for, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    parent = course(title="多课时课程")
    client = client_for(city.member_a.user)
    client.get(parent.url)  # the first request also renews the session
    counts = []
    for _round in range(2):
        for number in range(4):
            lesson(parent, title=f"第{number}课")
        with CaptureQueriesContext(connection) as queries:
            response = client.get(parent.url)
        counts.append(len(queries))
    assert len(response.context["lessons"]) == 8
    assert counts[0] == counts[1] <= 25


def test_viewing_and_report_over_http_with_csrf(page, city):
    client = Client(enforce_csrf_checks=True)
    client.force_login(city.member_a.user, backend="members.backends.PhoneOrUsernameBackend")
    start_url = reverse("courses:viewing_start", args=[page.pk])
    assert client.post(start_url).status_code == 403  # no CSRF token
    client.get(page.url)
    token = client.cookies["csrftoken"].value
    with time_machine.travel(timezone.now(), tick=False) as clock:
        started = client.post(start_url, HTTP_X_CSRFTOKEN=token).json()
        clock.shift(timedelta(seconds=30))
        # The shape sendBeacon sends: form-encoded, token in the body.
        result = client.post(
            started["report_url"],
            {
                "csrfmiddlewaretoken": token,
                "viewing": started["viewing"],
                "segments": json.dumps([[0, 30]]),
                "position": "30",
            },
        ).json()
    assert result["percent"] == 25
    assert "25%" in result["status"]
    assert LessonProgress.objects.get().last_position == 30


def test_superseded_viewing_gets_409(page, city, client_for):
    client = client_for(city.member_a.user)
    first = client.post(reverse("courses:viewing_start", args=[page.pk])).json()
    client.post(reverse("courses:viewing_start", args=[page.pk]))
    response = client.post(
        first["report_url"],
        {"viewing": first["viewing"], "segments": "[[0, 1]]", "position": "1"},
    )
    assert response.status_code == 409
    assert response.json() == {"superseded": True}


def test_someone_elses_progress_is_404(page, city, client_for):
    started = (
        client_for(city.member_a.user).post(reverse("courses:viewing_start", args=[page.pk])).json()
    )
    other = client_for(city.member_b.user)
    # Without the viewing token, which only the member's own player received, nothing is
    # credited and nothing is revealed.
    for viewing in ("", "00000000-0000-0000-0000-000000000000"):
        response = other.post(
            started["report_url"], {"viewing": viewing, "segments": "[[0, 1]]", "position": "1"}
        )
        assert response.status_code == 404
    assert Client().post(started["report_url"], {"segments": "[]"}).status_code == 404


def test_report_path_loads_no_session_or_user(page, city, client_for, django_assert_num_queries):
    client = client_for(city.member_a.user)
    started = client.post(reverse("courses:viewing_start", args=[page.pk])).json()
    body = {"viewing": started["viewing"], "segments": "[[0, 1]]", "position": "1"}
    with django_assert_num_queries(2):  # SELECT, then an UPDATE conditional on what was read
        assert client.post(started["report_url"], body).status_code == 200


def test_staff_without_member_record_cannot_start(page, city, client_for):
    response = client_for(city.trainer).post(reverse("courses:viewing_start", args=[page.pk]))
    assert response.status_code == 404


def test_garbage_report_is_400(page, city, client_for):
    client = client_for(city.member_a.user)
    started = client.post(reverse("courses:viewing_start", args=[page.pk])).json()
    response = client.post(
        started["report_url"], {"viewing": started["viewing"], "segments": "{nope"}
    )
    assert response.status_code == 400

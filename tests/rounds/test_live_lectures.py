"""A live lecture is part of a round: scheduled by the trainer as a group session, on the
calendar and in the iCal feed with its state in words, and run from the trainer's live page
(server URL, stream key, a new key, the end)."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from courses import services as course_services
from courses.models import LiveStream
from members.models import Role
from rounds import ical, services

from .. import factories
from . import builders


@pytest.fixture
def lecture(city):
    training_round = builders.training_round([city.root])
    lessons = list(training_round.lessons.order_by("path"))
    session = builders.session(
        training_round, city.branch_a, lessons=lessons[1:], live=True, title="主会场直播党课"
    )
    return session


def trainer_client(user):
    client = Client()
    client.force_login(user, backend="members.backends.PhoneOrUsernameBackend")
    return client


def test_a_live_session_gets_a_stream_counting_as_its_first_lesson(lecture):
    stream = lecture.live_stream
    assert stream is not None
    assert stream.lesson_id == lecture.lessons.get().pk
    assert stream.state == LiveStream.State.SCHEDULED
    assert len(stream.key) >= 20


def test_saving_the_session_again_keeps_its_key(lecture, city):
    key = lecture.live_stream.key
    again = services.session_save(
        training_round=lecture.round,
        title=lecture.title,
        host=lecture.host,
        start=lecture.event.start,
        end=lecture.event.end,
        lessons=list(lecture.lessons.all()),
        hours=lecture.hours,
        live=True,
        session=lecture,
    )
    assert again.live_stream.key == key


def test_the_ical_feed_says_it_is_a_live_lecture_and_its_state(lecture, city):
    feed = ical.feed_for(city.member_a)
    with translation.override("zh-hans"):
        text = ical.member_ics(member=city.member_a, feed=feed).decode()
    assert "主会场直播党课" in text
    assert "直播课堂" in text
    assert "未开始" in text


def test_the_calendar_shows_the_state_in_words(lecture, city, time_machine):
    time_machine.move_to(builders.aware(2026, 11, 10, 9, 0), tick=False)
    client = trainer_client(city.member_a.user)
    answer = client.get(reverse("rounds:calendar_agenda"))
    assert answer.status_code == 200
    assert 'data-live-status="scheduled"' in answer.content.decode()
    assert "未开始" in answer.content.decode()


def test_the_trainer_sees_the_server_and_key_and_can_make_a_new_key(lecture, city):
    client = trainer_client(city.trainer_a)
    url = reverse("group_sessions:live", args=[lecture.pk])
    page = client.get(url).content.decode()
    old = lecture.live_stream.key
    assert old in page
    assert "rtmp://" in page
    assert client.post(url, {"action": "new_key"}).status_code == 302
    lecture.live_stream.refresh_from_db()
    assert lecture.live_stream.key != old
    with pytest.raises(course_services.LiveKeyRefused):
        course_services.live_publish_begin(key=old)


def test_the_trainer_ends_the_lecture(lecture, city, django_capture_on_commit_callbacks):
    course_services.live_publish_begin(key=lecture.live_stream.key)
    client = trainer_client(city.trainer_a)
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("group_sessions:live", args=[lecture.pk]), {"action": "end"})
    lecture.live_stream.refresh_from_db()
    assert lecture.live_stream.state == LiveStream.State.PROCESSING
    assert (
        "data-stream-key"
        not in client.get(reverse("group_sessions:live", args=[lecture.pk])).content.decode()
    )


def test_a_trainer_of_another_county_does_not_see_the_key(lecture, city):
    client = trainer_client(factories.staff("trainer_b", Role.TRAINER, city.county_b))
    answer = client.get(reverse("group_sessions:live", args=[lecture.pk]))
    assert answer.status_code == 404
    assert lecture.live_stream.key not in answer.content.decode()

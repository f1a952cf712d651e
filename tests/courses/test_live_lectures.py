"""Live lectures without the streaming server: the stream key nginx asks about, the states and
their words, and the credit for watching live (the same honest rules as a recorded lesson)."""

from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from courses import live, services
from courses.models import LessonPage, LessonProgress, LiveStream

from .builders import lesson, ready_video, session_of


@pytest.fixture(autouse=True)
def chinese():
    # The words members see are the issue's own (直播状态).
    with translation.override("zh-hans"):
        yield


@pytest.fixture
def stream(db):
    page = lesson(title="直播党课")
    LessonPage.objects.filter(pk=page.pk).update(video=None)  # a new lesson: no video yet
    return services.live_stream_create(lesson=LessonPage.objects.get(pk=page.pk))


def publish(client, key, secret=None):
    secret = live.callback_secret() if secret is None else secret
    return client.post(
        reverse("courses:live_publish") + f"?secret={secret}",
        {"call": "publish", "name": key, "app": "live", "addr": "127.0.0.1"},
    )


def publish_done(client, name):
    return client.post(
        reverse("courses:live_publish_done") + f"?secret={live.callback_secret()}",
        {"call": "publish_done", "name": name, "app": "live"},
    )


# --- The key ------------------------------------------------------------------------------------


def test_the_lecture_key_goes_on_air_under_the_public_name(stream):
    answer = publish(Client(), stream.key)
    assert answer.status_code == 302
    assert answer["Location"] == stream.name
    stream.refresh_from_db()
    assert stream.state == LiveStream.State.LIVE


def test_a_wrong_key_is_refused(stream):
    answer = publish(Client(), stream.key + "x")
    assert answer.status_code == 403
    stream.refresh_from_db()
    assert stream.state == LiveStream.State.SCHEDULED


def test_the_callback_without_the_shared_secret_is_not_there(stream):
    assert publish(Client(), stream.key, secret="guess").status_code == 404
    assert publish(Client(), stream.key, secret="").status_code == 404
    stream.refresh_from_db()
    assert stream.pushes == []


def test_an_old_key_is_refused_after_a_new_one_is_made(stream):
    old = stream.key
    services.live_key_regenerate(stream=stream)
    assert publish(Client(), old).status_code == 403
    stream.refresh_from_db()
    assert publish(Client(), stream.key).status_code == 302


def test_a_key_reused_after_the_lecture_ended_is_refused(
    stream, django_capture_on_commit_callbacks
):
    client = Client()
    assert publish(client, stream.key).status_code == 302
    with django_capture_on_commit_callbacks(execute=False):
        services.live_end(stream=stream)
    assert publish(client, stream.key).status_code == 403
    refusal = LogEntry.objects.get(additional_data__event="live_publish_refused")
    assert refusal.additional_data["result"] == "refused"


# --- States and their words ---------------------------------------------------------------------


def test_the_states_follow_the_pushes(stream, clock, django_capture_on_commit_callbacks):
    client = Client()
    assert stream.status_text == "未开始"
    publish(client, stream.key)
    stream.refresh_from_db()
    assert stream.status_text == "正在直播"
    clock.shift(timedelta(seconds=30))
    publish_done(client, stream.key)  # nginx names the stream by the key it came with
    stream.refresh_from_db()
    assert stream.state == LiveStream.State.INTERRUPTED
    assert stream.status_text == "信号中断，请稍候"
    clock.shift(timedelta(seconds=20))
    publish(client, stream.key)  # the hall is back: the same lecture goes on
    stream.refresh_from_db()
    assert stream.state == LiveStream.State.LIVE
    assert len(stream.pushes) == 2
    clock.shift(timedelta(seconds=15))
    with django_capture_on_commit_callbacks(execute=False):
        services.live_end(stream=stream)
    stream.refresh_from_db()
    assert stream.status_text == "直播已结束，回放处理中"
    # The gap between the pushes is not part of the lecture.
    assert stream.pushed_seconds() == pytest.approx(45)


def test_a_push_ends_by_its_key_even_after_a_new_key_was_made(stream):
    client = Client()
    old = stream.key
    publish(client, old)
    services.live_key_regenerate(stream=stream)
    publish_done(client, old)
    stream.refresh_from_db()
    assert stream.state == LiveStream.State.INTERRUPTED
    assert stream.pushes[-1][1] is not None


def test_a_push_gone_past_the_grace_period_ends_the_lecture(
    stream, clock, settings, django_capture_on_commit_callbacks
):
    client = Client()
    publish(client, stream.key)
    publish_done(client, stream.key)
    clock.shift(timedelta(minutes=settings.LUNXUN_LIVE_GRACE_MINUTES - 1))
    assert services.live_expire(stream_id=stream.pk).state == LiveStream.State.INTERRUPTED
    clock.shift(timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=False):
        assert services.live_expire(stream_id=stream.pk).state == LiveStream.State.PROCESSING


def test_the_status_page_says_the_state_in_words(stream, city):
    client = Client()
    client.force_login(city.member_a.user, backend="members.backends.PhoneOrUsernameBackend")
    publish(Client(), stream.key)
    answer = client.get(reverse("courses:live_status", args=[stream.pk])).json()
    assert answer == {"state": "live", "status": "正在直播", "watchable": True, "ended": False}


# --- Credit for watching live -------------------------------------------------------------------


def start_live(member, stream):
    stream.refresh_from_db()
    return services.live_viewing_start(member=member, stream=stream, session_key=session_of(member))


def report(stream, progress, played, position=0):
    stream.refresh_from_db()
    return services.live_progress_report(
        stream=stream,
        progress_id=progress.pk,
        viewing=progress.viewing,
        played=played,
        position=position,
    )


def test_watching_live_credits_the_seconds_played_on_the_lecture_timeline(stream, city, clock):
    publish(Client(), stream.key)
    on_air = timezone.now().timestamp()
    clock.shift(timedelta(seconds=60))
    progress = start_live(city.member_a, stream)  # joins a minute in
    clock.shift(timedelta(seconds=30))
    result = report(stream, progress, [[on_air + 60, on_air + 90]])
    assert result.segments == [[60.0, 90.0]]
    assert result.watched_seconds == 30


def test_no_credit_for_the_time_before_the_member_joined(stream, city, clock):
    publish(Client(), stream.key)
    on_air = timezone.now().timestamp()
    clock.shift(timedelta(seconds=60))
    progress = start_live(city.member_a, stream)
    clock.shift(timedelta(seconds=10))
    # Claims the whole minute and more: only the 10 s since joining can be credited.
    result = report(stream, progress, [[on_air, on_air + 70]])
    assert result.watched_seconds == 10


def test_nothing_is_credited_outside_the_pushes(stream, city, clock):
    client = Client()
    publish(client, stream.key)
    on_air = timezone.now().timestamp()
    progress = start_live(city.member_a, stream)
    clock.shift(timedelta(seconds=20))
    publish_done(client, stream.key)
    clock.shift(timedelta(seconds=40))  # signal lost for 40 s
    publish(client, stream.key)
    clock.shift(timedelta(seconds=10))
    # Played the whole wall-clock span: the 40 s gap is not lecture.
    result = report(stream, progress, [[on_air, on_air + 70]])
    assert result.segments == [[0.0, 30.0]]
    assert result.watched_seconds == 30


def test_one_viewing_at_a_time_also_live(stream, city, clock):
    publish(Client(), stream.key)
    on_air = timezone.now().timestamp()
    first = start_live(city.member_a, stream)
    clock.shift(timedelta(seconds=10))
    start_live(city.member_a, stream)  # a second phone takes over
    clock.shift(timedelta(seconds=10))
    with pytest.raises(services.ViewingSuperseded):
        report(stream, first, [[on_air, on_air + 20]])


def test_the_live_report_url_refuses_a_progress_of_another_lesson(stream, city, clock):
    publish(Client(), stream.key)
    other = services.progress_start(
        member=city.member_a, lesson=lesson(), session_key=session_of(city.member_a)
    )
    with pytest.raises(services.ViewingSuperseded):
        report(stream, other, [[0, 10]])


def test_what_was_watched_live_counts_toward_the_recording(
    stream, city, clock, settings, django_capture_on_commit_callbacks
):
    publish(Client(), stream.key)
    on_air = timezone.now().timestamp()
    progress = start_live(city.member_a, stream)
    other = start_live(city.member_b, stream)
    clock.shift(timedelta(seconds=100))
    report(stream, progress, [[on_air, on_air + 95]])
    report(stream, other, [[on_air, on_air + 50]])
    with django_capture_on_commit_callbacks(execute=False):
        services.live_end(stream=stream)
    # The recording became the lesson's video (live_recording_process) and is now ready.
    video = ready_video(duration=100)
    LiveStream.objects.filter(pk=stream.pk).update(recording=video)
    LessonPage.objects.filter(pk=stream.lesson_id).update(video=video)
    with django_capture_on_commit_callbacks(execute=True):
        services.live_progress_settle(video=video)
    stream.refresh_from_db()
    assert stream.status_text == "可观看回放"
    done = LessonProgress.objects.get(pk=progress.pk)
    assert done.duration == 100
    assert done.percent == 95
    assert done.completed_at is not None  # 95% ≥ the 90% threshold
    assert LessonProgress.objects.get(pk=other.pk).completed_at is None  # 50%


def test_a_lecture_not_on_air_cannot_be_watched(stream, city):
    with pytest.raises(services.LiveNotWatchable):
        start_live(city.member_a, stream)

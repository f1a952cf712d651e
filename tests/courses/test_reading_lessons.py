"""Reading lessons (读原著学原文): a text or a document, completed by the member saying they
have read it once it has been open for the reading time the trainer set — on the same honest
watch clock as videos — and a training that requires a lesson nobody could complete is refused
at publishing."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from courses import services
from courses.models import LessonPage, LessonProgress
from rounds.models import Participation, Round
from tests.rounds import builders as round_builders

from . import builders

pytestmark = pytest.mark.django_db

T0 = timezone.make_aware(timezone.datetime(2026, 11, 5, 20, 0))


def reading_lesson(minutes=10, **fields):
    parent = fields.pop("parent", None) or builders.course()
    page = LessonPage(
        title=fields.pop("title", "《共产党宣言》选读"),
        slug=f"r{LessonPage.objects.count()}",
        reading_minutes=minutes,
        **fields,
    )
    parent.add_child(instance=page)
    return page


def test_a_reading_lesson_completes_only_after_its_reading_time(city):
    lesson = reading_lesson(minutes=10)
    assert lesson.is_reading and lesson.hours == Decimal("0.2")  # 10 of 45 minutes
    session = builders.session_of(city.member_a)
    with time_machine.travel(T0, tick=False):
        services.reading_start(member=city.member_a, lesson=lesson, session_key=session)
    with time_machine.travel(T0 + timedelta(minutes=9, seconds=30), tick=False):
        with pytest.raises(services.ReadingRefused) as refused:
            services.reading_done(member=city.member_a, lesson=lesson, session_key=session)
        assert "1 分钟" in str(refused.value)
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        progress = services.reading_done(member=city.member_a, lesson=lesson, session_key=session)
    assert progress.completed_at is not None and progress.hours_earned == Decimal("0.2")
    assert progress.watched_seconds == 600 and progress.viewing is None
    # Said again: nothing changes.
    again = services.reading_done(member=city.member_a, lesson=lesson, session_key=session)
    assert again.completed_at == progress.completed_at


def test_reading_and_watching_share_one_clock(city):
    """Opening a video meanwhile ends the reading: one lesson at a time, whatever the kind."""
    reading = reading_lesson(minutes=5)
    video = builders.lesson(title="视频课")
    session = builders.session_of(city.member_a)
    with time_machine.travel(T0, tick=False):
        services.reading_start(member=city.member_a, lesson=reading, session_key=session)
        services.progress_start(member=city.member_a, lesson=video, session_key=session)
    with time_machine.travel(T0 + timedelta(minutes=6), tick=False):
        with pytest.raises(services.ReadingRefused):
            services.reading_done(member=city.member_a, lesson=reading, session_key=session)
    # A reading started right after a credited video starts where that credit ended.
    progress = LessonProgress.objects.get(member=city.member_a, lesson=reading)
    assert progress.completed_at is None


def test_another_device_cannot_close_the_reading(city):
    lesson = reading_lesson(minutes=1)
    here = builders.session_of(city.member_a)
    there = builders.session_of(city.member_a)
    with time_machine.travel(T0, tick=False):
        services.reading_start(member=city.member_a, lesson=lesson, session_key=here)
    with time_machine.travel(T0 + timedelta(minutes=2), tick=False):
        with pytest.raises(services.ReadingRefused):
            services.reading_done(member=city.member_a, lesson=lesson, session_key=there)
        services.reading_done(member=city.member_a, lesson=lesson, session_key=here)


def test_a_lesson_is_watched_or_read_not_both():
    lesson = LessonPage(title="x", video=builders.ready_video(10), reading_minutes=5)
    with pytest.raises(ValidationError):
        lesson.clean()


def test_the_page_says_the_rule_and_counts_it_for_the_round(
    city, client_for, django_capture_on_commit_callbacks
):
    lesson = reading_lesson(minutes=3)
    training = round_builders.training_round([city.root], lessons=[lesson])
    client = client_for(city.member_a.user)
    with time_machine.travel(T0, tick=True):
        page = client.get(lesson.url).content.decode()
        assert "打开满 3 分钟后" in page and "开始阅读" in page
        client.post(reverse("courses:reading_start", args=[lesson.pk]))
        page = client.get(lesson.url).content.decode()
        assert "我已读完" in page
        early = client.post(reverse("courses:reading_done", args=[lesson.pk]), follow=True)
        assert "请继续阅读" in early.content.decode()
    with time_machine.travel(T0 + timedelta(minutes=3, seconds=5), tick=True):
        with django_capture_on_commit_callbacks(execute=True):
            done = client.post(reverse("courses:reading_done", args=[lesson.pk]), follow=True)
        assert "已读完" in done.content.decode()
    status = Participation.objects.get(round=training, member=city.member_a).status
    assert status == Participation.Status.COMPLETED


def test_publishing_refuses_a_lesson_nobody_could_complete(city, client_for):
    parent = builders.course()
    text_only = LessonPage(title="只有文字的课", slug="text-only")
    parent.add_child(instance=text_only)
    readable = reading_lesson(parent=parent, title="可阅读的课")
    client = client_for(city.trainer)
    data = {
        "title": "读原著学原文",
        "kind": "programme",
        "opens_on": "2026-10-01",
        "closes_on": "2026-12-31",
        "makeup_deadline": "2027-01-31",
        "scope_roots": "CITY",
        "lessons": [text_only.pk, readable.pk],
        "completion_rule": "either",
        "hours": "2",
        "state": "published",
    }
    response = client.post(reverse("training_rounds:add"), data)
    assert response.status_code == 200
    assert "只有文字的课" in str(response.context["form"].errors["lessons"])
    assert "可阅读的课" not in str(response.context["form"].errors["lessons"])
    assert not Round.objects.exists()
    # As a draft it may be saved; at group sessions only it may be published.
    assert (
        client.post(reverse("training_rounds:add"), {**data, "state": "draft"}).status_code == 302
    )
    sessions_only = {**data, "title": "集中学习原文", "completion_rule": "session"}
    assert client.post(reverse("training_rounds:add"), sessions_only).status_code == 302

"""Watch progress is validated on the server: only seconds actually played, in real time."""

from datetime import timedelta
from decimal import Decimal

import pytest

from courses import services
from courses.models import LessonProgress

from .builders import lesson, session_of


@pytest.fixture
def viewer(city):
    return city.member_a


def start(member, page):
    return services.progress_start(member=member, lesson=page, session_key=session_of(member))


def report(progress, segments, position=0, viewing=None):
    return services.progress_report(
        progress_id=progress.pk,
        viewing=progress.viewing if viewing is None else viewing,
        segments=segments,
        position=position,
    )


def test_jumping_to_the_end_credits_nothing(viewer, clock):
    page = lesson(duration=100)
    progress = start(viewer, page)
    result = report(progress, [[95, 100]], position=100)
    assert result.watched_seconds == 0
    assert result.completed_at is None


def test_reports_faster_than_real_time_are_clamped(viewer, clock):
    page = lesson(duration=100)
    progress = start(viewer, page)
    clock.shift(timedelta(seconds=30))
    result = report(progress, [[0, 100]])
    assert result.watched_seconds == 30
    assert result.completed_at is None


def test_real_viewing_is_credited_in_full_and_completes(viewer, clock):
    page = lesson(duration=100, hours=Decimal("0.5"))
    progress = start(viewer, page)
    for second in range(15, 106, 15):
        clock.shift(timedelta(seconds=15))
        result = report(progress, [[0, min(second, 100)]], position=min(second, 100))
    assert result.watched_seconds == 100
    assert result.completed_at is not None
    assert result.hours_earned == Decimal("0.5")


def test_completion_exactly_at_the_threshold(viewer, clock, settings):
    settings.LUNXUN_COMPLETION_THRESHOLD = 0.9
    page = lesson(duration=100)
    progress = start(viewer, page)
    clock.shift(timedelta(seconds=200))
    assert report(progress, [[0, 89.9]]).completed_at is None
    done = report(progress, [[0, 90]])
    assert done.watched_seconds == 90
    assert done.completed_at is not None


def test_repeated_and_out_of_order_reports_change_nothing(viewer, clock):
    page = lesson(duration=100)
    progress = start(viewer, page)
    clock.shift(timedelta(seconds=20))
    first = [[0, 10]]
    second = [[0, 10], [30, 40]]
    report(progress, second)
    report(progress, first)
    report(progress, second)
    stored = LessonProgress.objects.get(pk=progress.pk)
    assert stored.segments == [[0.0, 10.0], [30.0, 40.0]]
    assert stored.watched_seconds == 20


def test_two_viewings_in_parallel_never_double_count(viewer, clock):
    page = lesson(duration=300)
    phone = start(viewer, page)
    clock.shift(timedelta(seconds=20))
    report(phone, [[0, 20]])
    pc = start(viewer, page)  # the same member starts on the site PC: the phone stops counting
    clock.shift(timedelta(seconds=20))
    with pytest.raises(services.ViewingSuperseded):
        report(phone, [[0, 40], [100, 140]], viewing=phone.viewing)
    result = report(pc, [[20, 40], [200, 230]])
    # 40 s of real time since the first viewing began: exactly that much, never more.
    assert result.watched_seconds == 40


def test_rewatching_costs_no_allowance(viewer, clock):
    page = lesson(duration=100)
    progress = start(viewer, page)
    clock.shift(timedelta(seconds=50))
    report(progress, [[0, 50]])
    again = start(viewer, page)
    clock.shift(timedelta(seconds=10))
    result = report(again, [[0, 60]])  # replayed 0-50 quickly? no: only 50-60 is new
    assert result.watched_seconds == 60


def test_a_report_without_the_viewing_token_counts_nothing(viewer, clock):
    page = lesson(duration=100)
    progress = start(viewer, page)
    clock.shift(timedelta(seconds=30))
    for forged in ("", "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(services.ViewingSuperseded):
            report(progress, [[0, 30]], viewing=forged)
    assert LessonProgress.objects.get(pk=progress.pk).watched_seconds == 0


def test_a_lesson_without_a_ready_video_cannot_start(viewer):
    page = lesson(duration=100)
    page.video.state = page.video.State.TRANSCODING
    page.video.save()
    with pytest.raises(services.LessonNotPlayable):
        start(viewer, page)


def test_status_in_words(viewer, clock, settings):
    settings.LUNXUN_COMPLETION_THRESHOLD = 0.9
    page = lesson(duration=100)
    assert "90%" in services.status_text(None)
    progress = start(viewer, page)
    clock.shift(timedelta(seconds=100))
    result = report(progress, [[0, 83.5]])
    assert services.status_text(result) == "已观看 83%，需达到 90% 才算完成"

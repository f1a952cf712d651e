"""One viewing at a time per member, in Chromium: a member plays a lesson, opens another
lesson in a second tab, and the first tab stops counting and says why; pressing play there
takes the count back. Logging out stops the count in every tab of that sign-in."""

import pytest

from courses.models import LessonPage, LessonProgress, LessonVideo
from courses.services import video_create_from_path

from ..courses.builders import course, root_collection
from ..courses.clips import make_clip
from .test_lesson_player_browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

VIDEO = "document.querySelector('#lesson-player video')"
PLAYER = "document.querySelector('#lesson-player')"


@pytest.fixture
def two_lessons(tmp_path, city, settings):
    settings.LUNXUN_PROGRESS_REPORT_SECONDS = 1
    root_collection()
    clip = make_clip(tmp_path / "clip.mp4", seconds=20, size="320x180")
    video = video_create_from_path(path=clip, title="测试视频")
    video.refresh_from_db()
    assert video.state == LessonVideo.State.READY, video.failure_reason
    parent = course(title="一次一课")
    pages = []
    for number in (1, 2):
        page = LessonPage(title=f"第{number}课", slug=f"one-{number}", video=video)
        parent.add_child(instance=page)
        pages.append(page)
    return pages


def play(page):
    page.evaluate(f"{VIDEO}.muted = true")
    page.evaluate(f"{VIDEO}.play()")


def player_text(page):
    return page.evaluate("JSON.parse(document.getElementById('player-text').textContent)")


def test_a_second_lesson_stops_the_first_tab_counting(city, two_lessons, phone_page):
    first_lesson, second_lesson = two_lessons
    first = phone_page
    log_in(first, "13800000001")
    first.goto(first_lesson.url)
    first.wait_for_function(f"() => {VIDEO}.readyState >= 1")
    play(first)
    first.wait_for_function(f"() => {VIDEO}.currentTime > 1")

    second = first.context.new_page()
    second.goto(second_lesson.url)
    second.wait_for_function(f"() => {VIDEO}.readyState >= 1")
    # Back in the first tab (which paused if it was hidden), its next report is refused: it
    # pauses and says why.
    first.bring_to_front()
    first.evaluate(
        f"() => {{ if ({VIDEO}.paused && !{PLAYER}.dataset.stopped) {{"
        f" {VIDEO}.muted = true; {VIDEO}.play(); }} }}"
    )
    first.wait_for_function(f"() => {PLAYER}.dataset.stopped === 'superseded'")
    assert first.evaluate(f"{VIDEO}.paused")
    assert first.locator("[data-notice]").inner_text() == player_text(first)["superseded"]
    member = city.member_a
    assert LessonProgress.objects.get(member=member, lesson=first_lesson).viewing is None

    # Play pressed in the first tab: it counts there again, and the second tab no longer does.
    play(first)
    first.wait_for_function(f"() => !{PLAYER}.dataset.stopped && !{VIDEO}.paused")
    assert first.locator("[data-notice]").is_hidden()
    assert LessonProgress.objects.get(member=member, lesson=first_lesson).viewing is not None
    assert LessonProgress.objects.get(member=member, lesson=second_lesson).viewing is None
    first.wait_for_function(f"() => {VIDEO}.currentTime > 1")

    # Logging out in the second tab ends the sign-in: the first tab stops counting.
    second.get_by_role("button", name="退出登录").click()
    second.locator(".site-nav a[href*='/login/']").wait_for()
    first.wait_for_function(f"() => {PLAYER}.dataset.stopped === 'ended'")
    assert first.evaluate(f"{VIDEO}.paused")
    assert first.locator("[data-notice]").inner_text() == player_text(first)["ended"]

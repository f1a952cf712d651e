"""A member watches a short lesson in Chromium: HLS plays, seeking ahead is refused, the page
then shows the lesson complete. The video goes through the real pipeline first."""

from urllib.parse import parse_qs

import pytest

from courses.models import LessonProgress, LessonVideo
from courses.services import video_create_from_path

from .. import factories
from ..courses.builders import course, root_collection
from ..courses.clips import make_clip

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def short_lesson(tmp_path, city, settings):
    settings.LUNXUN_PROGRESS_REPORT_SECONDS = 2
    root_collection()
    clip = make_clip(tmp_path / "clip.mp4", seconds=8, size="640x360")
    # Immediate task backend + a committed transaction: the transcode runs right here.
    video = video_create_from_path(path=clip, title="测试视频")
    video.refresh_from_db()
    assert video.state == LessonVideo.State.READY, video.failure_reason
    from courses.models import LessonPage

    parent = course(title="浏览器测试课程")
    page = LessonPage(title="短课", slug="short", video=video)
    parent.add_child(instance=page)
    return page


def log_in(page, login):
    page.goto("/login/")
    page.get_by_label("手机号码或用户名").fill(login)
    page.get_by_label("密码").fill(factories.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/")


def test_member_watches_a_lesson_through_hls(city, short_lesson, phone_page):
    page = phone_page
    hls_requests = []
    page.on(
        "request",
        lambda r: hls_requests.append(r.url) if ".m3u8" in r.url or ".ts" in r.url else None,
    )
    reports = []
    page.on(
        "request",
        lambda r: (
            reports.append(parse_qs(r.post_data or ""))
            if r.method == "POST" and "/progress/" in r.url
            else None
        ),
    )
    log_in(page, "13800000001")
    page.goto(short_lesson.url)
    page.wait_for_function("() => document.querySelector('#lesson-player video').readyState >= 1")
    assert "90%" in page.locator("[data-lesson-status]").inner_text()

    page.evaluate("document.querySelector('#lesson-player video').muted = true")
    page.evaluate("document.querySelector('#lesson-player video').play()")
    page.wait_for_function("() => document.querySelector('#lesson-player video').currentTime > 1")
    # Seeking past the furthest point watched is refused.
    page.evaluate("document.querySelector('#lesson-player video').currentTime = 7")
    page.wait_for_function(
        "() => document.querySelector('#lesson-player').dataset.seekRefused === 'true'"
    )
    assert page.evaluate("document.querySelector('#lesson-player video').currentTime") < 5
    assert "不能" in page.locator("[data-notice]").inner_text()

    page.wait_for_function(
        "() => document.querySelector('#lesson-player').dataset.complete === 'true'", timeout=30000
    )
    assert "已完成" in page.locator("[data-lesson-status]").inner_text()
    # Every report sent back the signed row its last answer carried (courses/progress_state.py),
    # so the server wrote it without reading the row first.
    assert reports and all(report.get("state") for report in reports), reports
    assert LessonProgress.objects.get().completed_at is not None
    assert any(url.endswith(".m3u8") for url in hls_requests)
    assert any(".ts" in url for url in hls_requests)
    page.reload()
    assert "已完成" in page.locator(".lesson-list").inner_text()

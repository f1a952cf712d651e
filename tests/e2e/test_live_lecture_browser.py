"""A live lecture end to end: the project's streaming server (nginx-rtmp, courses.live) is
started, ffmpeg pushes a generated source (lavfi testsrc + sine) with the lecture's key, a
member watches the live HLS in Chromium through the lesson player and is credited for the
seconds actually watched; a wrong key is refused; the push is cut and resumed once (the member
sees "signal lost", not an error); the lecture ends and its recording becomes the lesson's
ready video, one recording as long as what was pushed (ffprobe)."""

import json
import subprocess
import time

import pytest
from playwright.sync_api import expect

from courses import services
from courses.models import LessonPage, LessonProgress, LessonVideo, LiveStream

from ..courses.builders import course, root_collection
from ..courses.live_helpers import fetch, live_stack, push, wait_for
from .test_lesson_player_browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PUSH_SECONDS = 15
PLAYER = "document.querySelector('#lesson-player')"
VIDEO = "document.querySelector('#lesson-player video')"


def ffprobe_duration(path) -> float:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(done.stdout)["format"]["duration"])


def playing_clock(page) -> bool:
    """Is the live video playing (not paused, its clock moving)?"""
    return page.evaluate(
        "(() => { var v = document.querySelector('#lesson-player video');"
        " return !!v && !v.paused && v.currentTime > 0 && v.readyState >= 3; })()"
    )


def test_a_member_watches_a_live_lecture_and_the_recording_becomes_the_lesson(
    city, phone_page, live_server, settings, tmp_path
):
    settings.LUNXUN_PROGRESS_REPORT_SECONDS = 2
    root_collection()
    lesson = LessonPage(title="直播党课", slug="live-lecture")
    course(title="直播课程").add_child(instance=lesson)
    stream = services.live_stream_create(lesson=lesson)
    page = phone_page

    with live_stack(settings, tmp_path, live_server.url) as server:
        rtmp = settings.LUNXUN_LIVE_RTMP_URL
        base = f"http://127.0.0.1:{server.config.http_port}/live/{stream.name}"

        # A wrong key is refused: the push fails and nothing goes on air.
        wrong = push(rtmp, "wrong-key", 5)
        assert wrong.wait(timeout=30) != 0
        stream.refresh_from_db()
        assert stream.state == LiveStream.State.SCHEDULED

        log_in(page, "13800000001")
        page.goto(lesson.url)
        expect(page.locator("[data-live-status]")).to_have_attribute(
            "data-live-status", "scheduled"
        )
        expect(page.locator("[data-live-words]")).to_have_text("未开始")

        # The hall goes on air: the waiting page opens the player by itself.
        first = push(rtmp, stream.key, PUSH_SECONDS)
        pushed_at = time.monotonic()
        wait_for("the live ladder", lambda: fetch(f"{base}/360p/index.m3u8"), timeout=30)
        expect(page.locator("#lesson-player")).to_have_attribute(
            "data-live-state", "live", timeout=20000
        )
        expect(page.locator("[data-live-words]")).to_have_text("正在直播")
        page.evaluate(f"{VIDEO}.muted = true")
        page.evaluate(f"{VIDEO}.play()")
        wait_for("the live video to play", lambda: playing_clock(page), timeout=20)
        watch_started = time.monotonic()

        # The hall's link drops: the member sees it said, not an error.
        assert first.wait(timeout=40) == 0
        expect(page.locator("#lesson-player")).to_have_attribute(
            "data-live-state", "interrupted", timeout=15000
        )
        expect(page.locator("[data-live-words]")).to_have_text("信号中断，请稍候")
        expect(page.locator("[data-notice]")).to_contain_text("请稍候")
        first_push = time.monotonic() - pushed_at

        # It comes back: the same lecture goes on, and so does the player.
        second = push(rtmp, stream.key, PUSH_SECONDS)
        expect(page.locator("#lesson-player")).to_have_attribute(
            "data-live-state", "live", timeout=20000
        )
        wait_for("the live video to play again", lambda: playing_clock(page), timeout=30)
        time.sleep(4)
        page.evaluate(f"{VIDEO}.pause()")  # the member stops watching; pausing reports
        watch_ended = time.monotonic()
        assert second.wait(timeout=40) == 0

        def reported():
            row = LessonProgress.objects.filter(lesson=lesson, member=city.member_a).first()
            return row if row and row.watched_seconds > 0 else None

        progress = wait_for("the live report", reported, timeout=15)
        time.sleep(3)  # a last report may still be on its way
        progress.refresh_from_db()
        watched = progress.watched_seconds
        # Credited for what played: never more than the time spent watching, and not much
        # less than the time it played (the signal was lost in between, and players start
        # a couple of seconds behind the live edge).
        assert watched <= watch_ended - watch_started + 0.5
        assert watched >= 4
        stream.refresh_from_db()
        assert len(stream.pushes) == 2
        pushed = stream.pushed_seconds()
        assert abs(pushed - 2 * PUSH_SECONDS) < 4, (first_push, stream.pushes)

        # The trainer ends the lecture: the recording goes through the pipeline (the
        # immediate task backend runs it here) and becomes the lesson's video.
        services.live_end(stream=stream)

    stream.refresh_from_db()
    assert stream.failure_reason == ""
    lesson.refresh_from_db()
    assert lesson.video_id is not None and lesson.video_id == stream.recording_id
    video = LessonVideo.objects.get(pk=lesson.video_id)
    assert video.state == LessonVideo.State.READY, video.failure_reason
    assert stream.state == LiveStream.State.REPLAY
    assert LiveStream.objects.filter(lesson=lesson).count() == 1
    duration = ffprobe_duration(settings.MEDIA_ROOT / video.mp4_fallback)
    assert abs(duration - 2 * PUSH_SECONDS) <= 2, duration
    # What the member watched live now counts toward the recording.
    progress.refresh_from_db()
    assert progress.duration == pytest.approx(video.duration)
    assert progress.watched_seconds == pytest.approx(watched, abs=0.01)

    page.reload()
    expect(page.locator("#lesson-player")).to_be_visible()
    assert page.locator("[data-live-status]").count() == 0  # a lesson like any other now

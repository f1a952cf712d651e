"""Listening with the screen off, and captions, in Chromium on a real transcoded clip.

The page being hidden (screen off, another app in front) is emulated the way a phone shows it
to the page: document.visibilityState turns "hidden" and "visibilitychange" fires. Listening
(audio only) goes on counting then, and the server's watched seconds grow; paused, or at
another speed, it earns nothing; the video earns nothing while hidden. Captions come from the
master playlist's subtitle rendition: on by default in large-type mode, off otherwise.
"""

import time

import pytest
from playwright.sync_api import expect

from courses.models import LessonPage, LessonProgress, LessonVideo
from courses.services import video_captions_set, video_create_from_path

from ..courses.builders import course, root_collection
from ..courses.clips import make_clip
from .test_lesson_player_browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

VIDEO = "document.querySelector('#lesson-player video')"
PLAYER = "document.querySelector('#lesson-player')"
CAPTIONS = (
    "WEBVTT\n\n00:00:00.000 --> 00:00:05.000\n第一句字幕\n\n"
    "00:00:05.000 --> 00:00:30.000\n第二句字幕\n"
)


@pytest.fixture
def lesson(tmp_path, city, settings):
    settings.LUNXUN_PROGRESS_REPORT_SECONDS = 1
    root_collection()
    clip = make_clip(tmp_path / "clip.mp4", seconds=30, size="320x180")
    video = video_create_from_path(path=clip, title="听课测试")
    video.refresh_from_db()
    assert video.state == LessonVideo.State.READY, video.failure_reason
    video_captions_set(video=video, captions=CAPTIONS)
    parent = course(title="锁屏听课")
    page = LessonPage(title="第一课", slug="listen", video=video)
    parent.add_child(instance=page)
    return page


def wait_until(page, expression, timeout=30.0):
    """Poll ``expression`` in the page until it is true (CSP forbids wait_for_function's eval)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout}s: {expression}"
        page.wait_for_timeout(100)


def db_wait_until(page, condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server's progress never got there"
        page.wait_for_timeout(200)


def count_reports(page):
    """From now on, window.reportsAnswered counts the server's answers to the player's reports."""
    page.evaluate(
        "() => { window.reportsAnswered = 0;"
        " document.addEventListener('lunxun:progress', () => { window.reportsAnswered += 1; }); }"
    )


def wait_for_reports(page, count):
    """While playing: ``count`` more answers (reports keep coming, so none can be missed)."""
    start = page.evaluate("window.reportsAnswered")
    wait_until(page, f"window.reportsAnswered >= {start + count}")


def reports_after(page, action, count=1):
    """Do ``action`` (which sends a report and then none may follow: pausing, hiding,
    returning) and wait for its answer, counted from before it was sent: the answer may arrive
    before this test looks."""
    start = page.evaluate("window.reportsAnswered")
    action()
    wait_until(page, f"window.reportsAnswered >= {start + count}")


def set_visibility(page, state):
    page.evaluate(
        "(state) => {"
        " Object.defineProperty(document, 'visibilityState',"
        "   {configurable: true, get: () => state});"
        " Object.defineProperty(document, 'hidden',"
        "   {configurable: true, get: () => state === 'hidden'});"
        " document.dispatchEvent(new Event('visibilitychange')); }",
        state,
    )


def open_lesson(page, lesson):
    log_in(page, "13800000001")
    page.goto(lesson.url)
    wait_until(page, f"{VIDEO}.readyState >= 1")


def play(page):
    page.evaluate(f"{VIDEO}.muted = true")
    page.evaluate(f"{VIDEO}.play()")


def listen(page):
    page.locator("[data-listen]").click()
    expect(page.locator("#lesson-player")).to_have_attribute("data-mode", "audio")


def progress(city, lesson):
    return LessonProgress.objects.get(member=city.member_a, lesson=lesson)


def furthest_credited(city, lesson):
    return max((end for _start, end in progress(city, lesson).segments), default=0)


def test_listening_keeps_counting_with_the_page_hidden(city, lesson, phone_page):
    page = phone_page
    open_lesson(page, lesson)
    rule = page.locator("[data-mode-rule]")
    video_rule = rule.inner_text()
    listen(page)
    assert rule.inner_text() != video_rule  # the page says how listening counts
    play(page)
    wait_until(page, f"{VIDEO}.currentTime > 1")

    set_visibility(page, "hidden")
    hidden_at = page.evaluate(f"{VIDEO}.currentTime")
    # Still playing, and the server credits what is played while hidden.
    # Credited seconds, not the furthest point: playback may start a little after 0, so the
    # segments' end runs ahead of the seconds they hold.
    db_wait_until(page, lambda: progress(city, lesson).watched_seconds > hidden_at + 4)
    assert not page.evaluate(f"{VIDEO}.paused")
    assert furthest_credited(city, lesson) > hidden_at + 4

    # The choice is remembered: the next visit starts in listening mode.
    page.reload()
    expect(page.locator("#lesson-player")).to_have_attribute("data-mode", "audio")


def test_paused_listening_with_the_page_hidden_earns_nothing(city, lesson, phone_page):
    page = phone_page
    open_lesson(page, lesson)
    count_reports(page)
    listen(page)
    play(page)
    wait_until(page, f"{VIDEO}.currentTime > 1")
    reports_after(page, lambda: page.evaluate(f"{VIDEO}.pause()"))
    earned = progress(city, lesson).watched_seconds
    set_visibility(page, "hidden")
    page.wait_for_timeout(2500)  # time passes, hidden and paused; what follows is no timing
    reports_after(page, lambda: set_visibility(page, "visible"))  # coming back reports
    assert page.evaluate(f"{VIDEO}.paused")
    assert progress(city, lesson).watched_seconds == earned


def test_listening_faster_than_normal_with_the_page_hidden_earns_nothing(
    city, lesson, phone_page, settings
):
    settings.LUNXUN_FIXED_PLAYBACK_SPEED = False
    page = phone_page
    open_lesson(page, lesson)
    count_reports(page)
    listen(page)
    play(page)
    wait_until(page, f"{VIDEO}.currentTime > 1")
    page.evaluate(f"{VIDEO}.playbackRate = 2")
    wait_for_reports(page, 1)
    earned = progress(city, lesson).watched_seconds
    set_visibility(page, "hidden")
    start = page.evaluate(f"{VIDEO}.currentTime")
    wait_until(page, f"{VIDEO}.currentTime > {start + 6}")
    wait_for_reports(page, 2)
    assert progress(city, lesson).watched_seconds == earned


def test_the_video_with_the_page_hidden_earns_nothing(city, lesson, phone_page):
    page = phone_page
    open_lesson(page, lesson)
    count_reports(page)
    expect(page.locator("#lesson-player")).to_have_attribute("data-mode", "video")
    play(page)
    wait_until(page, f"{VIDEO}.currentTime > 1")
    reports_after(page, lambda: set_visibility(page, "hidden"))
    assert page.evaluate(f"{VIDEO}.paused")  # hidden means paused
    earned = progress(city, lesson).watched_seconds
    # A browser that plays on in the background anyway (some in-app ones): nothing counts.
    play(page)
    start = page.evaluate(f"{VIDEO}.currentTime")
    wait_until(page, f"{VIDEO}.currentTime > {start + 4}")
    wait_for_reports(page, 2)
    assert progress(city, lesson).watched_seconds == earned


def active_cue_text(page):
    return page.evaluate(
        f"() => Array.from({VIDEO}.textTracks)"
        ".filter(t => t.mode === 'showing')"
        ".flatMap(t => Array.from(t.activeCues || []).map(c => c.text)).join('|')"
    )


def test_captions_from_the_playlist_show_in_large_type_mode(city, lesson, phone_page):
    page = phone_page
    # Large type as the page would arrive with it: the class on <html> before any script runs.
    page.add_init_script(
        "new MutationObserver((changes, observer) => { if (document.documentElement) {"
        " document.documentElement.classList.add('large-type'); observer.disconnect(); } })"
        ".observe(document, {childList: true});"
    )
    open_lesson(page, lesson)
    expect(page.locator("#lesson-player")).to_have_attribute("data-captions", "on")
    expect(page.locator("[data-captions-button]")).to_have_attribute("aria-pressed", "true")
    play(page)
    wait_until(page, f"{VIDEO}.currentTime > 1.5")
    wait_until(page, f"Array.from({VIDEO}.textTracks).some(t => t.mode === 'showing')")
    # The playlist's cues, at the times the file gives (no offset from the stream's clock).
    wait_until(page, f"Array.from({VIDEO}.textTracks).some(t => t.cues && t.cues.length >= 2)")
    times = page.evaluate(
        f"() => Array.from({VIDEO}.textTracks).filter(t => t.mode === 'showing')"
        ".flatMap(t => Array.from(t.cues).map(c => [c.startTime, c.endTime, c.text]))"
    )
    assert times == [[0, 5, "第一句字幕"], [5, 30, "第二句字幕"]], times
    # The cue for the moment playing is the one shown.
    deadline = time.monotonic() + 15
    while "第一句字幕" not in active_cue_text(page):
        assert time.monotonic() < deadline, active_cue_text(page)
        page.wait_for_timeout(100)
    assert page.evaluate(f"{VIDEO}.currentTime") < 5


def test_captions_are_off_by_default_and_the_button_turns_them_on(city, lesson, phone_page):
    page = phone_page
    open_lesson(page, lesson)
    player = page.locator("#lesson-player")
    expect(player).to_have_attribute("data-captions", "off")
    play(page)
    wait_until(page, f"{VIDEO}.textTracks.length > 0")
    assert active_cue_text(page) == ""
    page.locator("[data-captions-button]").click()
    expect(player).to_have_attribute("data-captions", "on")
    wait_until(page, f"Array.from({VIDEO}.textTracks).some(t => t.mode === 'showing')")
    # Large type switched on later: captions follow, unless the member chose (she did here).
    page.evaluate("document.documentElement.classList.remove('large-type')")
    expect(player).to_have_attribute("data-captions", "on")


def test_the_mp4_fallback_carries_the_captions_as_a_track(city, lesson, phone_page):
    """A browser with neither Media Source for hls.js nor its own HLS (older in-app browsers):
    the MP4 plays, with the captions as a <track> of the same WebVTT."""
    page = phone_page
    page.add_init_script(
        "Object.defineProperty(window, 'Hls', {get: () => undefined, set: () => {}});"
        "const canPlay = HTMLMediaElement.prototype.canPlayType;"
        "HTMLMediaElement.prototype.canPlayType = function (type) {"
        " return /mpegurl/i.test(type) ? '' : canPlay.call(this, type); };"
        "new MutationObserver((changes, observer) => { if (document.documentElement) {"
        " document.documentElement.classList.add('large-type'); observer.disconnect(); } })"
        ".observe(document, {childList: true});"
    )
    open_lesson(page, lesson)
    player = page.locator("#lesson-player")
    expect(player).to_have_attribute("data-source", "mp4")
    assert page.evaluate(f"{VIDEO}.currentSrc").endswith("fallback.mp4")
    track = page.locator("#lesson-player video track")
    expect(track).to_have_attribute("kind", "captions")
    expect(track).to_have_attribute("srclang", "zh")
    play(page)
    deadline = time.monotonic() + 15
    while "第一句字幕" not in active_cue_text(page):
        assert time.monotonic() < deadline, active_cue_text(page)
        page.wait_for_timeout(100)

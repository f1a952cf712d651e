"""Large-type mode (长辈模式) in a real Chromium on a 360 px phone.

One tap from any page turns it on; it is remembered on the device (login, logout, every page);
type and touch targets meet the 适老化 sizes; and axe-core (from npm, the version
package-lock.json pins) finds no serious or critical violation on any member page, in either
mode.
"""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from certificates import services as certificate_services
from certificates.models import Certificate
from courses.models import LessonPage, LessonVideo
from courses.services import video_create_from_path
from quizzes import services as quiz_services
from rounds import services as round_services

from .. import factories
from ..certificates.rounds_setup import complete, q3_round
from ..courses import builders as course_builders
from ..courses.clips import make_clip
from ..quizzes import builders as quiz_builders
from ..rounds import builders

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
# The 适老化 sizes (GB/T 37668, the MIIT rules): body text ≥ 18 px, targets ≥ 48 px.
MIN_TEXT_PX = 18
MIN_TARGET_PX = 48


@pytest.fixture
def phone(browser, live_server):
    """A 360 px phone speaking Chinese. The policy stays in force for the pages; axe-core is
    handed in through the DevTools protocol (bypass_csp only lets that script in)."""
    context = browser.new_context(
        viewport={"width": 360, "height": 740},
        locale="zh-CN",
        base_url=live_server.url,
        bypass_csp=True,
    )
    context.set_default_timeout(20000)
    page = context.new_page()
    yield page
    context.close()


def log_in(page, login):
    page.goto("/login/")
    page.get_by_label("手机号码或用户名").fill(login)
    page.get_by_label("密码").fill(factories.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/")


def is_large(page) -> bool:
    return page.evaluate("document.documentElement.classList.contains('large-type')")


def body_text_px(page) -> float:
    return page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")


def small_targets(page) -> list[str]:
    """Buttons, form controls and navigation links smaller than 48 px tall (inline links inside
    running text are exempt, as in WCAG's target-size rule)."""
    return page.evaluate(
        """(min) => Array.from(document.querySelectorAll(
              'button, select, input:not([type=hidden]):not([type=checkbox]):not([type=radio]),'
              + ' .button, .site-nav a, .tiles a, .lesson-list a, .round-list a, .plain-list a'))
            .filter(el => el.offsetParent !== null)
            .filter(el => el.getBoundingClientRect().height < min - 0.5)
            .map(el => el.tagName + ' ' + (el.textContent || el.name || '').trim().slice(0, 30)
                       + ' ' + Math.round(el.getBoundingClientRect().height) + 'px')""",
        MIN_TARGET_PX,
    )


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it stands."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


@pytest.fixture
def member_pages(tmp_path, city, settings):
    """Every page a member uses, with something on it: a round under way with a video lesson
    (through the real pipeline) and a reading lesson, a group session to check in to, a
    certificate, a notice."""
    settings.LUNXUN_PROGRESS_REPORT_SECONDS = 2
    course_builders.root_collection()
    clip = make_clip(tmp_path / "clip.mp4", seconds=4, size="640x360")
    video = video_create_from_path(path=clip, title="测试视频")
    video.refresh_from_db()
    assert video.state == LessonVideo.State.READY, video.failure_reason
    course = course_builders.course(title="浏览器测试课程")
    lesson = LessonPage(title="短课", slug="short", video=video)
    course.add_child(instance=lesson)
    reading = LessonPage(title="读原著", slug="reading", reading_minutes=1)
    course.add_child(instance=reading)
    today = timezone.localdate()
    training_round = builders.training_round(
        [city.root],
        [lesson, reading],
        opens_on=today - timedelta(days=10),
        closes_on=today + timedelta(days=20),
        makeup_deadline=today + timedelta(days=40),
    )
    complete(training_round, city.member_b)
    now = timezone.now()
    session = builders.session(
        training_round,
        city.branch_a,
        start=now - timedelta(minutes=5),
        end=now + timedelta(hours=2),
    )
    sitting = builders.sitting(session)
    q3 = q3_round([city.county_a], city.member_a, title="第三季度轮训")
    certificate_services.certificates_issue(training_round=q3, render=False)
    certificate = Certificate.objects.get(member=city.member_a)
    token = round_services.qr_token(sitting=sitting).token
    # The lesson's test: one attempt failed (its result page), a retake open (the questions).
    quiz = quiz_builders.quiz(course, lesson=lesson, size=3, pass_mark=2)
    failed = quiz_services.attempt_start(quiz=quiz, member=city.member_a)
    quiz_services.attempt_submit(attempt=failed, answers=quiz_builders.wrong_answers(failed))
    retake = quiz_services.attempt_start(quiz=quiz, member=city.member_a)
    return {
        "round": training_round,
        "lesson": lesson,
        "pages": [
            "/",
            course.get_parent().url,
            course.url,
            lesson.url,
            reading.url,
            reverse("rounds:list"),
            reverse("rounds:detail", args=[training_round.pk]),
            reverse("rounds:check_in", args=[token]),
            reverse("rounds:calendar"),
            reverse("rounds:calendar_agenda"),
            reverse("rounds:calendar_feed"),
            reverse("rounds:notices"),
            reverse("rounds:ledger_mine"),
            reverse("certificates:mine"),
            reverse("certificates:verify", args=[certificate.code]),
            reverse("members:password_change"),
            reverse("quizzes:detail", args=[quiz.pk]),
            reverse("quizzes:result", args=[failed.pk]),
            reverse("quizzes:attempt", args=[retake.pk]),
            "/no-such-page/",
        ],
    }


def switch(page, name):
    page.get_by_role("button", name=name).click()
    page.wait_for_load_state("load")


def test_large_type_is_one_tap_away_and_remembered_across_pages(city, member_pages, phone):
    page = phone
    page.goto("/login/")
    assert not is_large(page)
    assert body_text_px(page) < MIN_TEXT_PX  # the ordinary size: the mode is what changes it
    # One tap on the login page, before logging in.
    switch(page, "长辈模式")
    assert page.url.endswith("/login/")
    assert is_large(page) and body_text_px(page) >= MIN_TEXT_PX
    assert small_targets(page) == [], small_targets(page)
    for name in ("members:sms_login", "members:sms_reset", "members:sms_activate"):
        page.goto(reverse(name))
        assert is_large(page) and body_text_px(page) >= MIN_TEXT_PX, name
        assert small_targets(page) == [], (name, small_targets(page))
    log_in(page, city.member_a.phone)
    # The home page in large type: what to do next, one big button that opens the lesson.
    continue_button = page.locator("[data-next-lesson]")
    expect(continue_button).to_have_text("继续学习")
    assert continue_button.bounding_box()["height"] >= MIN_TARGET_PX
    continue_button.click()
    page.wait_for_url(f"**{member_pages['lesson'].url}")
    # Every member page keeps the mode and its sizes (checking in completes the round).
    for url in member_pages["pages"]:
        page.goto(url)
        assert is_large(page), url
        assert body_text_px(page) >= MIN_TEXT_PX, url
        assert small_targets(page) == [], (url, small_targets(page))
        expect(page.get_by_role("button", name="退出长辈模式")).to_be_visible()
    # Still on after logging out and in again: the device remembers, not the session.
    page.get_by_role("button", name="退出登录").click()
    page.goto("/login/")
    assert is_large(page)
    log_in(page, city.member_a.phone)
    assert is_large(page)
    # And off again with one tap, remembered too.
    page.goto(reverse("rounds:list"))
    switch(page, "退出长辈模式")
    assert page.url.endswith(reverse("rounds:list"))
    assert not is_large(page)
    page.goto("/")
    assert not is_large(page)
    expect(page.get_by_role("button", name="长辈模式")).to_be_visible()


@pytest.mark.parametrize("mode", ["standard", "large"])
def test_no_serious_accessibility_violation_on_any_member_page(city, member_pages, phone, mode):
    page = phone
    if mode == "large":
        page.goto("/login/")
        switch(page, "长辈模式")
    found = {}
    # The pages before logging in: password, printed slip, and the SMS-code ways in.
    for url in (
        "/login/",
        reverse("members:activate"),
        reverse("members:sms_login"),
        reverse("members:sms_reset"),
        reverse("members:sms_activate"),
    ):
        page.goto(url)
        found[url] = axe_violations(page)
    log_in(page, city.member_a.phone)
    assert is_large(page) == (mode == "large")
    for url in member_pages["pages"]:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        found[url] = axe_violations(page)
    bad = {url: v for url, v in found.items() if v}
    assert not bad, json.dumps(bad, ensure_ascii=False, indent=1)


def test_axe_finds_what_it_is_asked_to_find(city, phone):
    """The check above can fail: a page with an unlabelled control and grey-on-grey text is
    reported serious."""
    page = phone
    page.goto("/login/")
    page.evaluate(
        """() => {
            const input = document.createElement('input');
            input.type = 'text';
            document.querySelector('main').appendChild(input);
            const p = document.createElement('p');
            p.textContent = '看不清的字';
            p.style.color = '#bbb';
            p.style.background = '#fff';
            document.querySelector('main').appendChild(p);
        }"""
    )
    ids = {v["id"] for v in axe_violations(page)}
    assert {"label", "color-contrast"} <= ids

"""The Content-Security-Policy in a real Chromium: a member, a branch secretary, a site operator
and a trainer use their main pages (the lesson playing through hls.js, the coverage bars, the
QR screen, the Wagtail admin's editors and pickers) and the browser reports no violation.

Every page of a context is watched from its first line: an init script listens for
``securitypolicyviolation`` events and hands them to the test through a binding, and console
messages about the policy are kept too (workers report only there). The pages are driven with
Playwright calls that do not evaluate strings inside the page (wait_for_function takes
functions): the policy refuses eval, for tests as for anyone.
"""

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from certificates import services as certificate_services
from certificates.models import Certificate
from courses.models import LessonPage, LessonProgress, LessonVideo
from courses.services import video_create_from_path
from members import services as member_services
from rounds import services as round_services
from rounds.models import Attendance, LeaveRequest

from .. import factories
from ..certificates.rounds_setup import complete, q3_round
from ..courses import builders as course_builders
from ..courses.clips import make_clip
from ..rounds import builders

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WATCH = """
document.addEventListener("securitypolicyviolation", function (e) {
  window.__lunxunCsp({
    page: location.pathname, directive: e.effectiveDirective, blocked: e.blockedURI,
    source: e.sourceFile + ":" + e.lineNumber, sample: e.sample
  });
}, true);
"""


# Which workers the page starts (hls.js builds its own from a blob: URL).
SPY_ON_WORKERS = """
window.__lunxunWorkers = [];
(function (Original) {
  window.Worker = function (url, options) {
    window.__lunxunWorkers.push(String(url));
    return new Original(url, options);
  };
})(window.Worker);
"""


class Watch:
    """The policy violations every page of one browser context reports."""

    def __init__(self, context):
        self.seen = []
        context.expose_binding("__lunxunCsp", lambda source, event: self.seen.append(event))
        context.add_init_script(WATCH)
        context.on("console", self._console)

    def _console(self, message):
        if "Content Security Policy" in message.text:
            self.seen.append({"console": message.text, "at": message.location.get("url")})

    def assert_none(self):
        assert not self.seen, "Content-Security-Policy violations:\n" + "\n".join(
            map(str, self.seen)
        )


@pytest.fixture
def open_context(browser, live_server):
    contexts = []

    def open_context(width=1280):
        context = browser.new_context(
            viewport={"width": width, "height": 900}, locale="zh-CN", base_url=live_server.url
        )
        context.set_default_timeout(20000)
        contexts.append(context)
        return context, Watch(context)

    yield open_context
    for context in contexts:
        context.close()


def log_in(page, login):
    page.goto("/login/")
    page.get_by_label("手机号码或用户名").fill(login)
    page.get_by_label("密码").fill(factories.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/")


def _eventually(condition, seconds=15):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.25)


def visit(page, url):
    page.goto(url)
    page.wait_for_load_state("networkidle")


def _round_under_way(city, lessons=None):
    today = timezone.localdate()
    training_round = builders.training_round(
        [city.root],
        lessons,
        opens_on=today - timedelta(days=30),
        closes_on=today + timedelta(days=30),
        makeup_deadline=today + timedelta(days=60),
    )
    # County B has one member, who completed: its coverage bar is full, county A's empty.
    complete(training_round, city.member_b)
    now = timezone.now()
    session = builders.session(
        training_round,
        city.branch_a,
        start=now - timedelta(minutes=10),
        end=now + timedelta(hours=2),
    )
    return training_round, builders.sitting(session)


@pytest.fixture
def lesson_with_video(tmp_path, city, settings):
    """A lesson whose clip went through the real pipeline: HLS that hls.js can play."""
    settings.LUNXUN_PROGRESS_REPORT_SECONDS = 2
    course_builders.root_collection()
    clip = make_clip(tmp_path / "clip.mp4", seconds=8, size="640x360")
    video = video_create_from_path(path=clip, title="测试视频")
    video.refresh_from_db()
    assert video.state == LessonVideo.State.READY, video.failure_reason
    page = LessonPage(title="短课", slug="short", video=video)
    course_builders.course(title="浏览器测试课程").add_child(instance=page)
    return page


def test_a_member_uses_the_site_without_violations(city, lesson_with_video, open_context):
    training_round, sitting = _round_under_way(city, [lesson_with_video])
    q3 = q3_round([city.county_a], city.member_a, title="第三季度轮训")
    certificate_services.certificates_issue(training_round=q3, render=False)
    certificate = Certificate.objects.get(member=city.member_a)
    context, watch = open_context(width=360)
    context.add_init_script(SPY_ON_WORKERS)
    page = context.new_page()

    log_in(page, city.member_a.phone)
    visit(page, "/")
    # The lesson plays through hls.js: MediaSource (a blob: URL) fed by its worker.
    visit(page, lesson_with_video.url)
    page.evaluate("document.querySelector('#lesson-player video').muted = true")
    page.evaluate("document.querySelector('#lesson-player video').play()")
    page.wait_for_function("() => document.querySelector('#lesson-player video').currentTime > 2")
    assert page.evaluate("Boolean(window.Hls && window.Hls.isSupported())")
    assert page.evaluate("document.querySelector('#lesson-player video').currentSrc").startswith(
        "blob:"
    )
    assert any(url.startswith("blob:") for url in page.evaluate("window.__lunxunWorkers"))
    # Pausing reports the seconds played (fetch, connect-src): the server credits them.
    page.evaluate("document.querySelector('#lesson-player video').pause()")
    _eventually(
        lambda: LessonProgress.objects.filter(member=city.member_a, watched_seconds__gt=1).exists()
    )
    visit(page, lesson_with_video.get_parent().url)
    visit(page, reverse("rounds:list"))
    visit(page, reverse("rounds:detail", args=[training_round.pk]))
    page.locator("details summary").first.click()
    page.get_by_label("事由").fill("外出务工")
    page.get_by_role("button", name="申请请假").click()
    page.wait_for_load_state("networkidle")
    assert LeaveRequest.objects.filter(member=city.member_a, round=training_round).exists()
    visit(page, reverse("certificates:mine"))
    visit(page, reverse("certificates:verify", args=[certificate.code]))
    token = round_services.qr_token(sitting=sitting).token
    visit(page, reverse("rounds:check_in", args=[token]))
    assert Attendance.objects.filter(sitting=sitting, member=city.member_a).exists()
    for name in ("rounds:calendar", "rounds:calendar_agenda", "rounds:calendar_feed"):
        visit(page, reverse(name))
    visit(page, reverse("rounds:notices"))
    visit(page, reverse("rounds:ledger_mine"))
    visit(page, "/no-such-page/")
    watch.assert_none()


def test_a_secretary_and_a_site_operator_without_violations(city, open_context, settings):
    settings.LUNXUN_QR_ROTATE_SECONDS = 2
    settings.LUNXUN_QR_GRACE_SECONDS = 1
    training_round, sitting = _round_under_way(city)
    absent = factories.member(city.branch_a, name="周杰")
    round_services.leave_request(member=absent, training_round=training_round, reason="外出")
    # Slips are printed only for accounts never activated.
    newcomer = factories.member(city.branch_a, name="陈新", password=None)
    context, watch = open_context()
    page = context.new_page()

    log_in(page, city.secretary_a.username)
    visit(page, reverse("members:roster"))
    page.get_by_label(newcomer.name).check()
    page.get_by_role("button", name="为所选党员打印激活凭条").click()
    page.wait_for_load_state("networkidle")
    # The print button's handler comes from a static file now, not an onclick attribute.
    page.evaluate("window.print = function () { document.body.dataset.printed = 'yes'; }")
    page.locator("[data-print]").click()
    assert page.locator("body").get_attribute("data-printed") == "yes"
    visit(page, reverse("members:member_detail", args=[city.member_a.pk]))
    visit(page, reverse("rounds:coverage", args=[training_round.pk]))
    visit(page, reverse("rounds:leave_list", args=[training_round.pk]))
    visit(page, reverse("rounds:member_status", args=[training_round.pk, absent.pk]))
    visit(page, reverse("rounds:sitting", args=[sitting.pk]))
    visit(page, reverse("rounds:ledger_org"))
    visit(page, reverse("certificates:org"))
    visit(page, reverse("rounds:calendar"))

    # The site PC's QR screen swaps its code (an SVG put in by script) as it rotates.
    operator_context, operator_watch = open_context()
    operator = operator_context.new_page()
    log_in(operator, city.operator_a.username)
    visit(operator, reverse("rounds:sitting_screen", args=[sitting.pk]))
    first = operator.locator("#qr-code").get_attribute("data-url")
    operator.wait_for_function(
        "code => document.getElementById('qr-code').dataset.url !== code", arg=first
    )
    assert operator.locator("#qr-code svg").count() == 1
    visit(operator, reverse("rounds:roll_call", args=[sitting.pk]))
    visit(operator, reverse("rounds:paper_entry", args=[sitting.pk]))
    visit(operator, reverse("rounds:paper_find"))
    watch.assert_none()
    operator_watch.assert_none()


def test_a_trainer_uses_the_admin_without_violations(city, open_context, tmp_path):
    lesson = course_builders.lesson(title="第一课")
    training_round, _sitting = _round_under_way(city, [lesson])
    image = _image(tmp_path)
    # Trainers' rights on the course centre and the collections, which an earlier test's
    # flush took away with the pages they were granted on.
    member_services.trainer_group()
    context, watch = open_context()
    page = context.new_page()
    log_in(page, city.trainer.username)

    visit(page, reverse("rounds:coverage", args=[training_round.pk]))
    meters = page.locator("meter.bar-meter")
    assert meters.count() == 2
    assert sorted(float(meters.nth(i).get_attribute("value")) for i in range(2)) == [0.0, 100.0]
    assert meters.first.bounding_box()["width"] > 100

    visit(page, reverse("wagtailadmin_home"))
    # A lesson page in the editor: the publishing schedule's date pickers (Wagtail's inline
    # scripts, given the nonce) and the rich text editor (its <style> elements).
    visit(page, reverse("wagtailadmin_pages:edit", args=[lesson.pk]))
    page.locator("[data-side-panel-toggle='status']").first.click()
    page.locator("[data-a11y-dialog-show='schedule-publishing-dialog']").first.click()
    page.locator("#id_go_live_at").click()
    page.locator(".xdsoft_datetimepicker").first.wait_for(state="visible")
    visit(page, reverse("wagtailadmin_pages:edit", args=[lesson.pk]))
    page.locator("button.c-sf-add-button").first.click()
    page.get_by_role("option", name="文字").click()
    editor = page.locator(".DraftEditor-root [contenteditable=true]").first
    editor.click()
    editor.type("学习党章")
    assert "学习党章" in editor.inner_text()
    # The course page's cover: the image chooser and its modal.
    visit(page, reverse("wagtailadmin_pages:edit", args=[lesson.get_parent().pk]))
    page.locator("#id_cover-chooser .unchosen button").click()
    page.locator(".modal-dialog").wait_for(state="visible")
    page.wait_for_load_state("networkidle")
    # The focal point editor (Jcrop).
    visit(page, reverse("wagtailimages:edit", args=[image.pk]))
    page.locator(".jcrop-holder").wait_for(state="attached")
    # Group sessions: date and time pickers.
    visit(page, reverse("group_sessions:add"))
    page.locator("#id_start").click()
    page.locator(".xdsoft_datetimepicker").first.wait_for(state="visible")
    visit(page, reverse("training_rounds:index"))
    # Uploading a video: the title follows the file name (a static script, no longer inline).
    visit(page, reverse("wagtailmedia:add", args=["video"]))
    clip = tmp_path / "第二课录像.mp4"
    clip.write_bytes(b"\0" * 16)
    page.locator("#id_file").set_input_files(str(clip))
    assert page.locator("#id_title").input_value() == "第二课录像"
    watch.assert_none()


def _image(tmp_path):
    """A Wagtail image (a real PNG) for the focal point editor."""
    from django.core.files.images import ImageFile
    from PIL import Image as Picture
    from wagtail.images.models import Image

    course_builders.root_collection()
    path = tmp_path / "cover.png"
    Picture.new("RGB", (400, 300), (200, 30, 30)).save(path)
    with path.open("rb") as handle:
        return Image.objects.create(title="封面", file=ImageFile(handle, name="cover.png"))

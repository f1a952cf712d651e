"""A site terminal in Chromium, with the link pulled (issue 15, "Done when").

The operator downloads a sitting's package online, goes offline, reloads the terminal and plays
the lesson to the end; two members check in by scanning the terminal's rotating code (decoded
from a screenshot with zbarimg) over their own phones' link; one shows the personal code their
phone keeps, which the terminal reads with its camera (Chromium's fake camera fed a y4m made
from a screenshot of that code); one is ticked at roll call. The browser restarts (a persistent
profile: IndexedDB, Cache Storage and the service worker survive), the link comes back, the
records sync once, and coverage shows the four members. A replayed sync changes nothing; a
tampered record and a revoked terminal's record are refused with the reason shown.
"""

import os
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from courses.models import LessonPage, LessonVideo
from courses.services import video_create_from_path
from members.models import Role
from rounds import terminals
from rounds.models import Attendance, TerminalRecord

from .. import factories
from ..courses.builders import course, root_collection
from ..courses.clips import ffmpeg_run, make_clip
from ..rounds import builders

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# What the page's own scripts would send again: every record the terminal keeps, as it sent it.
REPLAY = """async (url) => {
  const db = await new Promise((ok, ko) => {
    const r = indexedDB.open("lunxun-terminal", 1);
    r.onsuccess = () => ok(r.result);
    r.onerror = () => ko(r.error);
  });
  const rows = await new Promise((ok) => {
    const r = db.transaction("records").objectStore("records").getAll();
    r.onsuccess = () => ok(r.result);
  });
  const fields = ["uuid", "kind", "sitting", "member", "code", "status", "at", "sig"];
  const records = rows.filter((r) => r.state === "accepted").map((r) => {
    const out = {};
    fields.forEach((f) => { if (r[f] !== undefined && r[f] !== "") out[f] = r[f]; });
    return out;
  });
  const root = document.getElementById("terminal");
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: {"X-CSRFToken": root.dataset.csrf, "Content-Type": "application/json"},
    body: JSON.stringify({records}),
  });
  return await response.json();
}"""

# A record altered after the terminal signed it: a copy of a kept roll-call mark, its status
# changed, put in the terminal's store as waiting to be sent.
TAMPER = """async () => {
  const db = await new Promise((ok) => {
    const r = indexedDB.open("lunxun-terminal", 1);
    r.onsuccess = () => ok(r.result);
  });
  const rows = await new Promise((ok) => {
    const r = db.transaction("records").objectStore("records").getAll();
    r.onsuccess = () => ok(r.result);
  });
  const original = rows.find((r) => r.kind === "roll_call");
  const copy = Object.assign({}, original, {
    uuid: crypto.randomUUID(), status: "late", state: "waiting", at: Date.now(),
  });
  await new Promise((ok) => {
    const t = db.transaction("records", "readwrite");
    t.objectStore("records").put(copy);
    t.oncomplete = ok;
  });
  return copy.uuid;
}"""


def log_in(page, username):
    page.goto("/login/")
    page.get_by_label("手机号码或用户名").fill(username)
    page.get_by_label("密码").fill(factories.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/")


def decode(locator, path):
    locator.screenshot(path=str(path))
    result = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(path)], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@pytest.fixture
def lesson_clip(tmp_path, settings):
    """A real 5-second lesson through the pipeline (its 360p rung is what the site takes)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    root_collection()
    clip = make_clip(tmp_path / "clip.mp4", seconds=5, size="640x360")
    video = video_create_from_path(path=clip, title="站点课程视频")
    video.refresh_from_db()
    assert video.state == LessonVideo.State.READY, video.failure_reason
    page = LessonPage(title="站点短课", slug="site-short", video=video)
    course(title="站点测试课程").add_child(instance=page)
    return page


def camera_feed(png, y4m):
    """A y4m the fake camera loops: the personal code, centred on white, as held up to it."""
    ffmpeg_run(
        "-loop", "1", "-i", png, "-t", "2", "-r", "10",
        "-vf", "scale=360:-1,pad=640:480:(ow-iw)/2:(oh-ih)/2:white,format=yuv420p",
        y4m,
    )  # fmt: skip


def test_site_terminal_offline_end_to_end(
    city, lesson_clip, browser, camera_browser, live_server, tmp_path
):
    secretary = factories.staff("sec_a2", Role.SECRETARY, city.branch_a)
    scanner = factories.member(city.branch_a, name="赵六", phone="13800000006")
    keeper = factories.member(city.branch_a, name="钱七", phone="13800000007")
    ticked = factories.member(city.branch_a, name="孙八", phone="13800000008")
    training_round = builders.training_round([city.root], lessons=[lesson_clip])
    now = timezone.now()
    session = builders.session(
        training_round,
        city.branch_a,
        start=now - timedelta(minutes=10),
        end=now + timedelta(hours=2),
    )
    sitting = builders.sitting(session)
    terminal = terminals.terminal_register(
        name="幸福社区活动室", host=city.branch_a, user=city.trainer
    )

    def phone_context():
        ctx = browser.new_context(
            viewport={"width": 360, "height": 800}, locale="zh-CN", base_url=live_server.url
        )
        ctx.set_default_timeout(15000)
        return ctx

    # The member who will have no signal opens her codes while she still has one.
    keeper_phone = phone_context()
    page = keeper_phone.new_page()
    log_in(page, keeper.phone)
    page.goto("/check-in/mine/")
    code_box = page.locator(f".personal-code[data-sitting='{sitting.pk}'] svg")
    code_box.screenshot(path=str(tmp_path / "personal.png"))
    keeper_phone.close()
    camera_feed(tmp_path / "personal.png", tmp_path / "personal.y4m")

    profile = tmp_path / "site-pc-profile"
    site = camera_browser(profile, tmp_path / "personal.y4m")
    screen = site.pages[0] if site.pages else site.new_page()
    log_in(screen, "op_a")
    screen.goto(f"/site-terminals/{terminal.pk}/")
    root = screen.locator("#terminal")
    expect(root).to_have_attribute("data-state", "setup")
    screen.get_by_role("button", name="把这台电脑设为站点终端").click()
    screen.select_option("#terminal-rung", "360p")
    screen.get_by_role("button", name="下载", exact=True).click()
    expect(screen.locator("#terminal-progress")).to_have_attribute(
        "data-state", "done", timeout=60000
    )
    expect(root).to_have_attribute("data-state", "ready")

    # The link goes down; the terminal reloads from what it kept.
    site.set_offline(True)
    screen.reload()
    expect(root).to_have_attribute("data-state", "ready")
    expect(root).to_have_attribute("data-link", "off")
    assert (
        screen.evaluate(
            "() => fetch('/site-terminals/', {cache: 'no-store'}).then(() => 'up', () => 'down')"
        )
        == "down"
    ), "the network must really be down for the page and its service worker"
    screen.locator(f"li[data-sitting='{sitting.pk}']").get_by_role("button").click()
    expect(root).to_have_attribute("data-running", str(sitting.pk))

    # The lesson plays to the end from the computer's disk.
    screen.evaluate(
        "() => { const v = document.getElementById('run-video'); v.muted = true; v.play(); }"
    )
    expect(screen.locator("#run-played")).to_have_attribute("data-state", "ended", timeout=60000)

    # Two members scan the rotating code with their phones, over their own link.
    code_url = decode(screen.locator("#run-qr svg"), tmp_path / "code.png")
    assert code_url.startswith(live_server.url + "/check-in/")
    assert code_url == screen.locator("#run-qr").get_attribute("data-url")
    for member in (city.member_a, scanner):
        phone = phone_context()
        member_page = phone.new_page()
        log_in(member_page, member.phone)
        member_page.goto(decode(screen.locator("#run-qr svg"), tmp_path / "again.png"))
        expect(member_page.locator("#check-in-ok")).to_be_visible()
        phone.close()

    # One shows the personal code her phone keeps; the terminal reads it with its camera.
    screen.get_by_role("button", name="扫个人签到码").click()
    result = screen.locator("#run-scan-result")
    expect(result).to_have_attribute("data-state", "ok", timeout=30000)
    expect(result).to_have_attribute("data-member", str(keeper.pk))
    screen.get_by_role("button", name="关闭摄像头").click()

    # One is ticked at roll call.
    screen.locator(
        f"#run-roster li[data-member='{ticked.pk}'] button[data-status='present']"
    ).click()
    waiting = screen.locator("#terminal-waiting")
    expect(waiting).to_have_attribute("data-state", "2")
    assert not Attendance.objects.filter(member__in=[keeper, ticked]).exists()
    if os.environ.get("LUNXUN_SCREENSHOT_DIR"):  # the README's picture (docs/sites.md)
        screen.evaluate("() => window.scrollTo(0, 0)")
        screen.screenshot(
            path=os.path.join(os.environ["LUNXUN_SCREENSHOT_DIR"], "site-terminal.png")
        )

    # The site PC is switched off and on again, still without a link.
    site.close()
    site = camera_browser(profile, tmp_path / "personal.y4m")
    site.set_offline(True)
    screen = site.pages[0] if site.pages else site.new_page()
    screen.goto(f"/site-terminals/{terminal.pk}/")
    root = screen.locator("#terminal")
    expect(root).to_have_attribute("data-state", "ready")
    waiting = screen.locator("#terminal-waiting")
    expect(waiting).to_have_attribute("data-state", "2")
    assert not TerminalRecord.objects.exists()

    # The link comes back: the records are sent, once.
    site.set_offline(False)
    expect(waiting).to_have_attribute("data-state", "0", timeout=30000)
    results = screen.locator("#terminal-result-list li")
    expect(results.and_(screen.locator("[data-state='accepted']"))).to_have_count(2)
    assert TerminalRecord.objects.filter(result="accepted").count() == 2
    by_member = {a.member_id: a.method for a in Attendance.objects.filter(sitting=sitting)}
    assert by_member == {
        city.member_a.pk: "qr",
        scanner.pk: "qr",
        keeper.pk: "personal_code",
        ticked.pk: "roll_call",
    }

    # Sending the same records again changes nothing.
    before = (Attendance.objects.count(), TerminalRecord.objects.count())
    replay = screen.evaluate(REPLAY, f"/site-terminals/{terminal.pk}/sync/")
    assert [r["replayed"] for r in replay["results"]] == [True, True]
    assert (Attendance.objects.count(), TerminalRecord.objects.count()) == before

    # A record altered after signing is refused as tampered, with the reason on screen.
    tampered = screen.evaluate(TAMPER)
    screen.get_by_role("button", name="立即发送").click()
    row = screen.locator(f"#terminal-result-list li[data-uuid='{tampered}']")
    expect(row).to_have_attribute("data-reason", "tampered")
    expect(row).to_contain_text("篡改")
    assert Attendance.objects.get(member=ticked).status == "present"

    # The trainer revokes the terminal: what it sends from then on is refused.
    terminals.terminal_revoke(terminal=terminal, user=city.trainer)
    screen.locator(f"li[data-sitting='{sitting.pk}']").get_by_role("button").click()
    screen.locator(
        f"#run-roster li[data-member='{ticked.pk}'] button[data-status='absent']"
    ).click()
    refused = screen.locator("#terminal-result-list li[data-reason='revoked']")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("已被停用")
    assert Attendance.objects.get(member=ticked).status == "present"
    site.close()

    # Coverage shows the four members completed (the sitting showed the round's lesson).
    office = phone_context()
    try:
        coverage = office.new_page()
        log_in(coverage, secretary.username)
        coverage.goto(f"/rounds/{training_round.pk}/coverage/?status=completed")
        expect(coverage.locator("[data-figure=completed]")).to_have_text("4")
        for member in (city.member_a, scanner, keeper, ticked):
            expect(coverage.locator(f"tr[data-member='{member.pk}']")).to_contain_text("已完成")
    finally:
        office.close()

"""A group session in three browsers: the site PC shows the rotating QR code, a member's phone
scans it (we decode the QR image itself with zbarimg) and checks in after logging in, a replayed
expired code is refused, and the secretary's coverage page shows the member completed."""

import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from members.models import Role
from rounds.models import Attendance

from .. import factories
from ..rounds import builders

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def log_in(page, username):
    page.goto("/login/")
    page.get_by_label("手机号码或用户名").fill(username)
    page.get_by_label("密码").fill(factories.PASSWORD)
    page.get_by_role("button", name="登录").click()


def scan(page, tmp_path, name):
    """Photograph the QR code on the screen and decode it, as a phone camera would."""
    image = tmp_path / f"{name}.png"
    page.locator("#qr-code svg").screenshot(path=str(image))
    result = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(image)], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_qr_check_in_across_three_browsers(city, browser, live_server, settings, tmp_path):
    settings.LUNXUN_QR_ROTATE_SECONDS = 3
    settings.LUNXUN_QR_GRACE_SECONDS = 1
    secretary = factories.staff("sec_a2", Role.SECRETARY, city.branch_a)
    latecomer = factories.member(city.branch_a, name="赵六", phone="13800000009")
    training_round = builders.training_round([city.root])
    now = timezone.now()
    session = builders.session(
        training_round,
        city.branch_a,
        start=now - timedelta(minutes=10),
        end=now + timedelta(hours=2),
    )
    sitting = builders.sitting(session)

    def context(width=360):
        ctx = browser.new_context(
            viewport={"width": width, "height": 800}, locale="zh-CN", base_url=live_server.url
        )
        ctx.set_default_timeout(15000)
        return ctx

    site_pc, phone, other_phone, office = context(1280), context(), context(), context(1280)
    try:
        screen = site_pc.new_page()
        log_in(screen, "op_a")
        screen.wait_for_url("**/")
        screen.goto(f"/sittings/{sitting.pk}/")
        screen.get_by_role("link", name="显示签到二维码").click()
        screen.wait_for_selector("#qr-code svg")
        first_code = scan(screen, tmp_path, "first")
        assert first_code.startswith(live_server.url + "/check-in/")
        assert first_code == screen.locator("#qr-code").get_attribute("data-url")

        # The member scans before logging in: the check-in completes after the login.
        member_page = phone.new_page()
        member_page.goto(first_code)
        member_page.get_by_label("手机号码或用户名").fill("13800000001")
        member_page.get_by_label("密码").fill(factories.PASSWORD)
        member_page.get_by_role("button", name="登录").click()
        member_page.wait_for_selector("#check-in-ok")
        assert "签到成功" in member_page.content()
        assert Attendance.objects.get(sitting=sitting).member == city.member_a

        # The screen moves on to a new code; the old one, replayed later, is refused.
        screen.wait_for_function(
            "code => document.getElementById('qr-code').dataset.url !== code", arg=first_code
        )
        second_code = scan(screen, tmp_path, "second")
        assert second_code != first_code
        other = other_phone.new_page()
        log_in(other, latecomer.phone)
        other.wait_for_url("**/")
        screen.wait_for_timeout(2500)  # past the grace period of the first code's successor
        other.goto(first_code)
        assert "已过期" in other.locator("#check-in-error").inner_text()
        assert not Attendance.objects.filter(member=latecomer).exists()
        assert screen.locator("#qr-checked-in").inner_text() == "1"

        # The secretary's coverage page shows the member done (the session showed all lessons).
        coverage = office.new_page()
        log_in(coverage, secretary.username)
        coverage.wait_for_url("**/")
        coverage.goto(f"/rounds/{training_round.pk}/coverage/?status=completed")
        row = coverage.locator(f"tr[data-member='{city.member_a.pk}']")
        assert "已完成（参加集中学习）" in row.inner_text()
        assert coverage.locator("[data-figure=completed]").inner_text() == "1"
    finally:
        for ctx in (site_pc, phone, other_phone, office):
            ctx.close()

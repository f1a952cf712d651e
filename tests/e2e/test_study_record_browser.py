"""A branch secretary, on a 360 px phone, records a 送学上门 visit to a member who cannot come;
someone above her approves it, and it counts in the member's study hours."""

from decimal import Decimal

import pytest

from members.models import Member, Role
from rounds import ledger, records
from rounds.models import StudyRecord

from .. import factories

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_secretary_records_study_brought_to_the_door_on_a_phone(city, phone_page):
    page = phone_page
    Member.objects.filter(pk=city.member_a.pk).update(limited_mobility=True)

    page.goto("/login/")
    page.get_by_label("手机号码或用户名").fill("sec_a")
    page.get_by_label("密码").fill(factories.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/")

    page.goto("/hours/org/")
    page.get_by_role("link", name="王芳").click()
    page.get_by_role("link", name="记录系统外的学习").click()
    page.get_by_label("学习类别").select_option("door_to_door")
    page.get_by_label("学习内容").fill("送学上门：学习党的二十届四中全会精神")
    page.get_by_label("学时").fill("1.5")
    page.get_by_label("备注（可不填）").fill("在家中学习，读原文")
    assert page.locator("input[type=file]").count() == 0  # no evidence asked for
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.get_by_role("button", name="记录").click()
    page.wait_for_selector(".message-success")
    assert "经他人审核通过后计入学时" in page.locator(".message-success").inner_text()
    # Going back and sending the same form again records nothing twice.
    page.go_back()
    page.get_by_role("button", name="记录").click()
    page.wait_for_selector(".messages")
    record = StudyRecord.objects.get()
    assert (record.kind, record.hours, record.state) == ("door_to_door", Decimal("1.5"), "pending")
    assert "等待审核" in page.content()

    approver = factories.staff("sec_county", Role.SECRETARY, city.county_a)
    records.record_decide(record=record, approve=True, user=approver)
    year = record.studied_on.year
    assert ledger.ledger_total(member=city.member_a, year=year) == Decimal("1.5")

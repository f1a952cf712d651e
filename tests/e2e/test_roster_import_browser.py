"""A secretary logs in on a phone, imports a roster, checks the dry run, confirms, finds them."""

import pytest

from members.models import Member

from .. import factories
from ..members.spreadsheets import xlsx

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_secretary_imports_a_roster_in_the_browser(city, phone_page, tmp_path):
    page = phone_page
    roster = tmp_path / "名册.xlsx"
    roster.write_bytes(
        xlsx(
            [
                ["序号", "姓名", "手机号码", "党组织编码", "入党日期"],
                [1, "王芳", "13800000001", "A-01", "2001-07-01"],
                [2, "张  三", "+86 137-0000-9001", "A-01", "2021年7月1日"],
                [3, "𠮷祥", "137 0000 9002", "A-01", ""],
            ]
        )
    )

    page.goto("/login/")
    page.get_by_label("手机号码或用户名").fill("sec_a")
    page.get_by_label("密码").fill(factories.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/")

    page.get_by_role("link", name="党员名册").first.click()
    page.get_by_role("link", name="导入党员名册").click()
    page.get_by_label("表格文件（.xlsx 或 .csv）").set_input_files(str(roster))
    page.get_by_role("button", name="预检文件").click()

    page.wait_for_selector("[data-count=new]")
    assert page.locator("[data-count=new]").inner_text() == "2"
    assert page.locator("[data-count=changed]").inner_text() == "1"  # joined date added
    assert page.locator("[data-count=errors]").inner_text() == "0"
    assert not Member.objects.filter(phone="13700009001").exists()

    page.get_by_role("button", name="确认导入").click()
    page.wait_for_selector(".message-success")
    assert Member.objects.filter(phone__in=["13700009001", "13700009002"]).count() == 2

    page.goto("/roster/?q=𠮷")
    row = page.locator("table.roster tbody tr").first
    assert "𠮷祥" in row.inner_text()
    assert "137****9002" in row.inner_text()
    # Readable on a 360 px phone: nothing wider than the screen.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360

"""The paper sign-in sheet in a browser on a 360 px phone: the operator prints the sitting's
sheet (the PDF is read back with pdftotext for its code), types the code, ticks two names as
ticked on paper, saves, and the names show as present, at roll call too. The entry screen in
large-type mode: bigger boxes, nothing wider than the phone, no serious axe-core violation."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from rounds.models import Attendance

from .. import factories
from ..certificates import pdfs
from ..rounds import builders
from .test_check_in_browser import log_in
from .test_large_type_browser import MIN_TARGET_PX, axe_violations, is_large, small_targets, switch

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def phone(browser, live_server):
    """A 360 px phone speaking Chinese; axe-core is handed in through the DevTools protocol
    (bypass_csp only lets that script in), as in test_large_type_browser."""
    context = browser.new_context(
        viewport={"width": 360, "height": 740},
        locale="zh-CN",
        base_url=live_server.url,
        bypass_csp=True,
    )
    context.set_default_timeout(20000)
    yield context.new_page()
    context.close()


def test_print_the_sheet_then_enter_its_ticks(city, phone):
    zhao = factories.member(city.branch_a, name="赵敏", phone="13812345678")
    absent = factories.member(city.branch_a, name="钱进")
    training_round = builders.training_round([city.root])
    sitting = builders.sitting(builders.session(training_round, city.branch_a))
    page = phone
    log_in(page, "op_a")
    page.wait_for_url("**/")
    page.goto(f"/sittings/{sitting.pk}/")

    with page.expect_download() as download:
        page.get_by_role("link", name="打印纸质签到表").click()
    text = pdfs.text(Path(download.value.path()).read_bytes())
    assert "赵敏" in text and "138****5678" in text and "13812345678" not in text
    code = re.search(r"\d+-[A-Z]{6}", text).group(0)

    page.get_by_role("link", name="从纸质签到表录入").click()
    field = page.get_by_label("签到表编码")
    expect(field).to_have_value(f"{sitting.pk}-")  # the letters come from the sheet in hand
    field.fill(code.lower())
    for member in (city.member_a, zhao):
        box = page.locator(f'input[name="tick"][value="{member.pk}"]')
        box.check()
        size = box.bounding_box()
        assert size["width"] >= 32 and size["height"] >= 32  # a big target on a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.get_by_role("button", name="保存勾选").click()

    expect(page.locator(".message-success")).to_contain_text("2")
    for member in (city.member_a, zhao):
        expect(page.locator(f'input[name="tick"][value="{member.pk}"]')).to_be_checked()
    expect(page.locator(f'input[name="tick"][value="{absent.pk}"]')).not_to_be_checked()
    assert set(
        Attendance.objects.filter(sitting=sitting).values_list("member__name", "method")
    ) == {("王芳", "paper"), ("赵敏", "paper")}

    page.goto(f"/sittings/{sitting.pk}/roll-call/")
    for member in (city.member_a, zhao):
        expect(page.locator(f'input[name="m{member.pk}"][value="present"]')).to_be_checked()
    expect(page.locator(f'input[name="m{absent.pk}"][value="present"]')).not_to_be_checked()

    # The entry screen in large-type mode, as an elderly operator may use it.
    page.goto(f"/sittings/{sitting.pk}/paper/?code={code}")
    assert axe_violations(page) == []
    switch(page, "长辈模式")
    assert is_large(page)
    box = page.locator(f'input[name="tick"][value="{absent.pk}"]').bounding_box()
    assert box["width"] >= 40 and box["height"] >= 40
    row = page.locator(f'li[data-member="{absent.pk}"] label').bounding_box()
    assert row["height"] >= MIN_TARGET_PX
    assert small_targets(page) == [], small_targets(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert axe_violations(page) == []

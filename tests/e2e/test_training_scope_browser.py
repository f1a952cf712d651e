"""A trainer creates a 书记专题培训 in the admin: the scope is chosen on the organisation tree
(never by typing a code), and the form says how many people it covers before publishing."""

import re
from datetime import date

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from members.models import Member
from rounds.models import Round

from .. import factories
from ..rounds import builders

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def desk_page(browser, live_server):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="zh-CN", base_url=live_server.url
    )
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def test_trainer_creates_a_secretaries_training_on_the_tree(city, desk_page):
    page = desk_page
    Member.objects.filter(pk=city.member_b.pk).update(
        position="secretary", position_since=date(2026, 1, 5)
    )
    factories.member(city.branch_b, name="红旗村委员", position="committee")
    lesson = builders.training_round([city.root], state=Round.State.DRAFT).lessons.first()

    page.goto("/login/")
    page.get_by_label("手机号码或用户名").fill("trainer")
    page.get_by_label("密码").fill(factories.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/")

    page.goto(reverse("training_rounds:add") + "?kind=secretary")
    page.get_by_label("标题").fill("2026年村书记专题培训")
    page.locator("#id_opens_on").fill("2026-10-01")
    page.locator("#id_closes_on").fill("2026-12-31")
    page.locator("#id_makeup_deadline").fill("2027-01-31")
    page.keyboard.press("Escape")

    picker = page.locator("[data-scope-picker]")
    count = picker.locator("[data-scope-count]")
    # The trainer's own node is chosen to begin with: the city's secretaries, one of them.
    assert picker.locator("[data-chips] li").all_inner_texts()[0].startswith("示范市委")
    expect(count).to_have_attribute("data-count", "1")
    # Take the city off and choose the village branch on the tree: open the city, then the
    # county, then tick the branch.
    picker.locator("[data-chips] [data-remove='CITY']").click()
    expect(count).to_have_attribute("data-count", "0")
    assert count.inner_text() == "尚未选择党组织：没有人参训。"
    picker.get_by_role("button", name="展开示范市委的下级党组织").click()
    picker.get_by_role("button", name="展开青山县委的下级党组织").click()
    picker.get_by_role("checkbox", name="红旗村党支部").check()
    assert picker.locator("[data-chips] li").all_inner_texts()[0].startswith("红旗村党支部")
    expect(count).to_have_attribute("data-count", "1")
    assert count.inner_text() == "按目前的范围，共 1 人参训。"
    # Ticking committee members too widens it, and the count follows.
    page.get_by_role("checkbox", name="支委委员").check()
    expect(count).to_have_attribute("data-count", "2")
    page.get_by_role("checkbox", name="支委委员").uncheck()
    # Found by name as well.
    picker.get_by_label("按名称查找党组织").fill("幸福社区")
    picker.locator("[data-results]").get_by_role("checkbox", name="幸福社区党支部").wait_for()

    page.locator(f"input[name=lessons][value='{lesson.pk}']").check()
    page.locator("#id_state").select_option("published")
    page.get_by_role("button", name=re.compile("^(创建|保存)$")).first.click()
    page.wait_for_selector(".messages")
    assert "“2026年村书记专题培训”已发布，共 1 人参训。" in page.locator(".messages").inner_text()

    training = Round.objects.get(title="2026年村书记专题培训")
    assert training.kind == Round.Kind.SECRETARY
    assert list(training.scope_roots.values_list("code", flat=True)) == ["B-01"]
    assert sorted(training.positions) == ["deputy_secretary", "secretary"]
    assert list(training.members_in_scope()) == [Member.objects.get(pk=city.member_b.pk)]

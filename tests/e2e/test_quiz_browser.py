"""A member on a 360 px phone fails a lesson's test, reads the explanations, retakes it and
passes; her status in a "watched and passed" round changes from in progress to completed."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from .. import factories
from ..quizzes import builders as quiz_builders
from ..rounds import builders

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def answer(page, pattern):
    """Tick, in every question, the option whose text matches ``pattern``."""
    for label in page.locator(".choices label").filter(has_text=re.compile(pattern)).all():
        label.click()


def test_a_member_fails_reads_the_explanations_retakes_and_passes(city, phone_page):
    page = phone_page
    training_round = builders.training_round([city.root], quiz_required=True)
    lessons = list(training_round.lessons.order_by("path"))
    quiz = quiz_builders.quiz(
        lessons[0].get_parent().specific, lesson=lessons[0], size=2, pass_mark=2
    )
    for lesson in lessons:
        builders.complete_online(city.member_a, lesson)

    page.goto("/login/")
    page.get_by_label("手机号码或用户名").fill(city.member_a.phone)
    page.get_by_label("密码").fill(factories.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/")

    round_url = reverse("rounds:detail", args=[training_round.pk])
    page.goto(round_url)
    expect(page.locator(".round-status")).to_contain_text("尚未通过测试：随堂测试")

    page.goto(lessons[0].url)
    page.get_by_role("link", name="参加测试").click()
    page.get_by_role("button", name="开始测试").click()
    expect(page.locator(".quiz-question")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    heights = page.evaluate(
        "[...document.querySelectorAll('.choices label')]"
        ".map(l => l.getBoundingClientRect().height)"
    )
    assert min(heights) >= 48
    # In large-type mode (长辈模式) too: nothing wider than the phone, every option a 48 px target.
    page.evaluate("document.documentElement.classList.add('large-type')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    heights = page.evaluate(
        "[...document.querySelectorAll('.choices label')]"
        ".map(l => l.getBoundingClientRect().height)"
    )
    assert min(heights) >= 48
    answer(page, r"^\s*错的\d+甲$")
    page.get_by_role("button", name="提交答案").click()

    expect(page.locator("[data-quiz-status]")).to_have_text("测试未通过（0/2，需 2 题），可补考")
    expect(page.locator(".explanation")).to_have_count(2)
    expect(page.locator(".explanation").first).to_contain_text(re.compile(r"第\d题的解析"))
    expect(page.locator(".round-status")).to_have_count(0)

    page.get_by_role("button", name="补考").click()
    expect(page.locator(".quiz-question")).to_have_count(2)
    answer(page, r"^\s*对的\d+$")
    page.get_by_role("button", name="提交答案").click()
    expect(page.locator("[data-quiz-status]")).to_have_text("测试已通过（2/2）")

    page.goto(round_url)
    expect(page.locator(".round-status")).to_have_attribute("data-status", "completed")
    assert quiz.attempts.filter(member=city.member_a, passed=True).count() == 1

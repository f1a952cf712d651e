"""What secretaries and trainers see of a test: passed / not yet / not taken per member, and the
share passed per organisation in tree order; never a score, never a ranking."""

import re

import pytest

from quizzes import services

from .. import factories
from ..courses import builders as course_builders
from . import builders


@pytest.fixture
def taken(city):
    quiz = builders.quiz(course_builders.course(), size=3, pass_mark=2)
    failed = factories.member(city.branch_a, name="赵敏")
    factories.member(city.branch_a, name="钱七")  # never takes it
    for member, right in ((city.member_a, True), (failed, False), (city.member_b, True)):
        attempt = services.attempt_start(quiz=quiz, member=member)
        answers = (builders.right_answers if right else builders.wrong_answers)(attempt)
        services.attempt_submit(attempt=attempt, answers=answers)
    return quiz


def test_a_secretary_sees_who_passed_and_no_score(taken, city, client_for):
    html = client_for(city.secretary_a).get(f"/quizzes/{taken.pk}/results/").content.decode()
    states = dict(re.findall(r'data-result="(\w+)">([^<·]+?) ·', html))
    assert states == {"passed": "王芳", "not_yet": "赵敏", "not_taken": "钱七"}
    assert "已通过" in html and "尚未通过" in html and "未参加" in html
    assert "3 名党员中 1 名已通过" in html
    assert not re.search(r"\d+/\d+", html)  # no score anywhere
    assert "李强" not in html  # another county's member


def test_organisations_come_in_tree_order_not_ranked(taken, city, client_for):
    html = client_for(city.trainer).get(f"/quizzes/{taken.pk}/results/").content.decode()
    # County B passed more (1 of 1) than county A (1 of 3) and still comes second.
    assert html.index("城关区委") < html.index("青山县委")
    assert "1 名党员中 1 名已通过" in html and "3 名党员中 1 名已通过" in html


def test_results_outside_ones_scope_are_404(taken, city, client_for):
    assert (
        client_for(city.secretary_b)
        .get(f"/quizzes/{taken.pk}/results/?org={city.branch_a.pk}")
        .status_code
        == 404
    )
    assert client_for(city.member_a.user).get(f"/quizzes/{taken.pk}/results/").status_code == 404
    assert client_for(city.member_a.user).get("/quizzes/").status_code == 404
    assert (
        f"/quizzes/{taken.pk}/results/"
        in client_for(city.secretary_a).get("/quizzes/").content.decode()
    )

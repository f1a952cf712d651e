"""The "watched and passed" rule (issue 16): a round can ask for the tests of its lessons and
courses to be passed as well; every other round keeps its rule exactly."""

import pytest

from quizzes import services as quiz_services
from rounds.models import Participation
from rounds.participation import status_line_of

from ..quizzes import builders as quiz_builders
from . import builders

P = Participation.Status


@pytest.fixture
def setup(city):
    training_round = builders.training_round([city.root], quiz_required=True)
    lessons = list(training_round.lessons.order_by("path"))
    course = lessons[0].get_parent().specific
    quiz = quiz_builders.quiz(course, lesson=lessons[0], size=2, pass_mark=2)
    quiz.title = "第一课测试"
    quiz.save()
    return city, training_round, lessons, quiz


def row(training_round, member):
    return Participation.objects.get(round=training_round, member=member)


def take(quiz, member, capture, *, right=True):
    attempt = quiz_services.attempt_start(quiz=quiz, member=member)
    answers = (quiz_builders.right_answers if right else quiz_builders.wrong_answers)(attempt)
    with capture(execute=True):
        quiz_services.attempt_submit(attempt=attempt, answers=answers)


def test_watching_without_passing_leaves_the_round_in_progress_saying_which_test(setup):
    city, training_round, lessons, _quiz = setup
    for lesson in lessons:
        builders.complete_online(city.member_a, lesson)
    current = row(training_round, city.member_a)
    assert (current.status, current.lessons_done) == (P.IN_PROGRESS, 1)
    assert status_line_of(current, training_round) == (
        "进行中：已完成 1/2 门必修课；尚未通过测试：第一课测试"
    )


def test_passing_the_test_completes_the_round(setup, django_capture_on_commit_callbacks):
    city, training_round, lessons, quiz = setup
    for lesson in lessons:
        builders.complete_online(city.member_a, lesson)
    take(quiz, city.member_a, django_capture_on_commit_callbacks, right=False)
    assert row(training_round, city.member_a).status == P.IN_PROGRESS
    take(quiz, city.member_a, django_capture_on_commit_callbacks)
    current = row(training_round, city.member_a)
    assert (current.status, current.lessons_done, current.note) == (P.COMPLETED, 2, "")


def test_passing_without_watching_is_not_enough(setup, django_capture_on_commit_callbacks):
    city, training_round, lessons, quiz = setup
    take(quiz, city.member_a, django_capture_on_commit_callbacks)
    builders.complete_online(city.member_a, lessons[1])
    assert row(training_round, city.member_a).status == P.IN_PROGRESS


def test_a_courses_own_test_is_required_too(city, django_capture_on_commit_callbacks):
    training_round = builders.training_round([city.root], quiz_required=True)
    lessons = list(training_round.lessons.order_by("path"))
    quiz = quiz_builders.quiz(lessons[0].get_parent().specific, size=2, pass_mark=1)
    for lesson in lessons:
        builders.complete_online(city.member_a, lesson)
    current = row(training_round, city.member_a)
    assert (current.status, current.lessons_done) == (P.IN_PROGRESS, 2)
    take(quiz, city.member_a, django_capture_on_commit_callbacks)
    assert row(training_round, city.member_a).status == P.COMPLETED


def test_a_round_without_the_rule_ignores_tests(city):
    training_round = builders.training_round([city.root])
    lessons = list(training_round.lessons.order_by("path"))
    quiz_builders.quiz(lessons[0].get_parent().specific, lesson=lessons[0], size=2, pass_mark=2)
    for lesson in lessons:
        builders.complete_online(city.member_a, lesson)
    assert row(training_round, city.member_a).status == P.COMPLETED

"""The test on paper at a site: a printed sheet per member, bound on the server like an attempt
on a phone, and the answers entered afterwards by the operator, once, audit-logged."""

import pytest
from auditlog.models import LogEntry

from quizzes.models import Attempt, Question

from .. import factories
from ..certificates import pdfs
from ..courses import builders as course_builders
from . import builders


@pytest.fixture
def quiz(city):
    return builders.quiz(course_builders.course(), size=3, question_count=2, pass_mark=2)


def _post(answers):
    return {f"q{q}": [str(c) for c in ids] for q, ids in answers.items()}


def test_the_operator_prints_a_sheet_per_member_without_the_answers(quiz, city, client_for):
    zhao = factories.member(city.branch_a, name="赵敏")
    response = client_for(city.operator_a).post(f"/quizzes/{quiz.pk}/paper/?org={city.branch_a.pk}")
    assert response["Content-Type"] == "application/pdf"
    text = pdfs.text(response.content)
    attempts = Attempt.objects.filter(quiz=quiz, on_paper=True)
    assert {a.member_id for a in attempts} == {city.member_a.pk, zhao.pk}
    assert "王芳" in text and "赵敏" in text
    for attempt in attempts:
        assert f"{attempt.pk}" in text
        for question in Question.objects.filter(pk__in=attempt.question_ids):
            assert question.text in text
    assert "解析" not in text and "李强" not in text
    # Printing again prints the same sheets: no second attempt.
    client_for(city.operator_a).post(f"/quizzes/{quiz.pk}/paper/?org={city.branch_a.pk}")
    assert Attempt.objects.filter(quiz=quiz).count() == 2


def test_the_operator_enters_a_sheet_once(quiz, city, client_for):
    operator = client_for(city.operator_a)
    operator.post(f"/quizzes/{quiz.pk}/paper/?org={city.branch_a.pk}")
    attempt = Attempt.objects.get(member=city.member_a)
    page = operator.get(f"/quizzes/attempts/{attempt.pk}/enter/").content.decode()
    assert "A. " in page and "解析" not in page
    response = operator.post(
        f"/quizzes/attempts/{attempt.pk}/enter/", _post(builders.right_answers(attempt))
    )
    assert response.status_code == 302
    attempt.refresh_from_db()
    assert (attempt.passed, attempt.entered_by) == (True, city.operator_a)
    entry = LogEntry.objects.get(
        additional_data__event="quiz_attempt_submitted", additional_data__result="ok"
    )
    assert entry.actor == city.operator_a
    # Entered again (a second sheet, a page sent again): nothing changes.
    operator.post(f"/quizzes/attempts/{attempt.pk}/enter/", _post(builders.wrong_answers(attempt)))
    attempt.refresh_from_db()
    assert attempt.passed and attempt.correct == 2


def test_an_answer_to_a_question_not_on_the_sheet_is_refused(quiz, city, client_for):
    operator = client_for(city.operator_a)
    operator.post(f"/quizzes/{quiz.pk}/paper/?org={city.branch_a.pk}")
    attempt = Attempt.objects.get(member=city.member_a)
    undrawn = Question.objects.exclude(pk__in=attempt.question_ids).first()
    data = _post(builders.right_answers(attempt))
    data[f"q{undrawn.pk}"] = [str(undrawn.choices.first().pk)]
    response = operator.post(f"/quizzes/attempts/{attempt.pk}/enter/", data)
    assert "不接受本次测试未抽到的题目的答案。" in response.content.decode()
    assert Attempt.objects.get(pk=attempt.pk).state == Attempt.State.OPEN


def test_only_staff_over_the_member_enter_a_sheet(quiz, city, client_for):
    client_for(city.operator_a).post(f"/quizzes/{quiz.pk}/paper/?org={city.branch_a.pk}")
    attempt = Attempt.objects.get(member=city.member_a)
    url = f"/quizzes/attempts/{attempt.pk}/enter/"
    assert client_for(city.secretary_b).get(url).status_code == 404
    assert client_for(city.member_a.user).get(url).status_code == 404  # not one's own
    assert client_for(city.secretary_a).get(url).status_code == 200
    assert (
        client_for(city.secretary_b)
        .post(f"/quizzes/{quiz.pk}/paper/?org={city.branch_a.pk}")
        .status_code
        == 404
    )


def test_a_county_is_too_many_for_one_print_run(quiz, city, client_for, monkeypatch):
    monkeypatch.setattr("quizzes.views.PAPER_MAX_MEMBERS", 1)
    factories.member(city.branch_a, name="赵敏")
    client = client_for(city.trainer_a)
    page = client.get(f"/quizzes/{quiz.pk}/paper/?org={city.county_a.pk}").content.decode()
    assert "请选择下一级党组织" in page and "打印答题卡（PDF）" not in page
    client.post(f"/quizzes/{quiz.pk}/paper/?org={city.county_a.pk}")
    assert not Attempt.objects.exists()


def test_the_sitting_page_offers_the_tests_of_its_lessons_on_paper(city, client_for):
    from ..rounds import builders as round_builders

    training_round = round_builders.training_round([city.root])
    lesson = training_round.lessons.order_by("path").first()
    quiz = builders.quiz(lesson.get_parent().specific, lesson=lesson, pass_mark=2)
    sitting = round_builders.sitting(round_builders.session(training_round, city.branch_a))
    page = client_for(city.operator_a).get(f"/sittings/{sitting.pk}/").content.decode()
    assert f"/quizzes/{quiz.pk}/paper/?org={city.branch_a.pk}" in page

"""Taking a quiz: the draw, the pass mark, retakes, and the rules that keep it honest (issue 16):
the page never carries the answers, one attempt at a time, a second submit changes nothing,
answers to questions not drawn are refused."""

import re
import threading

import pytest
from auditlog.models import LogEntry
from django.db import connection

from quizzes import services
from quizzes.models import Attempt, Question

from ..courses import builders as course_builders
from . import builders


@pytest.fixture
def quiz(city):
    return builders.quiz(course_builders.course(), size=4, question_count=3, pass_mark=2)


def start(quiz, member):
    return services.attempt_start(quiz=quiz, member=member)


def test_an_attempt_draws_its_questions_with_every_option(quiz, city):
    attempt = start(quiz, city.member_a)
    assert len(attempt.drawn) == 3 and attempt.total == 3 and attempt.needed == 2
    for item in attempt.drawn:
        question = Question.objects.get(pk=item["question"])
        assert sorted(item["choices"]) == sorted(c.pk for c in question.choices.all())


def test_options_are_shuffled_per_attempt(city):
    quiz = builders.quiz(course_builders.course(), size=1, max_attempts=0, pass_mark=1)
    orders = set()
    for _ in range(12):
        attempt = start(quiz, city.member_a)
        orders.add(tuple(attempt.drawn[0]["choices"]))
        services.attempt_submit(attempt=attempt, answers=builders.wrong_answers(attempt))
    assert len(orders) > 1


def test_all_questions_when_the_quiz_draws_none_in_particular(city):
    quiz = builders.quiz(course_builders.course(), size=4, question_count=0, pass_mark=4)
    assert len(start(quiz, city.member_a).drawn) == 4


def test_one_attempt_at_a_time(quiz, city):
    first = start(quiz, city.member_a)
    assert start(quiz, city.member_a).pk == first.pk
    assert Attempt.objects.filter(member=city.member_a).count() == 1


def test_failing_says_so_in_words_and_a_retake_draws_afresh(quiz, city):
    attempt = start(quiz, city.member_a)
    answers = builders.wrong_answers(attempt)
    first_q, *_rest = attempt.question_ids
    answers[first_q] = builders.right_answers(attempt)[first_q]
    services.attempt_submit(attempt=attempt, answers=answers)
    status = services.quiz_status(quiz=quiz, member=city.member_a)
    assert status.text == "测试未通过（1/3，需 2 题），可补考"
    assert status.may_start
    retake = start(quiz, city.member_a)
    assert retake.pk != attempt.pk and retake.number == 2


def test_passing_ends_the_quiz(quiz, city):
    attempt = start(quiz, city.member_a)
    services.attempt_submit(attempt=attempt, answers=builders.right_answers(attempt))
    status = services.quiz_status(quiz=quiz, member=city.member_a)
    assert status.text == "测试已通过（3/3）"
    with pytest.raises(services.QuizRefused):
        start(quiz, city.member_a)


def test_limited_retakes_run_out(city):
    quiz = builders.quiz(course_builders.course(), size=2, max_attempts=2, pass_mark=2)
    for _ in range(2):
        attempt = start(quiz, city.member_a)
        services.attempt_submit(attempt=attempt, answers=builders.wrong_answers(attempt))
    status = services.quiz_status(quiz=quiz, member=city.member_a)
    assert status.text == "测试未通过（0/2，需 2 题），补考次数已用完"
    with pytest.raises(services.QuizRefused):
        start(quiz, city.member_a)


def test_a_multiple_choice_question_is_right_only_with_every_right_option(city):
    course = course_builders.course()
    builders.question(course, "多选", ["甲", "乙", "丙"], {"甲", "乙"}, kind=Question.Kind.MULTIPLE)
    quiz = builders.quiz(course, pass_mark=1, max_attempts=0)
    attempt = start(quiz, city.member_a)
    question = Question.objects.get()
    partly = [c.pk for c in question.choices.all() if c.text == "甲"]
    services.attempt_submit(attempt=attempt, answers={question.pk: partly})
    assert Attempt.objects.get(pk=attempt.pk).correct == 0
    retake = start(quiz, city.member_a)
    services.attempt_submit(attempt=retake, answers=builders.right_answers(retake))
    assert Attempt.objects.get(pk=retake.pk).passed


def test_a_second_submit_changes_nothing(quiz, city):
    attempt = start(quiz, city.member_a)
    _done, answered = services.attempt_submit(
        attempt=attempt, answers=builders.wrong_answers(attempt)
    )
    assert answered
    again, answered = services.attempt_submit(
        attempt=attempt, answers=builders.right_answers(attempt)
    )
    assert not answered
    assert (again.correct, again.passed) == (0, False)
    assert Attempt.objects.get(pk=attempt.pk).correct == 0


def test_answers_to_questions_not_drawn_are_refused(quiz, city):
    attempt = start(quiz, city.member_a)
    undrawn = Question.objects.exclude(pk__in=attempt.question_ids).get()
    answers = builders.right_answers(attempt)
    answers[undrawn.pk] = sorted(undrawn.correct_ids())
    with pytest.raises(services.QuizRefused):
        services.attempt_submit(attempt=attempt, answers=answers)
    assert Attempt.objects.get(pk=attempt.pk).state == Attempt.State.OPEN
    refusal = LogEntry.objects.get(
        additional_data__event="quiz_attempt_submitted", additional_data__result="refused"
    )
    assert refusal.additional_data["error"] == "不接受本次测试未抽到的题目的答案。"


def test_an_option_of_another_question_is_refused(quiz, city):
    attempt = start(quiz, city.member_a)
    first, second, *_ = attempt.drawn
    answers = builders.right_answers(attempt)
    answers[first["question"]] = [second["choices"][0]]
    with pytest.raises(services.QuizRefused):
        services.attempt_submit(attempt=attempt, answers=answers)


def test_every_question_must_be_answered(quiz, city):
    attempt = start(quiz, city.member_a)
    answers = builders.right_answers(attempt)
    answers.pop(attempt.question_ids[0])
    with pytest.raises(services.QuizRefused):
        services.attempt_submit(attempt=attempt, answers=answers)


def test_attempts_are_audit_logged(quiz, city):
    attempt = start(quiz, city.member_a)
    services.attempt_submit(attempt=attempt, answers=builders.right_answers(attempt))
    events = LogEntry.objects.filter(object_pk=str(attempt.pk)).values_list(
        "additional_data__event", flat=True
    )
    assert sorted(e for e in events if e and e.startswith("quiz_attempt")) == [
        "quiz_attempt_started",
        "quiz_attempt_submitted",
    ]
    submitted = LogEntry.objects.get(additional_data__event="quiz_attempt_submitted")
    assert submitted.additional_data["passed"] is True


# --- The pages --------------------------------------------------------------------------------


def _take_page(client, quiz):
    response = client.post(f"/quizzes/{quiz.pk}/start/")
    assert response.status_code == 302
    return response["Location"], client.get(response["Location"]).content.decode()


def test_the_attempt_page_never_carries_the_answers(quiz, city, client_for):
    client = client_for(city.member_a.user)
    _url, html = _take_page(client, quiz)
    attempt = Attempt.objects.get()
    assert "解析" not in html  # no explanation before answering
    for item in attempt.drawn:
        question = Question.objects.get(pk=item["question"])
        labels = []
        for choice in question.choices.all():
            match = re.search(
                rf'<label[^>]*>(?:(?!</label>).)*value="{choice.pk}"(?:(?!</label>).)*</label>',
                html,
                re.S,
            )
            assert match, choice.text
            # The right option's markup differs from a wrong one's only in its id, value, text.
            labels.append(re.sub(r"\d+", "N", match.group(0).replace(choice.text, "TEXT")))
        assert len(set(labels)) == 1, labels
    assert "is_correct" not in html and "correct" not in html.lower().replace("incorrect", "")


def test_failing_shows_the_explanations_and_a_retake(quiz, city, client_for):
    client = client_for(city.member_a.user)
    url, _html = _take_page(client, quiz)
    attempt = Attempt.objects.get()
    post = {f"q{q}": [str(c) for c in ids] for q, ids in builders.wrong_answers(attempt).items()}
    response = client.post(url, post)
    assert response.status_code == 302
    result = client.get(response["Location"]).content.decode()
    assert "测试未通过（0/3，需 2 题），可补考" in result
    for question in Question.objects.filter(pk__in=attempt.question_ids):
        assert question.explanation in result
    assert "补考" in result
    # Sent again (a double tap), the answers change nothing.
    right = {f"q{q}": [str(c) for c in ids] for q, ids in builders.right_answers(attempt).items()}
    assert client.post(url, right).status_code == 302
    assert Attempt.objects.get(pk=attempt.pk).correct == 0


def test_the_page_refuses_an_answer_to_a_question_not_drawn(quiz, city, client_for):
    client = client_for(city.member_a.user)
    url, _html = _take_page(client, quiz)
    attempt = Attempt.objects.get()
    undrawn = Question.objects.exclude(pk__in=attempt.question_ids).get()
    post = {f"q{q}": [str(c) for c in ids] for q, ids in builders.right_answers(attempt).items()}
    post[f"q{undrawn.pk}"] = [str(undrawn.choices.first().pk)]
    response = client.post(url, post)
    assert response.status_code == 200
    assert "不接受本次测试未抽到的题目的答案。" in response.content.decode()
    assert Attempt.objects.get(pk=attempt.pk).state == Attempt.State.OPEN


def test_an_unanswered_question_keeps_the_other_answers(quiz, city, client_for):
    client = client_for(city.member_a.user)
    url, _html = _take_page(client, quiz)
    attempt = Attempt.objects.get()
    right = builders.right_answers(attempt)
    _first, *rest = attempt.question_ids
    post = {f"q{q}": [str(c) for c in right[q]] for q in rest}
    html = client.post(url, post).content.decode()
    assert "请回答本题。" in html
    for q in rest:
        assert re.search(rf'value="{right[q][0]}"[^>]*checked', html)
    assert Attempt.objects.get(pk=attempt.pk).state == Attempt.State.OPEN


def test_an_attempt_is_its_members_own(quiz, city, client_for):
    url, _html = _take_page(client_for(city.member_a.user), quiz)
    attempt = Attempt.objects.get()
    other = client_for(city.member_b.user)
    assert other.get(url).status_code == 404
    assert other.get(f"/quizzes/attempts/{attempt.pk}/result/").status_code == 404


def test_the_lesson_page_shows_its_quiz_and_status(city, client_for):
    lesson = course_builders.lesson()
    quiz = builders.quiz(lesson.get_parent().specific, lesson=lesson, pass_mark=2)
    html = client_for(city.member_a.user).get(lesson.url).content.decode()
    assert f"/quizzes/{quiz.pk}/" in html and "尚未参加测试" in html


@pytest.mark.django_db(transaction=True)
def test_parallel_submits_of_one_attempt_score_it_once(city):
    quiz = builders.quiz(course_builders.course(), size=3, pass_mark=2)
    attempt = start(quiz, city.member_a)
    right, wrong = builders.right_answers(attempt), builders.wrong_answers(attempt)
    answered = []
    errors = []

    def submit(index):
        try:
            _a, did = services.attempt_submit(
                attempt=attempt, answers=right if index % 2 else wrong
            )
            answered.append(did)
        except Exception as error:  # reported below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(answered) == [False] * 7 + [True]
    assert (
        LogEntry.objects.filter(
            additional_data__event="quiz_attempt_submitted", additional_data__result="ok"
        ).count()
        == 1
    )

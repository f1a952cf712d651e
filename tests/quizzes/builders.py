"""Question banks and quizzes for tests."""

from quizzes.models import Choice, Question, Quiz

from ..courses import builders as course_builders


def question(course, text, options, correct, kind=Question.Kind.SINGLE, explanation=""):
    q = Question.objects.create(course=course, kind=kind, text=text, explanation=explanation)
    for position, option in enumerate(options):
        Choice.objects.create(
            question=q, text=option, is_correct=option in correct, sort_order=position
        )
    return q


def bank(course, size=4):
    """``size`` single-choice questions whose right option is always "对的{n}"."""
    return [
        question(
            course,
            f"第{n}题",
            [f"对的{n}", f"错的{n}甲", f"错的{n}乙"],
            {f"对的{n}"},
            explanation=f"第{n}题的解析",
        )
        for n in range(1, size + 1)
    ]


def quiz(course=None, *, lesson=None, size=4, **fields):
    course = course or course_builders.course()
    if not course.questions.exists():
        bank(course, size)
    fields.setdefault("pass_mark", 3)
    return Quiz.objects.create(course=course, lesson=lesson, title="随堂测试", **fields)


def right_answers(attempt) -> dict:
    answers = {}
    for item in attempt.drawn:
        q = Question.objects.get(pk=item["question"])
        answers[q.pk] = sorted(q.correct_ids())
    return answers


def wrong_answers(attempt) -> dict:
    answers = {}
    for item in attempt.drawn:
        q = Question.objects.get(pk=item["question"])
        answers[q.pk] = [next(c.pk for c in q.choices.all() if not c.is_correct)]
    return answers

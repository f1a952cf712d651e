from members.demo import demo_city_seeded
from quizzes import demo
from quizzes.models import Question, Quiz, check_choices
from quizzes.signals import seed_demo_quizzes

from ..courses import builders as course_builders


def test_the_demo_course_gets_a_bank_and_a_test_on_its_first_lesson(db):
    course = course_builders.course(title="学习党章 做合格党员", slug=demo.COURSE_SLUG)
    lesson = course_builders.lesson(course, slug="lesson-1")
    assert seed_demo_quizzes in [ref() for _key, ref, *_rest in demo_city_seeded.receivers]
    demo.seed_demo_quizzes()
    demo.seed_demo_quizzes()  # again: nothing twice
    quiz = Quiz.objects.get()
    assert (quiz.lesson_id, quiz.question_count, quiz.pass_mark) == (lesson.pk, 3, 2)
    assert Question.objects.filter(course=course).count() == 5
    assert {q.kind for q in Question.objects.all()} == {"single", "multiple", "true_false"}
    for question in Question.objects.all():
        assert not check_choices(
            question.kind, [(c.text, c.is_correct) for c in question.choices.all()]
        )

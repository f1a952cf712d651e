"""What `make demo` seeds for quizzes: a small 题库 on the demo course and a test on its first
lesson (members.demo.demo_city_seeded, after courses.demo made the course). Idempotent."""

from courses.models import CoursePage, LessonPage

from .models import Choice, Question, Quiz

COURSE_SLUG = "learn-party-constitution"
QUESTIONS = (
    (
        Question.Kind.SINGLE,
        "党的最高理想和最终目标是什么？",
        (("实现共产主义", True), ("全面建成小康社会", False), ("实现四个现代化", False)),
        "党章总纲：党的最高理想和最终目标是实现共产主义。",
    ),
    (
        Question.Kind.SINGLE,
        "党的根本组织原则是什么？",
        (("民主集中制", True), ("集体领导", False), ("少数服从多数", False)),
        "党章第十条：党是根据自己的纲领和章程，按照民主集中制组织起来的统一整体。",
    ),
    (
        Question.Kind.MULTIPLE,
        "党员必须履行的义务包括哪些？",
        (
            ("认真学习党的理论", True),
            ("贯彻执行党的基本路线和各项方针、政策", True),
            ("按期交纳党费", True),
            ("可以不参加组织生活", False),
        ),
        "党章第三条列举了党员的八项义务，按期交纳党费见第四章。",
    ),
    (
        Question.Kind.TRUE_FALSE,
        "预备党员的预备期为一年。",
        (("正确", True), ("错误", False)),
        "党章第七条：预备党员的预备期为一年。",
    ),
    (
        Question.Kind.TRUE_FALSE,
        "党员可以连续六个月不参加党的组织生活。",
        (("正确", False), ("错误", True)),
        "党章第九条：党员无正当理由，连续六个月不参加党的组织生活，被认为是自行脱党。",
    ),
)


def seed_demo_quizzes() -> str:
    course = CoursePage.objects.filter(slug=COURSE_SLUG).first()
    if course is None:
        return "No demo course: no quiz seeded"
    for kind, text, options, explanation in QUESTIONS:
        question, created = Question.objects.get_or_create(
            course=course, text=text, defaults={"kind": kind, "explanation": explanation}
        )
        if created:
            for position, (option, correct) in enumerate(options):
                Choice.objects.create(
                    question=question, text=option, is_correct=correct, sort_order=position
                )
    lesson = LessonPage.objects.child_of(course).filter(slug="lesson-1").first()
    quiz, _created = Quiz.objects.get_or_create(
        course=course,
        lesson=lesson,
        defaults={
            "title": "第一课 随堂测试",
            "question_count": 3,
            "pass_mark": 2,
            "max_attempts": 0,
        },
    )
    return f"Demo quiz ready: {quiz.title} ({len(QUESTIONS)} questions in the bank)"

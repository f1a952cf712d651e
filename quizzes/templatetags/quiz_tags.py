"""The quiz box on a lesson or course page: the quiz, and the member's status in words."""

from django import template

from courses.models import LessonPage

from ..models import Quiz
from ..services import quiz_status

register = template.Library()


@register.inclusion_tag("quizzes/_quiz_box.html", takes_context=True)
def quiz_box(context, page):
    """The quiz on ``page`` (a lesson, or a course: its course-wide quiz)."""
    if isinstance(page, LessonPage):
        quiz = Quiz.objects.filter(lesson_id=page.pk).first()
    else:
        quiz = Quiz.objects.filter(course_id=page.pk, lesson__isnull=True).first()
    request = context.get("request")
    member = getattr(getattr(request, "user", None), "member", None)
    status = quiz_status(quiz=quiz, member=member) if quiz and member else None
    return {"quiz": quiz, "status": status}

"""The admin forms of quizzes: a question with its options, and a quiz; each offers only the
courses (and their lessons) the trainer may change."""

from django import forms
from django.db.models import Q
from django.utils.translation import gettext as _
from wagtail.admin.forms import WagtailAdminModelForm

from courses.models import CoursePage, LessonPage
from members import access

from .models import check_choices


def changeable_courses(user):
    """The courses ``user`` may change (their level owns them, or one below)."""
    courses = CoursePage.objects.select_related("owner_organization").order_by("title")
    return CoursePage.objects.filter(
        pk__in=[c.pk for c in courses if access.may_change_content(user, c.owner_organization)]
    ).order_by("title")


class QuestionForm(WagtailAdminModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["course"].queryset = changeable_courses(self.for_user)

    def clean(self):
        cleaned = super().clean()
        formset = self.formsets.get("choices")
        if formset is not None and formset.is_valid():
            choices = [
                (form.cleaned_data["text"], form.cleaned_data.get("is_correct", False))
                for form in formset.forms
                if form.cleaned_data and not form.cleaned_data.get("DELETE")
            ]
            for message in check_choices(cleaned.get("kind"), choices):
                self.add_error(None, message)
        return cleaned


class QuizForm(WagtailAdminModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        courses = changeable_courses(self.for_user)
        self.fields["course"].queryset = courses
        under = Q(pk__in=[])
        for course in courses:
            under |= Q(path__startswith=course.path)
        self.fields["lesson"].queryset = LessonPage.objects.filter(under).order_by("path")

    def clean(self):
        cleaned = super().clean()
        course, lesson = cleaned.get("course"), cleaned.get("lesson")
        if course is not None and lesson is not None and not lesson.path.startswith(course.path):
            self.add_error(
                "lesson", forms.ValidationError(_("The lesson must belong to the course."))
            )
        return cleaned

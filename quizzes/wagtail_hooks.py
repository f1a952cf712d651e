"""Trainers keep question banks and quizzes in the Wagtail admin. This module only registers: the
views are in quizzes.admin_views, the forms in quizzes.admin_forms."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.menu import MenuItem
from wagtail.admin.panels import FieldPanel, InlinePanel, ObjectList
from wagtail.admin.viewsets.model import ModelViewSetGroup

from members import access
from members.models import Role

from .admin_forms import QuestionForm, QuizForm
from .admin_views import CourseScopedModelViewSet
from .models import Question, Quiz


class QuestionViewSet(CourseScopedModelViewSet):
    model = Question
    icon = "help"
    menu_label = _("Question banks")
    list_display = ["text", "kind", "course"]
    list_filter = ["kind", "course"]
    search_fields = ["text"]
    ordering = ["course", "pk"]
    copy_view_enabled = False
    edit_handler = ObjectList(
        [
            FieldPanel("course"),
            FieldPanel("kind"),
            FieldPanel("text"),
            InlinePanel("choices", label=_("Options"), min_num=2, max_num=6),
            FieldPanel("explanation"),
        ],
        base_form_class=QuestionForm,
    )


class QuizViewSet(CourseScopedModelViewSet):
    model = Quiz
    icon = "tasks"
    menu_label = _("Quizzes")
    list_display = ["title", "course", "lesson", "question_count", "pass_mark", "max_attempts"]
    ordering = ["course", "pk"]
    copy_view_enabled = False
    edit_handler = ObjectList(
        [
            FieldPanel("title"),
            FieldPanel("course"),
            FieldPanel("lesson"),
            FieldPanel("question_count"),
            FieldPanel("pass_mark"),
            FieldPanel("max_attempts"),
        ],
        base_form_class=QuizForm,
    )


class QuizzesGroup(ModelViewSetGroup):
    menu_label = _("Quizzes")
    menu_icon = "tasks"
    menu_order = 250
    items = (QuestionViewSet("question_banks"), QuizViewSet("course_quizzes"))


@hooks.register("register_admin_viewset")
def register_viewset():
    return QuizzesGroup()


@hooks.register("register_admin_menu_item")
def register_import_menu_item():
    class ImportMenuItem(MenuItem):
        def is_shown(self, request):
            return access.has_role(request.user, (Role.TRAINER,))

    return ImportMenuItem(
        _("Import questions"), reverse("quizzes:import_upload"), icon_name="upload", order=260
    )

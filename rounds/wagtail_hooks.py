"""Trainers plan rounds and schedule group sessions in the Wagtail admin, within their scope."""

from django.urls import path
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.panels import FieldPanel, InlinePanel, ObjectList
from wagtail.admin.viewsets.model import ModelViewSet, ModelViewSetGroup

from members.admin_views import ScopedModelViewSet

from . import admin_views
from .admin_forms import RoundForm, SessionForm, StudyPlanForm
from .models import Round, Session, StudyPlan


class RoundViewSet(ModelViewSet):
    model = Round
    icon = "date"
    menu_label = _("Rounds")
    index_view_class = admin_views.RoundIndexView
    add_view_class = admin_views.RoundCreateView
    edit_view_class = admin_views.RoundEditView
    inspect_view_class = admin_views.RoundInspectView
    inspect_view_enabled = True
    inspect_view_fields = [*RoundForm.Meta.fields, "closed_at"]
    copy_view_enabled = False
    filterset_class = admin_views.RoundFilterSet
    ordering = ["-opens_on", "title"]

    def construct_view(self, view_class, **kwargs):
        scoped = type(view_class.__name__, (admin_views.RoundScopeMixin, view_class), {})
        return super().construct_view(scoped, **kwargs)

    def get_form_class(self, for_update=False):
        return RoundForm

    def get_urlpatterns(self):
        return [
            *super().get_urlpatterns(),
            path("plan/", admin_views.PlanYearView.as_view(), name="plan_year"),
            path("close/<int:pk>/", admin_views.RoundCloseView.as_view(), name="close"),
            path("scope/children/", admin_views.scope_children, name="scope_children"),
            path("scope/search/", admin_views.scope_search, name="scope_search"),
            path("scope/count/", admin_views.scope_count, name="scope_count"),
        ]


class SessionViewSet(ModelViewSet):
    model = Session
    icon = "group"
    menu_label = _("Group sessions")
    index_view_class = admin_views.SessionIndexView
    add_view_class = admin_views.SessionCreateView
    edit_view_class = admin_views.SessionEditView
    delete_view_class = admin_views.SessionDeleteView
    copy_view_enabled = False
    filterset_class = admin_views.SessionFilterSet
    ordering = ["-event__start"]

    def construct_view(self, view_class, **kwargs):
        scoped = type(view_class.__name__, (admin_views.SessionScopeMixin, view_class), {})
        return super().construct_view(scoped, **kwargs)

    def get_form_class(self, for_update=False):
        return SessionForm

    def get_urlpatterns(self):
        return [
            *super().get_urlpatterns(),
            path("live/<int:pk>/", admin_views.SessionLiveView.as_view(), name="live"),
        ]


class StudyPlanViewSet(ScopedModelViewSet):
    """Five-year plans, each set at an organisation of the trainer's subtree."""

    path_lookup = "organization__path"
    model = StudyPlan
    icon = "list-ul"
    menu_label = _("Five-year plans")
    list_display = ["title", "first_year", "organization"]
    ordering = ["-first_year", "title"]
    copy_view_enabled = False
    edit_handler = ObjectList(
        [
            FieldPanel("title"),
            FieldPanel("organization"),
            FieldPanel("first_year"),
            InlinePanel("targets", label=_("Targets"), min_num=1),
        ],
        # The organisation is named by code and checked against the trainer's subtree.
        base_form_class=StudyPlanForm,
    )


class RoundsGroup(ModelViewSetGroup):
    menu_label = _("Thematic rotation training")
    menu_icon = "date"
    menu_order = 300
    items = (
        RoundViewSet("training_rounds"),
        SessionViewSet("group_sessions"),
        StudyPlanViewSet("study_plans"),
    )


@hooks.register("register_admin_viewset")
def register_viewset():
    return RoundsGroup()

"""The trainers' admin views for rounds and group sessions, each object checked against scope.

A round shows to a trainer whose subtree its scope meets; it can be changed (or closed) only by
a trainer whose subtree holds its whole scope. A group session belongs to whoever is responsible
for its host site.
"""

from decimal import Decimal

import django_filters
from django.conf import settings
from django.contrib import messages
from django.db.models import Count
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.generic import FormView, TemplateView
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.ui.tables import Column, TitleColumn
from wagtail.admin.views import generic
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.views.generic.permissions import PermissionCheckedMixin
from wagtail.admin.widgets.button import Button, HeaderButton
from wagtail.log_actions import log

from core.audit import audit_event
from courses.services import live_end, live_expire, live_key_regenerate
from members import access
from members.models import Category, Member, Organization, Role, subtree_q

from . import services
from .admin_forms import (
    RECURRENCE_CHOICES,
    PlanYearForm,
    ScopeCountForm,
    can_plan_year,
    round_editable,
    rounds_visible,
    trainer_organizations,
    trainer_roots,
    until_of,
)
from .coverage import Figures, figures_of
from .models import KIND_PRESETS, Attendance, Participation, Round, Session
from .participation import participation_refresh
from .tasks import round_close_task

P = Participation.Status
RECURRENCE_LABELS = dict(RECURRENCE_CHOICES)


def round_figures(training_round, roots=None) -> Figures:
    """Members in scope and how many completed, within ``roots`` (``None``: the whole scope)."""
    members = training_round.members_in_scope()
    if roots is not None:
        members = members.filter(subtree_q(roots, "organization__path"))
    return figures_of(members, training_round)


def figures_text(figures: Figures) -> str:
    if figures.percent is None:
        return _("%(completed)s of %(counted)s") % {
            "completed": figures.completed,
            "counted": figures.counted,
        }
    return _("%(completed)s of %(counted)s (%(percent)s%%)") % {
        "completed": figures.completed,
        "counted": figures.counted,
        "percent": figures.percent,
    }


# --- Rounds -------------------------------------------------------------------------------------


def rounds_label():
    return capfirst(Round._meta.verbose_name_plural)


class RoundScopeMixin:
    """Any view naming a round: 404 unless the round's scope meets the trainer's subtree."""

    def get_object(self, *args, **kwargs):
        obj = super().get_object(*args, **kwargs)
        if not rounds_visible(self.request.user).filter(pk=obj.pk).exists():
            raise Http404
        return obj


class EditableRoundMixin:
    """Views that change a round: 404 unless the trainer's subtree holds the whole scope."""

    def get_object(self, *args, **kwargs):
        obj = super().get_object(*args, **kwargs)
        if not round_editable(self.request.user, obj):
            raise Http404
        return obj


class RoundFilterSet(WagtailFilterSet):
    state = django_filters.ChoiceFilter(label=gettext_lazy("State"), choices=Round.State.choices)
    kind = django_filters.ChoiceFilter(label=gettext_lazy("Kind"), choices=Round.Kind.choices)
    year = django_filters.ChoiceFilter(
        label=gettext_lazy("Year"),
        choices=lambda: [
            (d.year, str(d.year)) for d in Round.objects.dates("opens_on", "year", order="DESC")
        ],
        method="filter_year",
    )

    class Meta:
        model = Round
        fields = []

    def filter_year(self, queryset, name, value):
        return queryset.filter(opens_on__year=value)


class ScopeColumn(Column):
    def get_value(self, instance):
        return "、".join(f"{o.name}（{o.code}）" for o in instance.scope_roots.all())


class RoundIndexView(generic.IndexView):
    def get_base_queryset(self):
        visible = rounds_visible(self.request.user).values("pk")
        return (
            Round.objects.filter(pk__in=visible)
            .prefetch_related("scope_roots")
            .annotate(
                session_count=Count("sessions", distinct=True),
                lesson_count=Count("lessons", distinct=True),
            )
        )

    @cached_property
    def columns(self):
        title = self._get_title_column_class(TitleColumn)(
            "title",
            label=gettext_lazy("Title"),
            get_url=lambda obj: self.get_edit_url(obj) or self.get_inspect_url(obj),
            sort_key="title",
        )
        return [
            title,
            Column("kind", label=gettext_lazy("Kind"), accessor="get_kind_display"),
            Column("opens_on", label=gettext_lazy("Opens on"), sort_key="opens_on"),
            Column("closes_on", label=gettext_lazy("Closes on"), sort_key="closes_on"),
            Column("state", label=gettext_lazy("State"), accessor="get_state_display"),
            ScopeColumn("scope", label=gettext_lazy("Organisations in scope")),
            Column("lesson_count", label=gettext_lazy("Required lessons")),
            Column("session_count", label=gettext_lazy("Group sessions")),
            Column(
                "figures",
                label=gettext_lazy("Completed / in scope"),
                accessor=lambda obj: (
                    _("%(in_scope)s in scope") % {"in_scope": obj.admin_figures.in_scope}
                    if obj.state == Round.State.DRAFT
                    else figures_text(obj.admin_figures)
                ),
            ),
        ]

    def get_table(self, object_list):
        rows = list(object_list)
        roots = trainer_roots(self.request.user)
        for row in rows:
            row.admin_figures = round_figures(row, roots)
        return super().get_table(rows)

    def get_edit_url(self, instance):
        if instance.is_closed or not round_editable(self.request.user, instance):
            return None
        return super().get_edit_url(instance)

    def get_list_more_buttons(self, instance):
        buttons = super().get_list_more_buttons(instance)
        buttons.append(
            Button(
                _("Group sessions"),
                url=reverse("group_sessions:index") + f"?round={instance.pk}",
                icon_name="date",
                priority=40,
            )
        )
        if not instance.is_closed:
            buttons.append(
                Button(
                    _("Add group session"),
                    url=reverse("group_sessions:add") + f"?round={instance.pk}",
                    icon_name="plus",
                    priority=41,
                )
            )
        if (
            instance.state == Round.State.PUBLISHED
            and self.user_has_permission("change")
            and round_editable(self.request.user, instance)
        ):
            buttons.append(
                Button(
                    _("Close round"),
                    url=reverse("training_rounds:close", args=[instance.pk]),
                    icon_name="lock",
                    priority=50,
                )
            )
        return buttons

    @cached_property
    def header_more_buttons(self):
        """One "new training" per kind, each starting with its usual scope."""
        buttons = list(super().header_more_buttons)
        if self.user_has_permission("add"):
            for priority, (kind, label) in enumerate(Round.Kind.choices, start=10):
                buttons.append(
                    Button(
                        _("New: %(kind)s") % {"kind": label},
                        url=f"{reverse('training_rounds:add')}?kind={kind}",
                        icon_name="plus",
                        priority=priority,
                    )
                )
        return buttons

    @cached_property
    def header_buttons(self):
        buttons = super().header_buttons
        if self.user_has_permission("add") and can_plan_year(self.request.user):
            buttons.append(
                HeaderButton(
                    _("Plan the year"),
                    url=reverse("training_rounds:plan_year"),
                    icon_name="date",
                )
            )
        return buttons


def published_message(training_round) -> str:
    """After saving a published training: how many people it covers, in words."""
    if training_round.state != Round.State.PUBLISHED:
        return ""
    count = training_round.members_in_scope().count()
    return ngettext(
        "“%(title)s” is published: it covers %(count)s person.",
        "“%(title)s” is published: it covers %(count)s people.",
        count,
    ) % {"title": training_round.title, "count": f"{count:,}"}


class RoundCreateView(generic.CreateView):
    def get_initial_form_instance(self):
        """``?kind=`` starts a training of that kind with its usual scope (KIND_PRESETS)."""
        kind = self.request.GET.get("kind")
        if kind in Round.Kind.values:
            return Round(kind=kind, **KIND_PRESETS[kind])
        return None

    def get_success_message(self, instance):
        return published_message(instance) or super().get_success_message(instance)

    def save_instance(self):
        self.form.instance.created_by = self.request.user
        training_round = super().save_instance()
        services.round_calendar(training_round)
        if training_round.state == Round.State.PUBLISHED:
            participation_refresh(training_round=training_round)
        return training_round


class RoundEditView(EditableRoundMixin, generic.EditView):
    def get_object(self, *args, **kwargs):
        obj = super().get_object(*args, **kwargs)
        self.was_published = obj.state == Round.State.PUBLISHED
        return obj

    def _refuse_closed(self):
        messages.error(self.request, _("This round is closed: its figures are frozen."))
        return redirect("training_rounds:inspect", self.object.pk)

    def get(self, request, *args, **kwargs):
        self.object = self.get_object()
        if self.object.is_closed:
            return self._refuse_closed()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        if self.object.is_closed:
            return self._refuse_closed()
        return super().post(request, *args, **kwargs)

    def get_success_message(self):
        return published_message(self.object) or super().get_success_message()

    def save_instance(self):
        training_round = super().save_instance()
        calendar = services.round_calendar(training_round)
        if "title" in self.form.changed_data and calendar.name != training_round.title[:200]:
            calendar.name = training_round.title[:200]
            calendar.save(update_fields=["name"])
        if self.form.status_changed(self.was_published):
            participation_refresh(training_round=training_round)
        return training_round

    @cached_property
    def header_more_buttons(self):
        buttons = super().header_more_buttons
        if self.object.state == Round.State.PUBLISHED:
            buttons.append(
                Button(
                    _("Close round"),
                    url=reverse("training_rounds:close", args=[self.object.pk]),
                    icon_name="lock",
                    priority=40,
                )
            )
        return buttons


class RoundInspectView(generic.InspectView):
    def get_edit_url(self):
        if self.object.is_closed or not round_editable(self.request.user, self.object):
            return None
        return super().get_edit_url()

    def _labels(self, values, enum):
        labels = dict(enum.choices)
        return "、".join(str(labels.get(v, v)) for v in values) or _("All")

    def get_statuses_display_value(self):
        if not self.object.statuses:
            return _("Party members (正式党员 and 预备党员)")
        return self._labels(self.object.statuses, Member.Status)

    def get_domains_display_value(self):
        return self._labels(self.object.domains, Organization.Domain)

    def get_categories_display_value(self):
        return self._labels(self.object.categories, Category)

    def get_new_in_position_months_display_value(self):
        months = self.object.new_in_position_months
        if not months:
            return _("However long")
        return ngettext(
            "Took up the position at most %(n)d month before the round opens",
            "Took up the position at most %(n)d months before the round opens",
            months,
        ) % {"n": months}

    def get_positions_display_value(self):
        return self._labels(self.object.positions, Member.Position)

    def get_scope_roots_display_value(self):
        return "、".join(f"{o.name}（{o.code}）" for o in self.object.scope_roots.all())

    def get_lessons_display_value(self):
        return "、".join(lesson.title for lesson in self.object.lessons.order_by("path")) or "-"


class RoundCloseView(PermissionCheckedMixin, WagtailAdminTemplateMixin, TemplateView):
    """Close a published round after a confirmation page: figures are frozen for reporting."""

    model = Round
    permission_required = "change"
    template_name = "rounds/admin/close_round.html"
    page_title = gettext_lazy("Close round")
    header_icon = "lock"

    def get_object(self):
        user = self.request.user
        training_round = rounds_visible(user).filter(pk=self.kwargs["pk"]).first()
        if training_round is None or not round_editable(user, training_round):
            raise Http404
        return training_round

    def refuse_unless_published(self):
        if self.object.state != Round.State.PUBLISHED:
            messages.error(self.request, _("Only a published round can be closed."))
            return redirect("training_rounds:index")
        return None

    def get(self, request, *args, **kwargs):
        self.object = self.get_object()
        return self.refuse_unless_published() or super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        refused = self.refuse_unless_published()
        if refused:
            return refused
        # A city's round takes a while to freeze: the worker does it, never the request.
        round_close_task.enqueue(self.object.pk, request.user.pk)
        audit_event(event="round_close_requested", obj=self.object, request=request)
        training_round = Round.objects.get(pk=self.object.pk)
        if training_round.state != Round.State.CLOSED:
            messages.info(
                request,
                _(
                    "“%(round)s” is being closed in the background; its figures will be "
                    "frozen within a few minutes."
                )
                % {"round": training_round.title},
            )
            return redirect("training_rounds:index")
        figures = round_figures(training_round)
        messages.success(
            request,
            _(
                "“%(round)s” is closed. Completed: %(figures)s. The figures of "
                "%(nodes)s organisations are frozen for reporting."
            )
            % {
                "round": training_round.title,
                "figures": figures_text(figures),
                "nodes": training_round.snapshots.count(),
            },
        )
        return redirect("training_rounds:index")

    def get_page_subtitle(self):
        return self.object.title

    def get_breadcrumbs_items(self):
        return [
            *self.breadcrumbs_items,
            {"url": reverse("training_rounds:index"), "label": rounds_label()},
            {"url": "", "label": _("Close round"), "sublabel": self.object.title},
        ]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["object"] = self.object
        context["figures"] = round_figures(self.object)
        context["today"] = timezone.localdate()
        return context


class PlanYearView(PermissionCheckedMixin, WagtailAdminTemplateMixin, FormView):
    """The year's four rounds from one quarterly event in the plan calendar."""

    model = Round
    permission_required = "add"
    form_class = PlanYearForm
    template_name = "wagtailadmin/generic/form.html"
    page_title = gettext_lazy("Plan the year")
    header_icon = "date"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not can_plan_year(request.user):
            raise Http404
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}

    def get_breadcrumbs_items(self):
        return [
            *self.breadcrumbs_items,
            {"url": reverse("training_rounds:index"), "label": rounds_label()},
            {"url": "", "label": _("Plan the year")},
        ]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["action_url"] = reverse("training_rounds:plan_year")
        context["submit_button_label"] = _("Plan the rounds")
        context["submit_button_active_label"] = _("Planning…")
        context["media"] = context["form"].media
        return context

    def form_valid(self, form):
        year = form.cleaned_data["year"]
        planned_before = set(
            Round.objects.filter(plan_event__isnull=False, opens_on__year=year).values_list(
                "pk", flat=True
            )
        )
        rounds = services.round_plan_year(
            year=year,
            title=form.cleaned_data["title"],
            roots=form.cleaned_data["scope_roots"],
            user=self.request.user,
        )
        created = [r for r in rounds if r.pk not in planned_before]
        if created:
            messages.success(
                self.request,
                _("Draft rounds planned for %(year)s: %(titles)s.")
                % {
                    "year": year,
                    "titles": "、".join(r.title for r in created),
                },
            )
        else:
            messages.info(
                self.request,
                _("The rounds of %(year)s were already planned; nothing new was created.")
                % {"year": year},
            )
        return redirect(reverse("training_rounds:index") + f"?year={year}")


# --- Sessions -----------------------------------------------------------------------------------


class SessionScopeMixin:
    """Any view naming a session: 404 unless its host site lies in the trainer's subtree."""

    def get_object(self, *args, **kwargs):
        obj = super().get_object(*args, **kwargs)
        roots = trainer_roots(self.request.user)
        if roots is not None and not any(root.contains(obj.host) for root in roots):
            raise Http404
        return obj


def sessions_visible(user):
    roots = trainer_roots(user)
    sessions = Session.objects.all()
    if roots is not None:
        sessions = sessions.filter(subtree_q(roots, "host__path"))
    return sessions


class SessionFilterSet(WagtailFilterSet):
    round = django_filters.ModelChoiceFilter(
        label=gettext_lazy("Training round"),
        queryset=lambda request: (
            rounds_visible(request.user) if request is not None else Round.objects.none()
        ),
    )

    class Meta:
        model = Session
        fields = []


def recurrence_text(session) -> str:
    event = session.event
    kind = services.recurrence_kind(event.rule)
    if not kind:
        return str(RECURRENCE_LABELS[""])
    until = until_of(event)
    if until is None:
        return str(RECURRENCE_LABELS[kind])
    return _("%(repeats)s until %(until)s") % {
        "repeats": RECURRENCE_LABELS[kind],
        "until": date_format(until, "SHORT_DATE_FORMAT"),
    }


class SessionIndexView(generic.IndexView):
    def get_base_queryset(self):
        return sessions_visible(self.request.user).select_related(
            "event", "event__rule", "round", "host", "live_stream"
        )

    def get_list_more_buttons(self, instance):
        buttons = super().get_list_more_buttons(instance)
        if instance.live_stream_id:
            buttons.append(
                Button(
                    _("Live lecture: %(status)s") % {"status": instance.live_stream.status_text},
                    url=reverse("group_sessions:live", args=[instance.pk]),
                    icon_name="media",
                    priority=5,
                )
            )
        return buttons

    @cached_property
    def columns(self):
        title = self._get_title_column_class(TitleColumn)(
            "title",
            label=gettext_lazy("Title"),
            get_url=lambda obj: self.get_edit_url(obj),
            sort_key="event__title",
        )
        return [
            title,
            Column(
                "round",
                label=gettext_lazy("Training round"),
                accessor=lambda obj: obj.round or _("Group study outside a training"),
            ),
            Column(
                "host",
                label=gettext_lazy("Host site"),
                accessor=lambda obj: f"{obj.host.name}（{obj.host.code}）",
            ),
            Column(
                "start",
                label=gettext_lazy("Starts"),
                accessor=lambda obj: date_format(
                    timezone.localtime(obj.event.start), "SHORT_DATETIME_FORMAT"
                ),
                sort_key="event__start",
            ),
            Column("recurrence", label=gettext_lazy("Repeats"), accessor=recurrence_text),
            Column("hours", label=gettext_lazy("Study hours")),
        ]

    def get_edit_url(self, instance):
        if instance.round_id and instance.round.is_closed:
            return None
        return super().get_edit_url(instance)

    def get_delete_url(self, instance):
        if instance.round_id and instance.round.is_closed:
            return None
        return super().get_delete_url(instance)


class SessionFormMixin:
    def refuse_if_closed(self):
        if self.object.round_id and self.object.round.is_closed:
            messages.error(
                self.request, _("The round of this session is closed: it cannot change.")
            )
            return redirect("group_sessions:index")
        return None

    def save_session(self, session=None):
        data = self.form.cleaned_data
        return services.session_save(
            training_round=session.round if session else data["round"],
            title=data["title"],
            host=data["host"],
            start=data["start"],
            end=data["end"],
            lessons=data["lessons"],
            hours=data["hours"],
            location=data["location"],
            recurrence=data["recurrence"],
            until=data["until"],
            description=data["description"],
            live=data["live"],
            user=self.request.user,
            session=session,
        )


class SessionCreateView(SessionFormMixin, generic.CreateView):
    def get_initial(self):
        initial = super().get_initial()
        wanted = self.request.GET.get("round") or ""
        rounds = rounds_visible(self.request.user).exclude(state=Round.State.CLOSED)
        training_round = rounds.filter(pk=wanted).first() if wanted.isdigit() else None
        if training_round is not None:
            initial["round"] = training_round.pk
            lessons = list(training_round.lessons.select_related("video"))
            initial["lessons"] = lessons
            initial["hours"] = sum((lesson.hours for lesson in lessons), Decimal("0"))
        return initial

    def save_instance(self):
        session = self.save_session()
        log(instance=session, action="wagtail.create", user=self.request.user)
        return session


class SessionEditView(SessionFormMixin, generic.EditView):
    def get(self, request, *args, **kwargs):
        self.object = self.get_object()
        return self.refuse_if_closed() or super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        return self.refuse_if_closed() or super().post(request, *args, **kwargs)

    def save_instance(self):
        session = self.save_session(self.object)
        log(instance=session, action="wagtail.edit", user=self.request.user)
        training_round = session.round
        if (
            training_round is not None
            and "lessons" in self.form.changed_data
            and training_round.state == Round.State.PUBLISHED
        ):
            attendees = set(
                Attendance.objects.filter(sitting__session=session).values_list(
                    "member_id", flat=True
                )
            )
            if attendees:
                participation_refresh(training_round=training_round, member_ids=sorted(attendees))
        return session


class SessionDeleteView(SessionFormMixin, generic.DeleteView):
    @cached_property
    def has_attendance(self):
        return Attendance.objects.filter(sitting__session=self.object).exists()

    @property
    def confirmation_message(self):
        if self.has_attendance:
            return _(
                "Attendance has been recorded at this session, so it cannot be deleted. "
                "Change its date instead, or leave it as it is."
            )
        return _("Are you sure you want to delete this group session? Its calendar entry goes too.")

    def get(self, request, *args, **kwargs):
        return self.refuse_if_closed() or super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        refused = self.refuse_if_closed()
        if refused:
            return refused
        if self.has_attendance:
            messages.error(request, self.confirmation_message)
            return redirect("group_sessions:index")
        return super().post(request, *args, **kwargs)

    def delete_action(self):
        event = self.object.event
        super().delete_action()
        event.delete()


# --- The scope picker's questions (admin-scope-picker.js) ----------------------------------------

SEARCH_LIMIT = 20


def _node_json(organization, trail=""):
    detail = organization.get_kind_display()
    if trail:
        detail = f"{trail} · {detail}"
    return {
        "id": organization.pk,
        "code": organization.code,
        "name": organization.name,
        "detail": detail,
        "has_children": organization.numchild > 0,
        "open_label": _("Show the organisations under %(name)s") % {"name": organization.name},
    }


@access.role_required(Role.TRAINER)
def scope_children(request):
    """The children of ``?parent=`` (in the trainer's subtree), or the trainer's own nodes."""
    parent_id = request.GET.get("parent")
    if parent_id:
        parent = access.get_organization_or_404(request.user, parent_id, (Role.TRAINER,))
        nodes = parent.get_children().order_by("path")
    else:
        roots = trainer_roots(request.user)
        nodes = (
            Organization.get_root_nodes() if roots is None else sorted(roots, key=lambda o: o.path)
        )
    return JsonResponse({"nodes": [_node_json(o) for o in nodes]})


@access.role_required(Role.TRAINER)
def scope_search(request):
    """Organisations in the trainer's subtree whose name contains ``?q=``, in tree order, each
    with the name of the node above it (so two 第一党支部 can be told apart)."""
    text = request.GET.get("q", "").strip()[:40]
    nodes = []
    if text:
        found = list(
            trainer_organizations(request.user)
            .filter(name__contains=text)
            .order_by("path")[:SEARCH_LIMIT]
        )
        parent_paths = {o.path[: -o.steplen] for o in found if o.depth > 1}
        parents = dict(
            Organization.objects.filter(path__in=parent_paths).values_list("path", "name")
        )
        nodes = [_node_json(o, parents.get(o.path[: -o.steplen], "")) for o in found]
    return JsonResponse({"nodes": nodes, "none": _("No organisation of that name in your scope.")})


@access.role_required(Role.TRAINER)
def scope_count(request):
    """How many people the form's scope covers now: the chosen organisations with every
    criterion ticked, as publishing would count them. Never saves anything."""
    form = ScopeCountForm(request.GET, user=request.user)
    if not form.is_valid():
        return JsonResponse({"count": None, "text": form.error_text()})
    if not form.cleaned_data["scope_roots"]:
        return JsonResponse({"count": 0, "text": _("No organisation chosen: nobody is in scope.")})
    count = form.members().count()
    text = ngettext(
        "This scope covers %(count)s person now.",
        "This scope covers %(count)s people now.",
        count,
    ) % {"count": f"{count:,}"}
    return JsonResponse({"count": count, "text": text})


# --- Live lectures ------------------------------------------------------------------------------


class SessionLiveView(PermissionCheckedMixin, WagtailAdminTemplateMixin, TemplateView):
    """A live lecture's page for the trainer: its state in words, where the hall pushes to
    (server URL and stream key, with the OBS settings), a new key, and "end the lecture"."""

    model = Session
    permission_required = "change"
    template_name = "rounds/admin/session_live.html"
    page_title = gettext_lazy("Live lecture")
    header_icon = "media"

    def get_object(self):
        session = (
            sessions_visible(self.request.user)
            .select_related("event", "live_stream", "live_stream__lesson", "round")
            .filter(pk=self.kwargs["pk"])
            .first()
        )
        if session is None:
            raise Http404
        return session

    def get(self, request, *args, **kwargs):
        self.object = self.get_object()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        stream = self.object.live_stream
        if stream is None:
            return redirect("group_sessions:live", self.object.pk)
        action = request.POST.get("action")
        if action == "new_key":
            if stream.state in stream.ENDED:
                messages.error(request, _("The lecture has ended: its key is no longer used."))
            else:
                live_key_regenerate(stream=stream, user=request.user)
                messages.success(
                    request,
                    _("A new stream key is ready. Put it into OBS; the old key no longer works."),
                )
        elif action == "end":
            live_end(stream=stream, user=request.user)
            messages.success(
                request,
                _(
                    "The live lecture has ended. Its recording is being processed and will "
                    "become the lesson's video."
                ),
            )
        return redirect("group_sessions:live", self.object.pk)

    def get_page_subtitle(self):
        return self.object.title

    def get_breadcrumbs_items(self):
        return [
            *self.breadcrumbs_items,
            {"url": reverse("group_sessions:index"), "label": _("Group sessions")},
            {"url": "", "label": _("Live lecture"), "sublabel": self.object.title},
        ]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        stream = self.object.live_stream
        if stream is not None:
            stream = live_expire(stream_id=stream.pk)
        context.update(
            {
                "object": self.object,
                "stream": stream,
                "rtmp_url": settings.LUNXUN_LIVE_RTMP_URL,
                "pushed_minutes": int(stream.pushed_seconds() // 60) if stream else 0,
            }
        )
        return context

"""Forms for the trainers' Wagtail admin: rounds, the year's plan and group sessions.

Organisations are named by code (a city has ~16,000 nodes: no select could list them) and are
checked against the trainer's own subtree; lessons are picked from the live lesson pages.
"""

import re
from datetime import timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.widgets import AdminDateInput, AdminDateTimeInput

from courses.models import CoursePage, LessonPage
from members import access
from members.admin_forms import OrganizationCodeField
from members.models import Category, Member, Organization, Role

from .models import Participation, Round, Session
from .services import recurrence_kind

CODE_SEPARATORS = re.compile(r"[\s,;，；、]+")


# --- Scope helpers ------------------------------------------------------------------------------


def trainer_roots(user):
    """The nodes at which ``user`` is a trainer; ``None`` means everything (superuser)."""
    return access.role_roots(user, (Role.TRAINER,))


def trainer_organizations(user):
    return access.visible_organizations(user, (Role.TRAINER,))


def rounds_visible(user):
    """Rounds whose scope meets the trainer's subtree (a city round shows to a county trainer)."""
    return Round.objects.visible_to_roots(trainer_roots(user))


def round_editable(user, training_round) -> bool:
    """A trainer changes a round only when every node of its scope lies in their subtree."""
    roots = trainer_roots(user)
    if roots is None:
        return True
    scope = list(training_round.scope_roots.all())
    return bool(scope) and all(any(root.contains(node) for root in roots) for node in scope)


def can_plan_year(user) -> bool:
    """The year's plan is one per city: only a trainer at the top of the tree draws it up."""
    roots = trainer_roots(user)
    return roots is None or any(root.depth == 1 for root in roots)


# --- Fields -------------------------------------------------------------------------------------


class OrganizationCodesField(forms.CharField):
    """Several organisations by code, separated by commas, spaces or new lines."""

    widget = forms.Textarea(attrs={"rows": 3, "placeholder": _("e.g. A, B-01")})

    def __init__(self, *, queryset=None, **kwargs):
        self.queryset = queryset if queryset is not None else Organization.objects.none()
        kwargs.setdefault(
            "help_text",
            _("Organisation codes, separated by commas, spaces or new lines."),
        )
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)) or hasattr(value, "model"):
            codes = []
            for item in value:
                if isinstance(item, Organization):
                    codes.append(item.code)
                else:
                    code = Organization.objects.filter(pk=item).values_list("code", flat=True)
                    codes.extend(code)
            return ", ".join(codes)
        return value

    @staticmethod
    def split(text) -> list[str]:
        codes = []
        for code in CODE_SEPARATORS.split((text or "").strip()):
            if code and code not in codes:
                codes.append(code)
        return codes

    def has_changed(self, initial, data):
        before = {c.upper() for c in self.split(self.prepare_value(initial or []))}
        return before != {c.upper() for c in self.split(data)}

    def clean(self, value):
        codes = self.split(super().clean(value))
        if not codes:
            if self.required:
                raise ValidationError(self.error_messages["required"], code="required")
            return []
        found = {o.code: o for o in self.queryset.filter(code__in=codes)}
        missing = [c for c in codes if c not in found]
        if missing:  # codes are stored upper-case; people type them as they like
            for organization in self.queryset.filter(code__in=[c.upper() for c in missing]):
                found[organization.code] = organization
        organizations, unknown = [], []
        for code in codes:
            organization = found.get(code) or found.get(code.upper())
            if organization is None:
                unknown.append(code)
            elif organization not in organizations:
                organizations.append(organization)
        if unknown:
            raise ValidationError(
                _("Unknown organisation code, or outside your responsibility: %(codes)s"),
                code="invalid_choice",
                params={"codes": ", ".join(unknown)},
            )
        return organizations


class ScopeTreeWidget(forms.Textarea):
    """The scope chosen on the organisation tree, never by typing codes.

    The value travels as the codes the field checks (a hidden textarea); the page shows the
    trainer's subtree to open node by node (children are fetched as they are opened: a city has
    ~16,000 nodes), a search by name, the chosen organisations as removable chips, and how many
    people the scope covers with every criterion of the form (admin-scope-picker.js)."""

    template_name = "rounds/widgets/scope_tree.html"

    class Media:
        js = ["js/admin-scope-picker.js"]
        css = {"all": ["css/admin-scope.css"]}

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        codes = OrganizationCodesField.split(context["widget"]["value"])
        names = dict(Organization.objects.filter(code__in=codes).values_list("code", "name"))
        context["selected"] = [{"code": c, "name": names.get(c, c)} for c in codes]
        # The form fields whose change alters the count (the JS asks again on those).
        context["criteria"] = " ".join((*SCOPE_CRITERIA, "opens_on", "closes_on"))
        context["urls"] = {
            name: reverse(f"training_rounds:scope_{name}")
            for name in ("children", "search", "count")
        }
        return context


class LessonsField(forms.ModelMultipleChoiceField):
    """Lesson pages as checkboxes, each labelled with its course."""

    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        super().__init__(queryset=LessonPage.objects.none(), **kwargs)
        self._courses = {}

    def set_lessons(self, current=()):
        """Offer the live lessons, and any lesson already chosen even if since unpublished."""
        current_ids = [lesson.pk for lesson in current]
        live = LessonPage.objects.live().values_list("pk", flat=True)
        self.queryset = LessonPage.objects.filter(pk__in=[*live, *current_ids]).order_by("path")
        self._courses = dict(CoursePage.objects.values_list("path", "title"))

    def label_from_instance(self, obj):
        course = self._courses.get(obj.path[: -LessonPage.steplen])
        return f"{course} · {obj.title}" if course else obj.title


def _choices_of(enum):
    return [(value, label) for value, label in enum.choices]


ALL_WHEN_NONE_TICKED = _("None ticked means all.")


def _ticks(label, enum, help_text=ALL_WHEN_NONE_TICKED):
    """A scope criterion: tick any of ``enum``'s values."""
    return forms.MultipleChoiceField(
        label=label,
        choices=_choices_of(enum),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=help_text,
    )


# --- Rounds -------------------------------------------------------------------------------------


class RoundFormExtension:
    """A field an app above rounds adds to the round form (rounds import nothing from them):
    certificates adds the certificate template. Registered in the app's ready()."""

    def contribute(self, form):
        """Add the field(s) to ``form.fields``, with their initial values."""

    def clean(self, form, data):
        """Check them against the rest of the cleaned ``data``; ``form.add_error`` refuses."""

    def save(self, form, training_round):
        """Store them, once ``training_round`` is saved."""


round_form_extensions: list[RoundFormExtension] = []


# Who a training counts, beside the organisations in scope (Round's scope fields).
SCOPE_CRITERIA = ("statuses", "positions", "new_in_position_months", "domains", "categories")


class RoundForm(WagtailAdminModelForm):
    scope_roots = OrganizationCodesField(
        label=_("Organisations in scope"),
        widget=ScopeTreeWidget,
        help_text=_(
            "Tick organisations on the tree (or find them by name): everyone in them and in "
            "their subordinates who meets the criteria below takes part."
        ),
    )
    statuses = _ticks(
        _("Membership statuses in scope"),
        Member.Status,
        _(
            "None ticked means every Party member (正式党员 and 预备党员). Activists and "
            "candidates for admission take part only in a training that ticks them."
        ),
    )
    positions = _ticks(_("Positions in scope"), Member.Position)
    domains = _ticks(
        _("Organisation domains in scope"),
        Organization.Domain,
        _("Members of organisations in these domains; none ticked means all."),
    )
    categories = _ticks(
        _("Member categories in scope"),
        Category,
        _("Members in any of these categories; none ticked means everybody."),
    )
    lessons = LessonsField(label=_("Required lessons"), required=False)
    state = forms.ChoiceField(
        label=_("State"),
        choices=[
            (Round.State.DRAFT, Round.State.DRAFT.label),
            (Round.State.PUBLISHED, Round.State.PUBLISHED.label),
        ],
        help_text=_(
            "Members see a round once it is published. A round is closed with the Close action."
        ),
    )

    class Meta:
        model = Round
        fields = [
            "title",
            "kind",
            "theme",
            "opens_on",
            "closes_on",
            "makeup_deadline",
            "scope_roots",
            *SCOPE_CRITERIA,
            "lessons",
            "completion_rule",
            "quiz_required",
            "hours",
            "state",
        ]
        widgets = {"theme": forms.Textarea(attrs={"rows": 3})}

    # Changes after which everybody's status in a published round is recomputed.
    STATUS_FIELDS = {"lessons", "completion_rule", "quiz_required", "scope_roots", *SCOPE_CRITERIA}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = self.for_user
        self.fields["kind"].required = False
        self.fields["scope_roots"].queryset = trainer_organizations(user)
        current = list(self.instance.lessons.all()) if self.instance.pk else []
        self.fields["lessons"].set_lessons(current)
        if not self.instance.pk and not self.is_bound and not self.initial.get("scope_roots"):
            roots = trainer_roots(user)
            if roots:
                self.initial["scope_roots"] = roots
        for extension in round_form_extensions:
            extension.contribute(self)

    def _save_m2m(self):
        super()._save_m2m()
        for extension in round_form_extensions:
            extension.save(self, self.instance)

    def clean_title(self):
        return self.cleaned_data["title"].strip()

    def clean_kind(self):
        # Left out (an older form, a script): the quarterly rotation, as before kinds existed.
        return self.cleaned_data.get("kind") or Round.Kind.QUARTERLY

    def clean_state(self):
        state = self.cleaned_data["state"]
        if (
            state == Round.State.DRAFT
            and self.instance.pk
            and Participation.objects.filter(round=self.instance).exists()
        ):
            raise ValidationError(
                _("Members have already taken part in this round: it cannot go back to draft.")
            )
        return state

    def clean(self):
        data = super().clean()
        if (
            data.get("state") == Round.State.PUBLISHED
            and data.get("completion_rule") == Round.Rule.ONLINE
            and "lessons" in data
            and not data["lessons"]
        ):
            self.add_error(
                "lessons",
                _("A round completed online needs at least one required lesson."),
            )
        if data.get("state") == Round.State.PUBLISHED and data.get("completion_rule") in (
            Round.Rule.ONLINE,
            Round.Rule.EITHER,
        ):
            # Online completion (and every make-up after leave) needs each lesson completable.
            dead_ends = [
                lesson.title
                for lesson in LessonPage.objects.filter(
                    pk__in=[lesson.pk for lesson in data.get("lessons") or []]
                ).select_related("video")
                if not lesson.completable_online
            ]
            if dead_ends:
                self.add_error(
                    "lessons",
                    _(
                        "No member could complete these lessons online: %(titles)s. Give each "
                        "a video, or a reading time if it is a text to read, or choose lessons "
                        "that have one."
                    )
                    % {"titles": "、".join(dead_ends)},
                )
        for extension in round_form_extensions:
            extension.clean(self, data)
        return data

    def status_changed(self, was_published: bool) -> bool:
        """True when members' statuses need recomputing after this save."""
        if self.cleaned_data["state"] != Round.State.PUBLISHED:
            return False
        if not was_published:
            return True
        return bool(self.STATUS_FIELDS.intersection(self.changed_data)) or (
            "opens_on" in self.changed_data
        )


class ScopeCountForm(forms.Form):
    """The scope fields of the training form, read to count who they cover before saving."""

    scope_roots = OrganizationCodesField(required=False)
    statuses = _ticks("", Member.Status)
    positions = _ticks("", Member.Position)
    domains = _ticks("", Organization.Domain)
    categories = _ticks("", Category)
    new_in_position_months = forms.IntegerField(required=False, min_value=1, max_value=600)
    opens_on = forms.DateField(required=False)
    closes_on = forms.DateField(required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope_roots"].queryset = trainer_organizations(user)

    def error_text(self) -> str:
        return " ".join(str(e) for errors in self.errors.values() for e in errors)

    def members(self):
        data = self.cleaned_data
        probe = Round(
            statuses=data["statuses"],
            positions=data["positions"],
            domains=data["domains"],
            categories=data["categories"],
            new_in_position_months=data["new_in_position_months"],
            opens_on=data["opens_on"],
            closes_on=data["closes_on"] or data["opens_on"],
        )
        return probe.members_in_scope(roots=data["scope_roots"])


class PlanYearForm(forms.Form):
    year = forms.IntegerField(label=_("Year"), min_value=2000, max_value=2100)
    title = forms.CharField(
        label=_("Title"),
        max_length=100,
        initial=_("Thematic rotation training"),
        help_text=_("Each round is named after it: “2027 Q1: …”."),
    )
    scope_roots = OrganizationCodesField(label=_("Organisations in scope"), widget=ScopeTreeWidget)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope_roots"].queryset = trainer_organizations(user)
        if not self.is_bound:
            self.initial.setdefault("year", timezone.localdate().year + 1)
            roots = trainer_roots(user)
            if roots:
                self.initial.setdefault("scope_roots", roots)


# --- Sessions -----------------------------------------------------------------------------------


RECURRENCE_CHOICES = [
    ("", _("Once")),
    ("WEEKLY", _("Every week")),
    ("BIWEEKLY", _("Every two weeks")),
    ("MONTHLY", _("Every month")),
]


def until_of(event):
    """The last day a recurring event occurs on, as the form shows it."""
    if event.rule_id is None or event.end_recurring_period is None:
        return None
    return timezone.localtime(event.end_recurring_period - timedelta(seconds=1)).date()


class SessionForm(WagtailAdminModelForm):
    round = forms.ModelChoiceField(
        label=_("Training round"),
        queryset=Round.objects.none(),
        required=False,
        empty_label=_("None: group study outside a training (党课, 集中学习)"),
        help_text=_(
            "Group study outside a training is on the calendar of everyone at the site and "
            "below; those present get its study hours."
        ),
    )
    title = forms.CharField(label=_("Title"), max_length=255)
    host = OrganizationCodeField(
        label=_("Host site code"),
        help_text=_(
            "The remote-education site; members in scope there and in its subordinates attend."
        ),
    )
    start = forms.DateTimeField(label=_("Starts"), widget=AdminDateTimeInput)
    end = forms.DateTimeField(label=_("Ends"), widget=AdminDateTimeInput)
    recurrence = forms.ChoiceField(label=_("Repeats"), choices=RECURRENCE_CHOICES, required=False)
    until = forms.DateField(
        label=_("Repeats until"),
        widget=AdminDateInput,
        required=False,
        help_text=_("The last day the session is held; needed when it repeats."),
    )
    lessons = LessonsField(
        label=_("Lessons shown"),
        required=False,
        help_text=_("Members who attend get these lessons counted in the round."),
    )
    description = forms.CharField(
        label=_("Description"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    live = forms.BooleanField(
        label=_("Live lecture from the main hall (直播课堂)"),
        required=False,
        help_text=_(
            "The lecture is streamed live to every site and to members' phones, and counts as "
            "the first lesson shown; its recording becomes that lesson's video. After saving, "
            "the session's live page shows the stream key and the settings for the hall."
        ),
    )

    class Meta:
        model = Session
        fields = ["round", "host", "location", "lessons", "hours"]

    field_order = [
        "round",
        "title",
        "host",
        "location",
        "start",
        "end",
        "recurrence",
        "until",
        "lessons",
        "hours",
        "live",
        "description",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = self.for_user
        self.fields["host"].queryset = trainer_organizations(user)
        rounds = rounds_visible(user).exclude(state=Round.State.CLOSED)
        session = self.instance
        if session.pk:
            rounds = Round.objects.filter(pk=session.round_id)
            self.fields["round"].disabled = True
            self.fields["round"].help_text = _(
                "A session stays in the round it was created in (or outside any)."
            )
            event = session.event
            self.initial.update(
                {
                    "title": event.title,
                    "start": event.start,
                    "end": event.end,
                    "recurrence": recurrence_kind(event.rule),
                    "until": until_of(event),
                    "description": event.description,
                }
            )
        self.fields["round"].queryset = rounds
        self.fields["lessons"].set_lessons(list(session.lessons.all()) if session.pk else [])
        if session.pk and session.live_stream_id:
            self.initial["live"] = True
            self.fields["live"].disabled = True

    def clean_title(self):
        return self.cleaned_data["title"].strip()

    def clean_host(self):
        host = self.cleaned_data["host"]
        if not host.is_site:
            raise ValidationError(
                _("%(name)s (%(code)s) is not a remote-education site."),
                params={"name": host.name, "code": host.code},
            )
        return host

    def clean(self):
        data = super().clean()
        training_round = data.get("round")
        host = data.get("host")
        start, end = data.get("start"), data.get("end")
        recurrence, until = data.get("recurrence"), data.get("until")
        if start and end and end <= start:
            self.add_error("end", _("A session must end after it starts."))
        if data.get("live") and not data.get("lessons"):
            self.add_error(
                "lessons", _("Choose the lesson the live lecture counts as (the first one shown).")
            )
        if data.get("live") and recurrence:
            self.add_error("recurrence", _("A live lecture is given once: it does not repeat."))
        if recurrence and not until:
            self.add_error("until", _("Say until when the session repeats."))
        if not recurrence:
            data["until"] = None
        if training_round and start:
            day = timezone.localtime(start).date()
            if not training_round.opens_on <= day <= training_round.closes_on:
                self.add_error(
                    "start",
                    _("The round runs from %(opens)s to %(closes)s.")
                    % {"opens": training_round.opens_on, "closes": training_round.closes_on},
                )
            elif recurrence and until and not day <= until <= training_round.closes_on:
                self.add_error(
                    "until",
                    _("Pick a day between the first session and the round's end (%(closes)s).")
                    % {"closes": training_round.closes_on},
                )
        if training_round and host:
            scope = list(training_round.scope_roots.all())
            if not any(root.contains(host) or host.contains(root) for root in scope):
                self.add_error(
                    "host",
                    _("This site is outside the round's scope: none of its members take part."),
                )
        return data


class StudyPlanForm(WagtailAdminModelForm):
    """A five-year plan, set for an organisation in the trainer's subtree (named by code)."""

    organization = OrganizationCodeField(
        label=_("Set by (organisation code)"),
        help_text=_("The plan covers this organisation's whole subtree."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = trainer_organizations(self.for_user)
        if not self.instance.pk and not self.is_bound:
            roots = trainer_roots(self.for_user)
            if roots:
                self.initial.setdefault("organization", roots[0].code)
            self.initial.setdefault("first_year", timezone.localdate().year)

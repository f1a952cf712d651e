"""Training rounds (专题轮训) planned on django-scheduler, and what members did in them.

django-scheduler supplies the calendar machinery: the year's plan is a ``Calendar`` with a
quarterly recurring ``Event``; each occurrence becomes a ``Round``. A round's group sessions
(集中学习) are events in the round's own calendar, possibly recurring; one occurrence of a
session that somebody attends is a ``Sitting``, the unit of check-in and roll call.

``Participation`` holds each member's derived status in a round. It is recomputed from the
sources (lesson progress, attendance, leave, exemption) whenever one of them changes, so
coverage for a whole city is one GROUP BY over members and these rows.
"""

import calendar as calendar_module
import secrets
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalKey
from modelcluster.models import ClusterableModel
from wagtail.admin.panels import FieldPanel
from wagtail.models import Orderable

from members.models import (
    Member,
    Organization,
    Posting,
    categories_q,
    path_prefix_q,
    subtree_q,
)


def _new_key():
    return secrets.token_urlsafe(32)


def _new_feed_token():
    return secrets.token_urlsafe(24)


def day_start(day):
    """The first moment of ``day`` in the deployment's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def day_end(day):
    return day_start(day + timedelta(days=1))


class RoundQuerySet(models.QuerySet):
    def visible_to_roots(self, roots):
        """Rounds whose scope meets the subtrees of ``roots`` (``None`` means everything)."""
        if roots is None:
            return self
        if not roots:
            return self.none()
        inside = subtree_q(roots, "scope_roots__path")
        above = Q()
        for root in roots:
            above |= Q(scope_roots__path__in=[a.path for a in root.ancestors_and_self()])
        return self.filter(inside | above).distinct()

    def published(self):
        return self.exclude(state=Round.State.DRAFT)

    def for_member(self, member):
        """Published rounds that ``member`` must take part in."""
        postings = list(member.postings.select_related("organization"))
        paths = set()
        for organization in (member.organization, *(p.organization for p in postings)):
            paths.update(organization.ancestor_paths())
        candidates = self.published().filter(scope_roots__path__in=paths).distinct()
        return [
            r
            for r in candidates.prefetch_related("scope_roots")
            if r.includes(member, postings=postings)
        ]


class Round(models.Model):
    """A training on the one engine: the quarterly thematic rotation (专题轮训), or another kind
    a trainer creates (书记专题培训, 新任书记培训, 党务工作者轮训, 发展对象培训, any named
    programme) — the same scope, required lessons, sessions, completion rule, 学时, coverage,
    reminders, close, snapshot and certificates."""

    class Kind(models.TextChoices):
        QUARTERLY = "quarterly", _("Quarterly thematic rotation (专题轮训)")
        SECRETARY = "secretary", _("Secretaries' thematic training (书记专题培训)")
        NEW_SECRETARY = "new_secretary", _("New secretaries' training (新任书记培训)")
        PARTY_WORKER = "party_worker", _("Party affairs workers' rotation (党务工作者轮训)")
        CANDIDATE = "candidate", _("Training of candidates for admission (发展对象培训)")
        PROGRAMME = "programme", _("Other named programme (其他培训项目)")

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        CLOSED = "closed", _("Closed")

    class Rule(models.TextChoices):
        EITHER = "either", _("Each required lesson online, or at a group session that showed it")
        ONLINE = "online", _("All required lessons completed online")
        SESSION = "session", _("Attended group sessions that showed every required lesson")

    title = models.CharField(_("title"), max_length=120)
    kind = models.CharField(
        _("kind of training"), max_length=20, choices=Kind.choices, default=Kind.QUARTERLY
    )
    theme = models.TextField(_("theme"), blank=True)
    plan_event = models.ForeignKey(
        "schedule.Event",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="planned_rounds",
        verbose_name=_("yearly plan"),
    )
    plan_start = models.DateTimeField(_("planned occurrence"), null=True, blank=True)
    calendar = models.OneToOneField(
        "schedule.Calendar",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="training_round",
        editable=False,
    )
    opens_on = models.DateField(_("opens on"))
    closes_on = models.DateField(_("closes on"))
    makeup_deadline = models.DateField(
        _("make-up deadline"),
        help_text=_("Members on leave complete the required lessons online by this date."),
    )
    scope_roots = models.ManyToManyField(
        Organization,
        related_name="training_rounds",
        verbose_name=_("organisations in scope"),
        help_text=_("Every member of these organisations and their subordinates takes part."),
    )
    statuses = models.JSONField(
        _("membership statuses in scope"),
        default=list,
        blank=True,
        help_text=_("Empty means all."),
    )
    positions = models.JSONField(
        _("positions in scope"), default=list, blank=True, help_text=_("Empty means all.")
    )
    new_in_position_months = models.PositiveSmallIntegerField(
        _("new in their position: within months"),
        null=True,
        blank=True,
        help_text=_(
            "Only those who took up their position at most this many months before the "
            "round opens (新任). Empty: however long."
        ),
    )
    domains = models.JSONField(
        _("organisation domains in scope"),
        default=list,
        blank=True,
        help_text=_("Empty means all."),
    )
    categories = models.JSONField(
        _("member categories in scope"),
        default=list,
        blank=True,
        help_text=_("Members having any of these; empty means everybody."),
    )
    lessons = models.ManyToManyField(
        "courses.LessonPage",
        related_name="training_rounds",
        verbose_name=_("required lessons"),
    )
    completion_rule = models.CharField(
        _("completion rule"), max_length=20, choices=Rule.choices, default=Rule.EITHER
    )
    quiz_required = models.BooleanField(
        _("tests must be passed too"),
        default=False,
        help_text=_(
            "Watched and passed: a required lesson with a test counts once its test is passed, "
            "and a course's own test must be passed as well."
        ),
    )
    hours = models.DecimalField(
        _("study hours credited"),
        max_digits=5,
        decimal_places=1,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Printed on the completion certificate."),
    )
    state = models.CharField(_("state"), max_length=20, choices=State.choices, default=State.DRAFT)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True, editable=False)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RoundQuerySet.as_manager()

    class Meta:
        verbose_name = _("training round")
        verbose_name_plural = _("training rounds")
        ordering = ["-opens_on", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan_event", "plan_start"],
                name="round_one_per_plan_occurrence",
                condition=Q(plan_event__isnull=False),
            )
        ]

    def __str__(self):
        return self.title

    def clean(self):
        if self.opens_on and self.closes_on and self.closes_on < self.opens_on:
            raise ValidationError({"closes_on": _("A round cannot close before it opens.")})
        if self.closes_on and self.makeup_deadline and self.makeup_deadline < self.closes_on:
            raise ValidationError(
                {"makeup_deadline": _("The make-up deadline cannot be before the round closes.")}
            )

    @property
    def year(self):
        return self.opens_on.year

    @property
    def quarter(self):
        return (self.opens_on.month - 1) // 3 + 1

    @property
    def opens_at(self):
        return day_start(self.opens_on)

    @property
    def is_closed(self):
        return self.state == self.State.CLOSED

    # --- Scope: who this round counts -----------------------------------------------------
    #
    # A person is in scope through a *place*: their own organisation (with their position
    # there), or a posting to another organisation (第一书记…, with the position they hold
    # there). Place criteria: the scope subtrees, the organisation's domain, the position and
    # how long it has been held. Person criteria: on the roster, status (Party members unless
    # the round names statuses; people in training to join only when it does) and categories.
    # Someone in scope through both places counts at their own organisation.

    def position_since_limit(self):
        """The earliest start of a position that makes someone "new" in it, or None."""
        if not self.new_in_position_months:
            return None
        return add_months(self.opens_on or timezone.localdate(), -self.new_in_position_months)

    def _person_q(self, prefix="") -> Q:
        statuses = self.statuses or list(Member.PARTY_STATUSES)
        return Q(**{f"{prefix}is_active": True, f"{prefix}status__in": statuses}) & categories_q(
            self.categories, prefix
        )

    def _place_q(self, roots, *, org, position, since) -> Q:
        """The place criteria on lookups ``org`` (an organisation), ``position`` and ``since``."""
        condition = subtree_q(roots, f"{org}__path")
        if self.domains:
            condition &= Q(**{f"{org}__domain__in": self.domains})
        if self.positions:
            condition &= Q(**{f"{position}__in": self.positions})
        limit = self.position_since_limit()
        if limit is not None:
            condition &= Q(**{f"{since}__gte": limit})
        return condition

    def _home_q(self, roots) -> Q:
        return self._place_q(roots, org="organization", position="position", since="position_since")

    def _roots(self, roots):
        """``roots`` as given (a form asking before the round is saved), else the saved scope."""
        return list(self.scope_roots.all()) if roots is None else list(roots)

    def postings_in_scope(self, roots=None):
        """Postings that place someone in this round's scope, under way while it runs."""
        roots = self._roots(roots)
        today = timezone.localdate()
        return Posting.objects.filter(
            Posting.overlapping_q(self.opens_on or today, self.closes_on or today),
            self._place_q(roots, org="organization", position="position", since="starts_on"),
            self._person_q("member__"),
        )

    def members_in_scope(self, roots=None):
        """Active people this round counts: at their own organisation or through a posting.
        ``roots``: count for these scope subtrees instead of the saved ones (an unsaved form)."""
        roots = self._roots(roots)
        if not roots:
            return Member.objects.none()
        condition = self._home_q(roots)
        postings = self.postings_in_scope(roots)
        # Only when there are any: an OR with a subquery would keep the planner off the
        # organisation-path index for every round.
        if postings.exists():
            condition |= Q(pk__in=postings.values("member_id"))
        return Member.objects.filter(self._person_q(), condition)

    def home_members_in_scope(self):
        """Those in scope at their own organisation (counted there)."""
        roots = list(self.scope_roots.all())
        if not roots:
            return Member.objects.none()
        return Member.objects.filter(self._person_q(), self._home_q(roots))

    def posted_members_in_scope(self, node=None):
        """{member id: organisation path} for those in scope only through a posting: they count
        at the organisation they are posted to (the first, by path, when there are several).
        ``node``: only those who count within its subtree."""
        roots = list(self.scope_roots.all())
        if not roots:
            return {}
        placed = {}
        # Not at home in scope, stated on the posting's own member row: a NOT IN over every
        # member at home in scope read the whole city's members for a city-wide round.
        at_home = self._place_q(
            roots,
            org="member__organization",
            position="member__position",
            since="member__position_since",
        )
        rows = (
            self.postings_in_scope(roots)
            .exclude(at_home)
            .values_list("member_id", "organization__path")
            .order_by("organization__path")
        )
        for member_id, path in rows:
            placed.setdefault(member_id, path)
        if node is not None:
            placed = {pk: path for pk, path in placed.items() if path.startswith(node.path)}
        return placed

    def members_at(self, node):
        """People in scope who count within ``node``'s subtree (at home, or posted there)."""
        at_home = self.home_members_in_scope().filter(
            path_prefix_q(node.path, "organization__path")
        )
        posted = list(self.posted_members_in_scope(node))
        if not posted:
            return at_home
        return Member.objects.filter(Q(pk__in=at_home.values("pk")) | Q(pk__in=posted))

    def includes(self, member, postings=None) -> bool:
        """Is ``member`` in scope? Decided in Python for their own organisation (load
        ``member.organization``; prefetch ``scope_roots`` for many rounds); their postings are
        read only when that fails, or taken from ``postings`` (their postings, any dates)."""
        statuses = self.statuses or Member.PARTY_STATUSES
        if not member.is_active or member.status not in statuses:
            return False
        if self.categories and not any(member.has_category(c) for c in self.categories):
            return False
        roots = list(self.scope_roots.all())
        if self._place_matches(roots, member.organization, member.position, member.position_since):
            return True
        if postings is None:
            postings = member.postings.select_related("organization")
        return any(
            p.starts_on <= self.closes_on
            and (p.ends_on is None or p.ends_on >= self.opens_on)
            and self._place_matches(roots, p.organization, p.position, p.starts_on)
            for p in postings
        )

    def _place_matches(self, roots, organization, position, since) -> bool:
        if not any(root.contains(organization) for root in roots):
            return False
        if self.domains and organization.domain not in self.domains:
            return False
        if self.positions and position not in self.positions:
            return False
        limit = self.position_since_limit()
        return limit is None or (since is not None and since >= limit)


# What a new training of each kind starts with; the trainer may change all of it.
KIND_PRESETS = {
    Round.Kind.QUARTERLY: {},
    Round.Kind.SECRETARY: {
        "positions": [Member.Position.SECRETARY, Member.Position.DEPUTY_SECRETARY],
    },
    Round.Kind.NEW_SECRETARY: {
        "positions": [Member.Position.SECRETARY],
        "new_in_position_months": 6,
    },
    Round.Kind.PARTY_WORKER: {"positions": [Member.Position.PARTY_WORKER]},
    Round.Kind.CANDIDATE: {"statuses": [Member.Status.CANDIDATE]},
    Round.Kind.PROGRAMME: {},
}


def add_months(day, months: int):
    """``day`` moved by ``months`` (negative: back), on the last day of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    last = calendar_module.monthrange(year, month)[1]
    return day.replace(year=year, month=month, day=min(day.day, last))


class Session(models.Model):
    """A group session (集中学习 / 集中收看): an event in the round's calendar, at a site.

    Without a round it is group study outside any training (党课, 集中学习 at a site): on the
    calendar of everyone at the host and below, with check-in and roll call, its 学时 counted
    in the ledger of those present."""

    round = models.ForeignKey(
        Round,
        on_delete=models.CASCADE,
        related_name="sessions",
        verbose_name=_("round"),
        null=True,
        blank=True,
        help_text=_("Empty: group study outside any training (党课, 集中学习)."),
    )
    event = models.OneToOneField(
        "schedule.Event", on_delete=models.CASCADE, related_name="group_session"
    )
    host = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="hosted_sessions",
        verbose_name=_("host organisation"),
        help_text=_("The site where members of this organisation and below attend."),
    )
    location = models.CharField(_("place"), max_length=120, blank=True)
    lessons = models.ManyToManyField(
        "courses.LessonPage",
        related_name="group_sessions",
        blank=True,
        verbose_name=_("lessons shown"),
    )
    hours = models.DecimalField(
        _("study hours"),
        max_digits=4,
        decimal_places=1,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    qr_key = models.CharField(max_length=64, default=_new_key, editable=False)
    # A live lecture (直播课堂): the main hall's lecture, shown live at every site holding a
    # sitting of this session and on members' phones; it counts as its stream's lesson.
    live_stream = models.OneToOneField(
        "courses.LiveStream",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="session",
        verbose_name=_("live lecture"),
    )

    class Meta:
        verbose_name = _("group session")
        verbose_name_plural = _("group sessions")
        ordering = ["event__start"]

    def __str__(self):
        return self.title

    @property
    def title(self):
        return self.event.title

    @property
    def is_live(self) -> bool:
        return self.live_stream_id is not None

    @property
    def is_group_study(self) -> bool:
        """Group study outside any training."""
        return self.round_id is None

    def admits(self, member) -> bool:
        """May ``member`` check in? In a training: those it includes. Group study: everyone on
        the roster at the host or below, mobile members who take part there, and anyone
        posted there now (people in training to join too: it is study)."""
        if self.round_id is not None:
            return self.round.state != Round.State.DRAFT and self.round.includes(member)
        if not member.is_active:
            return False
        host = self.host
        if host.contains(member.organization):
            return True
        if member.activity_organization_id and host.contains(member.activity_organization):
            return True
        today = timezone.localdate()
        return any(
            host.contains(p.organization)
            for p in member.postings.filter(Posting.overlapping_q(today, today)).select_related(
                "organization"
            )
        )

    def members_expected(self):
        """Who the roll call lists (besides anyone checked in): see ``admits``. In a training,
        those it counts within the host's subtree and its mobile members who take part there
        (流动党员 at their 活动地)."""
        host_path = self.host.path
        if self.round_id is not None:
            taking_part_here = self.round.members_in_scope().filter(
                path_prefix_q(host_path, "activity_organization__path")
            )
            return Member.objects.filter(
                Q(pk__in=self.round.members_at(self.host).values("pk"))
                | Q(pk__in=taking_part_here.values("pk"))
            )
        today = timezone.localdate()
        posted = Posting.objects.filter(
            Posting.overlapping_q(today, today),
            path_prefix_q(self.host.path, "organization__path"),
        ).values("member_id")
        return Member.objects.filter(is_active=True).filter(
            path_prefix_q(self.host.path, "organization__path")
            | path_prefix_q(self.host.path, "activity_organization__path")
            | Q(pk__in=posted)
        )


class Sitting(models.Model):
    """One occurrence of a session that is being or was held: where attendance is recorded."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="sittings")
    start = models.DateTimeField(_("starts"))
    end = models.DateTimeField(_("ends"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("sitting")
        verbose_name_plural = _("sittings")
        ordering = ["start"]
        constraints = [
            models.UniqueConstraint(fields=["session", "start"], name="sitting_once_per_start")
        ]

    def __str__(self):
        return f"{self.session.title} {timezone.localtime(self.start):%Y-%m-%d %H:%M}"

    @property
    def is_closed(self):
        return self.closed_at is not None

    def check_in_window(self):
        grace = timedelta(minutes=settings.LUNXUN_CHECKIN_GRACE_MINUTES)
        return self.start - grace, self.end + grace

    def accepts_check_in(self, now=None):
        now = now or timezone.now()
        opens, closes = self.check_in_window()
        return not self.is_closed and opens <= now <= closes


class Attendance(models.Model):
    class Status(models.TextChoices):
        PRESENT = "present", _("Present")
        LATE = "late", _("Late")
        LEAVE = "leave", _("On leave")
        ABSENT = "absent", _("Absent")

    class Method(models.TextChoices):
        QR = "qr", _("QR check-in")
        ROLL_CALL = "roll_call", _("Roll call")
        PAPER = "paper", _("Paper sign-in sheet")
        PERSONAL_CODE = "personal_code", _("Personal code at a site terminal")

    ATTENDED = (Status.PRESENT, Status.LATE)

    sitting = models.ForeignKey(Sitting, on_delete=models.CASCADE, related_name="attendances")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="attendances")
    status = models.CharField(_("attendance"), max_length=20, choices=Status.choices)
    method = models.CharField(_("recorded by"), max_length=20, choices=Method.choices)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        verbose_name = _("attendance")
        verbose_name_plural = _("attendance records")
        constraints = [
            models.UniqueConstraint(
                fields=["sitting", "member"], name="attendance_once_per_sitting"
            )
        ]
        indexes = [models.Index(fields=["member", "status"])]

    def __str__(self):
        return f"{self.member} · {self.sitting} · {self.get_status_display()}"

    @property
    def attended(self):
        return self.status in self.ATTENDED


class LeaveRequest(models.Model):
    """请假: a member will miss the round's group learning and makes it up online."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting for approval")
        APPROVED = "approved", _("Approved")
        REFUSED = "refused", _("Refused")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    ACTIVE = (State.PENDING, State.APPROVED)

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="leave_requests")
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="leave_requests")
    session = models.ForeignKey(
        Session,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="leave_requests",
        verbose_name=_("group session"),
    )
    reason = models.TextField(_("reason"), max_length=500)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("leave request")
        verbose_name_plural = _("leave requests")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "round"],
                condition=Q(state__in=["pending", "approved"]),
                name="leave_one_active_per_round",
            )
        ]

    def __str__(self):
        return f"{self.member} · {self.round}"


class Exemption(models.Model):
    """免参: out of the denominator (long illness, working abroad…) but still listed."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="exemptions")
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="exemptions")
    reason = models.CharField(_("reason"), max_length=200)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    granted_at = models.DateTimeField(default=timezone.now)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("exemption")
        verbose_name_plural = _("exemptions")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "round"],
                condition=Q(revoked_at__isnull=True),
                name="exemption_one_active_per_round",
            )
        ]

    def __str__(self):
        return f"{self.member} · {self.round}"


class Participation(models.Model):
    """A member's status in a round, derived from the sources; absent row = not started."""

    class Status(models.TextChoices):
        NOT_STARTED = "not_started", _("Not started")
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")
        LEAVE = "leave", _("On leave")
        EXEMPT = "exempt", _("Exempt")

    class Method(models.TextChoices):
        ONLINE = "online", _("online")
        SESSION = "session", _("at a group session")
        MIXED = "mixed", _("online and at a group session")
        MAKEUP = "makeup", _("by make-up")

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="participations")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="participations")
    status = models.CharField(max_length=20, choices=Status.choices)
    method = models.CharField(max_length=20, choices=Method.choices, blank=True)
    lessons_done = models.PositiveSmallIntegerField(default=0)
    lessons_required = models.PositiveSmallIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    closing_status = models.CharField(
        max_length=20,
        choices=Status.choices,
        blank=True,
        help_text="The status frozen when the round closed; blank: not started then.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("participation")
        verbose_name_plural = _("participations")
        constraints = [
            models.UniqueConstraint(fields=["round", "member"], name="participation_once")
        ]
        indexes = [models.Index(fields=["round", "status"])]

    def __str__(self):
        return f"{self.member} · {self.round} · {self.get_status_display()}"


class CoverageSnapshot(models.Model):
    """A node's figures frozen when its round closed, for official reporting."""

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="snapshots")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="coverage_snapshots"
    )
    in_scope = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    in_progress = models.PositiveIntegerField(default=0)
    on_leave = models.PositiveIntegerField(default=0)
    not_started = models.PositiveIntegerField(default=0)
    exempt = models.PositiveIntegerField(default=0)
    taken_at = models.DateTimeField()

    class Meta:
        verbose_name = _("coverage snapshot")
        verbose_name_plural = _("coverage snapshots")
        constraints = [
            models.UniqueConstraint(fields=["round", "organization"], name="snapshot_once")
        ]

    def __str__(self):
        return f"{self.round} · {self.organization}"


class CoverageFigures(models.Model):
    """A round's figures for one organisation and position ("" = all positions together)."""

    ALL_POSITIONS = ""

    position = models.CharField(max_length=20, blank=True)
    in_scope = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    in_progress = models.PositiveIntegerField(default=0)
    on_leave = models.PositiveIntegerField(default=0)
    exempt = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class CoverageCounter(CoverageFigures):
    """A round's figures for the members who count DIRECTLY at one organisation (at home, or
    posted there), per position of theirs ("" = all positions together). Kept by
    ``rounds.counters`` in the same transaction as every write that moves them; a node's
    coverage is read from the subtree totals above them (``CoverageRollup``)."""

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="coverage_counters")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="coverage_counters"
    )

    class Meta:
        verbose_name = _("coverage counter")
        verbose_name_plural = _("coverage counters")
        constraints = [
            models.UniqueConstraint(
                fields=["round", "organization", "position"], name="coverage_counter_once"
            )
        ]
        indexes = [models.Index(fields=["round", "position"], name="coverage_counter_read")]

    def __str__(self):
        return f"{self.round} · {self.organization} · {self.position or '*'}"


class CoverageRollup(CoverageFigures):
    """A round's figures for a whole subtree: the sum of the ``CoverageCounter`` rows of an
    organisation and every organisation below it, per position ("" = all positions). Kept by
    ``rounds.counters`` in the same transaction as the counter rows it sums, so a node's coverage
    is a read of its own row and its children's (``parent``), whatever the size of the tree."""

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="coverage_rollups")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="coverage_rollups"
    )
    # The organisation's parent in the tree (None for a root): a node's table reads its
    # children's rows by this column.
    parent = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("coverage subtree total")
        verbose_name_plural = _("coverage subtree totals")
        constraints = [
            models.UniqueConstraint(
                fields=["round", "organization", "position"], name="coverage_rollup_once"
            )
        ]
        indexes = [
            models.Index(fields=["round", "parent", "position"], name="coverage_rollup_children")
        ]

    def __str__(self):
        return f"{self.round} · {self.organization} ∑ · {self.position or '*'}"


class Notice(models.Model):
    """An in-site notice shown to a user (reminders, digests)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lunxun_notices"
    )
    round = models.ForeignKey(
        Round, on_delete=models.CASCADE, null=True, blank=True, related_name="notices"
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("message"), blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self):
        return self.title


class Reminder(models.Model):
    """One reminder sent to a member: at most one per member per day, whatever the round."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="reminders")
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="reminders")
    sent_on = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)
    channels = models.JSONField(default=list)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Blank: sent automatically before the deadline.",
    )

    class Meta:
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        constraints = [
            models.UniqueConstraint(fields=["member", "sent_on"], name="reminder_once_a_day")
        ]

    def __str__(self):
        return f"{self.member} · {self.sent_on}"


class CalendarFeed(models.Model):
    """A member's personal iCalendar feed, behind an unguessable token."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="calendar_feed")
    token = models.CharField(max_length=64, unique=True, default=_new_feed_token)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("calendar feed")
        verbose_name_plural = _("calendar feeds")

    def __str__(self):
        return str(self.member)


class StudyRecordQuerySet(models.QuerySet):
    def approved(self):
        return self.filter(state=StudyRecord.State.APPROVED)

    def pending(self):
        return self.filter(state=StudyRecord.State.PENDING)


class StudyRecord(models.Model):
    """Study the system did not see (党校 classes, 春训冬训, a 送学上门 visit…), recorded by a
    secretary and approved by someone else whose scope covers the member; counted in the
    yearly ledger once approved. No photo, screenshot or document is asked for (减负): a note
    is optional."""

    class Kind(models.TextChoices):
        PARTY_SCHOOL = "party_school", _("Party school class (党校培训)")
        SEASONAL = "seasonal", _("Spring or winter training (春训冬训)")
        DOOR_TO_DOOR = "door_to_door", _("Study brought to the door (送学上门)")
        GROUP_STUDY = "group_study", _("Group study not recorded here (集中学习)")
        OTHER = "other", _("Other study (其他学习)")

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting for approval")
        APPROVED = "approved", _("Approved")
        REFUSED = "refused", _("Refused")

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="study_records", verbose_name=_("member")
    )
    kind = models.CharField(_("kind of study"), max_length=20, choices=Kind.choices)
    title = models.CharField(_("what was studied"), max_length=120)
    studied_on = models.DateField(_("date studied"))
    hours = models.DecimalField(
        _("study hours"),
        max_digits=4,
        decimal_places=1,
        validators=[MinValueValidator(Decimal("0.5")), MaxValueValidator(Decimal("80"))],
    )
    note = models.CharField(_("note"), max_length=300, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    # The form's one-time token: a second click of the same form records nothing twice.
    form_token = models.CharField(max_length=64, editable=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(_("reason"), max_length=200, blank=True)

    objects = StudyRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("study record")
        verbose_name_plural = _("study records")
        ordering = ["-studied_on", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["form_token"], name="study_record_once_per_form")
        ]
        indexes = [
            models.Index(fields=["member", "state", "studied_on"]),
            # Records waiting for a decision, oldest first: few among a city's many.
            models.Index(fields=["state", "recorded_at"], name="studyrecord_state_idx"),
        ]

    def __str__(self):
        return f"{self.member} · {self.title} · {self.studied_on}"


class HoursSummary(models.Model):
    """A member's study hours (学时) in one calendar year, per source and in total: what the
    ledger's lists read (rounds/ledger.py), so a city's list is one join, not three sums per
    member. Kept in the same transaction as every write to its sources (rounds/hours.py);
    ``manage.py ledger_summary`` checks it against a full recount and repairs it. No row: no
    hours that year."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="hours_summaries")
    year = models.PositiveSmallIntegerField()
    lessons = models.DecimalField(max_digits=8, decimal_places=1, default=Decimal("0"))
    sessions = models.DecimalField(max_digits=8, decimal_places=1, default=Decimal("0"))
    records = models.DecimalField(max_digits=8, decimal_places=1, default=Decimal("0"))
    total = models.DecimalField(max_digits=8, decimal_places=1, default=Decimal("0"))

    class Meta:
        verbose_name = _("yearly study hours")
        verbose_name_plural = _("yearly study hours")
        constraints = [
            models.UniqueConstraint(fields=["member", "year"], name="hours_summary_once_per_year")
        ]

    def __str__(self):
        return f"{self.member_id} · {self.year} · {self.total}"


class StudyPlan(ClusterableModel):
    """《党员教育培训工作五年规划》: yearly targets per category, set by the city (or any level,
    for its subtree) and met by each subtree. Figures are computed from the ledger, the
    trainings and the roster (rounds/plans.py), never stored."""

    title = models.CharField(_("title"), max_length=120)
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="study_plans",
        verbose_name=_("set by"),
        help_text=_("The organisation whose subtree the plan covers."),
    )
    first_year = models.PositiveSmallIntegerField(
        _("first year"), validators=[MinValueValidator(2000), MaxValueValidator(2100)]
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    YEARS = 5

    class Meta:
        verbose_name = _("five-year plan")
        verbose_name_plural = _("five-year plans")
        ordering = ["-first_year", "title"]

    def __str__(self):
        return self.title

    @property
    def last_year(self) -> int:
        return self.first_year + self.YEARS - 1

    @property
    def years(self) -> list[int]:
        return list(range(self.first_year, self.last_year + 1))


class PlanTarget(Orderable):
    """One yearly target of a plan, in words: "every 村（社区）书记 through 书记专题培训
    each year"."""

    class Kind(models.TextChoices):
        HOURS = "hours", _("At least N study hours in the year")
        TRAINED = "trained", _("Completed a training of the kind in the year")
        NEW_IN_POSITION = "new_in_position", _("Trained within N months of taking up the position")
        HOURS_BEFORE_ADMISSION = (
            "hours_before_admission",
            _("At least N study hours before admission (all years)"),
        )

    class Audience(models.TextChoices):
        MEMBERS = "members", _("Every Party member")
        SECRETARIES = "secretaries", _("Secretaries and deputy secretaries")
        VILLAGE_SECRETARIES = "village_secretaries", _("Village and community secretaries")
        PARTY_WORKERS = "party_workers", _("Party affairs workers")
        CANDIDATES = "candidates", _("Candidates for admission (发展对象)")

    plan = ParentalKey(StudyPlan, on_delete=models.CASCADE, related_name="targets")
    kind = models.CharField(_("kind of target"), max_length=30, choices=Kind.choices)
    audience = models.CharField(_("who"), max_length=30, choices=Audience.choices)
    number = models.DecimalField(
        _("N (hours or months)"),
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.5"))],
    )
    training_kind = models.CharField(
        _("kind of training"), max_length=20, choices=Round.Kind.choices, blank=True
    )
    goal_percent = models.PositiveSmallIntegerField(
        _("goal (%)"), default=100, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )

    panels = [
        FieldPanel("kind"),
        FieldPanel("audience"),
        FieldPanel("number"),
        FieldPanel("training_kind"),
        FieldPanel("goal_percent"),
    ]

    class Meta(Orderable.Meta):
        verbose_name = _("target")
        verbose_name_plural = _("targets")

    def __str__(self):
        return self.label

    def clean(self):
        needs_number = self.kind in (
            self.Kind.HOURS,
            self.Kind.NEW_IN_POSITION,
            self.Kind.HOURS_BEFORE_ADMISSION,
        )
        if needs_number and not self.number:
            raise ValidationError({"number": _("Say how many hours or months.")})
        if self.kind in (self.Kind.TRAINED, self.Kind.NEW_IN_POSITION) and not self.training_kind:
            raise ValidationError({"training_kind": _("Say which kind of training counts.")})

    @property
    def label(self) -> str:
        who = self.get_audience_display()
        number = f"{Decimal(str(self.number)).normalize():f}" if self.number else ""
        if self.kind == self.Kind.HOURS:
            return _("%(who)s: at least %(n)s study hours a year") % {"who": who, "n": number}
        if self.kind == self.Kind.TRAINED:
            return _("%(who)s: through %(training)s each year") % {
                "who": who,
                "training": self.get_training_kind_display(),
            }
        if self.kind == self.Kind.NEW_IN_POSITION:
            return _("%(who)s new in the position: through %(training)s within %(n)s months") % {
                "who": who,
                "training": self.get_training_kind_display(),
                "n": number,
            }
        return _("%(who)s: at least %(n)s study hours before admission") % {
            "who": who,
            "n": number,
        }


class TerminalQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)

    def visible_to_roots(self, roots):
        """Terminals hosted within the subtrees of ``roots`` (``None`` means everything)."""
        if roots is None:
            return self
        if not roots:
            return self.none()
        return self.filter(subtree_q(roots, "host__path"))


class Terminal(models.Model):
    """A site PC registered by a trainer to run group sessions offline (rounds/terminals.py).

    Its ``secret`` signs what it records offline; it is handed once to the browser that claims
    the terminal and kept there (IndexedDB). Revoked: the server refuses its records."""

    name = models.CharField(_("name"), max_length=80)
    host = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="terminals",
        verbose_name=_("site (host organisation)"),
        help_text=_("The terminal runs the group sessions of this organisation and below."),
    )
    secret = models.CharField(max_length=64, default=_new_key, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    registered_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = TerminalQuerySet.as_manager()

    class Meta:
        verbose_name = _("site terminal")
        verbose_name_plural = _("site terminals")
        ordering = ["host__path", "name"]

    def __str__(self):
        return f"{self.name} · {self.host.name}"

    @property
    def is_revoked(self):
        return self.revoked_at is not None


class TerminalRecord(models.Model):
    """One record a terminal made offline and sent when the link came back, with the server's
    answer. Its ``uuid`` is made by the terminal: sending it again changes nothing."""

    class Kind(models.TextChoices):
        PERSONAL_CODE = "personal_code", _("Personal check-in code scanned")
        ROLL_CALL = "roll_call", _("Roll call")

    class Result(models.TextChoices):
        ACCEPTED = "accepted", _("Accepted")
        REFUSED = "refused", _("Refused")

    terminal = models.ForeignKey(Terminal, on_delete=models.CASCADE, related_name="records")
    uuid = models.UUIDField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    sitting = models.ForeignKey(
        Sitting, on_delete=models.SET_NULL, null=True, blank=True, related_name="terminal_records"
    )
    member = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="terminal_records"
    )
    status = models.CharField(max_length=20, blank=True)
    recorded_at = models.DateTimeField(help_text="When the terminal recorded it (its clock).")
    received_at = models.DateTimeField(default=timezone.now)
    result = models.CharField(max_length=20, choices=Result.choices)
    reason = models.CharField(max_length=30, blank=True)
    payload = models.JSONField(default=dict)

    class Meta:
        verbose_name = _("terminal record")
        verbose_name_plural = _("terminal records")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["terminal", "uuid"], name="terminal_record_once")
        ]

    def __str__(self):
        return f"{self.terminal} · {self.uuid} · {self.result}"

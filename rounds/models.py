"""Training rounds (专题轮训) planned on django-scheduler, and what members did in them.

django-scheduler supplies the calendar machinery: the year's plan is a ``Calendar`` with a
quarterly recurring ``Event``; each occurrence becomes a ``Round``. A round's group sessions
(集中学习) are events in the round's own calendar, possibly recurring; one occurrence of a
session that somebody attends is a ``Sitting``, the unit of check-in and roll call.

``Participation`` holds each member's derived status in a round. It is recomputed from the
sources (lesson progress, attendance, leave, exemption) whenever one of them changes, so
coverage for a whole city is one GROUP BY over members and these rows.
"""

import secrets
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member, Organization, subtree_q


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
        paths = [o.path for o in member.organization.ancestors_and_self()]
        candidates = self.published().filter(scope_roots__path__in=paths).distinct()
        return [r for r in candidates.prefetch_related("scope_roots") if r.includes(member)]


class Round(models.Model):
    """One quarterly thematic rotation training (专题轮训)."""

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        CLOSED = "closed", _("Closed")

    class Rule(models.TextChoices):
        EITHER = "either", _("Each required lesson online, or at a group session that showed it")
        ONLINE = "online", _("All required lessons completed online")
        SESSION = "session", _("Attended group sessions that showed every required lesson")

    title = models.CharField(_("title"), max_length=120)
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
    lessons = models.ManyToManyField(
        "courses.LessonPage",
        related_name="training_rounds",
        verbose_name=_("required lessons"),
    )
    completion_rule = models.CharField(
        _("completion rule"), max_length=20, choices=Rule.choices, default=Rule.EITHER
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

    def members_in_scope(self):
        """Active members this round counts: the scope subtrees, statuses and positions."""
        roots = list(self.scope_roots.all())
        if not roots:
            return Member.objects.none()
        members = Member.objects.filter(is_active=True).filter(
            subtree_q(roots, "organization__path")
        )
        if self.statuses:
            members = members.filter(status__in=self.statuses)
        if self.positions:
            members = members.filter(position__in=self.positions)
        return members

    def includes(self, member) -> bool:
        if not member.is_active:
            return False
        if self.statuses and member.status not in self.statuses:
            return False
        if self.positions and member.position not in self.positions:
            return False
        return any(root.contains(member.organization) for root in self.scope_roots.all())


class Session(models.Model):
    """A group session (集中学习 / 集中收看): an event in the round's calendar, at a site."""

    round = models.ForeignKey(
        Round, on_delete=models.CASCADE, related_name="sessions", verbose_name=_("round")
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

    class Meta:
        verbose_name = _("group session")
        verbose_name_plural = _("group sessions")
        ordering = ["event__start"]

    def __str__(self):
        return self.title

    @property
    def title(self):
        return self.event.title


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

"""The calendar's questions: which group sessions concern a viewer, and when they take place.

A member is concerned by the sessions of published rounds that include them, held at their
own organisation or at one above it (the site their branch attends), and by group study outside
any training held there (or where a mobile member takes part). Staff (trainer, secretary,
site operator) see the sessions hosted inside their subtrees or above their roots, in rounds
that reach those subtrees; a superuser sees every published round's sessions. One user can be
both a member and staff: the two sets are joined.

Occurrences come from django-scheduler's occurrence API (rules, persisted cancellations and
moves), computed in the deployment's time zone and returned in local time.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Prefetch, Q
from django.utils import timezone

from courses.models import LessonPage
from members import access
from members.models import subtree_q

from .models import Round, Session, day_start

# A recurring event whose recurrence ended this long before a period cannot show in it: a
# group session lasts hours, not weeks. Only used to skip finished series in the query.
SERIES_SLACK = timedelta(days=31)


@dataclass(frozen=True)
class SessionOccurrence:
    """One occurrence of a group session, in local time.

    ``can_open`` says the viewer runs this session's sittings (check-in and roll call): staff
    whose subtree contains the host.
    """

    session: Session
    start: datetime
    end: datetime
    can_open: bool = False

    @property
    def day(self) -> date:
        return self.start.date()

    @property
    def timestamp(self) -> int:
        """The start as a unix timestamp: how URLs name a sitting."""
        return int(self.start.timestamp())

    @property
    def spans_days(self) -> bool:
        return self.end.date() != self.start.date() and self.end != day_start(self.end.date())


def member_sessions_q(member) -> Q:
    """Sessions of published rounds that include ``member``, held at their node or above it."""
    if member is None or not member.is_active:
        return Q(pk__in=[])
    paths = member.organization.ancestor_paths()
    # Group study outside any training: at their organisation or above it, and where a mobile
    # member takes part.
    places = set(paths)
    if member.activity_organization_id:
        places.update(member.activity_organization.ancestor_paths())
    condition = Q(round__isnull=True, host__path__in=sorted(places))
    rounds = [r.pk for r in Round.objects.for_member(member)]
    if rounds:
        condition |= Q(round__in=rounds, host__path__in=paths)
    return condition


def staff_sessions_q(user) -> Q:
    """Sessions a staff user's calendar shows: hosted inside their subtrees or above their
    roots, in published rounds that reach those subtrees. Superusers: every published round."""
    roots = access.role_roots(user)
    if roots is None:
        return Q(round__in=Round.objects.published().values("pk")) | Q(round__isnull=True)
    if not roots:
        return Q(pk__in=[])
    above = set()
    for root in roots:
        above.update(root.path[:i] for i in range(root.steplen, len(root.path), root.steplen))
    hosts = subtree_q(roots, "host__path") | Q(host__path__in=sorted(above))
    rounds = Round.objects.published().visible_to_roots(roots).values("pk")
    return hosts & (Q(round__in=rounds) | Q(round__isnull=True))


def sessions_for_user(user):
    """Every group session that concerns ``user``, as a member, as staff, or both."""
    if not user.is_authenticated:
        return Session.objects.none()
    condition = member_sessions_q(access.member_of(user))
    if access.has_role(user):
        condition |= staff_sessions_q(user)
    return Session.objects.filter(condition)


def sessions_for_member(member):
    """The sessions a member's own calendar (and iCalendar feed) holds."""
    return Session.objects.filter(member_sessions_q(member))


def with_calendar_data(sessions):
    """Load what showing a session needs: event and rule, host, round, lessons, and the
    persisted occurrences (cancellations, moves) that django-scheduler consults."""
    return sessions.select_related(
        "event", "event__rule", "host", "round", "live_stream"
    ).prefetch_related(
        Prefetch("lessons", queryset=LessonPage.objects.order_by("path")),
        "event__occurrence_set",
    )


def sittings_opener(user):
    """A test: does ``user`` run the sittings of a session (its host is in their subtree)?"""
    if not user.is_authenticated or not access.has_role(user):
        return lambda session: False
    roots = access.role_roots(user)
    if roots is None:
        return lambda session: True
    return lambda session: any(root.contains(session.host) for root in roots)


def occurrences_between(sessions, start: datetime, end: datetime, can_open=None):
    """The occurrences of ``sessions`` that overlap [start, end), cancelled ones left out,
    sorted by start, in local time.

    ``can_open``: an optional test from ``sittings_opener`` that marks each occurrence.
    """
    start, end = timezone.localtime(start), timezone.localtime(end)
    candidates = sessions.filter(event__start__lt=end).filter(
        Q(event__rule__isnull=True, event__end__gt=start)
        | Q(event__rule__isnull=False, event__end_recurring_period__isnull=True)
        | Q(event__rule__isnull=False, event__end_recurring_period__gt=start - SERIES_SLACK)
    )
    found = []
    for session in with_calendar_data(candidates):
        opens = bool(can_open and can_open(session))
        for occurrence in session.event.get_occurrences(start, end, clear_prefetch=False):
            if occurrence.cancelled:
                continue
            found.append(
                SessionOccurrence(
                    session=session,
                    start=timezone.localtime(occurrence.start),
                    end=timezone.localtime(occurrence.end),
                    can_open=opens,
                )
            )
    found.sort(key=lambda o: (o.start, o.session.title, o.session.pk))
    return found


def occurrences_for_user(user, start: datetime, end: datetime):
    return occurrences_between(sessions_for_user(user), start, end, can_open=sittings_opener(user))


def group_by_day(occurrences) -> list[tuple[date, list[SessionOccurrence]]]:
    days = {}
    for occurrence in occurrences:
        days.setdefault(occurrence.day, []).append(occurrence)
    return sorted(days.items())


def upcoming_for_user(user, days=30, limit=5, now=None) -> list[SessionOccurrence]:
    """The next few occurrences that concern ``user`` (in progress ones included)."""
    now = now or timezone.now()
    return occurrences_for_user(user, now, now + timedelta(days=days))[:limit]

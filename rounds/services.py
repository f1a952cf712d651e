"""Writes that span models: planning, sessions, check-in, roll call, leave, exemption, closing.

Every write that changes what a member did ends with ``participation_refresh`` for the members
it touched, so coverage is live.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _
from schedule.models import Calendar, Event, Rule

from core.audit import audit_event
from courses.services import live_stream_create, live_stream_set_lesson
from members import access
from members.models import Member, Organization

from .coverage import coverage_by_organization
from .hours import hours_summary_batch, hours_summary_refresh, year_of
from .models import (
    Attendance,
    CoverageSnapshot,
    Exemption,
    LeaveRequest,
    Participation,
    Round,
    Session,
    Sitting,
    day_end,
    day_start,
)
from .participation import participation_refresh

# Sent once a round is closed and its figures are frozen, with ``round_id``; higher apps
# (certificates) act on it.
round_closed = Signal()


# --- Planning ----------------------------------------------------------------------------------

QUARTERLY_RULE_NAME = "Quarterly"


def quarterly_rule() -> Rule:
    rule, _created = Rule.objects.get_or_create(
        name=QUARTERLY_RULE_NAME,
        defaults={
            "description": "Every three months: the citywide rotation training",
            "frequency": "MONTHLY",
            "params": "interval:3",
        },
    )
    return rule


def plan_calendar() -> Calendar:
    calendar, _created = Calendar.objects.get_or_create(
        slug="rotation-plan", defaults={"name": "专题轮训计划"}
    )
    return calendar


def quarter_bounds(year: int, quarter: int) -> tuple[date, date]:
    first = date(year, 3 * (quarter - 1) + 1, 1)
    following = date(year + (quarter == 4), (3 * quarter) % 12 + 1, 1)
    return first, following - timedelta(days=1)


def round_plan_year(*, year: int, title: str, roots, user=None, lessons=()) -> list[Round]:
    """Plan the year: one quarterly recurring event, and a draft round per occurrence.

    Running it again for the same year creates only the rounds that are missing.
    """
    calendar = plan_calendar()
    first, _last = quarter_bounds(year, 1)
    start = day_start(first)
    event = (
        Event.objects.filter(calendar=calendar, start=start, rule__name=QUARTERLY_RULE_NAME)
        .order_by("pk")
        .first()
    )
    if event is None:
        event = Event.objects.create(
            calendar=calendar,
            title=title,
            start=start,
            end=day_end(quarter_bounds(year, 1)[1]),
            rule=quarterly_rule(),
            end_recurring_period=day_end(date(year, 12, 31)),
            creator=user,
        )
    rounds = []
    for occurrence in event.get_occurrences(start, day_end(date(year, 12, 31))):
        rounds.append(
            round_from_occurrence(
                event=event, occurrence=occurrence, roots=roots, user=user, lessons=lessons
            )
        )
    return rounds


def round_from_occurrence(*, event, occurrence, roots, user=None, lessons=()) -> Round:
    opens_on = timezone.localtime(occurrence.original_start).date()
    quarter = (opens_on.month - 1) // 3 + 1
    existing = Round.objects.filter(plan_event=event, plan_start=occurrence.original_start).first()
    if existing:
        return existing
    _first, closes_on = quarter_bounds(opens_on.year, quarter)
    with transaction.atomic():
        training_round = Round.objects.create(
            title=_("%(year)s Q%(quarter)s: %(title)s")
            % {"year": opens_on.year, "quarter": quarter, "title": event.title},
            plan_event=event,
            plan_start=occurrence.original_start,
            opens_on=opens_on,
            closes_on=closes_on,
            makeup_deadline=closes_on + timedelta(days=settings.LUNXUN_MAKEUP_DAYS),
            created_by=user,
        )
        training_round.scope_roots.set(roots)
        training_round.lessons.set(lessons)
        round_calendar(training_round)
    return training_round


def round_calendar(training_round: Round) -> Calendar:
    """The round's own calendar, where its group sessions live (created on first need)."""
    if training_round.calendar_id is None:
        training_round.calendar = Calendar.objects.create(
            name=str(training_round)[:200], slug=f"round-{training_round.pk}"
        )
        training_round.save(update_fields=["calendar"])
    return training_round.calendar


RECURRENCES = {
    "": None,
    "WEEKLY": ("Weekly", "WEEKLY", ""),
    "BIWEEKLY": ("Every two weeks", "WEEKLY", "interval:2"),
    "MONTHLY": ("Monthly", "MONTHLY", ""),
}


def recurrence_rule(kind: str) -> Rule | None:
    spec = RECURRENCES.get(kind)
    if spec is None:
        return None
    name, frequency, params = spec
    rule, _created = Rule.objects.get_or_create(
        name=name, defaults={"description": name, "frequency": frequency, "params": params}
    )
    return rule


def recurrence_kind(rule: Rule | None) -> str:
    if rule is None:
        return ""
    for kind, spec in RECURRENCES.items():
        if spec and spec[1] == rule.frequency and spec[2] == (rule.params or ""):
            return kind
    return ""


GROUP_STUDY_CALENDAR = "group-study"


def group_study_calendar() -> Calendar:
    """The calendar where group study outside any training lives."""
    calendar, _created = Calendar.objects.get_or_create(
        slug=GROUP_STUDY_CALENDAR, defaults={"name": "集中学习"}
    )
    return calendar


def session_save(
    *,
    training_round: Round | None,
    title: str,
    host: Organization,
    start: datetime,
    end: datetime,
    lessons=(),
    hours=0,
    location: str = "",
    recurrence: str = "",
    until: date | None = None,
    description: str = "",
    live: bool = False,
    user=None,
    session: Session | None = None,
) -> Session:
    """Create or update a group session and its scheduler event in the round's calendar
    (``training_round`` None: group study outside any training, in its own calendar).

    ``live``: a live lecture from the main hall, counting as the first of ``lessons`` (its
    stream and key are made once; the lesson can change until the lecture starts)."""
    calendar = round_calendar(training_round) if training_round else group_study_calendar()
    rule = recurrence_rule(recurrence)
    with transaction.atomic():
        event = session.event if session else Event(calendar=calendar, creator=user)
        event.calendar = calendar
        event.title = title
        event.description = description
        event.start = start
        event.end = end
        event.rule = rule
        event.end_recurring_period = day_end(until) if (rule and until) else None
        event.save()
        if session is None:
            session = Session(round=training_round, event=event)
        session.host = host
        session.location = location
        session.hours = hours
        lessons = list(lessons)
        if live and lessons:
            if session.live_stream_id is None:
                session.live_stream = live_stream_create(lesson=lessons[0], user=user)
            else:
                live_stream_set_lesson(stream=session.live_stream, lesson=lessons[0], user=user)
        session.save()
        session.lessons.set(lessons)
    return session


def sitting_for(*, session: Session, start: datetime) -> Sitting:
    """The sitting of ``session`` that starts at ``start``; it must be a real occurrence."""
    sitting = Sitting.objects.filter(session=session, start=start).first()
    if sitting:
        return sitting
    occurrence = next(
        (
            o
            for o in session.event.get_occurrences(start, start + timedelta(seconds=1))
            if o.original_start == start or o.start == start
        ),
        None,
    )
    if occurrence is None or occurrence.cancelled:
        raise Sitting.DoesNotExist
    try:
        with transaction.atomic():
            return Sitting.objects.create(session=session, start=start, end=occurrence.end)
    except IntegrityError:
        return Sitting.objects.get(session=session, start=start)


# --- Check-in codes ----------------------------------------------------------------------------


class CheckInRefused(Exception):
    """A check-in that cannot be accepted; the message says why, in the member's language."""


def _window(moment: datetime) -> int:
    return int(moment.timestamp()) // settings.LUNXUN_QR_ROTATE_SECONDS


def sitting_checkin_key(sitting: Sitting) -> bytes:
    """The key the rotating codes of ``sitting`` are made with: derived from the deployment's
    secret and the session's key, and of this one sitting only, so a site terminal that
    downloads it (rounds/terminals.py) can show the codes offline and learns nothing else."""
    material = f"lunxun-checkin-key:{sitting.session.qr_key}:{sitting.pk}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), material, hashlib.sha256).digest()


def _mac(sitting: Sitting, window: int) -> str:
    key = sitting_checkin_key(sitting)
    digest = hmac.new(key, f"lunxun-checkin:{sitting.pk}:{window}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:15]).decode()


def personal_code(*, sitting: Sitting, member: Member) -> str:
    """A member's own check-in code for ``sitting``, kept on their phone for a site terminal to
    scan when the phone has no link: "P<sitting>.<member>.<mac>". Only the server can make or
    check the mac; the terminal checks the shape and the server decides when it syncs."""
    return f"P{sitting.pk}.{member.pk}.{_personal_mac(sitting.pk, member.pk, sitting)}"


def _personal_mac(sitting_pk: int, member_pk: int, sitting: Sitting) -> str:
    key = f"{settings.SECRET_KEY}:lunxun-personal:{sitting.session.qr_key}".encode()
    digest = hmac.new(key, f"{sitting_pk}:{member_pk}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:15]).decode()


def personal_code_verify(*, code: str, sitting: Sitting) -> int | None:
    """The member id a personal code names, if it is genuine and for ``sitting``; else None."""
    try:
        head, member_pk, mac = str(code).split(".", 2)
        sitting_pk, member_pk = int(head.removeprefix("P")), int(member_pk)
    except (ValueError, AttributeError):
        return None
    if not head.startswith("P") or sitting_pk != sitting.pk:
        return None
    if not hmac.compare_digest(mac, _personal_mac(sitting_pk, member_pk, sitting)):
        return None
    return member_pk


@dataclass(frozen=True, slots=True)
class CheckInCode:
    """The code a site screen shows now, and when the next one replaces it."""

    token: str
    next_at: datetime


def qr_token(*, sitting: Sitting, now=None) -> CheckInCode:
    """The code the site screen shows now, and when the next one replaces it."""
    now = now or timezone.now()
    window = _window(now)
    rotate = settings.LUNXUN_QR_ROTATE_SECONDS
    next_at = datetime.fromtimestamp((window + 1) * rotate, tz=now.tzinfo or timezone.utc)
    return CheckInCode(token=f"{sitting.pk}.{window}.{_mac(sitting, window)}", next_at=next_at)


def qr_verify(token: str, now=None) -> Sitting:
    """The sitting a scanned code belongs to, if the code is genuine and current."""
    now = now or timezone.now()
    try:
        sitting_pk, window, mac = token.split(".", 2)
        sitting_pk, window = int(sitting_pk), int(window)
        sitting = Sitting.objects.select_related("session__round", "session__event").get(
            pk=sitting_pk
        )
    except (ValueError, Sitting.DoesNotExist):
        raise CheckInRefused(_("This is not a valid check-in code.")) from None
    if not hmac.compare_digest(mac, _mac(sitting, window)):
        raise CheckInRefused(_("This is not a valid check-in code."))
    current = _window(now)
    rotate = settings.LUNXUN_QR_ROTATE_SECONDS
    started = current * rotate
    if window == current:
        return sitting
    if window == current - 1 and now.timestamp() - started <= settings.LUNXUN_QR_GRACE_SECONDS:
        return sitting
    if window > current:
        raise CheckInRefused(_("This check-in code is not valid yet. Scan the screen again."))
    raise CheckInRefused(
        _(
            "This check-in code has expired. Scan the code on the screen now; "
            "it changes every %(s)d seconds."
        )
        % {"s": rotate}
    )


# --- Attendance --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckIn:
    """A member's attendance at a sitting, and whether this check-in recorded it."""

    attendance: Attendance
    created: bool


def _check_in_refusal(*, sitting: Sitting, member: Member, now) -> str:
    """Why ``member`` cannot check in at ``sitting`` at ``now`` ("" when they can), before
    looking at other attendance."""
    training_round = sitting.session.round
    if sitting.is_closed:
        return _("This group session has been closed; ask the site operator.")
    if not sitting.accepts_check_in(now):
        return _("Check-in for this group session is open from %(opens)s to %(closes)s.") % {
            "opens": timezone.localtime(sitting.check_in_window()[0]).strftime("%m-%d %H:%M"),
            "closes": timezone.localtime(sitting.check_in_window()[1]).strftime("%m-%d %H:%M"),
        }
    if not sitting.session.admits(member):
        if training_round is None:
            return _("This group study is for the members of %(host)s; ask the site operator.") % {
                "host": sitting.session.host.name
            }
        return _(
            "You are not among the members this round covers, so there is nothing to check in."
        )
    return ""


def _elsewhere_refusal(attendance: Attendance) -> str:
    return _(
        "You are already checked in at %(where)s, at the same time as this group "
        "session. One person attends one group session at a time; if that record "
        "is wrong, ask the site operator."
    ) % {"where": attendance_place(attendance)}


def _check_in_status(sitting: Sitting, now) -> str:
    late = now > sitting.start + timedelta(minutes=settings.LUNXUN_LATE_MINUTES)
    return Attendance.Status.LATE if late else Attendance.Status.PRESENT


def check_in(*, member: Member, sitting: Sitting, now=None, request=None) -> CheckIn:
    """Record that ``member`` is at ``sitting``; checking in twice changes nothing."""
    now = now or timezone.now()
    training_round = sitting.session.round
    refusal = _check_in_refusal(sitting=sitting, member=member, now=now)
    if refusal:
        raise CheckInRefused(refusal)
    status = _check_in_status(sitting, now)
    with transaction.atomic():
        _lock_members([member.pk])
        attendance = Attendance.objects.filter(sitting=sitting, member=member).first()
        if attendance is not None and attendance.attended:
            return CheckIn(attendance, created=False)
        elsewhere = attended_elsewhere(sitting=sitting, member_ids=[member.pk]).get(member.pk)
        if elsewhere is not None:
            raise CheckInRefused(_elsewhere_refusal(elsewhere))
        if attendance is None:
            attendance = Attendance(sitting=sitting, member=member)
        attendance.status = status
        attendance.method = Attendance.Method.QR
        attendance.recorded_at = now
        attendance.recorded_by = None
        attendance.save()
        created = True
    if created:
        audit_event(
            event="check_in", obj=attendance, actor=member.user, request=request, status=status
        )
        if training_round is not None:
            participation_refresh(training_round=training_round, member_ids=[member.pk])
    return CheckIn(attendance, created=created)


def check_ins_record(*, sitting: Sitting, arrivals: dict, user, request=None) -> dict:
    """Check in many members at once at ``sitting`` by the rules of ``check_in``: arrivals
    {member: the moment they arrived}, from personal codes a site terminal read offline and its
    operator (``user``) sent (rounds/terminals.py). Returns {member id: "" when checked in or
    already there, else why not}. One lock, one look at other sittings, one participation
    refresh; an audit record per attendance written, as for a member's own check-in."""
    training_round = sitting.session.round
    if training_round is not None:  # the scope, read once for all
        training_round = Round.objects.prefetch_related("scope_roots").get(pk=training_round.pk)
        sitting.session.round = training_round
    answers = {}
    arriving = {}
    for member, at in arrivals.items():
        answers[member.pk] = _check_in_refusal(sitting=sitting, member=member, now=at)
        if not answers[member.pk]:
            arriving[member.pk] = (member, at)
    written = []
    with transaction.atomic(), hours_summary_batch():
        _lock_members(list(arriving))
        existing = {
            a.member_id: a for a in Attendance.objects.filter(sitting=sitting, member__in=arriving)
        }
        new_ids = [m for m in arriving if not (m in existing and existing[m].attended)]
        elsewhere = attended_elsewhere(sitting=sitting, member_ids=new_ids)
        for member_id in new_ids:
            if member_id in elsewhere:
                answers[member_id] = _elsewhere_refusal(elsewhere[member_id])
                continue
            member, at = arriving[member_id]
            attendance = existing.get(member_id) or Attendance(sitting=sitting, member=member)
            attendance.status = _check_in_status(sitting, at)
            attendance.method = Attendance.Method.PERSONAL_CODE
            attendance.recorded_at = at
            attendance.recorded_by = user
            written.append(attendance)
        Attendance.objects.bulk_create([a for a in written if a.pk is None], batch_size=500)
        for attendance in written:
            if attendance.pk is not None and attendance.member_id in existing:
                attendance.save()
        # A bulk insert sends no post_save: the yearly hours of those it checked in (the year
        # of the sitting as stored, whatever the object passed in says).
        year = year_of(Sitting.objects.values_list("start", flat=True).get(pk=sitting.pk))
        hours_summary_refresh(pairs=[(a.member_id, year) for a in written])
    for attendance in written:
        audit_event(
            event="check_in",
            obj=attendance,
            actor=user,
            request=request,
            status=attendance.status,
            method=attendance.method,
        )
    if written and training_round is not None:
        participation_refresh(
            training_round=training_round, member_ids=[a.member_id for a in written]
        )
    return answers


def _lock_members(member_ids) -> None:
    """Lock the members' rows until the transaction ends, so two writes of attendance for one
    member (a relayed photo of the code scanned at two sites at once) queue and the second
    sees the first. A row lock on PostgreSQL; on SQLite the IMMEDIATE transaction already
    holds the write lock."""
    list(Member.objects.select_for_update().filter(pk__in=member_ids).order_by("pk").values("pk"))


def attended_elsewhere(*, sitting: Sitting, member_ids) -> dict[int, Attendance]:
    """{member_id: attendance} for those of ``member_ids`` recorded present or late at another
    sitting whose time overlaps ``sitting``'s, in any round: nobody is in two places at once."""
    records = (
        Attendance.objects.filter(
            member_id__in=member_ids,
            status__in=Attendance.ATTENDED,
            sitting__start__lt=sitting.end,
            sitting__end__gt=sitting.start,
        )
        .exclude(sitting=sitting)
        .select_related("sitting__session__event", "sitting__session__host", "member")
        .order_by("sitting__start")
    )
    found = {}
    for record in records:
        found.setdefault(record.member_id, record)
    return found


def attendance_place(attendance: Attendance) -> str:
    """Which sitting an attendance is at: “11月集中学习” (红旗村党支部, 11-12 09:00)."""
    session = attendance.sitting.session
    return _("“%(title)s” (%(place)s, %(time)s)") % {
        "title": session.title,
        "place": session.location or session.host.name,
        "time": timezone.localtime(attendance.sitting.start).strftime("%m-%d %H:%M"),
    }


def roll_call_members(sitting: Sitting):
    """Who the roll call lists: whom the session expects there (Session.members_expected) and
    anyone checked in."""
    expected = sitting.session.members_expected().values("pk")
    checked_in = Attendance.objects.filter(sitting=sitting).values("member_id")
    return (
        Member.objects.filter(Q(pk__in=expected) | Q(pk__in=checked_in))
        .select_related("organization")
        .order_by("organization__path", "name")
    )


class RollCallError(Exception):
    pass


def roll_call_save(
    *,
    sitting: Sitting,
    marks: dict,
    user,
    reason: str = "",
    method: str = Attendance.Method.ROLL_CALL,
    request=None,
) -> int:
    """Save the operator's marks {member_id: status or ""}; returns how many records changed.

    After the sitting is closed every change needs a reason and is audit-logged with it.
    ``method`` is how the marks were taken (roll call in the room, or ticks entered from the
    paper sign-in sheet, ``rounds.paper``); the records it writes carry it.
    """
    allowed = set(roll_call_members(sitting).values_list("pk", flat=True))
    valid = set(Attendance.Status.values)
    marks = {int(k): v for k, v in marks.items() if int(k) in allowed and (v in valid or v == "")}
    if sitting.is_closed and not reason.strip():
        raise RollCallError(_("This session is closed: say why you are changing attendance."))
    now = timezone.now()
    changed = []
    with transaction.atomic(), hours_summary_batch():
        _lock_members([m for m, status in marks.items() if status in Attendance.ATTENDED])
        existing = {
            a.member_id: a
            for a in Attendance.objects.select_for_update().filter(
                sitting=sitting, member_id__in=marks
            )
        }
        arriving = [
            member_id
            for member_id, status in marks.items()
            if status in Attendance.ATTENDED
            and not (member_id in existing and existing[member_id].attended)
        ]
        elsewhere = attended_elsewhere(sitting=sitting, member_ids=arriving)
        if elsewhere:
            raise RollCallError(
                _(
                    "Already recorded at another group session at the same time: %(list)s. "
                    "Nothing was saved. Mark them otherwise here, or correct the other record "
                    "first."
                )
                % {
                    "list": _("; ").join(
                        f"{record.member.name} {attendance_place(record)}"
                        for record in elsewhere.values()
                    )
                }
            )
        for member_id, status in marks.items():
            record = existing.get(member_id)
            before = record.status if record else ""
            if before == status:
                continue
            if status == "":
                record.delete()
            elif record is None:
                record = Attendance.objects.create(
                    sitting=sitting,
                    member_id=member_id,
                    status=status,
                    method=method,
                    recorded_by=user,
                    recorded_at=now,
                )
            else:
                record.status = status
                record.method = method
                record.recorded_by = user
                record.recorded_at = now
                record.save()
            changed.append((member_id, before, status))
        if changed:
            audit_event(
                event="roll_call" if not sitting.is_closed else "attendance_corrected",
                obj=sitting,
                actor=user,
                request=request,
                reason=reason.strip(),
                method=str(method),
                changes=[{"member": m, "before": b, "after": a} for m, b, a in changed],
            )
    if changed and sitting.session.round_id is not None:
        participation_refresh(
            training_round=sitting.session.round, member_ids=[m for m, _b, _a in changed]
        )
    return len(changed)


def sitting_close(*, sitting: Sitting, user, request=None) -> Sitting:
    if not sitting.is_closed:
        sitting.closed_at = timezone.now()
        sitting.closed_by = user
        sitting.save(update_fields=["closed_at", "closed_by"])
        audit_event(event="sitting_closed", obj=sitting, actor=user, request=request)
    return sitting


# --- Leave and exemption -----------------------------------------------------------------------


class LeaveError(Exception):
    pass


def leave_request(
    *, member: Member, training_round: Round, reason: str, session=None, request=None
):
    reason = (reason or "").strip()
    if not reason:
        raise LeaveError(_("Say why you cannot attend."))
    if not training_round.includes(member) or training_round.state != Round.State.PUBLISHED:
        raise LeaveError(_("This round does not ask anything of you."))
    if session is not None and session.round_id != training_round.pk:
        raise LeaveError(_("That group session belongs to another round."))
    try:
        with transaction.atomic():
            leave = LeaveRequest.objects.create(
                member=member, round=training_round, session=session, reason=reason[:500]
            )
    except IntegrityError:
        raise LeaveError(_("You have already asked for leave in this round.")) from None
    audit_event(event="leave_requested", obj=leave, actor=member.user, request=request)
    return leave


def leave_withdraw(*, leave: LeaveRequest, request=None) -> LeaveRequest:
    if leave.state in LeaveRequest.ACTIVE:
        leave.state = LeaveRequest.State.WITHDRAWN
        leave.save(update_fields=["state"])
        audit_event(event="leave_withdrawn", obj=leave, actor=leave.member.user, request=request)
        participation_refresh(training_round=leave.round, member_ids=[leave.member_id])
    return leave


def leave_decide(*, leave: LeaveRequest, approve: bool, user, note: str = "", request=None):
    """Approve (the member owes a make-up by the deadline) or refuse a pending request.

    Nobody decides their own request: a secretary's leave goes to the level above her.
    """
    if access.is_self(user, leave.member):
        raise LeaveError(
            _("You cannot decide your own leave request: it goes to the level above you.")
        )
    with transaction.atomic():
        leave = LeaveRequest.objects.select_for_update().get(pk=leave.pk)
        if leave.state != LeaveRequest.State.PENDING:
            raise LeaveError(_("This request has already been decided."))
        leave.state = LeaveRequest.State.APPROVED if approve else LeaveRequest.State.REFUSED
        leave.decided_by = user
        leave.decided_at = timezone.now()
        leave.decision_note = (note or "").strip()[:200]
        leave.save()
        audit_event(
            event="leave_approved" if approve else "leave_refused",
            obj=leave,
            actor=user,
            request=request,
            note=leave.decision_note,
        )
    participation_refresh(training_round=leave.round, member_ids=[leave.member_id])
    return leave


def exemption_grant(*, member: Member, training_round: Round, reason: str, user, request=None):
    """Take ``member`` out of the round's denominator; nobody exempts themselves."""
    if access.is_self(user, member):
        raise LeaveError(_("You cannot exempt yourself: the level above you decides that."))
    reason = (reason or "").strip()
    if not reason:
        raise LeaveError(_("Say why this member is exempt."))
    try:
        with transaction.atomic():
            exemption = Exemption.objects.create(
                member=member, round=training_round, reason=reason[:200], granted_by=user
            )
    except IntegrityError:
        raise LeaveError(_("This member is already exempt from this round.")) from None
    audit_event(
        event="exemption_granted", obj=exemption, actor=user, request=request, reason=reason
    )
    participation_refresh(training_round=training_round, member_ids=[member.pk])
    return exemption


def exemption_revoke(*, exemption: Exemption, user, request=None):
    """Count the member again; like granting it, not a decision about oneself."""
    if access.is_self(user, exemption.member):
        raise LeaveError(
            _("You cannot withdraw your own exemption: the level above you decides that.")
        )
    if exemption.revoked_at is None:
        exemption.revoked_at = timezone.now()
        exemption.revoked_by = user
        exemption.save(update_fields=["revoked_at", "revoked_by"])
        audit_event(event="exemption_revoked", obj=exemption, actor=user, request=request)
        participation_refresh(training_round=exemption.round, member_ids=[exemption.member_id])
    return exemption


# --- Closing -----------------------------------------------------------------------------------


def round_close(*, training_round: Round, user=None, request=None) -> Round:
    """Close the round: freeze every node's figures and each member's status for reporting."""
    with transaction.atomic():
        training_round = Round.objects.select_for_update().get(pk=training_round.pk)
        if training_round.state == Round.State.CLOSED:
            return training_round
        participation_refresh(training_round=training_round)
        now = timezone.now()
        Participation.objects.filter(round=training_round).update(closing_status=F("status"))
        figures = coverage_by_organization(training_round=training_round)
        CoverageSnapshot.objects.filter(round=training_round).delete()
        CoverageSnapshot.objects.bulk_create(
            [
                CoverageSnapshot(round=training_round, organization_id=org_id, taken_at=now, **row)
                for org_id, row in figures.items()
            ],
            batch_size=2000,
        )
        training_round.state = Round.State.CLOSED
        training_round.closed_at = now
        training_round.closed_by = user
        training_round.save(update_fields=["state", "closed_at", "closed_by", "updated_at"])
        audit_event(
            event="round_closed",
            obj=training_round,
            actor=user,
            request=request,
            nodes=len(figures),
        )
        closed_pk = training_round.pk
        transaction.on_commit(lambda: round_closed.send(sender=Round, round_id=closed_pk))
    return training_round


def rounds_close_due(*, today=None) -> list[Round]:
    """Close published rounds whose closing date has passed (run daily)."""
    today = today or timezone.localdate()
    closed = []
    for training_round in Round.objects.filter(state=Round.State.PUBLISHED, closes_on__lt=today):
        closed.append(round_close(training_round=training_round))
    return closed

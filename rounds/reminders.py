"""Reminders (催学提醒): the secretary's one action, the automatic run before deadlines, digests.

Rules every path follows:

- Only members who are not done are reminded: in the round's scope, in the subtree, with a
  status in ``coverage.MISSING`` and a deadline still ahead (the round's closing date, or the
  make-up deadline for members on leave).
- At most one reminder per member per day, whatever the round. The ``Reminder`` row is the
  claim: rows are inserted first and only members whose row this call inserted are sent
  anything, so two clicks or two workers never double-send.
- Nothing goes out in quiet hours (``LUNXUN_QUIET_HOURS``, local time). The secretary's action
  is then scheduled for the end of quiet hours; the automatic run skips.
- Each reminder is an in-site notice, an email when the member's account has an address, and
  an SMS through the pluggable backend (``core.sms``). Messages carry the member's name and
  nothing else personal.
"""

import logging
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from core.audit import OK, REFUSED, SCHEDULED, audit_event
from core.sms import SmsMessage, SmsSendError, send_sms
from members import access
from members.models import Member, Organization, Role, RoleAssignment, mask_phone

from .coverage import MISSING, members_in_node, with_status
from .models import Notice, Participation, Reminder, Round, day_start
from .participation import lessons_missing
from .services import rounds_close_due
from .tasks import reminders_send_deferred_task

logger = logging.getLogger(__name__)

P = Participation.Status
# Members chased for the round's closing date; those on leave are chased for the make-up.
CHASED = (P.NOT_STARTED, P.IN_PROGRESS)
CHUNK = 500
DIGEST_NAMES = 200  # names listed in a digest email; the coverage page has the rest
NOTICE_NAMES = 30


# --- Quiet hours -------------------------------------------------------------------------------


def is_quiet_time(now: datetime | None = None) -> bool:
    """True when ``now`` (local time) falls in ``LUNXUN_QUIET_HOURS`` = (start, end) hours."""
    start, end = settings.LUNXUN_QUIET_HOURS
    hour = timezone.localtime(now).hour
    if start == end:
        return False
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


def quiet_time_end(now: datetime | None = None) -> datetime:
    """The first moment after ``now`` when sending is allowed again (``now`` if it already is)."""
    now = now or timezone.now()
    if not is_quiet_time(now):
        return now
    _start, end = settings.LUNXUN_QUIET_HOURS
    local = timezone.localtime(now)
    day = local.date() if local.hour < end else local.date() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, time(end)))


# --- Who is reminded ---------------------------------------------------------------------------


def _within(deadline: date, today: date, horizon: date | None) -> bool:
    return today <= deadline and (horizon is None or deadline <= horizon)


def statuses_due(training_round: Round, today: date, horizon: date | None = None) -> list[str]:
    """Statuses whose deadline lies between ``today`` and ``horizon`` (open-ended if None).

    A closed round still chases members on leave until their make-up deadline.
    """
    statuses = []
    if training_round.state == Round.State.PUBLISHED and _within(
        training_round.closes_on, today, horizon
    ):
        statuses += CHASED
    if training_round.state != Round.State.DRAFT and _within(
        training_round.makeup_deadline, today, horizon
    ):
        statuses.append(P.LEAVE)
    return statuses


def reminder_targets(*, training_round: Round, node: Organization | None, statuses):
    """Members of ``node``'s subtree (the whole scope if None) not done, among ``statuses``."""
    statuses = [s for s in statuses if s in MISSING]
    if not statuses:
        return Member.objects.none()
    members = members_in_node(training_round, node) if node else training_round.members_in_scope()
    return (
        with_status(members, training_round)
        .filter(round_status__in=statuses)
        .select_related("user", "organization")
        .order_by("organization__path", "name", "pk")
    )


def deadline_for(training_round: Round, status: str) -> date:
    return training_round.makeup_deadline if status == P.LEAVE else training_round.closes_on


def due_groups(today: date, horizon: date) -> list[tuple[date, Round, tuple]]:
    """(deadline, round, statuses) with a deadline within [today, horizon], nearest first."""
    groups = []
    closing = Round.objects.filter(
        state=Round.State.PUBLISHED, closes_on__gte=today, closes_on__lte=horizon
    )
    for training_round in closing:
        groups.append((training_round.closes_on, training_round, CHASED))
    makeup = Round.objects.filter(
        state__in=[Round.State.PUBLISHED, Round.State.CLOSED],
        makeup_deadline__gte=today,
        makeup_deadline__lte=horizon,
    )
    for training_round in makeup:
        groups.append((training_round.makeup_deadline, training_round, (P.LEAVE,)))
    groups.sort(key=lambda g: (g[0], g[1].pk, g[2]))
    return groups


# --- Messages ----------------------------------------------------------------------------------


def _path(name, *args, query=""):
    return reverse(name, args=args) + query


def absolute_url(path: str) -> str:
    return settings.LUNXUN_SITE_URL.rstrip("/") + path


def _day(value: date) -> str:
    return formats.date_format(value, "MONTH_DAY_FORMAT")


@dataclass
class MemberMessage:
    subject: str
    title: str
    text: str
    sms: str
    url: str  # the member's round page, site-relative
    sms_params: dict  # what a provider's SMS template is filled with (core.sms.PURPOSES)


def member_message(*, member, training_round: Round, missing: list[str]) -> MemberMessage:
    """The reminder a member receives, in the active language (the site's, when sending)."""
    status = member.round_status
    on_leave = status == P.LEAVE
    url = _path("rounds:detail", training_round.pk)
    values = {
        "name": member.name,
        "round": training_round.title,
        "deadline": _day(deadline_for(training_round, status)),
        "url": absolute_url(url),
        "count": len(missing),
        "lessons": pgettext("list separator", ", ").join(missing),
    }
    if on_leave and missing:
        text = ngettext(
            "[Training reminder] %(name)s, you are on leave from %(round)s: your make-up is "
            "due by %(deadline)s. You still have %(count)s required lesson to complete: "
            "%(lessons)s. Please log in at %(url)s to study.",
            "[Training reminder] %(name)s, you are on leave from %(round)s: your make-up is "
            "due by %(deadline)s. You still have %(count)s required lessons to complete: "
            "%(lessons)s. Please log in at %(url)s to study.",
            len(missing),
        )
    elif on_leave:
        text = _(
            "[Training reminder] %(name)s, you are on leave from %(round)s: your make-up is "
            "due by %(deadline)s. Please log in at %(url)s to see what is missing."
        )
    elif missing:
        text = ngettext(
            "[Training reminder] %(name)s, %(round)s closes on %(deadline)s. You still have "
            "%(count)s required lesson to complete: %(lessons)s. Please log in at %(url)s "
            "to study.",
            "[Training reminder] %(name)s, %(round)s closes on %(deadline)s. You still have "
            "%(count)s required lessons to complete: %(lessons)s. Please log in at %(url)s "
            "to study.",
            len(missing),
        )
    else:
        text = _(
            "[Training reminder] %(name)s, %(round)s closes on %(deadline)s and you have not "
            "completed it yet. Please log in at %(url)s to see what is missing."
        )
    # SMS: short, the site's address rather than a deep link, no lesson titles.
    short = {**values, "url": settings.LUNXUN_SITE_URL.rstrip("/")}
    if on_leave:
        sms = _(
            "[Training reminder] %(name)s, your make-up for %(round)s is due by %(deadline)s. "
            "Log in at %(url)s to study."
        )
    elif missing:
        sms = ngettext(
            "[Training reminder] %(name)s, %(round)s closes on %(deadline)s; %(count)s "
            "required lesson is not done. Log in at %(url)s to study.",
            "[Training reminder] %(name)s, %(round)s closes on %(deadline)s; %(count)s "
            "required lessons are not done. Log in at %(url)s to study.",
            len(missing),
        )
    else:
        sms = _(
            "[Training reminder] %(name)s, %(round)s closes on %(deadline)s and you have not "
            "completed it yet. Log in at %(url)s to see what is missing."
        )
    return MemberMessage(
        subject=_("[Training reminder] %(round)s") % values,
        title=_("Training reminder: %(round)s") % values,
        text=text % values,
        sms=sms % short,
        url=url,
        sms_params={key: values[key] for key in ("name", "round", "deadline")},
    )


# --- Sending -----------------------------------------------------------------------------------


@dataclass
class ReminderResult:
    reminded: int = 0  # members reminded by this call
    already: int = 0  # members skipped: already reminded today
    notices: int = 0
    emails: int = 0
    sms: int = 0
    rounds: int = 0  # automatic run: rounds that had members to remind
    quiet: bool = False  # nothing sent: quiet hours
    resume_at: datetime | None = None  # quiet hours: when sending is allowed again
    scheduled_for: datetime | None = None  # quiet hours: when the secretary's action runs
    pending: int = 0  # quiet hours: members who will be reminded then
    member_ids: list = None  # the members reminded by this call, for the audit record

    def __post_init__(self):
        if self.member_ids is None:
            self.member_ids = []

    def message(self) -> str:
        """What the secretary reads after clicking."""
        if self.quiet and self.pending:
            when = timezone.localtime(self.scheduled_for or self.resume_at)
            values = {
                "n": self.pending,
                "time": f"{_day(when.date())} {formats.time_format(when.time(), 'H:i')}",
            }
            if self.scheduled_for is None:
                return (
                    _("No reminders are sent at night. Please try again after %(time)s.") % values
                )
            return (
                ngettext(
                    "No reminders are sent at night: the reminder to %(n)s member will go out "
                    "at %(time)s.",
                    "No reminders are sent at night: the reminders to %(n)s members will go out "
                    "at %(time)s.",
                    self.pending,
                )
                % values
            )
        if not self.reminded and not self.already and not self.pending:
            return _("Nobody here needs a reminder: everyone is done, exempt or past the deadline.")
        parts = [
            ngettext("%(n)s member reminded.", "%(n)s members reminded.", self.reminded)
            % {"n": self.reminded}
        ]
        if self.already:
            parts.append(
                ngettext(
                    "%(n)s member was already reminded today and was not reminded again.",
                    "%(n)s members were already reminded today and were not reminded again.",
                    self.already,
                )
                % {"n": self.already}
            )
        return " ".join(parts)

    def as_dict(self):
        return {
            "reminded": self.reminded,
            "already": self.already,
            "notices": self.notices,
            "emails": self.emails,
            "sms": self.sms,
            "rounds": self.rounds,
            "quiet": self.quiet,
            "scheduled_for": self.scheduled_for.isoformat() if self.scheduled_for else None,
            "pending": self.pending,
        }


def _channels(member) -> list[str]:
    channels = ["notice"]
    if member.user.email:
        channels.append("email")
    if member.phone:
        channels.append("sms")
    return channels


def _claim(*, training_round, members, user, now) -> tuple[list, int]:
    """Insert today's ``Reminder`` rows; return the members whose row this call inserted.

    The unique (member, sent_on) constraint decides races: a row that already exists, or that
    another worker inserts first, is ignored. ``sent_at`` is this call's own instant, so the
    rows it inserted can be told from earlier ones; a pre-read keeps rows from an earlier call
    at the same (frozen) instant out.
    """
    today = timezone.localdate(now)
    ids = [m.pk for m in members]
    taken = set(
        Reminder.objects.filter(member_id__in=ids, sent_on=today).values_list(
            "member_id", flat=True
        )
    )
    fresh = [m for m in members if m.pk not in taken]
    if not fresh:
        return [], len(members)
    with transaction.atomic():
        Reminder.objects.bulk_create(
            [
                Reminder(
                    member=m,
                    round=training_round,
                    sent_on=today,
                    sent_at=now,
                    channels=_channels(m),
                    sent_by=user,
                )
                for m in fresh
            ],
            ignore_conflicts=True,
        )
        mine = set(
            Reminder.objects.filter(
                member_id__in=[m.pk for m in fresh],
                sent_on=today,
                sent_at=now,
                round=training_round,
                sent_by=user,
            ).values_list("member_id", flat=True)
        )
    claimed = [m for m in fresh if m.pk in mine]
    return claimed, len(members) - len(claimed)


def _send(*, training_round, members, result: ReminderResult):
    """Notice, email and SMS for ``members`` (already claimed for today)."""
    missing = lessons_missing(training_round=training_round, member_ids=[m.pk for m in members])
    notices, emails, texts = [], [], []
    with translation.override(settings.LANGUAGE_CODE):
        for member in members:
            message = member_message(
                member=member, training_round=training_round, missing=missing[member.pk]
            )
            notices.append(
                Notice(
                    user_id=member.user_id,
                    round=training_round,
                    title=message.title[:200],
                    body=message.text,
                    url=message.url,
                )
            )
            if member.user.email:
                body = render_to_string(
                    "rounds/email/reminder.txt",
                    {
                        "text": message.text,
                        "lessons": missing[member.pk],
                        "url": absolute_url(message.url),
                    },
                )
                emails.append(mail.EmailMessage(message.subject, body, to=[member.user.email]))
            if member.phone:
                texts.append(
                    SmsMessage(
                        phone=member.phone,
                        text=message.sms,
                        purpose="reminder",
                        params=message.sms_params,
                    )
                )
    Notice.objects.bulk_create(notices)
    result.notices += len(notices)
    # The claim is made: a failing channel is logged and must not stop the others.
    if emails:
        try:
            result.emails += mail.get_connection().send_messages(emails) or 0
        except Exception:
            logger.exception("Sending %s reminder emails failed", len(emails))
    if texts:
        try:
            result.sms += send_sms(texts)
        except SmsSendError as error:  # some went out (counted), the others are named
            result.sms += error.sent
            logger.error(
                "%s of %s reminder text messages were not sent: %s",
                len(texts) - error.sent,
                len(texts),
                error,
            )
        except Exception:
            logger.exception("Sending %s reminder text messages failed", len(texts))


def _remind(*, training_round, members, user, now, result: ReminderResult):
    for start in range(0, len(members), CHUNK):
        claimed, skipped = _claim(
            training_round=training_round,
            members=members[start : start + CHUNK],
            user=user,
            now=now,
        )
        result.already += skipped
        result.reminded += len(claimed)
        result.member_ids += [m.pk for m in claimed]
        if claimed:
            _send(training_round=training_round, members=claimed, result=result)


def reminders_send(
    *, training_round: Round, node: Organization, user, request=None, now=None
) -> ReminderResult:
    """The secretary's one action: remind every member of ``node``'s subtree who is not done.

    The caller has checked that ``user`` may act on ``node`` and sees ``training_round``. In
    quiet hours nothing is sent; the action is scheduled for the end of quiet hours when the
    task backend can defer, and the result says when.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    statuses = statuses_due(training_round, today)
    targets = reminder_targets(training_round=training_round, node=node, statuses=statuses)
    result = ReminderResult()
    if is_quiet_time(now):
        result.quiet = True
        result.pending = targets.count()
        result.resume_at = quiet_time_end(now)
        if result.pending:
            result.scheduled_for = _schedule(training_round, node, user, result.resume_at)
        refused = bool(result.pending and not result.scheduled_for)
        audit_event(
            event="reminders_scheduled",
            obj=training_round,
            actor=user,
            request=request,
            result=SCHEDULED if result.scheduled_for else REFUSED if refused else OK,
            **({"error": result.message()} if refused else {}),
            organization=node.pk,
            pending=result.pending,
            run_after=result.scheduled_for.isoformat() if result.scheduled_for else None,
        )
        return result
    _remind(training_round=training_round, members=list(targets), user=user, now=now, result=result)
    audit_event(
        event="reminders_sent",
        obj=training_round,
        actor=user,
        request=request,
        organization=node.pk,
        reminded=result.reminded,
        already=result.already,
        notices=result.notices,
        emails=result.emails,
        sms=result.sms,
        member_ids=result.member_ids,
    )
    return result


def _schedule(training_round, node, user, run_after) -> datetime | None:
    if not reminders_send_deferred_task.get_backend().supports_defer:
        return None
    # Enqueued at once rather than on commit: it runs hours later, after the end of quiet hours.
    reminders_send_deferred_task.using(run_after=run_after).enqueue(
        training_round.pk, node.pk, user.pk
    )
    return run_after


def reminders_send_deferred(*, round_id: int, node_id: int, user_id: int) -> ReminderResult | None:
    """Run a secretary's action scheduled in quiet hours, if they may still act on the node."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    node = Organization.objects.filter(pk=node_id).first()
    if user is None or node is None:
        return None
    roles = (Role.TRAINER, Role.SECRETARY)
    if not access.can_see_organization(user, node, roles):
        return None
    training_round = (
        Round.objects.published()
        .visible_to_roots(access.role_roots(user, roles))
        .filter(pk=round_id)
        .first()
    )
    if training_round is None:
        return None
    return reminders_send(training_round=training_round, node=node, user=user)


def reminders_due(*, now=None) -> ReminderResult:
    """The automatic run: remind members whose deadline is within the reminder window.

    Each member is reminded automatically once per deadline window (members can still be
    reminded by their secretary), most urgent round first, and never twice in a day.
    """
    now = now or timezone.now()
    result = ReminderResult()
    if is_quiet_time(now):
        result.quiet = True
        return result
    today = timezone.localdate(now)
    days = settings.LUNXUN_REMINDER_DAYS_BEFORE
    for deadline, training_round, statuses in due_groups(today, today + timedelta(days=days)):
        already_automatic = Reminder.objects.filter(
            round=training_round,
            sent_by__isnull=True,
            sent_on__gte=deadline - timedelta(days=days),
        ).values("member_id")
        members = list(
            reminder_targets(training_round=training_round, node=None, statuses=statuses).exclude(
                pk__in=already_automatic
            )
        )
        if members:
            result.rounds += 1
            before = len(result.member_ids)
            _remind(
                training_round=training_round,
                members=members,
                user=None,
                now=now,
                result=result,
            )
            audit_event(
                event="reminders_sent",
                obj=training_round,
                automatic=True,
                deadline=deadline.isoformat(),
                reminded=len(result.member_ids) - before,
                member_ids=result.member_ids[before:],
            )
    return result


# --- Digest ------------------------------------------------------------------------------------


def digest_send(*, now=None) -> int:
    """Send each secretary, once a day while a round's deadline is near, the list of members of
    their organisation's subtree who are not done: an email (if they have an address) and a
    notice. Names are shown; phone numbers are masked. Returns how many digests were sent.
    """
    now = now or timezone.now()
    if is_quiet_time(now):
        return 0
    today = timezone.localdate(now)
    horizon = today + timedelta(days=settings.LUNXUN_REMINDER_DAYS_BEFORE)
    by_round: dict[int, tuple[Round, set]] = {}
    for _deadline, training_round, statuses in due_groups(today, horizon):
        by_round.setdefault(training_round.pk, (training_round, set()))[1].update(statuses)
    if not by_round:
        return 0
    assignments = list(
        RoleAssignment.objects.filter(role=Role.SECRETARY, user__is_active=True)
        .select_related("user", "organization")
        .order_by("organization__path", "pk")
    )
    sent = 0
    for training_round, statuses in by_round.values():
        rows = sorted(
            reminder_targets(
                training_round=training_round, node=None, statuses=statuses
            ).values_list("organization__path", "name", "phone", "round_status", "pk")
        )
        paths = [row[0] for row in rows]
        recipients = []
        for assignment in assignments:
            prefix = assignment.organization.path
            # Paths are alphanumeric: everything under ``prefix`` sorts before prefix + DEL.
            missing = rows[bisect_left(paths, prefix) : bisect_left(paths, prefix + "\x7f")]
            if missing and _digest(training_round, assignment, missing, today):
                sent += 1
                recipients.append(assignment.user_id)
        if recipients:
            audit_event(event="reminder_digests_sent", obj=training_round, user_ids=recipients)
    return sent


def _digest(training_round, assignment, missing, today) -> bool:
    organization = assignment.organization
    user = assignment.user
    url = _path("rounds:coverage", training_round.pk, query=f"?org={organization.pk}")
    if Notice.objects.filter(
        user=user, round=training_round, url=url, created_at__gte=day_start(today)
    ).exists():
        return False
    with translation.override(settings.LANGUAGE_CODE):
        people = [
            {
                "name": name,
                "phone": mask_phone(phone),
                "status": P(status).label,
                "deadline": _day(deadline_for(training_round, status)),
            }
            for _org_path, name, phone, status, _pk in missing
        ]
        values = {
            "organization": organization.name,
            "round": training_round.title,
            "count": len(missing),
        }
        summary = (
            ngettext(
                "%(count)s member of %(organization)s has not completed %(round)s yet.",
                "%(count)s members of %(organization)s have not completed %(round)s yet.",
                len(missing),
            )
            % values
        )
        names = pgettext("list separator", ", ").join(p["name"] for p in people[:NOTICE_NAMES])
        if len(people) > NOTICE_NAMES:
            names += " " + _("and %(n)s more") % {"n": len(people) - NOTICE_NAMES}
        Notice.objects.create(
            user=user,
            round=training_round,
            title=(_("Members not done: %(round)s") % values)[:200],
            body=f"{summary} {names}",
            url=url,
        )
        if user.email:
            body = render_to_string(
                "rounds/email/digest.txt",
                {
                    "summary": summary,
                    "people": people[:DIGEST_NAMES],
                    "more": max(0, len(people) - DIGEST_NAMES),
                    "url": absolute_url(url),
                },
            )
            subject = _("[Members not done] %(organization)s · %(round)s") % values
            try:
                mail.EmailMessage(subject, body, to=[user.email]).send()
            except Exception:
                logger.exception("Sending the reminder digest to user %s failed", user.pk)
    return True


# --- The daily job -----------------------------------------------------------------------------


def reminders_daily(*, now=None) -> dict:
    """What runs once a day: close rounds past their date, automatic reminders, digests."""
    now = now or timezone.now()
    closed = rounds_close_due(today=timezone.localdate(now))
    result = reminders_due(now=now)
    digests = digest_send(now=now)
    return {"closed": len(closed), "digests": digests, **result.as_dict()}

from auditlog.registry import auditlog
from django.contrib.auth.models import Permission
from django.db.models import QuerySet
from django.db.models.signals import (
    m2m_changed,
    post_delete,
    post_save,
    pre_delete,
    pre_save,
)
from django.dispatch import receiver

from courses.models import LessonProgress
from courses.services import lesson_hours_earned, lesson_progress_changed
from members.demo import demo_city_seeded
from members.importing import roster_changed
from members.models import Member, Organization, Posting
from members.services import trainer_group_ready
from quizzes.services import quiz_attempt_submitted

from . import counters, demo
from .hours import hours_summary_refresh, year_of
from .models import (
    Attendance,
    Exemption,
    LeaveRequest,
    Participation,
    PlanTarget,
    Round,
    Session,
    Sitting,
    StudyPlan,
    StudyRecord,
)
from .participation import participation_refresh, rounds_requiring, rounds_requiring_quiz

auditlog.register(Round, m2m_fields={"scope_roots", "lessons"}, exclude_fields=["updated_at"])
auditlog.register(Session, exclude_fields=["qr_key"])
auditlog.register(Sitting)
auditlog.register(Attendance)
auditlog.register(LeaveRequest)
auditlog.register(Exemption)
auditlog.register(StudyRecord, exclude_fields=["form_token"])
auditlog.register(StudyPlan)
auditlog.register(PlanTarget)


@receiver(lesson_progress_changed)
def keep_participation_current(sender, member_id, lesson_id, **kwargs):
    """A member started or completed a lesson: refresh their status in rounds requiring it."""
    member = Member.objects.select_related("organization").filter(pk=member_id).first()
    if member is None:
        return
    for training_round in rounds_requiring(lesson_id).prefetch_related("scope_roots"):
        if training_round.includes(member):
            participation_refresh(training_round=training_round, member_ids=[member_id])


@receiver(quiz_attempt_submitted)
def keep_participation_current_after_quiz(sender, attempt, **kwargs):
    """A member passed a test: refresh their status in the "watched and passed" rounds it
    counts in (a failed attempt changes no status)."""
    if not attempt.passed:
        return
    member = Member.objects.select_related("organization").filter(pk=attempt.member_id).first()
    if member is None:
        return
    quiz = attempt.quiz
    for training_round in rounds_requiring_quiz(quiz).prefetch_related("scope_roots"):
        if training_round.includes(member):
            participation_refresh(training_round=training_round, member_ids=[member.pk])


@receiver(trainer_group_ready)
def grant_round_permissions(sender, group, **kwargs):
    """Trainers plan rounds and schedule group sessions in the admin."""
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="rounds",
            codename__in=[
                "add_round",
                "change_round",
                "view_round",
                "add_session",
                "change_session",
                "delete_session",
                "view_session",
                "add_studyplan",
                "change_studyplan",
                "view_studyplan",
            ],
        )
    )


@receiver(demo_city_seeded)
def seed_demo_rounds(sender, **kwargs):
    return demo.seed_demo_rounds()


# --- The yearly hours summary (rounds/hours.py), in the transaction of each write ------------
# Django sends these inside the transaction of the save or delete (cascades included); the
# writes it sends nothing for (bulk inserts, queryset updates) refresh the summary themselves.

HOURS_FIELDS = {"completed_at", "hours_earned"}


def _member_going(origin) -> bool:
    """Deleting a member takes their summary rows with them: nothing to recount."""
    if isinstance(origin, Member):
        return True
    return isinstance(origin, QuerySet) and origin.model is Member


def _touches_hours(update_fields) -> bool:
    return update_fields is None or bool(HOURS_FIELDS & set(update_fields))


@receiver(pre_save, sender=LessonProgress)
def lesson_hours_before(sender, instance, update_fields=None, **kwargs):
    """The year a completion was in, when a save may move or undo it (not a progress save)."""
    instance._completed_before = None
    if instance.pk and _touches_hours(update_fields):
        instance._completed_before = (
            LessonProgress.objects.filter(pk=instance.pk)
            .values_list("completed_at", flat=True)
            .first()
        )


@receiver(post_save, sender=LessonProgress)
def lesson_hours_saved(sender, instance, update_fields=None, **kwargs):
    """A completion saved (reading, a live lecture settled), moved or undone (the admin): the
    lessons of its year, and of the year it left."""
    if not _touches_hours(update_fields):
        return
    before = getattr(instance, "_completed_before", None)
    pairs = [(instance.member_id, year_of(m)) for m in (instance.completed_at, before) if m]
    if pairs:
        hours_summary_refresh(pairs=pairs)


@receiver(lesson_hours_earned)
def lesson_hours_reported(sender, progress, **kwargs):
    """A progress report completed a lesson (a queryset update: no post_save)."""
    hours_summary_refresh(pairs=[(progress.member_id, year_of(progress.completed_at))])


@receiver(post_delete, sender=LessonProgress)
def lesson_hours_deleted(sender, instance, origin=None, **kwargs):
    if instance.completed_at is not None and not _member_going(origin):
        hours_summary_refresh(pairs=[(instance.member_id, year_of(instance.completed_at))])


def _attendance_pair(attendance):
    start = Sitting.objects.filter(pk=attendance.sitting_id).values_list("start", flat=True)
    return attendance.member_id, year_of(start.first())


@receiver(post_save, sender=Attendance)
def attendance_saved(sender, instance, **kwargs):
    """Checked in, marked at roll call or on paper, corrected: present and late count."""
    hours_summary_refresh(pairs=[_attendance_pair(instance)])


@receiver(post_delete, sender=Attendance)
def attendance_deleted(sender, instance, origin=None, **kwargs):
    if instance.status in Attendance.ATTENDED and not _member_going(origin):
        hours_summary_refresh(pairs=[_attendance_pair(instance)])


def _attendees(**sitting_filter):
    """(member id, year) of everyone present or late at the sittings matching the filter."""
    return [
        (member_id, year_of(start))
        for member_id, start in Attendance.objects.filter(
            status__in=Attendance.ATTENDED, **sitting_filter
        ).values_list("member_id", "sitting__start")
    ]


@receiver(pre_save, sender=Session)
def session_hours_before(sender, instance, **kwargs):
    instance._hours_before = (
        Session.objects.filter(pk=instance.pk).values_list("hours", flat=True).first()
        if instance.pk
        else None
    )


@receiver(post_save, sender=Session)
def session_hours_saved(sender, instance, created=False, **kwargs):
    """A session's hours edited: everyone who attended one of its sittings."""
    before = getattr(instance, "_hours_before", None)
    if not created and before is not None and before != instance.hours:
        hours_summary_refresh(pairs=_attendees(sitting__session=instance))


@receiver(pre_save, sender=Sitting)
def sitting_start_before(sender, instance, **kwargs):
    instance._start_before = (
        Sitting.objects.filter(pk=instance.pk).values_list("start", flat=True).first()
        if instance.pk
        else None
    )


@receiver(post_save, sender=Sitting)
def sitting_start_saved(sender, instance, created=False, **kwargs):
    """A sitting moved to another date: its attendees, in the year it left and the new one."""
    before = getattr(instance, "_start_before", None)
    if not created and before is not None and before != instance.start:
        pairs = _attendees(sitting=instance)
        hours_summary_refresh(pairs=pairs + [(m, year_of(before)) for m, _year in pairs])


@receiver(pre_save, sender=StudyRecord)
def study_record_before(sender, instance, **kwargs):
    instance._hours_before = (
        StudyRecord.objects.filter(pk=instance.pk).values_list("member_id", "studied_on").first()
        if instance.pk
        else None
    )


@receiver(post_save, sender=StudyRecord)
def study_record_saved(sender, instance, created=False, **kwargs):
    """Approved, refused, edited (its hours, date or member): both the year it was in and its
    year now."""
    if created and instance.state != StudyRecord.State.APPROVED:
        return  # recorded, waiting for approval: counts nowhere yet
    pairs = [(instance.member_id, year_of(instance.studied_on))]
    before = getattr(instance, "_hours_before", None)
    if before is not None:
        pairs.append((before[0], year_of(before[1])))
    hours_summary_refresh(pairs=pairs)


@receiver(post_delete, sender=StudyRecord)
def study_record_deleted(sender, instance, origin=None, **kwargs):
    if instance.state == StudyRecord.State.APPROVED and not _member_going(origin):
        hours_summary_refresh(pairs=[(instance.member_id, year_of(instance.studied_on))])


# --- Coverage counters: the roster's writes recount where they move figures ----------------------


def _before(model, instance, fields):
    """The saved values of ``fields`` of ``instance`` (None for a new row)."""
    if instance.pk is None:
        return None
    return model.objects.filter(pk=instance.pk).values(*fields).first()


@receiver(pre_save, sender=Member)
def remember_member_scope(sender, instance, raw=False, **kwargs):
    if not raw:
        instance._coverage_before = _before(Member, instance, counters.MEMBER_SCOPE_FIELDS)


@receiver(post_save, sender=Member)
def recount_member(sender, instance, created, raw=False, **kwargs):
    """A member created, moved, (de)activated, or changed in what scope reads."""
    if raw:
        return
    before = getattr(instance, "_coverage_before", None)
    now = {name: getattr(instance, name) for name in counters.MEMBER_SCOPE_FIELDS}
    if before == now:
        return
    also = [before["organization_id"]] if before else []
    counters.counters_recount_members(member_ids=[instance.pk], also=also)


@receiver(pre_delete, sender=Member)
def remember_member_places(sender, instance, **kwargs):
    instance._coverage_places = counters.organizations_of_members([instance.pk])


@receiver(post_delete, sender=Member)
def recount_member_deleted(sender, instance, **kwargs):
    places = getattr(instance, "_coverage_places", {instance.organization_id})
    counters.counters_recount_organizations(organization_ids=places)


@receiver(pre_save, sender=Posting)
def remember_posting(sender, instance, raw=False, **kwargs):
    if not raw:
        instance._coverage_before = _before(Posting, instance, ["organization_id", "member_id"])


@receiver(post_save, sender=Posting)
def recount_posting(sender, instance, raw=False, **kwargs):
    """A posting created, moved, ended or changed: the member may count elsewhere."""
    if raw:
        return
    before = getattr(instance, "_coverage_before", None) or {}
    counters.counters_recount_members(
        member_ids={instance.member_id, before.get("member_id")} - {None},
        also=[instance.organization_id, before.get("organization_id")],
    )


@receiver(post_delete, sender=Posting)
def recount_posting_deleted(sender, instance, **kwargs):
    if Member.objects.filter(pk=instance.member_id).exists():
        counters.counters_recount_members(
            member_ids=[instance.member_id], also=[instance.organization_id]
        )
    else:  # deleted with the member, who recounts their places
        counters.counters_recount_organizations(organization_ids=[instance.organization_id])


@receiver(post_save, sender=Participation)
@receiver(post_delete, sender=Participation)
def recount_participation(sender, instance, raw=False, origin=None, **kwargs):
    """A status written one row at a time (a data fix in the shell, a fixture): recount where the
    member counts. participation_refresh writes in bulk (no signal) and recounts itself."""
    if raw or isinstance(origin, (Member, Round)):
        return  # deleted with its member or round, which recount (or take) their rows
    if isinstance(origin, QuerySet) and origin.model in (Member, Round):
        return
    counters.counters_recount_members(
        training_round=instance.round, member_ids=[instance.member_id]
    )


@receiver(pre_save, sender=Organization)
def remember_organization(sender, instance, raw=False, **kwargs):
    if not raw:
        instance._coverage_before = _before(Organization, instance, ["domain", "path"])


@receiver(post_save, sender=Organization)
def recount_organization(sender, instance, created, raw=False, **kwargs):
    """A domain changed: the rounds that filter by it, in full; a path: every round."""
    before = getattr(instance, "_coverage_before", None)
    if raw or created or before is None:
        return
    if before["path"] != instance.path:
        _rebuild(Round.objects.all())
    elif before["domain"] != instance.domain:
        _rebuild(r for r in counters.rounds_covering([instance.pk]) if r.domains)


@receiver(post_delete, sender=Organization)
def recount_organization_deleted(sender, instance, **kwargs):
    """Its rows went with it; its mobile members lost their place of activity (a category)."""
    _rebuild(Round.objects.exclude(categories=[]))


@receiver(roster_changed)
def recount_roster(sender, organization_ids=None, **kwargs):
    """A roster import (bulk writes, no model signals) or the tree reshaped (None)."""
    if organization_ids is None:
        _rebuild(Round.objects.all())
    else:
        counters.counters_recount_organizations(
            organization_ids=counters.organizations_touching(organization_ids)
        )


def _rebuild(rounds):
    for training_round in rounds:
        counters.counters_recount(training_round=training_round)


@receiver(pre_save, sender=Round)
def remember_round_scope(sender, instance, raw=False, **kwargs):
    if not raw:
        instance._coverage_before = _before(Round, instance, counters.ROUND_SCOPE_FIELDS)


@receiver(post_save, sender=Round)
def recount_round(sender, instance, created, raw=False, **kwargs):
    """Who the round counts changed: recount it whole (a new round has no roots yet)."""
    before = getattr(instance, "_coverage_before", None)
    if raw or before is None:
        return
    now = {name: getattr(instance, name) for name in counters.ROUND_SCOPE_FIELDS}
    if before != now:
        counters.counters_recount(training_round=instance)


@receiver(m2m_changed, sender=Round.scope_roots.through)
def recount_round_roots(sender, instance, action, reverse, pk_set=None, **kwargs):
    """Scope roots added or removed (from either side)."""
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        counters.counters_recount(training_round=instance)
    elif action == "post_clear":
        _rebuild(Round.objects.all())
    else:
        _rebuild(Round.objects.filter(pk__in=pk_set or ()))

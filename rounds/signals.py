from auditlog.registry import auditlog
from django.contrib.auth.models import Permission
from django.dispatch import receiver

from courses.services import lesson_progress_changed
from members.demo import demo_city_seeded
from members.models import Member
from members.services import trainer_group_ready
from quizzes.services import quiz_attempt_submitted

from . import demo
from .models import (
    Attendance,
    Exemption,
    LeaveRequest,
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

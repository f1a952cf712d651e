"""Rounds, sessions and sittings for tests, built through the services like the admin does."""

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from courses.models import LessonProgress
from rounds import services
from rounds.models import Round
from tests import factories  # noqa: F401  (re-exported for tests)
from tests.courses import builders as course_builders


def aware(*args):
    return timezone.make_aware(datetime(*args))


def training_round(
    roots,
    lessons=None,
    *,
    opens_on=date(2026, 10, 1),
    closes_on=date(2026, 12, 31),
    makeup_deadline=date(2027, 1, 31),
    state=Round.State.PUBLISHED,
    **fields,
):
    """A published round over ``roots`` requiring ``lessons`` (two new lessons by default)."""
    if lessons is None:
        parent = course_builders.course()
        lessons = [
            course_builders.lesson(parent, title="第一课"),
            course_builders.lesson(parent, title="第二课"),
        ]
    made = Round.objects.create(
        title=fields.pop("title", "2026年第四季度专题轮训"),
        opens_on=opens_on,
        closes_on=closes_on,
        makeup_deadline=makeup_deadline,
        state=state,
        hours=fields.pop("hours", Decimal("4")),
        **fields,
    )
    made.scope_roots.set(roots)
    made.lessons.set(lessons)
    services.round_calendar(made)
    return made


def session(training_round, host, *, start=None, hours=Decimal("2"), lessons=None, **fields):
    start = start or aware(2026, 11, 12, 9, 0)
    return services.session_save(
        training_round=training_round,
        title=fields.pop("title", "11月集中学习"),
        host=host,
        start=start,
        end=fields.pop("end", start + timedelta(hours=2)),
        lessons=list(training_round.lessons.all()) if lessons is None else lessons,
        hours=hours,
        **fields,
    )


def sitting(session, start=None):
    return services.sitting_for(session=session, start=start or session.event.start)


def complete_online(member, lesson, at=None):
    """Mark ``lesson`` completed by ``member`` as the progress service would, and signal it."""
    at = at or aware(2026, 11, 5, 20, 0)
    progress, _ = LessonProgress.objects.update_or_create(
        member=member,
        lesson=lesson,
        defaults={
            "duration": 100.0,
            "segments": [[0, 100]],
            "watched_seconds": 100.0,
            "furthest": 100.0,
            "viewing_started_at": at - timedelta(minutes=2),
            "completed_at": at,
            "hours_earned": lesson.hours,
        },
    )
    from courses.services import lesson_progress_changed

    lesson_progress_changed.send(sender=LessonProgress, member_id=member.pk, lesson_id=lesson.pk)
    return progress

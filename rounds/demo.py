"""Demo rounds: last quarter's closed with its snapshot, this quarter's under way. Idempotent."""

import random
from datetime import datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from courses.models import LessonPage, LessonProgress
from members.models import Member, Organization, Role, RoleAssignment

from . import services
from .models import Attendance, LeaveRequest, Round
from .participation import participation_refresh


def _at(day, hour, minute=0):
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def _complete(member, lessons, when):
    rows = []
    for lesson in lessons:
        duration = float(lesson.video.duration or 600) if lesson.video else 600.0
        rows.append(
            LessonProgress(
                member=member,
                lesson=lesson,
                duration=duration,
                segments=[[0.0, duration]],
                watched_seconds=duration,
                furthest=duration,
                last_position=duration,
                viewing_started_at=when - timedelta(seconds=duration),
                completed_at=when,
                hours_earned=lesson.hours,
            )
        )
    LessonProgress.objects.bulk_create(rows, ignore_conflicts=True)


def seed_demo_rounds(now=None) -> str | None:
    now = timezone.localtime(now)
    city = Organization.objects.filter(code="C01").first()
    lessons = list(LessonPage.objects.live().select_related("video").order_by("path"))
    if city is None or len(lessons) < 3:
        return None
    if Round.objects.filter(plan_event__isnull=False, state=Round.State.CLOSED).exists():
        return "Demo rounds already present."
    trainer = RoleAssignment.objects.filter(role=Role.TRAINER, organization=city).first()
    user = trainer.user if trainer else None
    rng = random.Random(2026)
    today = now.date()
    quarter = (today.month - 1) // 3 + 1
    last_year, last_quarter = (today.year, quarter - 1) if quarter > 1 else (today.year - 1, 4)

    with transaction.atomic():
        planned = services.round_plan_year(
            year=today.year, title="专题轮训", roots=[city], user=user
        )
        if last_year != today.year:
            planned += services.round_plan_year(
                year=last_year, title="专题轮训", roots=[city], user=user
            )
        by_quarter = {(r.year, r.quarter): r for r in planned}
        current = by_quarter[(today.year, quarter)]
        previous = by_quarter[(last_year, last_quarter)]
        branches = list(Organization.objects.filter(kind="branch", path__startswith=city.path))
        members = {
            b.pk: list(Member.objects.filter(organization=b).order_by("phone")) for b in branches
        }

        # Last quarter: studied "学习党章" lesson 1, closed with 9 in 10 done.
        previous.title = f"{last_year}年第{last_quarter}季度专题轮训：学习党章"
        previous.theme = "深入学习党章，增强党员意识。"
        previous.state = Round.State.PUBLISHED
        previous.hours = 2
        previous.save()
        previous.lessons.set(lessons[:1])
        finished = _at(previous.opens_on + timedelta(days=20), 20)
        for branch_members in members.values():
            for member in branch_members:
                if rng.random() < 0.9:
                    _complete(member, lessons[:1], finished)
        participation_refresh(training_round=previous)
        services.round_close(training_round=previous, user=user)
        # A correction after the close: shows beside the frozen figures.
        late = next(
            m
            for branch_members in members.values()
            for m in branch_members
            if not LessonProgress.objects.filter(member=m, lesson=lessons[0]).exists()
        )
        _complete(late, lessons[:1], now - timedelta(days=3))
        participation_refresh(training_round=previous, member_ids=[late.pk])

        # This quarter: lessons 2 and 3, online or at a group session.
        current.title = f"{today.year}年第{quarter}季度专题轮训：党的创新理论"
        current.theme = "学习党的创新理论，结合岗位实际抓落实。"
        current.state = Round.State.PUBLISHED
        current.hours = 4
        current.save()
        current.lessons.set(lessons[1:3])
        first_branch, second_branch = branches[0], branches[1]
        site = Organization.objects.get(pk=first_branch.pk).get_parent()
        held_on = max(current.opens_on, today - timedelta(days=6))
        held_on = held_on if held_on < today else today - timedelta(days=1)
        past = services.session_save(
            training_round=current,
            title="集中收看：党的创新理论",
            host=site,
            start=_at(held_on, 9),
            end=_at(held_on, 11),
            lessons=lessons[1:3],
            hours=2,
            location="社区党群服务中心远程教育室",
            user=user,
        )
        sitting = services.sitting_for(session=past, start=past.event.start)
        # The whole second branch attended: that branch is at 100 %.
        Attendance.objects.bulk_create(
            [
                Attendance(
                    sitting=sitting,
                    member=m,
                    status=Attendance.Status.PRESENT,
                    method=Attendance.Method.ROLL_CALL,
                    recorded_by=user,
                    recorded_at=sitting.start + timedelta(minutes=5),
                )
                for m in members[second_branch.pk]
            ]
        )
        services.sitting_close(sitting=sitting, user=user)
        # The demo branch: some done online, the demo member halfway, leave, exemption, missing.
        demo = members[first_branch.pk]
        for member in demo[:3] + demo[4:6]:
            _complete(member, lessons[1:3], now - timedelta(days=rng.randint(1, 5)))
        _complete(demo[3], lessons[1:2], now - timedelta(days=2))
        leave = LeaveRequest.objects.create(
            member=demo[6], round=current, session=past, reason="外出务工，无法参加集中学习"
        )
        services.leave_decide(leave=leave, approve=True, user=demo[0].user, note="请按时补学")
        LeaveRequest.objects.create(member=demo[7], round=current, reason="家中老人住院")
        services.exemption_grant(
            member=demo[8], training_round=current, reason="长期病休", user=demo[0].user
        )
        # Elsewhere, about half are done online so far.
        for branch in branches[2:]:
            for member in members[branch.pk]:
                if rng.random() < 0.5:
                    _complete(member, lessons[1:3], now - timedelta(days=rng.randint(1, 20)))
        participation_refresh(training_round=current)
        # Upcoming: a Thursday evening session at the demo site, weekly until the round closes.
        thursday = min(today + timedelta(days=(3 - today.weekday()) % 7 or 7), current.closes_on)
        services.session_save(
            training_round=current,
            title="每周四晚集中学习",
            host=site,
            start=_at(thursday, 19, 30),
            end=_at(thursday, 21),
            lessons=lessons[1:3],
            hours=2,
            location="社区党群服务中心远程教育室",
            recurrence="WEEKLY",
            until=current.closes_on,
            user=user,
        )
    return (
        f"Demo rounds: '{previous.title}' closed with its snapshot; "
        f"'{current.title}' under way (coverage at /rounds/{current.pk}/coverage/)."
    )

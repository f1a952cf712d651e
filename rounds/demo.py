"""Demo trainings: last quarter's round closed with its snapshot, this quarter's under way, a
书记专题培训 under way, 发展对象 in training, group study outside a round, a mobile member
ticked at another site, and study recorded by secretaries (approved and pending). Idempotent."""

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from courses.models import LessonPage, LessonProgress
from members.models import Member, Organization, Role, RoleAssignment

from . import records, services
from .hours import hours_summary_rebuild
from .models import (
    KIND_PRESETS,
    Attendance,
    LeaveRequest,
    PlanTarget,
    Round,
    StudyPlan,
    StudyRecord,
)
from .participation import participation_refresh


def _at(day, hour, minute=0):
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def _held_with_roll_call(sitting, members, user, *, minutes):
    """``members`` ticked present at roll call ``minutes`` into ``sitting``, then closed."""
    Attendance.objects.bulk_create(
        [
            Attendance(
                sitting=sitting,
                member=m,
                status=Attendance.Status.PRESENT,
                method=Attendance.Method.ROLL_CALL,
                recorded_by=user,
                recorded_at=sitting.start + timedelta(minutes=minutes),
            )
            for m in members
        ]
    )
    services.sitting_close(sitting=sitting, user=user)


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
            b.pk: list(Member.objects.party_members().filter(organization=b).order_by("phone"))
            for b in branches
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
        _held_with_roll_call(sitting, members[second_branch.pk], user, minutes=5)
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
        mobile = demo[5]
        _seed_other_kinds(
            city=city, lessons=lessons, members=members, user=user, today=today, now=now, rng=rng
        )
        _seed_group_study(site=site, members=members[first_branch.pk], user=user, today=today)
        _seed_mobile_ticked(mobile=mobile, round_=current, lessons=lessons, user=user, when=held_on)
        _seed_records(demo=demo, today=today)
        _seed_plan(city=city, members=members, user=user, today=today)
        hours_summary_rebuild()  # the bulk inserts above sent no signals
    return (
        f"Demo rounds: '{previous.title}' closed with its snapshot; "
        f"'{current.title}' under way (coverage at /rounds/{current.pk}/coverage/)."
    )


def _new_training(*, kind, title, city, lessons, today, user, **fields):
    training = Round.objects.create(
        kind=kind,
        title=title,
        opens_on=today.replace(day=1),
        closes_on=today.replace(day=1) + timedelta(days=75),
        makeup_deadline=today.replace(day=1) + timedelta(days=105),
        state=Round.State.PUBLISHED,
        created_by=user,
        **{**KIND_PRESETS[kind], **fields},
    )
    training.scope_roots.set([city])
    training.lessons.set(lessons)
    services.round_calendar(training)
    return training


def _seed_other_kinds(*, city, lessons, members, user, today, now, rng):
    """A 书记专题培训 for village and community secretaries, under way; 发展对象 in training."""
    # A video lesson and, where the demo course has one, the lesson to read (读原著学原文).
    required = [lessons[0], *[lesson for lesson in lessons if lesson.is_reading][:1]]
    secretaries = _new_training(
        kind=Round.Kind.SECRETARY,
        title=f"{today.year}年村（社区）党组织书记专题培训",
        city=city,
        lessons=required,
        today=today,
        user=user,
        theme="抓党建促基层治理能力提升。",
        hours=8,
        domains=[Organization.Domain.RURAL, Organization.Domain.COMMUNITY],
    )
    for member in secretaries.members_in_scope():
        if rng.random() < 0.6:
            _complete(member, required, now - timedelta(days=rng.randint(1, 10)))
    participation_refresh(training_round=secretaries)
    candidates = _new_training(
        kind=Round.Kind.CANDIDATE,
        title=f"{today.year}年发展对象短期集中培训",
        city=city,
        lessons=lessons[:3],
        today=today,
        user=user,
        theme="入党前集中培训，不少于3天或24学时。",
        hours=24,
    )
    for member in list(candidates.members_in_scope())[::2]:
        _complete(member, lessons[:1], now - timedelta(days=2))
    participation_refresh(training_round=candidates)


def _seed_group_study(*, site, members, user, today):
    """A 党课 outside any round, at the demo site, last week, with roll call."""
    held_on = today - timedelta(days=8)
    lecture = services.session_save(
        training_round=None,
        title="书记讲党课：做合格党员",
        host=site,
        start=_at(held_on, 15),
        end=_at(held_on, 17),
        hours=2,
        location="社区党群服务中心",
        user=user,
    )
    sitting = services.sitting_for(session=lecture, start=lecture.event.start)
    _held_with_roll_call(sitting, members[:8], user, minutes=3)


def _seed_mobile_ticked(*, mobile, round_, lessons, user, when):
    """The demo branch's mobile member, working in another township, ticked at roll call at
    the site where they take part: they count at home, done by the session there."""
    place = Member.objects.select_related("activity_organization").get(pk=mobile.pk)
    host = place.activity_organization
    if host is None:
        return
    Organization.objects.filter(pk=host.pk).update(is_site=True)
    host.refresh_from_db()
    session = services.session_save(
        training_round=round_,
        title="集中收看：党的创新理论（流入地）",
        host=host,
        start=_at(when, 14),
        end=_at(when, 16),
        lessons=lessons[1:3],
        hours=2,
        user=user,
    )
    sitting = services.sitting_for(session=session, start=session.event.start)
    services.roll_call_save(sitting=sitting, marks={mobile.pk: "present"}, user=user)


def _seed_records(*, demo, today):
    """Study the system did not see: a 送学上门 visit approved at the county, a 党校 class
    waiting for approval."""
    secretary = demo[0].user
    county = RoleAssignment.objects.filter(role=Role.SECRETARY, user__username="county").first()
    visited = next((m for m in demo if m.limited_mobility), demo[8])
    visit, _created = records.record_create(
        member=visited,
        kind=StudyRecord.Kind.DOOR_TO_DOOR,
        title="送学上门：学习党的创新理论",
        studied_on=today - timedelta(days=5),
        hours=Decimal("1.5"),
        note="在家中一起读原文",
        user=secretary,
        form_token="demo-door-to-door",
    )
    if county is not None:
        records.record_decide(record=visit, approve=True, user=county.user)
    records.record_create(
        member=demo[2],
        kind=StudyRecord.Kind.PARTY_SCHOOL,
        title="区委党校 基层党务工作者培训班",
        studied_on=today - timedelta(days=12),
        hours=16,
        user=secretary,
        form_token="demo-party-school",
    )


# The targets of the city's plan (DESIGN.md, "What is trained, and how it is counted"):
# (kind, audience, N, kind of training).
CITY_PLAN_TARGETS = (
    (PlanTarget.Kind.HOURS, PlanTarget.Audience.MEMBERS, 32, ""),
    (PlanTarget.Kind.HOURS, PlanTarget.Audience.SECRETARIES, 56, ""),
    (PlanTarget.Kind.TRAINED, PlanTarget.Audience.VILLAGE_SECRETARIES, None, Round.Kind.SECRETARY),
    (
        PlanTarget.Kind.NEW_IN_POSITION,
        PlanTarget.Audience.SECRETARIES,
        6,
        Round.Kind.NEW_SECRETARY,
    ),
    (PlanTarget.Kind.TRAINED, PlanTarget.Audience.MEMBERS, None, Round.Kind.QUARTERLY),
    (PlanTarget.Kind.HOURS_BEFORE_ADMISSION, PlanTarget.Audience.CANDIDATES, 24, ""),
)


def add_plan_targets(plan, targets):
    PlanTarget.objects.bulk_create(
        PlanTarget(
            plan=plan,
            sort_order=order,
            kind=kind,
            audience=audience,
            number=number,
            training_kind=training,
        )
        for order, (kind, audience, number, training) in enumerate(targets)
    )


def _seed_plan(*, city, members, user, today):
    """The city's five-year plan, begun last year, with last year's winter training recorded
    (春训冬训) so the plan page has two years to show."""
    plan = StudyPlan.objects.create(
        title=f"{today.year - 1}—{today.year + 3}年党员教育培训工作规划",
        organization=city,
        first_year=today.year - 1,
        created_by=user,
    )
    add_plan_targets(plan, CITY_PLAN_TARGETS)
    winter = date(today.year - 1, 1, 15)
    StudyRecord.objects.bulk_create(
        [
            StudyRecord(
                member=member,
                kind=StudyRecord.Kind.SEASONAL,
                title=f"{today.year - 1}年冬训：集中学习",
                studied_on=winter,
                hours=Decimal("32") if number % 3 else Decimal("24"),
                state=StudyRecord.State.APPROVED,
                recorded_by=None,  # from last year's paper register, approved by the trainer
                decided_by=user,
                decided_at=timezone.make_aware(datetime.combine(winter, time(18))),
                form_token=f"demo-winter-{member.pk}",
            )
            for branch_members in list(members.values())[:12]
            for number, member in enumerate(branch_members, start=1)
        ]
    )

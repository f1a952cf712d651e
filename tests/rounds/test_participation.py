"""The status rules: each member's round status, with the reason, from what they did."""

from datetime import date, timedelta

import pytest
import time_machine

from rounds import services
from rounds.coverage import coverage_children
from rounds.models import Attendance, LeaveRequest, Participation, Round

from . import builders

P = Participation.Status


def status_of(training_round, member):
    row = Participation.objects.filter(round=training_round, member=member).first()
    return row.status if row else P.NOT_STARTED


@pytest.fixture
def setup(city):
    training_round = builders.training_round([city.root])
    return city, training_round, list(training_round.lessons.order_by("pk"))


def test_nothing_done_is_not_started(setup):
    city, training_round, _lessons = setup
    assert status_of(training_round, city.member_a) == P.NOT_STARTED


def test_one_of_two_lessons_online_is_in_progress_then_completed(setup):
    city, training_round, lessons = setup
    builders.complete_online(city.member_a, lessons[0])
    row = Participation.objects.get(round=training_round, member=city.member_a)
    assert (row.status, row.lessons_done, row.lessons_required) == (P.IN_PROGRESS, 1, 2)
    builders.complete_online(city.member_a, lessons[1])
    row.refresh_from_db()
    assert row.status == P.COMPLETED
    assert row.method == Participation.Method.ONLINE
    assert status_of(training_round, city.member_b) == P.NOT_STARTED


def test_lessons_completed_before_the_round_opened_count_from_the_opening(setup):
    """Completion is final: a lesson an earlier round required is not watched twice."""
    city, training_round, lessons = setup
    before = builders.aware(2026, 9, 20, 10, 0)
    for lesson in lessons:
        builders.complete_online(city.member_a, lesson, at=before)
    row = Participation.objects.get(round=training_round, member=city.member_a)
    assert row.status == P.COMPLETED
    assert row.completed_at == training_round.opens_at


def test_attending_a_session_that_showed_every_lesson_completes(setup):
    city, training_round, _lessons = setup
    sitting = builders.sitting(builders.session(training_round, city.branch_a))
    with time_machine.travel(sitting.start + timedelta(minutes=5), tick=False):
        created = services.check_in(member=city.member_a, sitting=sitting).created
    assert created
    row = Participation.objects.get(round=training_round, member=city.member_a)
    assert (row.status, row.method) == (P.COMPLETED, Participation.Method.SESSION)


def test_session_showing_one_lesson_plus_the_other_online_is_mixed(setup):
    city, training_round, lessons = setup
    session = builders.session(training_round, city.branch_a, lessons=[lessons[0]])
    sitting = builders.sitting(session)
    with time_machine.travel(sitting.start, tick=False):
        services.check_in(member=city.member_a, sitting=sitting)
    assert status_of(training_round, city.member_a) == P.IN_PROGRESS
    builders.complete_online(city.member_a, lessons[1])
    row = Participation.objects.get(round=training_round, member=city.member_a)
    assert (row.status, row.method) == (P.COMPLETED, Participation.Method.MIXED)


def test_online_only_rule_ignores_sessions(city):
    parent = builders.course_builders.course()
    lesson = builders.course_builders.lesson(parent)
    training_round = builders.training_round(
        [city.root], [lesson], completion_rule=Round.Rule.ONLINE
    )
    sitting = builders.sitting(builders.session(training_round, city.branch_a))
    with time_machine.travel(sitting.start, tick=False):
        services.check_in(member=city.member_a, sitting=sitting)
    assert status_of(training_round, city.member_a) == P.IN_PROGRESS


def test_approved_leave_then_make_up_online(setup):
    city, training_round, lessons = setup
    leave = services.leave_request(
        member=city.member_a, training_round=training_round, reason="外出务工"
    )
    assert status_of(training_round, city.member_a) == P.NOT_STARTED  # pending
    services.leave_decide(leave=leave, approve=True, user=city.secretary_a)
    assert status_of(training_round, city.member_a) == P.LEAVE
    for lesson in lessons:
        builders.complete_online(city.member_a, lesson)
    row = Participation.objects.get(round=training_round, member=city.member_a)
    assert (row.status, row.method) == (P.COMPLETED, Participation.Method.MAKEUP)


def test_refused_leave_changes_nothing_and_cannot_be_decided_twice(setup):
    city, training_round, _lessons = setup
    leave = services.leave_request(
        member=city.member_a, training_round=training_round, reason="家中有事"
    )
    services.leave_decide(leave=leave, approve=False, user=city.secretary_a)
    assert status_of(training_round, city.member_a) == P.NOT_STARTED
    with pytest.raises(services.LeaveError):
        services.leave_decide(leave=leave, approve=True, user=city.secretary_a)
    # A refused request does not stop a new one.
    again = services.leave_request(
        member=city.member_a, training_round=training_round, reason="补充说明"
    )
    assert again.state == LeaveRequest.State.PENDING
    with pytest.raises(services.LeaveError):
        services.leave_request(member=city.member_a, training_round=training_round, reason="x")


def test_exemption_leaves_the_denominator_but_the_member_stays_listed(setup):
    city, training_round, _lessons = setup
    services.exemption_grant(
        member=city.member_b, training_round=training_round, reason="长期病休", user=city.trainer
    )
    head = coverage_children(training_round=training_round, node=city.root).head
    assert (head.figures.in_scope, head.figures.exempt, head.figures.counted) == (2, 1, 1)
    row = Participation.objects.get(round=training_round, member=city.member_b)
    assert (row.status, row.note) == (P.EXEMPT, "长期病休")


def test_roll_call_leave_mark_puts_member_on_leave(setup):
    city, training_round, _lessons = setup
    sitting = builders.sitting(builders.session(training_round, city.branch_a))
    changed = services.roll_call_save(
        sitting=sitting,
        marks={city.member_a.pk: Attendance.Status.LEAVE},
        user=city.operator_a,
    )
    assert changed == 1
    assert status_of(training_round, city.member_a) == P.LEAVE


def test_members_outside_scope_or_inactive_are_not_counted(city):
    training_round = builders.training_round([city.county_a])
    coverage = coverage_children(training_round=training_round, node=city.root)
    head, rows = coverage.head, coverage.rows
    assert head.figures.in_scope == 1
    assert [r.organization for r in rows] == [city.county_a]
    city.member_a.is_active = False
    city.member_a.save()
    coverage = coverage_children(training_round=training_round, node=city.root)
    head, rows = coverage.head, coverage.rows
    assert head.figures.in_scope == 0 and rows == []


def test_quarter_bounds():
    assert services.quarter_bounds(2026, 4) == (date(2026, 10, 1), date(2026, 12, 31))
    assert services.quarter_bounds(2026, 1) == (date(2026, 1, 1), date(2026, 3, 31))

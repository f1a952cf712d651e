"""The yearly hours summary (rounds/hours.py) never drifts from its sources: random sequences of
the writes that feed the ledger, each through the path the product takes, compared after every
step with today's live sums (``ledger_for_members_live``, the oracle); and the command that
checks, repairs and builds it."""

import io
import itertools
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from auditlog.models import LogEntry
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from courses import services as course_services
from courses.models import LessonProgress
from members.models import Member, Role
from rounds import hours, ledger, plans, records, services
from rounds.models import Attendance, HoursSummary, PlanTarget, StudyPlan, StudyRecord

from .. import factories
from ..courses.builders import session_of
from . import builders

pytestmark = pytest.mark.django_db
NOW = builders.aware(2027, 6, 1, 10, 0)
YEARS = (2026, 2027)
# Sittings either side of new year (local time), and where a moved one may go.
SITTING_STARTS = (builders.aware(2026, 12, 31, 21, 0), builders.aware(2027, 1, 1, 9, 0))
MOVES = (builders.aware(2026, 6, 1, 9, 0), builders.aware(2027, 3, 1, 14, 0))
COMPLETIONS = (builders.aware(2026, 12, 31, 23, 50), builders.aware(2027, 1, 1, 0, 10))
STUDIED_ON = (date(2026, 1, 1), date(2026, 12, 31), date(2027, 1, 1))
HOURS = (Decimal("0"), Decimal("0.5"), Decimal("1.5"), Decimal("2"), Decimal("3.5"))


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(city, frozen):
    parent = builders.course_builders.course(title="学习党章")
    lessons = [
        builders.course_builders.lesson(parent, title="第一课", hours=Decimal("1.5")),
        builders.course_builders.lesson(parent, title="第二课", hours=Decimal("0.5")),
    ]
    training_round = builders.training_round(
        [city.root], lessons, opens_on=date(2026, 1, 1), closes_on=date(2027, 12, 31)
    )
    sittings = [
        builders.sitting(
            builders.session(
                training_round, city.root, start=start, title=f"集中学习{i}", hours=Decimal("2")
            )
        )
        for i, start in enumerate(SITTING_STARTS)
    ]
    city.decider = factories.staff("sec_city", Role.SECRETARY, city.root)
    city.lessons, city.sittings, city.members = lessons, sittings, [city.member_a, city.member_b]
    return city


# --- The events, each through the product's own path ----------------------------------------


def report_completes(world, member, lesson, at):
    """A member watches a lesson through and the report completes it: progress_report's
    conditional UPDATE (no post_save)."""
    with time_machine.travel(at - timedelta(minutes=5), tick=False) as clock:
        progress = course_services.progress_start(
            member=member, lesson=lesson, session_key=session_of(member)
        )
        clock.shift(timedelta(minutes=5))
        course_services.progress_report(
            progress_id=progress.pk, viewing=progress.viewing, segments=[[0, 100]], position=100
        )


def completion_undone(world, member, lesson, at):
    """The admin clears a completion (a save of the row)."""
    progress = LessonProgress.objects.filter(member=member, lesson=lesson).first()
    if progress is not None:
        progress.completed_at = None
        progress.hours_earned = Decimal("0")
        progress.save()


def roll_call(world, member, sitting, status):
    """Roll call or paper sheet: creates, changes or (status "") removes attendance."""
    try:
        services.roll_call_save(
            sitting=sitting, marks={member.pk: status}, user=world.decider, reason="更正"
        )
    except services.RollCallError:
        pass  # at another sitting at the same time: refused, nothing saved


def terminal_sync(world, member, sitting, late):
    """A site terminal's offline check-ins: a bulk insert (no post_save)."""
    at = sitting.start + timedelta(minutes=30 if late else 0)
    services.check_ins_record(sitting=sitting, arrivals={member: at}, user=world.decider)


def session_hours(world, sitting, value):
    session = sitting.session
    session.hours = value
    session.save()


def sitting_moved(world, sitting, start):
    sitting.refresh_from_db()
    sitting.start, sitting.end = start, start + timedelta(hours=2)
    sitting.save()


_tokens = itertools.count()


def record_approved(world, member, studied_on, value):
    """A secretary records study; someone above approves it."""
    if value == 0:
        value = Decimal("1")
    recorder = world.secretary_a if member == world.member_a else world.secretary_b
    record, _created = records.record_create(
        member=member,
        kind=StudyRecord.Kind.DOOR_TO_DOOR,
        title=f"送学上门{next(_tokens)}",
        studied_on=studied_on,
        hours=value,
        user=recorder,
        form_token=f"h-{next(_tokens)}",
    )
    records.record_decide(record=record, approve=True, user=world.decider)


def record_edited(world, index, studied_on, value):
    """An approved record corrected (its date, its hours) or revoked (hours 0: refused)."""
    found = list(StudyRecord.objects.order_by("pk"))
    if not found:
        return
    record = found[index % len(found)]
    if value == 0:
        record.state = StudyRecord.State.REFUSED
    else:
        record.studied_on, record.hours = studied_on, value
    record.save()


def record_deleted(world, index):
    found = list(StudyRecord.objects.order_by("pk"))
    if found:
        found[index % len(found)].delete()


members = st.sampled_from(("member_a", "member_b"))
sitting_index = st.integers(0, len(SITTING_STARTS) - 1)
EVENTS = st.one_of(
    st.tuples(st.just("report"), members, st.integers(0, 1), st.sampled_from(COMPLETIONS)),
    st.tuples(st.just("undo"), members, st.integers(0, 1), st.just(None)),
    st.tuples(
        st.just("roll_call"),
        members,
        sitting_index,
        st.sampled_from((*Attendance.Status.values, "")),
    ),
    st.tuples(st.just("terminal"), members, sitting_index, st.booleans()),
    st.tuples(st.just("session_hours"), sitting_index, st.sampled_from(HOURS)),
    st.tuples(st.just("sitting_moved"), sitting_index, st.sampled_from(MOVES + SITTING_STARTS)),
    st.tuples(st.just("record"), members, st.sampled_from(STUDIED_ON), st.sampled_from(HOURS)),
    st.tuples(
        st.just("record_edit"),
        st.integers(0, 5),
        st.sampled_from(STUDIED_ON),
        st.sampled_from(HOURS),
    ),
    st.tuples(st.just("record_delete"), st.integers(0, 5)),
)


def apply(world, event):
    kind, *args = event
    if kind in ("report", "undo"):
        name, lesson, at = args
        fn = report_completes if kind == "report" else completion_undone
        fn(world, getattr(world, name), world.lessons[lesson], at)
    elif kind == "roll_call":
        roll_call(world, getattr(world, args[0]), world.sittings[args[1]], args[2])
    elif kind == "terminal":
        terminal_sync(world, getattr(world, args[0]), world.sittings[args[1]], args[2])
    elif kind == "session_hours":
        session_hours(world, world.sittings[args[0]], args[1])
    elif kind == "sitting_moved":
        sitting_moved(world, world.sittings[args[0]], args[1])
    elif kind == "record":
        record_approved(world, getattr(world, args[0]), args[1], args[2])
    elif kind == "record_edit":
        record_edited(world, *args)
    else:
        record_deleted(world, *args)


def figures(rows):
    return {
        m.pk: (m.hours_lessons, m.hours_sessions, m.hours_records, m.hours_total, m.is_below)
        for m in rows
    }


def assert_summary_matches_sources(world):
    """What the lists read equals today's live sums, per year and over all years."""
    people = Member.objects.filter(pk__in=[m.pk for m in world.members])
    for year in (*YEARS, None):
        live = figures(ledger.ledger_for_members_live(members_qs=people, year=year))
        read = figures(ledger.ledger_for_members(members_qs=people, year=year))
        assert read == live, year
    for year in YEARS:
        assert hours.hours_summary_check(year=year) == []


# No shrinking: a failure prints its example as drawn (shrinking these sequences takes minutes).
@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(EVENTS, min_size=1, max_size=10))
def test_the_summary_never_drifts_from_its_sources(world, events):
    with transaction.atomic():  # each example starts from the same world
        for sitting in world.sittings:
            sitting.refresh_from_db()
        for event in events:
            apply(world, event)
            assert_summary_matches_sources(world)
        transaction.set_rollback(True)


def test_each_kind_of_write_moves_the_summary(world):
    """Not vacuous: every path above changes the figures the list reads."""
    a = world.member_a

    def total(year):
        row = HoursSummary.objects.filter(member=a, year=year).first()
        return row.total if row else Decimal("0")

    report_completes(world, a, world.lessons[0], COMPLETIONS[0])
    assert total(2026) == Decimal("1.5")
    terminal_sync(world, a, world.sittings[1], late=False)
    assert total(2027) == Decimal("2")
    roll_call(world, a, world.sittings[0], Attendance.Status.LATE)
    assert total(2026) == Decimal("3.5")
    session_hours(world, world.sittings[0], Decimal("3"))
    assert total(2026) == Decimal("4.5")
    sitting_moved(world, world.sittings[0], MOVES[1])
    assert (total(2026), total(2027)) == (Decimal("1.5"), Decimal("5"))
    record_approved(world, a, date(2026, 12, 31), Decimal("2"))
    assert total(2026) == Decimal("3.5")
    record_edited(world, 0, date(2027, 1, 1), Decimal("2"))
    assert (total(2026), total(2027)) == (Decimal("1.5"), Decimal("7"))
    roll_call(world, a, world.sittings[1], "")
    assert total(2027) == Decimal("5")
    completion_undone(world, a, world.lessons[0], None)
    assert total(2026) == 0
    assert_summary_matches_sources(world)


def test_a_failed_write_leaves_the_summary_as_it_was(world):
    """The summary is written in the source's transaction: rolled back with it."""
    a = world.member_a
    with pytest.raises(RuntimeError), transaction.atomic():
        roll_call(world, a, world.sittings[1], Attendance.Status.PRESENT)
        assert HoursSummary.objects.get(member=a, year=2027).total == 2
        raise RuntimeError
    assert not Attendance.objects.exists()
    assert not HoursSummary.objects.filter(total__gt=0).exists()


def test_deleting_a_member_takes_their_summary_with_them(world):
    roll_call(world, world.member_a, world.sittings[1], Attendance.Status.PRESENT)
    world.member_a.delete()
    assert not HoursSummary.objects.filter(member_id=world.member_a.pk).exists()


def test_the_lists_and_the_plan_read_the_summary_not_the_sources(world, client_for):
    """The staff list, its below-requirement filter and a plan's hours target read the year's
    summary row: a row changed behind the sources' back shows there (and only the check finds
    it), while the member's own entries still come from the sources."""
    a = world.member_a
    record_approved(world, a, date(2027, 3, 1), Decimal("2"))
    HoursSummary.objects.filter(member=a, year=2027).update(records=40, total=40)

    people = Member.objects.filter(pk=a.pk)
    row = ledger.ledger_for_members(members_qs=people, year=2027).get()
    assert (row.hours_total, row.is_below) == (Decimal("40"), 0)
    assert not ledger.below_requirement(ledger.ledger_for_members(members_qs=people, year=2027))
    assert ledger.ledger_total(member=a, year=2027) == Decimal("2")  # entries: the sources

    plan = StudyPlan.objects.create(title="五年规划", organization=world.root, first_year=2027)
    target = PlanTarget.objects.create(
        plan=plan, kind=PlanTarget.Kind.HOURS, audience=PlanTarget.Audience.MEMBERS, number=32
    )
    figure, _missing = plans.year_figure(target, world.branch_a, 2027)
    assert (figure.audience, figure.met) == (1, 1)

    page = client_for(world.trainer).get(reverse("rounds:ledger_org") + "?year=2027&below=1")
    assert a.name not in page.content.decode()
    assert [d.member_id for d in hours.hours_summary_check(year=2027)] == [a.pk]


# --- manage.py ledger_summary ------------------------------------------------------------------


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("ledger_summary", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue() + err.getvalue()


def test_the_command_finds_drift_and_fails_until_repaired(world):
    roll_call(world, world.member_a, world.sittings[1], Attendance.Status.PRESENT)
    roll_call(world, world.member_b, world.sittings[1], Attendance.Status.PRESENT)
    assert run("--year", "2027")[0] == 0
    HoursSummary.objects.filter(member=world.member_a, year=2027).update(sessions=9, total=9)
    HoursSummary.objects.filter(member=world.member_b, year=2027).delete()

    code, output = run("--year", "2027")
    assert code == 1
    assert "2" in output and str(world.member_a.pk) in output
    assert HoursSummary.objects.get(member=world.member_a, year=2027).total == 9  # untouched
    assert not LogEntry.objects.filter(additional_data__event="ledger_summary_repaired").exists()

    code, output = run("--year", "2027", "--repair")
    assert code == 0
    assert HoursSummary.objects.get(member=world.member_a, year=2027).total == 2
    assert HoursSummary.objects.get(member=world.member_b, year=2027).total == 2
    entry = LogEntry.objects.get(additional_data__event="ledger_summary_repaired")
    assert entry.additional_data["rows"] == 2
    assert sorted(entry.additional_data["member_ids"]) == sorted(
        [world.member_a.pk, world.member_b.pk]
    )
    assert run("--year", "2027")[0] == 0


def test_the_command_builds_the_summary_of_existing_data(world):
    """Data written without the summary (bulk inserts, a database from before it) is built
    for every year it has hours in."""
    Attendance.objects.bulk_create(
        [
            Attendance(
                sitting=world.sittings[i],
                member=world.member_b,
                status=Attendance.Status.PRESENT,
                method=Attendance.Method.PAPER,
            )
            for i in (0, 1)
        ]
    )
    assert not HoursSummary.objects.exists()
    assert run("--all")[0] == 1
    code, _output = run("--all", "--repair")
    assert code == 0
    assert set(HoursSummary.objects.values_list("year", "total")) == {
        (2026, Decimal("2")),
        (2027, Decimal("2")),
    }
    assert_summary_matches_sources(world)

"""Coverage counters never drift: random sequences of every write that moves them, each followed
by a comparison with a full live recount (the oracle); and the command that checks and repairs.

The property-based test applies, through the real services and saves, status changes (online
completion, exemption granted and withdrawn, leave approved), scope roots added and removed,
members moved, deactivated and reactivated, positions changed, postings created and ended,
organisation domains changed, a roster import moving a member and adding one, and the round's
close, in any order; after each step every counter row must equal the live recount and the
coverage page's figures must equal the live GROUP BY's.
"""

import threading
from datetime import date
from itertools import count

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from django.db import connection, transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from members import importing
from members.models import Member, Organization, Posting
from rounds import services
from rounds.counters import counters_check, counters_live, counters_stored
from rounds.coverage import coverage_by_organization, coverage_children, coverage_children_live
from rounds.models import (
    CoverageCounter,
    CoverageRollup,
    Exemption,
    LeaveRequest,
    Participation,
    Round,
)

from .. import factories
from ..members.spreadsheets import xlsx
from . import builders

ROSTER_HEADER = ["姓名", "手机号码", "党组织编码", "性别", "党员状态", "人员类别", "入党日期"]
POSITIONS = [Member.Position.MEMBER, Member.Position.SECRETARY, Member.Position.COMMITTEE]
MEMBERS = 6
_phones = count(1)


class World:
    """A city of seven organisations, six members and two rounds over shared lessons: one over
    a county (its roots change), one city-wide for rural organisations only."""

    def __init__(self, city):
        self.city = city
        self.root = city.root
        self.branch_c = factories.org("东风村党支部", city.county_a, code="A-02", domain="rural")
        self.branch_d = factories.org("光明社区党支部", city.county_b, code="B-02")
        Organization.objects.filter(pk=city.branch_b.pk).update(domain="rural")
        self.orgs = [
            Organization.objects.get(pk=o.pk)
            for o in (
                city.root,
                city.county_a,
                city.county_b,
                city.branch_a,
                city.branch_b,
                self.branch_c,
                self.branch_d,
            )
        ]
        self.members = [city.member_a, city.member_b]
        places = [self.branch_c, self.branch_d, city.branch_a, city.branch_b]
        for i, place in enumerate(places):
            self.members.append(factories.member(place, name=f"成员{i}", position=POSITIONS[i % 3]))
        self.county_round = builders.training_round([city.county_a], title="区级轮训")
        self.lessons = list(self.county_round.lessons.all())
        self.rural_round = builders.training_round(
            [city.root], self.lessons, title="农村党员轮训", domains=["rural"]
        )
        self.rounds = [self.county_round, self.rural_round]

    def member(self, index):
        return Member.objects.select_related("organization").get(pk=self.members[index].pk)

    def org(self, index):
        return Organization.objects.get(pk=self.orgs[index].pk)

    def round(self, index):
        return Round.objects.get(pk=self.rounds[index].pk)


# --- The events -----------------------------------------------------------------------------------


def complete(world, m, lesson):
    builders.complete_online(world.member(m), world.lessons[lesson])


def exempt_or_withdraw(world, m, r):
    member, training_round = world.member(m), world.round(r)
    active = Exemption.objects.filter(
        member=member, round=training_round, revoked_at__isnull=True
    ).first()
    if active:
        services.exemption_revoke(exemption=active, user=world.city.trainer)
    elif training_round.includes(member):
        services.exemption_grant(
            member=member, training_round=training_round, reason="病休", user=world.city.trainer
        )


def leave(world, m, r):
    member, training_round = world.member(m), world.round(r)
    if LeaveRequest.objects.filter(member=member, round=training_round).exists():
        return
    if not training_round.includes(member) or training_round.is_closed:
        return
    request = services.leave_request(member=member, training_round=training_round, reason="出差")
    services.leave_decide(leave=request, approve=True, user=world.city.trainer)


def move(world, m, o):
    member = world.member(m)
    member.organization = world.org(o)
    member.save()


def toggle_active(world, m):
    member = world.member(m)
    member.is_active = not member.is_active
    member.save()


def reposition(world, m, p):
    member = world.member(m)
    member.position = POSITIONS[p]
    member.save()


def post(world, m, o):
    member, place = world.member(m), world.org(o)
    if place.pk != member.organization_id:
        Posting.objects.create(
            member=member,
            organization=place,
            title="第一书记",
            position=Member.Position.SECRETARY,
            starts_on=date(2026, 3, 1),
        )


def end_posting(world, m):
    posting = Posting.objects.filter(member=world.members[m], ends_on__isnull=True).first()
    if posting is not None:
        posting.ends_on = date(2026, 6, 30)  # before either round opens: out of scope
        posting.save()


def delete_posting(world, m):
    posting = Posting.objects.filter(member=world.members[m]).first()
    if posting is not None:
        posting.delete()


def scope_add(world, o):
    world.round(0).scope_roots.add(world.org(o))


def scope_remove(world, o):
    world.round(0).scope_roots.remove(world.org(o))


def domain(world, o):
    organization = world.org(o)
    organization.domain = "community" if organization.domain == "rural" else "rural"
    organization.save()


def roster_import(world, m, o, p):
    """A roster file moving member ``m`` to organisation ``o`` and adding a new member there."""
    member, place = world.member(m), world.org(o)
    positions = {
        Member.Position.MEMBER: "普通党员",
        Member.Position.SECRETARY: "支部书记",
        Member.Position.COMMITTEE: "支委委员",
    }
    rows = [
        [member.name, member.phone, place.code, "", "正式党员", positions[POSITIONS[p]], ""],
        ["新成员", f"136{next(_phones):08d}", place.code, "", "正式党员", "普通党员", ""],
    ]
    record = importing.roster_check(data=xlsx([ROSTER_HEADER, *rows]), file_name="r.xlsx")
    if not record.report.get("errors"):
        importing.roster_apply(spreadsheet_import=record)


def close(world, r):
    services.round_close(training_round=world.round(r))


M, ORG, R = st.integers(0, MEMBERS - 1), st.integers(0, 6), st.integers(0, 1)
EVENTS = st.one_of(
    st.tuples(st.just(complete), M, st.integers(0, 1)),
    st.tuples(st.just(exempt_or_withdraw), M, R),
    st.tuples(st.just(leave), M, R),
    st.tuples(st.just(move), M, ORG),
    st.tuples(st.just(toggle_active), M),
    st.tuples(st.just(reposition), M, st.integers(0, 2)),
    st.tuples(st.just(post), M, ORG),
    st.tuples(st.just(end_posting), M),
    st.tuples(st.just(delete_posting), M),
    st.tuples(st.just(scope_add), ORG),
    st.tuples(st.just(scope_remove), ORG),
    st.tuples(st.just(domain), ORG),
    st.tuples(st.just(roster_import), M, ORG, st.integers(0, 2)),
    st.tuples(st.just(close), R),
)


def assert_no_drift(world, step):
    for training_round in [world.round(0), world.round(1)]:
        drift = counters_check(training_round=training_round)
        assert drift == [], (step, training_round.title, drift)
        for node in world.orgs:
            node = Organization.objects.get(pk=node.pk)
            for position in ("", Member.Position.SECRETARY):
                ours = coverage_children(
                    training_round=training_round, node=node, position=position
                )
                live = coverage_children_live(
                    training_round=training_round, node=node, position=position
                )
                assert ours.head.figures == live.head.figures, (step, node.name, position)
                assert [(r.organization.pk, r.direct, r.figures) for r in ours.rows] == [
                    (r.organization.pk, r.direct, r.figures) for r in live.rows
                ], (step, node.name, position)


class Rollback(Exception):
    pass


@pytest.mark.django_db
@settings(
    max_examples=12,
    derandomize=True,  # the same sequences on every run and in CI: no example database
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(EVENTS, min_size=1, max_size=10))
# Every kind of event at least once, whatever the draw: a member posted into the county round's
# scope, the posting ended or deleted; a domain turned rural; roots added and removed; a leave,
# an exemption and a completion; a move out and a deactivation; a roster import; the close.
@example(events=[(post, 1, 5), (end_posting, 1), (post, 1, 5), (delete_posting, 1)])
@example(events=[(post, 1, 5), (delete_posting, 1)])
@example(events=[(domain, 3), (domain, 6), (domain, 4)])
@example(events=[(scope_add, 2), (reposition, 1, 1), (scope_remove, 2), (scope_remove, 1)])
@example(events=[(leave, 0, 0), (exempt_or_withdraw, 2, 1), (complete, 4, 0), (complete, 4, 1)])
@example(events=[(move, 0, 6), (toggle_active, 2), (toggle_active, 2), (move, 3, 5)])
@example(events=[(roster_import, 1, 3, 1), (close, 0), (exempt_or_withdraw, 0, 0)])
def test_counters_equal_a_full_recount_after_every_event(city, events):
    try:
        with transaction.atomic():  # each example starts from the same city
            world = World(city)
            assert_no_drift(world, "setup")
            for step, (event, *args) in enumerate(events):
                event(world, *args)
                assert_no_drift(world, (step, event.__name__, *args))
            raise Rollback
    except Rollback:
        pass


# --- Reading them --------------------------------------------------------------------------------


def test_the_coverage_page_reads_counter_rows_not_members(city):
    """Rows changed behind the services' back show on the page: it reads the node's subtree
    row, its children's, and its own direct row, not members nor the rows further down."""
    training_round = builders.training_round([city.root])
    CoverageRollup.objects.filter(round=training_round, organization=city.root, position="").update(
        completed=1
    )
    CoverageRollup.objects.filter(
        round=training_round, organization=city.county_b, position=""
    ).update(on_leave=1)
    CoverageCounter.objects.filter(round=training_round, organization=city.branch_a).update(
        completed=1
    )
    coverage = coverage_children(training_round=training_round, node=city.root)
    assert (coverage.head.figures.in_scope, coverage.head.figures.completed) == (2, 1)
    by_name = {row.organization.name: row.figures for row in coverage.rows}
    assert by_name[city.county_b.name].on_leave == 1
    assert by_name[city.county_a.name].completed == 0  # the branch's direct row is not summed
    branch = coverage_children(training_round=training_round, node=city.branch_a)
    assert [(row.direct, row.figures.completed) for row in branch.rows] == [(True, 1)]


def test_a_node_page_costs_the_same_queries_whatever_the_tree(city, django_assert_num_queries):
    """Two queries for any node: the subtree rows, then the node's own row; more organisations
    below do not add any."""
    training_round = builders.training_round([city.root])
    with django_assert_num_queries(2):
        coverage_children(training_round=training_round, node=city.root)
    for i in range(12):
        branch = factories.org(f"新支部{i}", city.county_a, code=f"A-1{i:02d}")
        factories.member(branch, name=f"新成员{i}")
    root = Organization.objects.get(pk=city.root.pk)
    with django_assert_num_queries(2):
        coverage = coverage_children(training_round=training_round, node=root)
    assert coverage.head.figures.in_scope == 14
    assert counters_check(training_round=training_round) == []


def test_the_close_snapshot_is_taken_from_the_counters(city):
    training_round = builders.training_round([city.root])
    for lesson in training_round.lessons.all():
        builders.complete_online(city.member_a, lesson)
    figures = coverage_by_organization(training_round=training_round)
    assert figures[city.root.pk]["completed"] == 1
    assert figures[city.branch_a.pk]["in_scope"] == 1


def test_a_status_written_one_row_at_a_time_moves_the_counters(city):
    """participation_refresh writes in bulk and recounts; a row saved or deleted on its own (a
    data fix, a fixture) recounts too."""
    training_round = builders.training_round([city.root])
    row = Participation.objects.create(
        round=training_round, member=city.member_a, status=Participation.Status.COMPLETED
    )
    assert counters_check(training_round=training_round) == []
    assert coverage_children(training_round=training_round, node=city.root).head.figures.completed
    row.delete()
    assert counters_check(training_round=training_round) == []
    figures = coverage_children(training_round=training_round, node=city.root).head.figures
    assert figures.completed == 0


# --- The command --------------------------------------------------------------------------------


@pytest.fixture
def drifted(city):
    training_round = builders.training_round([city.root])
    for lesson in training_round.lessons.all():
        builders.complete_online(city.member_a, lesson)
    CoverageCounter.objects.filter(round=training_round, organization=city.branch_a).update(
        completed=0
    )
    CoverageCounter.objects.filter(round=training_round, organization=city.branch_b).delete()
    return training_round


def test_the_command_finds_drift_and_exits_non_zero(drifted, capsys):
    with pytest.raises(SystemExit) as exit_info:
        call_command("coverage_counters", "--round", str(drifted.pk))
    assert exit_info.value.code == 1
    out = capsys.readouterr()
    assert "A-01" in out.out and "B-01" in out.out
    assert "--repair" in out.err
    assert counters_check(training_round=drifted)  # nothing changed


def test_the_command_repairs_and_logs_it(drifted, capsys):
    call_command("coverage_counters", "--round", str(drifted.pk), "--repair")
    assert counters_check(training_round=drifted) == []
    assert counters_stored(training_round=drifted) == counters_live(training_round=drifted)
    entry = LogEntry.objects.filter(additional_data__event="coverage_counters_repaired").get()
    assert entry.object_pk == str(drifted.pk)
    assert entry.additional_data["rows"] == 4  # branch A and B, all positions and members
    call_command("coverage_counters", "--round", str(drifted.pk))  # clean now: exits 0
    assert "match" in capsys.readouterr().out


def test_the_command_builds_every_round_from_nothing(city):
    """What an existing installation gets: rounds with no rows at all, built by --all."""
    training_round = builders.training_round([city.root])
    CoverageCounter.objects.all().delete()
    CoverageRollup.objects.all().delete()
    with pytest.raises(SystemExit):
        call_command("coverage_counters", "--all")
    call_command("coverage_counters", "--all", "--repair")
    assert counters_check(training_round=training_round) == []
    assert CoverageCounter.objects.filter(round=training_round).count() == 4
    # The city, two counties and two branches, each for all positions and for members.
    assert CoverageRollup.objects.filter(round=training_round).count() == 10


def test_the_command_finds_a_subtree_row_that_drifted(city, capsys):
    training_round = builders.training_round([city.root])
    CoverageRollup.objects.filter(round=training_round, organization=city.county_a).update(
        in_scope=5
    )
    with pytest.raises(SystemExit):
        call_command("coverage_counters", "--round", str(training_round.pk))
    assert "subtree" in capsys.readouterr().out
    call_command("coverage_counters", "--round", str(training_round.pk), "--repair")
    assert counters_check(training_round=training_round) == []


def test_the_command_refuses_an_unknown_round(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("coverage_counters", "--round", "999")


# --- Writers at once ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_members_completing_at_once_in_every_branch_leave_no_drift(city):
    """Six writers in six branches under both counties complete lessons at the same time: every
    one of them adds to the city's subtree row; none is lost, none waits forever."""
    branches = [
        factories.org(f"并发支部{i}", city.county_a if i % 2 else city.county_b, code=f"C-{i}")
        for i in range(6)
    ]
    members = [factories.member(branch, name=f"并发{i:02d}") for i, branch in enumerate(branches)]
    members += [
        factories.member(branch, name=f"并发{i + 6:02d}") for i, branch in enumerate(branches)
    ]
    training_round = builders.training_round([city.root])
    lessons = list(training_round.lessons.all())
    errors = []

    def writer(batch):
        try:
            for member in batch:
                for lesson in lessons:
                    builders.complete_online(member, lesson)
        except Exception as error:  # reported below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(members[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert counters_check(training_round=training_round) == []
    root = Organization.objects.get(pk=city.root.pk)
    head = coverage_children(training_round=training_round, node=root).head.figures
    assert (head.in_scope, head.completed) == (14, 12)

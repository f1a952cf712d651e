"""The yearly study-hours ledger (学时档案): entries, totals, requirement, lists and export."""

import io
import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from members.models import Member
from rounds import ledger, services
from rounds.models import Attendance

from .. import factories
from . import builders

MINE = reverse("rounds:ledger_mine")
ORG = reverse("rounds:ledger_org")
EXPORT = reverse("rounds:ledger_org_export")
NOW = builders.aware(2026, 12, 10, 10, 0)


def member_url(member):
    return reverse("rounds:ledger_member", args=[member.pk])


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def setup(city):
    parent = builders.course_builders.course(title="学习党章")
    lessons = [
        builders.course_builders.lesson(parent, title="第一课", hours=Decimal("1.5")),
        builders.course_builders.lesson(parent, title="第二课", hours=Decimal("0.5")),
    ]
    training_round = builders.training_round([city.root], lessons, title="四季度轮训")
    return city, training_round, lessons


def attend(member, sitting, status=Attendance.Status.PRESENT):
    return Attendance.objects.create(
        sitting=sitting, member=member, status=status, method=Attendance.Method.ROLL_CALL
    )


def a_sitting(training_round, host, start, *, title="11月集中学习", hours=Decimal("2")):
    session = builders.session(training_round, host, start=start, hours=hours, title=title)
    return builders.sitting(session)


def ledger_row(member, year, members_qs=None):
    qs = ledger.ledger_for_members(
        members_qs=members_qs or Member.objects.filter(pk=member.pk), year=year
    )
    return qs.get(pk=member.pk)


_cheap_phones = itertools.count(1)


def cheap_members(organization, count, prefix="党员", **fields):
    """Many members without hashing passwords or sending signals per row."""
    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"{prefix}-{organization.pk}-{i}") for i in range(count)]
    )
    return Member.objects.bulk_create(
        [
            Member(
                user=user,
                name=f"{prefix}{i:03d}",
                phone=f"150{next(_cheap_phones):08d}",
                organization=organization,
                **fields,
            )
            for i, user in enumerate(users)
        ]
    )


def read_xlsx(content):
    sheet = load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


# --- Entries and totals ------------------------------------------------------------------------


def test_entries_from_lessons_and_sessions_with_source_and_date(setup):
    city, training_round, lessons = setup
    completed = builders.aware(2026, 11, 5, 20, 0)
    builders.complete_online(city.member_a, lessons[0], at=completed)
    sitting = a_sitting(training_round, city.branch_a, builders.aware(2026, 11, 12, 9, 0))
    attend(city.member_a, sitting)

    entries = ledger.ledger_entries(member=city.member_a, year=2026)

    assert [(e.kind, e.title, e.detail, e.hours, e.date) for e in entries] == [
        ("lesson", "第一课", "学习党章", Decimal("1.5"), completed),
        ("session", "11月集中学习", "四季度轮训", Decimal("2"), sitting.start),
    ]
    assert ledger.ledger_total(member=city.member_a, year=2026) == Decimal("3.5")
    assert ledger.ledger_entries(member=city.member_b, year=2026) == []
    row = ledger_row(city.member_a, 2026)
    assert (row.hours_lessons, row.hours_sessions, row.hours_total) == (
        Decimal("1.5"),
        Decimal("2"),
        Decimal("3.5"),
    )


def test_entries_are_sorted_by_date(setup):
    city, training_round, lessons = setup
    builders.complete_online(city.member_a, lessons[0], at=builders.aware(2026, 12, 1, 8, 0))
    builders.complete_online(city.member_a, lessons[1], at=builders.aware(2026, 10, 2, 8, 0))
    attend(city.member_a, a_sitting(training_round, city.branch_a, builders.aware(2026, 11, 1, 9)))
    titles = [e.title for e in ledger.ledger_entries(member=city.member_a, year=2026)]
    assert titles == ["第二课", "11月集中学习", "第一课"]


def test_year_follows_shanghai_time_not_utc(setup):
    city, _training_round, lessons = setup
    # 2026-12-31 23:30 in Shanghai is 15:30 UTC; 2027-01-01 00:10 is still 2026 in UTC.
    builders.complete_online(city.member_a, lessons[0], at=builders.aware(2026, 12, 31, 23, 30))
    builders.complete_online(city.member_a, lessons[1], at=builders.aware(2027, 1, 1, 0, 10))

    assert [e.title for e in ledger.ledger_entries(member=city.member_a, year=2026)] == ["第一课"]
    assert [e.title for e in ledger.ledger_entries(member=city.member_a, year=2027)] == ["第二课"]
    assert ledger_row(city.member_a, 2026).hours_lessons == Decimal("1.5")
    assert ledger_row(city.member_a, 2027).hours_lessons == Decimal("0.5")


def test_a_sitting_counts_in_the_year_it_started(setup):
    city, training_round, _lessons = setup
    sitting = a_sitting(training_round, city.branch_a, builders.aware(2027, 1, 1, 0, 30))
    attend(city.member_a, sitting)
    assert ledger.ledger_total(member=city.member_a, year=2026) == 0
    assert ledger.ledger_total(member=city.member_a, year=2027) == Decimal("2")
    assert ledger_row(city.member_a, 2026).hours_sessions == 0
    assert ledger_row(city.member_a, 2027).hours_sessions == Decimal("2")


def test_only_present_or_late_attendance_counts(setup):
    city, training_round, _lessons = setup
    day = builders.aware(2026, 11, 2, 9, 0)
    statuses = [
        Attendance.Status.PRESENT,
        Attendance.Status.LATE,
        Attendance.Status.ABSENT,
        Attendance.Status.LEAVE,
    ]
    for i, status in enumerate(statuses):
        sitting = a_sitting(training_round, city.branch_a, day + timedelta(days=i), title=status)
        attend(city.member_a, sitting, status)

    entries = ledger.ledger_entries(member=city.member_a, year=2026)
    assert sorted(e.title for e in entries) == ["late", "present"]
    assert ledger_row(city.member_a, 2026).hours_sessions == Decimal("4")


def test_roll_call_marks_feed_the_ledger(setup):
    city, training_round, _lessons = setup
    sitting = a_sitting(training_round, city.branch_a, builders.aware(2026, 11, 12, 9, 0))
    services.roll_call_save(
        sitting=sitting,
        marks={city.member_a.pk: Attendance.Status.PRESENT},
        user=city.operator_a,
    )
    assert ledger.ledger_total(member=city.member_a, year=2026) == Decimal("2")
    services.roll_call_save(
        sitting=sitting, marks={city.member_a.pk: Attendance.Status.ABSENT}, user=city.operator_a
    )
    assert ledger.ledger_total(member=city.member_a, year=2026) == 0


def test_uncompleted_progress_does_not_count(setup):
    city, _training_round, lessons = setup
    progress = builders.complete_online(city.member_a, lessons[0])
    progress.completed_at = None
    progress.save()
    assert ledger.ledger_entries(member=city.member_a, year=2026) == []
    assert ledger_row(city.member_a, 2026).hours_total == 0


# --- Requirement -------------------------------------------------------------------------------


def test_requirement_by_position(setup):
    city, _training_round, _lessons = setup
    secretary = Member.objects.get(pk=city.member_b.pk)
    secretary.position = Member.Position.SECRETARY
    secretary.save()
    assert ledger.ledger_requirement(position="member") == 32
    assert ledger.ledger_requirement(position="secretary") == 56
    assert ledger.ledger_requirement(position="committee") == 56
    assert ledger.ledger_requirement(position="something-new") == 32
    rows = {
        m.pk: m
        for m in ledger.ledger_for_members(
            members_qs=Member.objects.filter(pk__in=[city.member_a.pk, secretary.pk]), year=2026
        )
    }
    assert rows[city.member_a.pk].hours_required == 32
    assert rows[secretary.pk].hours_required == 56
    assert rows[secretary.pk].hours_gap == 56
    assert rows[secretary.pk].is_below == 1


def test_requirement_comes_from_settings(setup, settings):
    city, _training_round, lessons = setup
    settings.LUNXUN_YEARLY_HOURS = {"member": 1, "secretary": 3}
    Member.objects.filter(pk=city.member_b.pk).update(position=Member.Position.COMMITTEE)
    builders.complete_online(city.member_a, lessons[0])  # 1.5 hours
    assert ledger.ledger_requirement(position="committee") == 1  # not listed: the member figure
    rows = {m.pk: m for m in ledger.ledger_for_members(members_qs=Member.objects, year=2026)}
    member_a, member_b = rows[city.member_a.pk], rows[city.member_b.pk]
    assert (member_a.hours_required, member_a.hours_gap, member_a.is_below) == (1, 0, 0)
    assert (member_b.hours_required, member_b.hours_gap, member_b.is_below) == (1, 1, 1)
    summary = ledger.ledger_summary(
        member=city.member_a, entries=ledger.ledger_entries(member=city.member_a, year=2026)
    )
    assert (summary.required, summary.gap, summary.is_below, summary.percent) == (
        1,
        0,
        False,
        100,
    )


def test_tenths_add_up_exactly_to_the_requirement(setup, settings):
    """On SQLite sums of decimals are floats: ten lessons of 0.1 must meet a requirement of 1."""
    city, _training_round, _lessons = setup
    settings.LUNXUN_YEARLY_HOURS = {"member": 1}
    parent = builders.course_builders.course(title="小课")
    for i in range(10):
        lesson = builders.course_builders.lesson(parent, title=f"小课{i}", hours=Decimal("0.1"))
        builders.complete_online(city.member_a, lesson)
    row = ledger_row(city.member_a, 2026)
    assert (row.hours_total, row.hours_gap, row.is_below) == (Decimal("1.0"), 0, 0)


# --- Pages -------------------------------------------------------------------------------------


def test_member_sees_own_ledger(setup, client_for, frozen):
    city, _training_round, lessons = setup
    builders.complete_online(city.member_a, lessons[0])
    builders.complete_online(city.member_b, lessons[1])
    response = client_for(city.member_a.user).get(MINE)
    assert response.status_code == 200
    assert response.context["year"] == 2026
    assert response.context["member"] == city.member_a
    assert [e.title for e in response.context["entries"]] == ["第一课"]
    summary = response.context["summary"]
    assert (summary.total, summary.required, summary.gap) == (
        Decimal("1.5"),
        32,
        Decimal("30.5"),
    )
    text = response.content.decode()
    assert "第一课" in text and "学习党章" in text
    assert "第二课" not in text  # member_b's lesson
    assert "<progress" in text


def test_member_page_takes_the_year(setup, client_for, frozen):
    city, _training_round, lessons = setup
    builders.complete_online(city.member_a, lessons[0], at=builders.aware(2025, 6, 1, 9, 0))
    client = client_for(city.member_a.user)
    assert client.get(MINE).context["entries"] == []
    response = client.get(MINE + "?year=2025")
    assert [e.title for e in response.context["entries"]] == ["第一课"]
    assert client.get(MINE + "?year=abc").context["year"] == 2026


def test_user_without_member_record_gets_404(city, client_for):
    assert client_for(city.secretary_a).get(MINE).status_code == 404


def test_member_cannot_open_staff_pages(city, client_for):
    client = client_for(city.member_a.user)
    assert client.get(ORG).status_code == 404
    assert client.get(EXPORT).status_code == 404
    assert client.get(member_url(city.member_b)).status_code == 404


def test_staff_list_puts_members_below_requirement_first(setup, client_for, frozen):
    city, _training_round, _lessons = setup
    big = builders.course_builders.lesson(title="长课", hours=Decimal("40"))
    met_first = factories.member(city.branch_a, name="阿达标")
    met_last = factories.member(city.branch_a, name="丁达标")
    below_first = factories.member(city.branch_a, name="包未达")
    for member in (met_first, met_last):
        builders.complete_online(member, big)
    response = client_for(city.secretary_a).get(ORG)
    assert response.status_code == 200
    names = [m.name for m in response.context["page"].object_list]
    below = sorted(["王芳", "包未达"])
    met = sorted(["阿达标", "丁达标"])
    assert names == below + met
    rows = {m.name: m for m in response.context["page"].object_list}
    assert rows["阿达标"].hours_gap == 0 and rows["阿达标"].hours_total == 40
    assert rows["包未达"].hours_gap == 32
    assert below_first.name in response.content.decode()

    only_below = client_for(city.secretary_a).get(ORG + "?below=1")
    assert [m.name for m in only_below.context["page"].object_list] == below
    searched = client_for(city.secretary_a).get(ORG + "?q=达标")
    assert [m.name for m in searched.context["page"].object_list] == met


def test_secretary_is_scoped_to_their_subtree(setup, client_for, frozen):
    city, _training_round, _lessons = setup
    client = client_for(city.secretary_b)
    response = client.get(ORG)
    names = [m.name for m in response.context["page"].object_list]
    assert names == ["李强"]
    assert "王芳" not in response.content.decode()
    assert client.get(member_url(city.member_a)).status_code == 404
    assert client.get(member_url(city.member_b)).status_code == 200
    assert client.get(ORG + f"?org={city.branch_a.pk}").status_code == 404
    assert client.get(EXPORT + f"?org={city.branch_a.pk}").status_code == 404
    rows = read_xlsx(client.get(EXPORT).content)
    assert [r[0] for r in rows[1:]] == ["李强"]


def test_trainer_narrows_the_list_to_an_organisation(setup, client_for, frozen):
    city, _training_round, _lessons = setup
    client = client_for(city.trainer)
    assert {m.name for m in client.get(ORG).context["page"].object_list} == {"王芳", "李强"}
    response = client.get(ORG + f"?org={city.county_b.pk}")
    assert [m.name for m in response.context["page"].object_list] == ["李强"]
    assert response.context["organization"] == city.county_b


def test_staff_member_page_shows_the_ledger_with_phone_by_role(setup, client_for, frozen):
    city, _training_round, lessons = setup
    builders.complete_online(city.member_a, lessons[0])
    secretary_view = client_for(city.secretary_a).get(member_url(city.member_a))
    assert secretary_view.status_code == 200
    assert [e.title for e in secretary_view.context["entries"]] == ["第一课"]
    assert "13800000001" in secretary_view.content.decode()
    operator_view = client_for(city.operator_a).get(member_url(city.member_a))
    assert operator_view.status_code == 200
    text = operator_view.content.decode()
    assert "13800000001" not in text and "138****0001" in text


def test_list_masks_phones_for_site_operators(setup, client_for, frozen):
    city, _training_round, _lessons = setup
    assert "13800000001" in client_for(city.secretary_a).get(ORG).content.decode()
    text = client_for(city.operator_a).get(ORG).content.decode()
    assert "13800000001" not in text and "138****0001" in text


# --- Export and scale --------------------------------------------------------------------------


def test_export_has_all_rows_not_one_page_and_is_audited(setup, client_for, frozen):
    city, _training_round, lessons = setup
    cheap_members(city.branch_a, 60)
    builders.complete_online(city.member_a, lessons[0])
    client = client_for(city.secretary_a)
    assert len(client.get(ORG).context["page"].object_list) == 50

    response = client.get(EXPORT + "?year=2026", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    rows = read_xlsx(response.content)
    assert rows[0][:3] == ["姓名", "手机号码", "党组织"]
    assert len(rows) == 1 + 61
    wang = next(r for r in rows if r[0] == "王芳")
    assert wang[1] == "13800000001"
    # Online, group sessions, other recorded study, total, required, still missing.
    assert [Decimal(str(v)) for v in wang[4:10]] == [
        Decimal("1.5"),
        0,
        0,
        Decimal("1.5"),
        32,
        Decimal("30.5"),
    ]
    entry = LogEntry.objects.get(additional_data__event="ledger_export")
    assert entry.actor == city.secretary_a
    assert entry.remote_addr == "10.1.2.3"
    assert entry.additional_data["rows"] == 61
    assert entry.additional_data["filters"]["year"] == 2026


def test_export_follows_the_list_filters(setup, client_for, frozen):
    city, _training_round, _lessons = setup
    big = builders.course_builders.lesson(title="长课", hours=Decimal("40"))
    builders.complete_online(city.member_a, big)
    cheap_members(city.branch_a, 3)
    client = client_for(city.secretary_a)
    rows = read_xlsx(client.get(EXPORT + "?below=1").content)
    listed = [m.name for m in client.get(ORG + "?below=1").context["page"].object_list]
    assert [r[0] for r in rows[1:]] == listed == ["党员000", "党员001", "党员002"]
    entry = LogEntry.objects.get(additional_data__event="ledger_export")
    assert entry.additional_data["filters"]["below"] is True
    assert entry.additional_data["rows"] == 3


def test_operator_export_masks_phones(setup, client_for, frozen):
    city, _training_round, _lessons = setup
    rows = read_xlsx(client_for(city.operator_a).get(EXPORT).content)
    assert rows[1][:2] == ["王芳", "138****0001"]
    entry = LogEntry.objects.get(additional_data__event="ledger_export")
    assert entry.additional_data["full_phones"] is False


def _list_queries(client):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(ORG)
    assert response.status_code == 200
    return len(captured.captured_queries), len(response.context["page"].object_list)


def test_list_query_count_does_not_grow_with_members(setup, client_for, frozen):
    city, training_round, lessons = setup
    client = client_for(city.secretary_a)
    client.get(ORG)  # the first request of a session also saves the session
    cheap_members(city.branch_a, 4, prefix="少")
    sitting = a_sitting(training_round, city.branch_a, builders.aware(2026, 11, 12, 9, 0))
    few_queries, few_rows = _list_queries(client)
    assert few_rows == 5
    for member in cheap_members(city.branch_a, 55, prefix="多"):
        attend(member, sitting)
    builders.complete_online(city.member_a, lessons[0])
    many_queries, many_rows = _list_queries(client)
    assert many_rows == 50
    assert many_queries == few_queries


# --- Pages of a city-sized list ----------------------------------------------------------------


@pytest.mark.parametrize("read_in_name_order", [True, False], ids=["name-order", "sorted"])
def test_list_pages_follow_the_one_sorted_order(
    setup, client_for, frozen, settings, monkeypatch, read_in_name_order
):
    """Every page of the list, all members or those below only, is the slice of the one sorted
    query (below the requirement first, then by name), whether the pages are read from the
    members' name order (a city) or by sorting the subtree (a branch), at any page size and
    across the page where the members below the requirement end."""
    from rounds.views import ledger as views

    city, _training_round, _lessons = setup
    settings.LUNXUN_YEARLY_HOURS = {"member": 32, "secretary": 56, "committee": 0}
    monkeypatch.setattr(ledger, "NAME_ORDER_FROM", 0 if read_in_name_order else 10**9)
    monkeypatch.setattr(views, "LEDGER_PAGE_SIZE", 7)
    lessons = {
        hours: builders.course_builders.lesson(title=f"{hours}学时", hours=Decimal(hours))
        for hours in ("10", "32", "40")
    }
    plan = ["none", "10", "32", "40", "10", "none", "40", "32"]
    positions = [Member.Position.MEMBER, Member.Position.SECRETARY, Member.Position.COMMITTEE]
    for organization, prefix in ((city.branch_a, "甲"), (city.branch_b, "乙")):
        for i, member in enumerate(cheap_members(organization, 17, prefix=prefix)):
            member.position = positions[i % 3]
            member.save(update_fields=["position"])
            if plan[i % len(plan)] != "none":
                builders.complete_online(member, lessons[plan[i % len(plan)]])
    factories.member(city.branch_a, name="离开的", is_active=False)

    def pages(client, query):
        names, page = [], 1
        while True:
            response = client.get(ORG + f"?{query}&page={page}")
            assert response.status_code == 200
            names += [m.pk for m in response.context["page"].object_list]
            if not response.context["page"].has_next():
                return names, response.context["page"].paginator.count
            page += 1

    cases = [
        (city.trainer, "", Member.objects.all()),
        (city.trainer, f"org={city.county_b.pk}", Member.objects.in_subtree(city.county_b)),
        (city.secretary_a, "", Member.objects.in_subtree(city.branch_a)),
    ]
    for user, query, scope in cases:
        client = client_for(user)
        expected = ledger.ledger_for_members(
            members_qs=scope.active().party_members(), year=NOW.year
        )
        below = list(ledger.below_requirement(expected).values_list("pk", flat=True))
        everyone = list(expected.values_list("pk", flat=True))
        assert 0 < len(below) < len(everyone)
        assert pages(client, query) == (everyone, len(everyone))
        assert pages(client, query + "&below=1") == (below, len(below))
    # A committee member needs no hours: met without any, never listed as below.
    committee = Member.objects.filter(position=Member.Position.COMMITTEE, name__startswith="甲")
    assert not set(committee.values_list("pk", flat=True)) & set(below)


# --- The whole tree ---------------------------------------------------------------------------


def _listed(roots, below_only=False):
    listed = ledger.LedgerList(
        members=Member.objects.active().party_members(),
        roots=roots,
        year=2026,
        below_only=below_only,
    )
    with CaptureQueriesContext(connection) as captured:
        count = listed.count()
        names = [member.name for member in listed[0 : count + 1]]
    return count, names, [q["sql"] for q in captured.captured_queries]


def test_the_only_top_nodes_list_states_no_organisation_condition(city):
    count, names, statements = _listed([city.root])
    assert count == 2 and sorted(names) == sorted([city.member_a.name, city.member_b.name])
    (counted,) = [s for s in statements if "COUNT(" in s]
    assert "members_organization" not in counted
    assert _listed([city.root], below_only=True)[:2] == (count, names)
    # A county is not the whole tree: its members only, by their organisations' paths.
    county = _listed([city.county_a])
    assert county[:2] == (1, [city.member_a.name])
    assert any("members_organization" in s for s in county[2] if "COUNT(" in s)


def test_a_second_top_node_keeps_the_organisation_condition(city):
    other_city = factories.org("另一市委", code="OTHER")
    factories.member(other_city, name="外市党员")
    count, names, _statements = _listed([city.root])
    assert count == 2 and "外市党员" not in names
    everywhere = _listed([city.root, other_city])
    assert everywhere[0] == 3 and "外市党员" in everywhere[1]

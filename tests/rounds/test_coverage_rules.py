"""Coverage rules pinned to exact figures: the exempt leave the denominator, exemption outranks
leave, and a branch secretary's power stops at her own branch."""

import io

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from rounds import services
from rounds.coverage import coverage_children, figures_of
from rounds.models import Attendance, Exemption, LeaveRequest, Participation

from .. import factories
from . import builders

P = Participation.Status


# --- Coverage = completed / (in scope − exempt) -------------------------------------------------


@pytest.fixture
def one_exempt(city):
    """Three members in scope: one completed, one exempt, one not started.

    Coverage is 1 / (3 − 1) = 50.0 %; forgetting the exemption would give 33.3 %.
    """
    training_round = builders.training_round([city.root])
    factories.member(city.branch_a, name="赵敏")
    for lesson in training_round.lessons.all():
        builders.complete_online(city.member_a, lesson)
    services.exemption_grant(
        member=city.member_b, training_round=training_round, reason="长期病休", user=city.trainer
    )
    return city, training_round


def test_the_figures_leave_the_exempt_out_of_the_denominator(one_exempt):
    city, training_round = one_exempt
    figures = figures_of(training_round.members_in_scope(), training_round)
    assert (figures.in_scope, figures.completed, figures.exempt) == (3, 1, 1)
    assert figures.percent == 50.0
    coverage = coverage_children(training_round=training_round, node=city.root)
    head, rows = coverage.head, coverage.rows
    assert head.figures.percent == 50.0
    by_code = {row.organization.code: row.figures.percent for row in rows}
    # County B's only member is exempt: nobody counts there, so there is no rate at all.
    assert by_code == {"A": 50.0, "B": None}


def test_the_page_and_the_export_show_the_rate_without_the_exempt(one_exempt, client_for):
    city, training_round = one_exempt
    client = client_for(city.trainer)
    page = client.get(reverse("rounds:coverage", args=[training_round.pk])).content.decode()
    assert 'data-figure="coverage">50.0%<' in page
    assert 'data-figure="exempt">1<' in page
    response = client.get(
        reverse("rounds:coverage_export", args=[training_round.pk]), {"org": city.root.pk}
    )
    rows = list(load_workbook(io.BytesIO(response.content)).worksheets[0].values)
    coverage_column = rows[1].index("覆盖率")
    total = rows[2]
    assert total[0].startswith("示范市委")
    assert total[coverage_column] == "50.0%"
    # County B's only member is exempt: an empty cell, no rate.
    assert {row[1]: row[coverage_column] or "" for row in rows[3:]} == {"A": "50.0%", "B": ""}


def test_a_member_who_never_opened_the_round_is_listed_as_not_started(city, client_for):
    """No participation row at all: the list and the export still say 未开始 with the lessons
    the round asks for, and a member halfway says how far she got."""
    training_round = builders.training_round([city.root])
    first = training_round.lessons.order_by("pk").first()
    builders.complete_online(city.member_a, first)
    newcomer = factories.member(city.branch_a, name="赵敏")
    assert not Participation.objects.filter(round=training_round, member=newcomer).exists()
    client = client_for(city.trainer)
    coverage = reverse("rounds:coverage", args=[training_round.pk])
    page = client.get(coverage, {"org": city.branch_a.pk, "status": "all"}).content.decode()
    assert f'data-member="{newcomer.pk}" data-status="not_started"' in page
    assert "未开始：需完成 2 门必修课" in page
    assert f'data-member="{city.member_a.pk}" data-status="in_progress"' in page
    assert "进行中：已完成 1/2 门必修课" in page
    response = client.get(
        reverse("rounds:coverage_export", args=[training_round.pk]),
        {"org": city.branch_a.pk, "status": "all"},
    )
    names = load_workbook(io.BytesIO(response.content)).worksheets[1]
    progress = {row[0]: row[4] for row in names.iter_rows(min_row=2, values_only=True)}
    assert progress["赵敏"] == "未开始：需完成 2 门必修课"
    assert progress[city.member_a.name] == "进行中：已完成 1/2 门必修课"


def test_a_closed_round_shows_its_figures_at_close_beside_later_corrections(city, client_for):
    """After the close, the page and the export show each node's frozen figures; a node whose
    live figures changed since is marked corrected, one that did not is not."""
    training_round = builders.training_round([city.root])
    for lesson in training_round.lessons.all():
        builders.complete_online(city.member_a, lesson)
    training_round = services.round_close(training_round=training_round, user=city.trainer)
    # A correction after the close: county B's member completes late.
    for lesson in training_round.lessons.all():
        builders.complete_online(city.member_b, lesson)
    coverage = coverage_children(training_round=training_round, node=city.root)
    head, rows = coverage.head, coverage.rows
    assert (head.figures.completed, head.snapshot.completed) == (2, 1)
    assert (head.figures.percent, head.snapshot.percent) == (100.0, 50.0)
    by_code = {row.organization.code: row for row in rows}
    assert by_code["A"].snapshot.completed == 1 and not by_code["A"].corrected
    assert by_code["B"].snapshot.completed == 0 and by_code["B"].corrected
    client = client_for(city.trainer)
    page = client.get(reverse("rounds:coverage", args=[training_round.pk])).content.decode()
    assert "截止时：已完成 1 人，覆盖率 50.0%。" in page
    # The total and county B changed since the close; county A did not.
    assert page.count('class="badge corrected"') == 2
    response = client.get(
        reverse("rounds:coverage_export", args=[training_round.pk]), {"org": city.root.pk}
    )
    sheet = list(load_workbook(io.BytesIO(response.content)).worksheets[0].values)
    at_close = sheet[1].index("截止时已完成")
    assert [row[at_close] for row in sheet[2:]] == [1, 1, 0]
    assert [row[at_close + 1] for row in sheet[2:]] == ["50.0%", "100.0%", "0.0%"]


# --- Exempt outranks on leave -------------------------------------------------------------------


def test_a_member_both_exempt_and_on_leave_is_exempt(city, client_for):
    training_round = builders.training_round([city.root])
    leave = services.leave_request(
        member=city.member_a, training_round=training_round, reason="外出务工"
    )
    services.leave_decide(leave=leave, approve=True, user=city.secretary_a)
    services.exemption_grant(
        member=city.member_a, training_round=training_round, reason="出国务工", user=city.trainer
    )
    assert LeaveRequest.objects.get().state == LeaveRequest.State.APPROVED
    row = Participation.objects.get(round=training_round, member=city.member_a)
    assert (row.status, row.note) == (P.EXEMPT, "出国务工")
    head = coverage_children(training_round=training_round, node=city.root).head
    assert (head.figures.exempt, head.figures.on_leave, head.figures.counted) == (1, 0, 1)
    client = client_for(city.secretary_a)
    status_page = client.get(
        reverse("rounds:member_status", args=[training_round.pk, city.member_a.pk])
    ).content.decode()
    assert 'data-status="exempt"' in status_page and "出国务工" in status_page
    coverage = reverse("rounds:coverage", args=[training_round.pk])
    on_leave = client.get(coverage, {"status": P.LEAVE}).content.decode()
    assert f'data-member="{city.member_a.pk}"' not in on_leave
    exempt = client.get(coverage, {"status": P.EXEMPT}).content.decode()
    assert f'data-member="{city.member_a.pk}" data-status="exempt"' in exempt
    # Her own page says the same.
    own = client_for(city.member_a.user).get(reverse("rounds:detail", args=[training_round.pk]))
    assert own.context["participation"].status == P.EXEMPT


def test_a_leave_mark_at_roll_call_does_not_outrank_an_exemption(city):
    training_round = builders.training_round([city.root])
    Exemption.objects.create(
        member=city.member_a, round=training_round, reason="长期病休", granted_by=city.trainer
    )
    sitting = builders.sitting(builders.session(training_round, city.branch_a))
    services.roll_call_save(
        sitting=sitting, marks={city.member_a.pk: Attendance.Status.LEAVE}, user=city.operator_a
    )
    assert Participation.objects.get(member=city.member_a).status == P.EXEMPT


# --- A branch secretary's power stops at her branch ---------------------------------------------


@pytest.fixture
def sibling(city):
    """Branch A2 next to branch A under the same county, with a member and a pending leave."""
    training_round = builders.training_round([city.root])
    branch_a2 = factories.org("团结社区党支部", city.county_a, code="A-02")
    member_a2 = factories.member(branch_a2, name="陈静", phone="13600000003")
    leave = services.leave_request(
        member=member_a2, training_round=training_round, reason="陪护家人"
    )
    sitting = builders.sitting(builders.session(training_round, branch_a2))
    return city, training_round, branch_a2, member_a2, leave, sitting


def test_a_branch_secretary_sees_nothing_of_the_sibling_branch(sibling, client_for):
    city, training_round, branch_a2, member_a2, leave, sitting = sibling
    client = client_for(city.secretary_a)
    pk = training_round.pk
    coverage = reverse("rounds:coverage", args=[pk])
    response = client.get(coverage, {"status": "all"})
    assert response.context["node"] == city.branch_a
    assert response.context["head"].figures.in_scope == 1
    page = response.content.decode()
    assert "王芳" in page and "陈静" not in page
    for org in (branch_a2, city.county_a):
        assert client.get(coverage, {"org": org.pk}).status_code == 404
        export = reverse("rounds:coverage_export", args=[pk])
        assert client.get(export, {"org": org.pk}).status_code == 404
    rows = load_workbook(
        io.BytesIO(client.get(reverse("rounds:coverage_export", args=[pk])).content)
    )
    assert [row[0] for row in list(rows.worksheets[1].values)[1:]] == ["王芳"]
    assert client.get(reverse("rounds:member_status", args=[pk, member_a2.pk])).status_code == 404
    leave_list = client.get(reverse("rounds:leave_list", args=[pk])).content.decode()
    assert "陪护家人" not in leave_list
    decide = reverse("rounds:leave_decide", args=[pk, leave.pk])
    assert client.post(decide, {"decision": "approve"}).status_code == 404
    grant = reverse("rounds:exemption_create", args=[pk, member_a2.pk])
    assert client.post(grant, {"reason": "x"}).status_code == 404
    assert client.get(reverse("rounds:roll_call", args=[sitting.pk])).status_code == 404
    remind = reverse("rounds:remind", args=[pk])
    assert client.post(remind, {"org": branch_a2.pk}).status_code == 404
    leave.refresh_from_db()
    assert leave.state == LeaveRequest.State.PENDING
    assert not Exemption.objects.exists() and not Attendance.objects.exists()
    # The county's secretary, above both, sees both.
    county = factories.staff("sec_county_a", "secretary", city.county_a)
    both = client_for(county).get(coverage, {"status": "all"}).content.decode()
    assert "王芳" in both and "陈静" in both

"""Member categories: the roster's new optional columns (same import rules: per-row errors in
Chinese, all or nothing, an export imports back unchanged), and a secretary keeping them up to
date for members in her scope — audit-logged, never her own."""

from datetime import date

import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from members import importing, services
from members.models import Member, Role
from rounds.ledger import ledger_requirement

from .. import factories
from .spreadsheets import xlsx

pytestmark = pytest.mark.django_db

HEADER = [
    "姓名",
    "手机号码",
    "党组织编码",
    "党员状态",
    "人员类别",
    "任职日期",
    "流动党员活动地编码",
    "离退休",
    "行动不便",
]


def check(rows, user=None):
    return importing.roster_check(data=xlsx([HEADER, *rows]), file_name="r.xlsx", user=user)


def test_the_category_columns_import(city):
    record = check(
        [
            ["王芳", "13800000001", "A-01", "", "书记", "2026年5月1日", "", "", ""],
            ["新人", "13700009001", "A-01", "发展对象", "", "", "", "", ""],
            ["外出", "13700009002", "A-01", "正式党员", "党务工作者", "", "B-01", "否", "是"],
            ["老王", "13700009003", "B-01", "正式党员", "党建指导员", "", "", "是", ""],
        ]
    )
    assert record.report["counts"]["errors"] == 0, record.report["errors"]
    importing.roster_apply(spreadsheet_import=record)
    wang = Member.objects.get(phone="13800000001")
    assert (wang.position, wang.position_since) == ("secretary", date(2026, 5, 1))
    assert Member.objects.get(phone="13700009001").status == Member.Status.CANDIDATE
    away = Member.objects.get(phone="13700009002")
    assert away.activity_organization == city.branch_b
    assert (away.is_retired, away.limited_mobility, away.position) == (
        False,
        True,
        "party_worker",
    )
    old = Member.objects.get(phone="13700009003")
    assert old.is_retired and old.position == Member.Position.INSTRUCTOR
    # An empty cell leaves a value as it is; 无 clears the place of activity.
    again = check([["外出", "13700009002", "A-01", "", "", "", "", "", ""]])
    assert again.report["counts"]["unchanged"] == 1
    cleared = check([["外出", "13700009002", "A-01", "", "", "", "无", "", ""]])
    assert cleared.report["changes"][0]["fields"] == ["activity_organization_id"]
    importing.roster_apply(spreadsheet_import=cleared)
    assert Member.objects.get(phone="13700009002").activity_organization is None


def test_bad_category_cells_are_reported_per_row_and_nothing_is_written(city):
    record = check(
        [
            ["好人", "13700009001", "A-01", "", "", "", "", "", ""],
            ["甲", "13700009002", "A-01", "群众", "主任", "明年", "", "也许", ""],
            ["乙", "13700009003", "A-01", "", "", "", "", "", "不"],
            ["丙", "13700009004", "A-01", "", "", "", "A-01", "", ""],
            ["丁", "13700009005", "A-01", "", "", "", "NOPE", "", ""],
        ]
    )
    by_row = {}
    for error in record.report["errors"]:
        by_row.setdefault(error["row"], []).append((error["column"], error["message"]))
    assert by_row == {
        3: [
            ("党员状态", "党员状态须为正式党员、预备党员、入党积极分子或发展对象。"),
            ("人员类别", "人员类别须为普通党员、书记、副书记、支委委员、党务工作者或党建指导员。"),
            ("离退休", "请填写“是”或“否”。"),
            ("任职日期", by_row[3][3][1]),
        ],
        4: [("行动不便", "请填写“是”或“否”。")],
        5: [("流动党员活动地编码", "流动党员的活动地应是本人所在党组织以外的党组织。")],
        6: [("流动党员活动地编码", "党组织编码不存在。")],
    }
    assert record.report["counts"]["errors"] == 4
    with pytest.raises(importing.ImportRejected):
        importing.roster_apply(spreadsheet_import=record)
    assert not Member.objects.filter(phone="13700009001").exists()


def test_an_exported_roster_with_categories_imports_back_unchanged(city):
    Member.objects.filter(pk=city.member_a.pk).update(
        position="deputy_secretary",
        position_since=date(2025, 1, 2),
        activity_organization=city.branch_b,
        is_retired=True,
        limited_mobility=True,
    )
    factories.member(city.branch_a, name="积极分子", status=Member.Status.ACTIVIST)
    content = importing.roster_export(
        members=Member.objects.filter(organization=city.branch_a), user=city.trainer
    )
    record = importing.roster_check(data=content, file_name="back.xlsx", user=city.trainer)
    assert record.report["counts"]["errors"] == 0, record.report["errors"]
    assert record.report["counts"]["unchanged"] == 2


def test_people_in_training_to_join_have_no_yearly_requirement():
    assert ledger_requirement(position="member") == 32
    assert ledger_requirement(position="deputy_secretary") == 56
    assert ledger_requirement(position="member", status=Member.Status.CANDIDATE) == 0


# --- A secretary keeps them up to date ---------------------------------------------------------


def test_a_secretary_edits_the_categories_of_a_member_in_her_scope(city, client_for):
    client = client_for(city.secretary_a)
    url = reverse("members:member_categories", args=[city.member_a.pk])
    page = client.get(url)
    assert page.status_code == 200
    response = client.post(
        url,
        {
            "status": "full",
            "position": "secretary",
            "position_since": "2026-09-01",
            "activity_organization": "B-01",
            "is_retired": "",
            "limited_mobility": "on",
        },
    )
    assert response.status_code == 302
    member = Member.objects.get(pk=city.member_a.pk)
    assert member.position == "secretary" and member.position_since == date(2026, 9, 1)
    assert member.activity_organization == city.branch_b and member.limited_mobility
    entry = LogEntry.objects.get_for_object(member).filter(actor=city.secretary_a).latest("pk")
    assert {"position", "position_since", "limited_mobility"} <= set(entry.changes_dict)


def test_a_bad_place_of_activity_is_refused_in_words_and_nothing_changes(city, client_for):
    client = client_for(city.secretary_a)
    url = reverse("members:member_categories", args=[city.member_a.pk])
    for code in ("NOPE", "A-01"):
        response = client.post(
            url, {"status": "full", "position": "member", "activity_organization": code}
        )
        assert response.status_code == 200
        assert response.context["form"].errors["activity_organization"]
    assert Member.objects.get(pk=city.member_a.pk).activity_organization is None


def test_nobody_edits_categories_outside_her_scope_or_her_own(city, client_for):
    other = reverse("members:member_categories", args=[city.member_b.pk])
    assert client_for(city.secretary_a).get(other).status_code == 404
    assert (
        client_for(city.operator_a)
        .get(reverse("members:member_categories", args=[city.member_a.pk]))
        .status_code
        == 404
    )
    # A secretary who is a member of her own branch does not change her own categories.
    own = factories.member(city.branch_a, name="书记本人")
    own_user = own.user
    services.role_assign(user=own_user, role=Role.SECRETARY, organization=city.branch_a)
    mine = reverse("members:member_categories", args=[own.pk])
    assert (
        client_for(own_user).post(mine, {"status": "full", "position": "secretary"}).status_code
        == 404
    )
    assert Member.objects.get(pk=own.pk).position == "member"

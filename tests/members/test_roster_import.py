from datetime import date

import pytest
from auditlog.models import LogEntry

from members import importing, services
from members.models import Member, SpreadsheetImport

from .. import factories
from .spreadsheets import csv_bytes, xlsx

HEADER = ["姓名", "手机号码", "党组织编码", "性别", "党员状态", "人员类别", "入党日期"]


def check(rows, user=None, name="roster.xlsx"):
    data = xlsx([HEADER, *rows]) if name.endswith(".xlsx") else csv_bytes([HEADER, *rows])
    return importing.roster_check(data=data, file_name=name, user=user)


def test_dry_run_counts_and_changes_nothing(city):
    record = check(
        [
            ["王芳", "138 0000 0001", "A-01", "女", "正式党员", "普通党员", "2001-07-01"],
            ["张  三", "+86 137-0000-9001", "A-01", "男", "预备党员", "支委委员", "2024年3月1日"],
            ["𠮷祥", "13700009002", "A-01", "", "", "", ""],
        ]
    )
    assert record.report["counts"] == {
        "new": 2,
        "changed": 1,
        "unchanged": 0,
        "errors": 0,
        "total": 3,
    }
    assert not Member.objects.filter(phone__in=["13700009001", "13700009002"]).exists()


def test_apply_creates_and_updates_members(city):
    record = check(
        [
            ["王芳", "13800000001", "A-01", "女", "正式党员", "支部书记", "2001-07-01"],
            ["张  三", "+86 137-0000-9001", "A-01", "男", "预备党员", "支委委员", "2024年3月1日"],
            ["𠮷祥", "13700009002", "A-01", "", "", "", ""],
        ]
    )
    report = importing.roster_apply(spreadsheet_import=record)
    assert report["counts"]["new"] == 2
    zhang = Member.objects.get(phone="13700009001")
    assert zhang.name == "张三"
    assert zhang.status == Member.Status.PROBATIONARY
    assert zhang.position == Member.Position.COMMITTEE
    assert zhang.joined_on == date(2024, 3, 1)
    assert zhang.organization == city.branch_a
    assert not zhang.user.has_usable_password()  # activates with a one-time code
    assert Member.objects.get(phone="13700009002").name == "𠮷祥"
    wang = Member.objects.get(phone="13800000001")
    assert wang.position == Member.Position.SECRETARY
    assert wang.gender == "female"


def test_every_row_error_is_reported_in_chinese_with_row_and_column(city):
    record = check(
        [
            ["王芳", "13800000001", "A-01", "", "", "", ""],
            ["", "13700009001", "A-01", "", "", "", ""],
            ["赵六", "1234", "A-01", "", "", "", ""],
            ["钱七", "13800000001", "A-01", "", "", "", ""],
            ["孙八", "13700009003", "NOPE", "", "", "", ""],
            ["周九", "13700009004", "A-01", "未知", "群众", "主任", "明天"],
        ]
    )
    errors = record.report["errors"]
    by_row = {}
    for error in errors:
        by_row.setdefault(error["row"], []).append(error["column"])
    assert by_row == {
        3: ["姓名"],
        4: ["手机号码"],
        5: ["手机号码"],
        6: ["党组织编码"],
        7: ["性别", "党员状态", "人员类别", "入党日期"],
    }
    duplicate = next(e for e in errors if e["row"] == 5)
    assert "第 2 行" in duplicate["message"]
    assert record.report["counts"]["errors"] == 5
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in e["message"]) for e in errors)


def test_a_file_with_any_error_changes_nothing(city):
    record = check(
        [
            ["王芳改名", "13800000001", "A-01", "", "", "", ""],
            ["新人", "13700009001", "A-01", "", "", "", ""],
            ["坏人", "12", "A-01", "", "", "", ""],
        ]
    )
    before = list(Member.objects.order_by("pk").values_list("name", "phone", "organization"))
    with pytest.raises(importing.ImportRejected) as rejected:
        importing.roster_apply(spreadsheet_import=record)
    assert rejected.value.report["counts"]["errors"] == 1
    after = list(Member.objects.order_by("pk").values_list("name", "phone", "organization"))
    assert after == before
    record.refresh_from_db()
    assert record.state == SpreadsheetImport.State.CHECKED


def test_reimporting_the_same_file_changes_nothing(city):
    rows = [
        ["新人甲", "13700009001", "A-01", "男", "正式党员", "普通党员", "2010-01-01"],
        ["新人乙", "13700009002", "A-01", "女", "预备党员", "普通党员", "2025-01-01"],
    ]
    importing.roster_apply(spreadsheet_import=check(rows))
    snapshot = list(Member.objects.order_by("pk").values())
    second = check(rows)
    assert second.report["counts"]["unchanged"] == 2
    assert second.report["counts"]["new"] == second.report["counts"]["changed"] == 0
    importing.roster_apply(spreadsheet_import=second)
    assert list(Member.objects.order_by("pk").values()) == snapshot


def test_confirming_twice_imports_once(city):
    record = check([["新人甲", "13700009001", "A-01", "", "", "", ""]])
    importing.roster_apply(spreadsheet_import=record)
    with pytest.raises(importing.ImportAlreadyApplied):
        importing.roster_apply(spreadsheet_import=record)
    assert Member.objects.filter(phone="13700009001").count() == 1


def test_rows_checked_again_at_apply_time(city):
    record = check([["新人甲", "13700009001", "A-01", "", "", "", ""]])
    # Between the dry run and the confirmation, someone registers that number elsewhere.
    factories.member(city.branch_b, name="别人", phone="13700009001")
    with pytest.raises(importing.ImportRejected):
        importing.roster_apply(spreadsheet_import=record, user=city.secretary_a)
    assert Member.objects.get(phone="13700009001").organization == city.branch_b


def test_members_missing_from_the_file_are_listed_not_deleted(city):
    extra = factories.member(city.branch_a, name="赵敏", phone="13700001234")
    record = check([["王芳", "13800000001", "A-01", "", "", "", ""]])
    missing = record.report["missing"]
    assert [m["name"] for m in missing] == ["赵敏"]
    assert missing[0]["phone"] == "137****1234"
    importing.roster_apply(spreadsheet_import=record)
    extra.refresh_from_db()
    assert extra.is_active
    count = services.members_deactivate(member_ids=[extra.pk], user=city.secretary_a)
    extra.refresh_from_db()
    assert count == 1 and not extra.is_active
    assert Member.objects.filter(pk=extra.pk).exists()


def test_secretary_cannot_import_into_or_take_from_another_branch(city):
    record = check(
        [
            ["新人", "13700009001", "B-01", "", "", "", ""],
            ["李强", "13900000002", "A-01", "", "", "", ""],
        ],
        user=city.secretary_a,
    )
    assert [(e["row"], e["column"]) for e in record.report["errors"]] == [
        (2, "党组织编码"),
        (3, "手机号码"),
    ]


def test_secretary_cannot_deactivate_another_branchs_member(city):
    count = services.members_deactivate(member_ids=[city.member_b.pk], user=city.secretary_a)
    city.member_b.refresh_from_db()
    assert count == 0 and city.member_b.is_active


def test_gbk_csv_from_chinese_excel(city):
    data = csv_bytes(
        [HEADER, ["新人甲", "137 0000 9001", "A-01", "男", "正式党员", "普通党员", "2021/7/1"]],
        encoding="gbk",
    )
    record = importing.roster_check(data=data, file_name="名册.csv")
    assert record.report["counts"]["new"] == 1
    importing.roster_apply(spreadsheet_import=record)
    assert Member.objects.get(phone="13700009001").joined_on == date(2021, 7, 1)


def test_excel_dates_and_numeric_phones(city):
    from datetime import datetime

    data = xlsx(
        [
            HEADER,
            ["新人甲", 13700009001, "A-01", "男", "正式党员", "普通党员", datetime(2021, 7, 1)],
        ],
        date_format="yyyy年m月d日",
    )
    record = importing.roster_check(data=data, file_name="roster.xlsx")
    importing.roster_apply(spreadsheet_import=record)
    member = Member.objects.get(phone="13700009001")
    assert member.joined_on == date(2021, 7, 1)


def test_inactive_member_in_file_becomes_active_again(city):
    city.member_a.is_active = False
    city.member_a.save()
    record = check([["王芳", "13800000001", "A-01", "", "", "", ""]])
    assert record.report["counts"]["changed"] == 1
    importing.roster_apply(spreadsheet_import=record)
    city.member_a.refresh_from_db()
    assert city.member_a.is_active


def test_import_is_audit_logged(city):
    record = check([["新人甲", "13700009001", "A-01", "", "", "", ""]], user=city.secretary_a)
    importing.roster_apply(spreadsheet_import=record, user=city.secretary_a)
    entry = LogEntry.objects.get(additional_data__event="roster_import")
    assert entry.actor == city.secretary_a
    assert entry.additional_data["new"] == 1


def test_exported_roster_imports_back_unchanged(city):
    content = importing.roster_export(
        members=Member.objects.in_subtree(city.branch_a), user=city.secretary_a
    )
    record = importing.roster_check(data=content, file_name="export.xlsx", user=city.secretary_a)
    assert record.report["errors"] == []
    assert record.report["counts"]["unchanged"] == 1

"""The planner's statistics are refreshed after bulk loads (core/planner.py). What they change
at city scale (SQLite reads a year's study-hours count from the index that holds the total)
only shows at that scale: bench/bench_hours.py measures it."""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection

from core.planner import planner_statistics_refresh
from members import importing
from members.models import Member
from rounds.models import HoursSummary

from ..members.spreadsheets import xlsx

YEAR = 2026
MEMBERS = 200


def _analysed(table: str) -> bool:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
            if not cursor.fetchone():
                return False
            cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = %s", [table])
        else:
            # pg_statistic is written in the analysing transaction (the test's, rolled back).
            cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = %s", [table])
        return cursor.fetchone()[0] > 0


def test_a_refresh_analyses_every_table_with_rows(city):
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"planner{i}") for i in range(MEMBERS)
    )
    members = Member.objects.bulk_create(
        Member(organization=city.branch_a, user=user, name=f"党员{i}", phone=f"137{i:08d}")
        for i, user in enumerate(users)
    )
    HoursSummary.objects.bulk_create(
        HoursSummary(member=m, year=YEAR, lessons=Decimal(i % 40), total=Decimal(i % 40))
        for i, m in enumerate(members)
    )
    assert not _analysed("rounds_hourssummary")
    planner_statistics_refresh()
    assert _analysed("rounds_hourssummary") and _analysed("members_member")


def test_an_applied_roster_import_refreshes_the_statistics(city):
    header = ["姓名", "手机号码", "党组织编码", "党员状态"]
    record = importing.roster_check(
        data=xlsx([header, ["新人", "13700009001", "A-01", "正式党员"]]),
        file_name="r.xlsx",
    )
    assert record.report["counts"]["errors"] == 0, record.report["errors"]
    assert not _analysed("members_member")
    importing.roster_apply(spreadsheet_import=record)
    assert _analysed("members_member")

import pytest

from members import services
from members.models import Organization

from .spreadsheets import xlsx

HEADER = ["党组织编码", "党组织名称", "上级党组织编码", "组织类别", "所属领域"]


def run(rows, user=None):
    record = services.orgs_check(data=xlsx([HEADER, *rows]), file_name="orgs.xlsx", user=user)
    return record


def test_children_listed_before_parents_are_placed_correctly(city):
    record = run(
        [
            ["A-02-01", "新村第一党支部", "A-02", "党支部", "农村"],
            ["A-02", "新村党总支", "A", "党总支", "农村"],
        ]
    )
    assert record.report["errors"] == []
    services.orgs_apply(roster_import=record)
    branch = Organization.objects.get(code="A-02-01")
    assert branch.get_parent().code == "A-02"
    assert branch.get_parent().get_parent().code == "A"
    assert branch.kind == Organization.Kind.BRANCH
    assert branch.domain == Organization.Domain.RURAL
    assert Organization.find_problems() == ([], [], [], [], [])


def test_loops_unknown_parents_and_bad_values_are_reported(city):
    record = run(
        [
            ["X1", "甲", "X2", "党支部", "农村"],
            ["X2", "乙", "X1", "党支部", "农村"],
            ["X3", "丙", "NOPE", "党支部", "农村"],
            ["X4", "丁", "A", "居委会", "火星"],
            ["X4", "丁二", "A", "党支部", "农村"],
        ]
    )
    columns = sorted((e["row"], e["column"]) for e in record.report["errors"])
    assert columns == [
        (2, "上级党组织编码"),
        (3, "上级党组织编码"),
        (4, "上级党组织编码"),
        (5, "所属领域"),
        (5, "组织类别"),
        (6, "党组织编码"),
    ]
    with pytest.raises(services.ImportRejected):
        services.orgs_apply(roster_import=record)
    assert not Organization.objects.filter(code__startswith="X").exists()


def test_renaming_and_moving_an_organisation(city):
    record = run([["A-01", "幸福社区第一党支部", "B", "党支部", "社区"]])
    assert record.report["changes"][0]["fields"] == ["name", "domain", "parent"]
    services.orgs_apply(roster_import=record)
    moved = Organization.objects.get(code="A-01")
    assert moved.name == "幸福社区第一党支部"
    assert moved.get_parent().code == "B"
    assert city.member_a.organization.pk == moved.pk
    assert Organization.find_problems() == ([], [], [], [], [])


def test_cannot_move_a_node_under_its_own_child(city):
    record = run([["A", "城关区委", "A-01", "党委", ""]])
    assert record.report["errors"][0]["column"] == "上级党组织编码"


def test_trainer_is_limited_to_their_subtree(city):
    record = run(
        [
            ["A-09", "新支部", "A", "党支部", ""],
            ["B-09", "别处支部", "B", "党支部", ""],
            ["NEWROOT", "新市委", "", "党委", ""],
        ],
        user=city.trainer_a,
    )
    assert sorted(e["row"] for e in record.report["errors"]) == [3, 4]

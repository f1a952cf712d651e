import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from members import importing
from members.admin_forms import OrganizationForm
from members.demo import seed_demo_city, seed_scale_city
from members.models import Organization, validate_organization_code

from .. import factories
from .spreadsheets import csv_bytes, xlsx

HEADER = ["党组织编码", "党组织名称", "上级党组织编码", "组织类别", "所属领域"]


def run(rows, user=None):
    record = importing.orgs_check(data=xlsx([HEADER, *rows]), file_name="orgs.xlsx", user=user)
    return record


def test_children_listed_before_parents_are_placed_correctly(city):
    record = run(
        [
            ["A-02-01", "新村第一党支部", "A-02", "党支部", "农村"],
            ["A-02", "新村党总支", "A", "党总支", "农村"],
        ]
    )
    assert record.report["errors"] == []
    importing.orgs_apply(spreadsheet_import=record)
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
    with pytest.raises(importing.ImportRejected):
        importing.orgs_apply(spreadsheet_import=record)
    assert not Organization.objects.filter(code__startswith="X").exists()


def test_renaming_and_moving_an_organisation(city):
    record = run([["A-01", "幸福社区第一党支部", "B", "党支部", "社区"]])
    assert record.report["changes"][0]["fields"] == ["name", "domain", "parent"]
    importing.orgs_apply(spreadsheet_import=record)
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


# --- Codes: letters, digits, - and _ only (issue 11, finding 13) -------------------------------


def test_codes_with_control_characters_or_symbols_fail_their_row_and_nothing_is_imported(city):
    rows = [
        ["A-02", "新村党总支", "A", "党总支", ""],
        ["A-03\x1b[31m", "转义符党支部", "A", "党支部", ""],
        ["A-04\u202e", "反向符党支部", "A", "党支部", ""],
        ["A/05", "斜杠党支部", "A", "党支部", ""],
        ["A-06", "坏上级党支部", "A\x07", "党支部", ""],
    ]
    record = importing.orgs_check(
        data=csv_bytes([HEADER, *rows]), file_name="orgs.csv", user=city.trainer
    )
    errors = sorted((e["row"], e["column"], e["value"]) for e in record.report["errors"])
    assert errors == [
        (3, "党组织编码", "A-03\\x1b[31M"),  # control characters shown, never obeyed
        (4, "党组织编码", "A-04\\u202e"),
        (5, "党组织编码", "A/05"),
        (6, "上级党组织编码", "A\\x07"),
    ]
    message = str(validate_organization_code.message)  # in the importing user's language
    assert {e["message"] for e in record.report["errors"]} == {message}
    with pytest.raises(importing.ImportRejected):
        importing.orgs_apply(spreadsheet_import=record, user=city.trainer)
    assert not Organization.objects.filter(code="A-02").exists()


def test_the_code_error_speaks_the_language_of_the_user(city):
    data = csv_bytes([HEADER, ["X;1", "甲", "A", "党支部", ""]])
    with translation.override("en"):
        record = importing.orgs_check(data=data, file_name="orgs.csv")
    (error,) = record.report["errors"]
    assert error["message"] == "An organisation code may contain only letters, digits, - and _."


def test_full_width_codes_are_folded_and_accepted(city):
    record = run([["Ａ－０２", "全角党总支", "A", "党总支", ""]])
    assert record.report["errors"] == []
    importing.orgs_apply(spreadsheet_import=record)
    assert Organization.objects.get(code="A-02").name == "全角党总支"


@pytest.mark.parametrize("code", ["A-01\n", "A 01", "A\x00", "组织01", "A.01", "A\u200b01", ""])
def test_the_model_refuses_codes_outside_letters_digits_dash_and_underscore(city, code):
    organization = Organization(name="坏编码", code=code, path="0009", depth=1)
    with pytest.raises(ValidationError) as error:
        organization.full_clean()
    assert "code" in error.value.message_dict


@pytest.mark.parametrize("code", ["C01-01-02", "S_9", "a-b_c", "T00001"])
def test_the_model_accepts_codes_made_of_letters_digits_dash_and_underscore(city, code):
    Organization(name="好编码", code=code, path="0009", depth=1).full_clean()


def test_the_admin_form_refuses_a_code_with_a_control_character(city):
    form = OrganizationForm(
        data={
            "name": "新支部",
            "code": "A-09\x1b",
            "kind": "branch",
            "domain": "other",
            "parent": "A",
        },
        for_user=city.trainer,
    )
    assert not form.is_valid()
    assert form.errors["code"] == [str(validate_organization_code.message)]


def test_the_demo_seed_and_the_factories_make_valid_codes(db):
    seed_demo_city()
    seed_scale_city(600)
    factories.org("工厂", factories.org())
    codes = list(Organization.objects.values_list("code", flat=True))
    assert len(codes) > 50
    for code in codes:
        validate_organization_code(code)

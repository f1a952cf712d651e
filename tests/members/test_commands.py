import pytest
from django.core.management import CommandError, call_command

from members.models import Member, Organization

ORGS = "党组织编码,党组织名称,上级党组织编码,组织类别,所属领域\nA-02,新村党支部,A,党支部,农村\n"
ROSTER = "姓名,手机号码,党组织编码\n新人,13700001111,A-02\n"


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_import_orgs_then_roster(city, tmp_path, capsys):
    call_command("import_orgs", write(tmp_path, "orgs.csv", ORGS, "gbk"), "--dry-run")
    assert not Organization.objects.filter(code="A-02").exists()
    call_command("import_orgs", write(tmp_path, "orgs.csv", ORGS, "gbk"))
    call_command("import_roster", write(tmp_path, "roster.csv", ROSTER))
    assert Member.objects.get(phone="13700001111").organization.code == "A-02"
    assert "new 1" in capsys.readouterr().out


def test_import_roster_exits_non_zero_and_changes_nothing_on_errors(city, tmp_path, capsys):
    bad = ROSTER + "坏行,123,A-01\n"
    with pytest.raises(CommandError):
        call_command("import_roster", write(tmp_path, "roster.csv", bad))
    assert not Member.objects.filter(phone="13700001111").exists()
    assert "row 3" in capsys.readouterr().out


def test_unreadable_file_exits_non_zero(city, tmp_path):
    with pytest.raises(CommandError):
        call_command("import_roster", write(tmp_path, "roster.xls", "x"))

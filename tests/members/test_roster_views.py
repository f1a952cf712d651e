import io

import pytest
from auditlog.models import LogEntry
from django.urls import reverse
from openpyxl import load_workbook

from members.models import Member, SpreadsheetImport

from .. import factories
from .spreadsheets import xlsx

ROSTER = reverse("members:roster")


@pytest.fixture
def crowded(city):
    for i in range(60):
        factories.member(city.branch_a, name=f"党员{i:02d}")
    return city


def test_roster_lists_own_members_with_masked_phones(crowded, client_for):
    client = client_for(crowded.secretary_a)
    response = client.get(ROSTER)
    assert response.status_code == 200
    assert response.context["page"].paginator.count == 61
    assert len(response.context["page"].object_list) == 50
    text = client.get(ROSTER + "?q=王").content.decode()
    assert "王芳" in text
    assert "138****0001" in text
    assert "13800000001" not in text
    assert "李强" not in text  # another branch


def test_roster_query_count_does_not_grow_with_members(
    crowded, client_for, django_assert_max_num_queries
):
    client = client_for(crowded.secretary_a)
    with django_assert_max_num_queries(12):
        client.get(ROSTER)
    with django_assert_max_num_queries(12):
        client.get(ROSTER + "?page=2&q=党员")


def test_roster_search_and_filters(crowded, client_for):
    client = client_for(crowded.secretary_a)
    assert client.get(ROSTER + "?q=王芳").context["page"].paginator.count == 1
    assert client.get(ROSTER + "?q=0000 0001").context["page"].paginator.count == 1
    crowded.member_a.is_active = False
    crowded.member_a.save()
    assert client.get(ROSTER).context["page"].paginator.count == 60
    assert client.get(ROSTER + "?active=0").context["page"].paginator.count == 1
    assert client.get(ROSTER + "?activated=1").context["page"].paginator.count == 0


def read_xlsx(content):
    sheet = load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def test_export_is_xlsx_of_visible_members_and_audit_logged(city, client_for):
    response = client_for(city.secretary_a).get(
        reverse("members:roster_export"), REMOTE_ADDR="10.9.8.7"
    )
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    rows = read_xlsx(response.content)
    assert rows[0][:3] == ["姓名", "手机号码", "党组织编码"]
    assert [r[:3] for r in rows[1:]] == [["王芳", "13800000001", "A-01"]]
    entry = LogEntry.objects.get(additional_data__event="roster_export")
    assert entry.actor == city.secretary_a
    assert entry.remote_addr == "10.9.8.7"
    assert entry.additional_data["rows"] == 1


def test_site_operator_export_masks_phones(city, client_for):
    rows = read_xlsx(client_for(city.operator_a).get(reverse("members:roster_export")).content)
    assert rows[1][1] == "138****0001"


def test_template_has_the_import_headers(city, client_for):
    response = client_for(city.secretary_a).get(reverse("members:import_template", args=["roster"]))
    assert read_xlsx(response.content)[0] == [
        "姓名",
        "手机号码",
        "党组织编码",
        "性别",
        "党员状态",
        "人员类别",
        "入党日期",
        "任职日期",
        "流动党员活动地编码",
        "离退休",
        "行动不便",
    ]


def upload(client, rows, name="roster.xlsx"):
    data = xlsx([["姓名", "手机号码", "党组织编码"], *rows])
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        reverse("members:import_upload", args=["roster"]),
        {"file": SimpleUploadedFile(name, data)},
    )


def test_web_import_dry_run_then_confirm_once(city, client_for):
    client = client_for(city.secretary_a)
    response = upload(
        client, [["新人甲", "13700009001", "A-01"], ["新人乙", "13700009002", "A-01"]]
    )
    assert response.status_code == 302
    detail = client.get(response["Location"])
    assert detail.context["counts"]["new"] == 2
    assert "确认" in detail.content.decode()
    assert not Member.objects.filter(phone="13700009001").exists()
    record = SpreadsheetImport.objects.get()
    apply_url = reverse("members:import_apply", args=[record.pk])
    client.post(apply_url)
    client.post(apply_url)  # a second click
    assert Member.objects.filter(phone__in=["13700009001", "13700009002"]).count() == 2
    record.refresh_from_db()
    assert record.state == SpreadsheetImport.State.APPLIED


def test_web_import_with_errors_offers_no_confirmation(city, client_for):
    client = client_for(city.secretary_a)
    response = upload(client, [["新人甲", "137", "A-01"]])
    detail = client.get(response["Location"])
    text = detail.content.decode()
    assert "confirm-import" not in text
    assert "手机号码" in text
    record = SpreadsheetImport.objects.get()
    client.post(reverse("members:import_apply", args=[record.pk]))
    assert not Member.objects.filter(name="新人甲").exists()


def test_web_import_refuses_a_non_spreadsheet(city, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_for(city.secretary_a)
    response = client.post(
        reverse("members:import_upload", args=["roster"]),
        {"file": SimpleUploadedFile("roster.xlsx", b"<html><script>alert(1)</script>")},
    )
    assert response.status_code == 200
    assert "xlsx" in response.content.decode()
    assert not SpreadsheetImport.objects.exists()


def test_someone_elses_import_is_404(city, client_for):
    response = upload(client_for(city.secretary_a), [["新人甲", "13700009001", "A-01"]])
    other = client_for(city.trainer)
    assert other.get(response["Location"]).status_code == 404


def test_operator_cannot_import(city, client_for):
    client = client_for(city.operator_a)
    assert client.get(reverse("members:import_upload", args=["roster"])).status_code == 404


def test_only_trainers_import_organisations(city, client_for):
    url = reverse("members:import_upload", args=["organizations"])
    assert client_for(city.secretary_a).get(url).status_code == 404
    assert client_for(city.trainer).get(url).status_code == 200


def test_missing_members_can_be_marked_inactive_from_the_report(city, client_for):
    extra = factories.member(city.branch_a, name="赵敏")
    client = client_for(city.secretary_a)
    response = upload(client, [["王芳", "13800000001", "A-01"]])
    record = SpreadsheetImport.objects.get()
    client.post(reverse("members:import_apply", args=[record.pk]))
    detail = client.get(response["Location"]).content.decode()
    assert "赵敏" in detail
    client.post(reverse("members:deactivate"), {"member": [extra.pk]})
    extra.refresh_from_db()
    assert not extra.is_active

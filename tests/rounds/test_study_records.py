"""Every study counted (学时全口径): study the system did not see, recorded by a secretary and
approved by someone else, counts in the yearly ledger — the member's page, the city-wide list
and its export agree — with no evidence asked for, nothing counted twice, and every step in the
audit log."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from members import services
from members.models import Member, Role
from rounds import ledger, records
from rounds.models import StudyRecord

from .. import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def county_secretary(city):
    return factories.staff("sec_county_a", Role.SECRETARY, city.county_a)


def _record(city, **fields):
    values = {
        "member": city.member_a,
        "kind": StudyRecord.Kind.DOOR_TO_DOOR,
        "title": "送学上门：学习党章",
        "studied_on": timezone.localdate(),
        "hours": Decimal("2"),
        "user": city.secretary_a,
        "form_token": "t-1",
    }
    values.update(fields)
    return records.record_create(**values)


def _year_total(member):
    year = timezone.localdate().year
    return ledger.ledger_total(member=member, year=year)


def _list_total(member):
    year = timezone.localdate().year
    rows = ledger.ledger_for_members(members_qs=Member.objects.filter(pk=member.pk), year=year)
    return rows.get().hours_total


def test_a_record_counts_only_once_approved_by_someone_else(city, county_secretary):
    record, created = _record(city)
    assert created and record.state == StudyRecord.State.PENDING
    assert _year_total(city.member_a) == 0 and _list_total(city.member_a) == 0
    with pytest.raises(records.RecordRefused):
        records.record_decide(record=record, approve=True, user=city.secretary_a)
    records.record_decide(record=record, approve=True, user=county_secretary)
    assert _year_total(city.member_a) == Decimal("2") == _list_total(city.member_a)
    entries = ledger.ledger_entries(member=city.member_a, year=timezone.localdate().year)
    assert [(e.kind, e.title, e.detail) for e in entries] == [
        ("record", "送学上门：学习党章", "送学上门")
    ]
    with pytest.raises(records.RecordRefused):  # decided once
        records.record_decide(record=record, approve=False, user=county_secretary, note="错")
    events = set(
        LogEntry.objects.filter(object_pk=str(record.pk)).values_list(
            "additional_data__event", flat=True
        )
    )
    assert {"study_record_created", "study_record_approved"} <= events


def test_the_same_form_sent_twice_records_once(city, county_secretary):
    first, created = _record(city)
    again, created_again = _record(city, hours=Decimal("5"))
    assert created and not created_again and again.pk == first.pk
    assert StudyRecord.objects.count() == 1 and again.hours == Decimal("2")
    # The same study entered again from a fresh form: still one record.
    same, created_same = _record(city, form_token="t-9")
    assert not created_same and same.pk == first.pk
    # Another visit, another day: a record of its own. A refused one may be entered again.
    other, created_other = _record(
        city, form_token="t-10", studied_on=timezone.localdate() - timedelta(days=7)
    )
    assert created_other
    records.record_decide(record=other, approve=False, user=county_secretary, note="日期有误")
    corrected, created_corrected = _record(
        city, form_token="t-11", studied_on=timezone.localdate() - timedelta(days=7)
    )
    assert created_corrected and corrected.pk != other.pk


def test_nobody_records_or_approves_their_own_study(city, county_secretary):
    me = factories.member(city.branch_a, name="书记本人")
    services.role_assign(user=me.user, role=Role.SECRETARY, organization=city.branch_a)
    with pytest.raises(records.RecordRefused):
        _record(city, member=me, user=me.user)
    record, _created = _record(city, member=me, form_token="t-2")
    with pytest.raises(records.RecordRefused):
        records.record_decide(record=record, approve=True, user=me.user)
    assert records.records_to_decide(me.user).count() == 0
    assert list(records.records_to_decide(county_secretary)) == [record]


def test_out_of_scope_and_future_are_refused(city):
    with pytest.raises(records.RecordRefused):
        _record(city, member=city.member_b)
    with pytest.raises(records.RecordRefused):
        _record(city, studied_on=timezone.localdate() + timedelta(days=1))
    assert not StudyRecord.objects.exists()


def test_refusing_needs_a_reason_and_counts_nothing(city, county_secretary):
    record, _created = _record(city)
    with pytest.raises(records.RecordRefused):
        records.record_decide(record=record, approve=False, user=county_secretary)
    records.record_decide(record=record, approve=False, user=county_secretary, note="日期有误")
    assert _year_total(city.member_a) == 0


def test_a_secretary_records_on_the_page_and_the_member_sees_it(city, county_secretary, client_for):
    client = client_for(city.secretary_a)
    url = reverse("rounds:record_new", args=[city.member_a.pk])
    form = client.get(url)
    assert form.status_code == 200
    token = form.context["form"].initial["form_token"]
    data = {
        "kind": "party_school",
        "title": "县委党校 党支部书记示范班",
        "studied_on": timezone.localdate().isoformat(),
        "hours": "24",
        "note": "",
        "form_token": token,
    }
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302  # the second click
    assert StudyRecord.objects.count() == 1
    # The recorder sees it waiting; another secretary above approves it on her page.
    assert "县委党校" in client.get(reverse("rounds:records")).content.decode()
    record = StudyRecord.objects.get()
    approver = client_for(county_secretary)
    page = approver.get(reverse("rounds:records")).content.decode()
    assert f'data-record="{record.pk}"' in page
    approver.post(reverse("rounds:record_decide", args=[record.pk]), {"decision": "approve"})
    record.refresh_from_db()
    assert record.state == StudyRecord.State.APPROVED and record.decided_by == county_secretary
    mine = client_for(city.member_a.user).get(reverse("rounds:ledger_mine")).content.decode()
    assert "县委党校 党支部书记示范班" in mine and "由书记记录" in mine
    export = approver.get(reverse("rounds:ledger_org_export"))
    rows = list(load_workbook(io.BytesIO(export.content)).active.iter_rows(values_only=True))
    header, *body = rows
    assert "其他记录的学习（学时）" in header
    wang = next(r for r in body if r[0] == "王芳")
    assert wang[header.index("其他记录的学习（学时）")] == 24


def test_no_evidence_upload_is_asked_for(city, client_for):
    page = client_for(city.secretary_a).get(reverse("rounds:record_new", args=[city.member_a.pk]))
    html = page.content.decode()
    assert 'type="file"' not in html and "enctype" not in html


def test_outsiders_cannot_record_or_decide(city, client_for):
    record, _created = _record(city)
    outsider = client_for(city.secretary_b)
    assert outsider.get(reverse("rounds:record_new", args=[city.member_a.pk])).status_code == 404
    response = outsider.post(
        reverse("rounds:record_decide", args=[record.pk]), {"decision": "approve"}
    )
    assert response.status_code == 404
    record.refresh_from_db()
    assert record.state == StudyRecord.State.PENDING
    assert client_for(city.operator_a).get(reverse("rounds:records")).status_code == 404

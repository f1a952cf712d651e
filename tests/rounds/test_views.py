"""The member's and the secretary's pages of a round, over HTTP."""

import io
from datetime import timedelta

import pytest
import time_machine
from auditlog.models import LogEntry
from django.urls import reverse
from openpyxl import load_workbook

from rounds import services
from rounds.models import Attendance, Exemption, LeaveRequest, Participation

from . import builders

P = Participation.Status
NOW = builders.aware(2026, 11, 12, 9, 5)


@pytest.fixture
def world(city):
    training_round = builders.training_round([city.root])
    session = builders.session(training_round, city.branch_a)
    return city, training_round, session


def test_member_sees_own_status_with_reason(world, client_for):
    city, training_round, _session = world
    lessons = list(training_round.lessons.order_by("pk"))
    builders.complete_online(city.member_a, lessons[0])
    response = client_for(city.member_a.user).get(
        reverse("rounds:detail", args=[training_round.pk])
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "进行中：已完成 1/2 门必修课" in text
    assert lessons[1].title in text


def test_member_outside_scope_gets_404(city, client_for):
    training_round = builders.training_round([city.county_a])
    url = reverse("rounds:detail", args=[training_round.pk])
    assert client_for(city.member_b.user).get(url).status_code == 404
    assert client_for(city.member_a.user).get(url).status_code == 200


def test_leave_request_and_approval_over_http(world, client_for):
    city, training_round, session = world
    member = client_for(city.member_a.user)
    response = member.post(
        reverse("rounds:leave_create", args=[training_round.pk]),
        {"session": session.pk, "reason": "外出务工"},
    )
    assert response.status_code == 302
    leave = LeaveRequest.objects.get(member=city.member_a)
    # The other branch's secretary cannot see or decide it.
    other = client_for(city.secretary_b)
    assert (
        "外出务工"
        not in other.get(reverse("rounds:leave_list", args=[training_round.pk])).content.decode()
    )
    decide = reverse("rounds:leave_decide", args=[training_round.pk, leave.pk])
    assert other.post(decide, {"decision": "approve"}).status_code == 404
    secretary = client_for(city.secretary_a)
    assert (
        "外出务工"
        in secretary.get(reverse("rounds:leave_list", args=[training_round.pk])).content.decode()
    )
    secretary.post(decide, {"decision": "approve", "note": "请按时补学"})
    leave.refresh_from_db()
    assert leave.state == LeaveRequest.State.APPROVED
    page = member.get(reverse("rounds:detail", args=[training_round.pk])).content.decode()
    assert "已请假" in page and "补学" in page
    # A second click on approve changes nothing and says so.
    response = secretary.post(decide, {"decision": "refuse"}, follow=True)
    assert "已经处理" in response.content.decode()
    leave.refresh_from_db()
    assert leave.state == LeaveRequest.State.APPROVED
    assert LogEntry.objects.filter(additional_data__event="leave_approved").count() == 1


def test_coverage_drills_down_and_lists_missing_names(world, client_for):
    city, training_round, _session = world
    for lesson in training_round.lessons.all():
        builders.complete_online(city.member_a, lesson)
    client = client_for(city.trainer)
    url = reverse("rounds:coverage", args=[training_round.pk])
    page = client.get(url).content.decode()
    assert 'data-figure="in_scope">2<' in page
    assert 'data-figure="completed">1<' in page
    assert 'data-figure="coverage">50.0%<' in page
    assert "城关区委" in page and "青山县委" in page
    # Missing names: only 李强, phone in full for a trainer.
    assert "李强" in page and "13900000002" in page
    assert f'data-member="{city.member_a.pk}"' not in page
    page = client.get(url, {"org": city.county_a.pk}).content.decode()
    assert 'data-figure="coverage">100.0%<' in page
    assert "幸福社区党支部" in page


def test_coverage_filters_show_the_choice_made(world, client_for):
    """The filter selects keep what was chosen, in the page's language, one option each."""
    city, training_round, _session = world
    client = client_for(city.trainer)
    url = reverse("rounds:coverage", args=[training_round.pk])
    page = client.get(url).content.decode()
    assert '<select name="status" id="id_status">' in page
    assert " selected" not in page.split('id="id_status"')[1].split("</select>")[0]
    page = client.get(url, {"status": "all", "position": "secretary"}).content.decode()
    status = page.split('id="id_status"')[1].split("</select>")[0]
    assert status.count(" selected") == 1 and '<option value="all" selected>' in status
    position = page.split('id="id_position"')[1].split("</select>")[0]
    assert '<option value="secretary" selected>' in position
    assert '<option value="" >' not in position and "全部类别" in position


def test_coverage_is_scoped_by_url(world, client_for):
    city, training_round, _session = world
    client = client_for(city.secretary_b)
    url = reverse("rounds:coverage", args=[training_round.pk])
    assert client.get(url, {"org": city.branch_a.pk}).status_code == 404
    assert client.get(url, {"org": city.root.pk}).status_code == 404
    page = client.get(url).content.decode()
    assert "李强" in page and "王芳" not in page
    member_url = reverse("rounds:member_status", args=[training_round.pk, city.member_a.pk])
    assert client.get(member_url).status_code == 404
    assert client_for(city.member_a.user).get(url).status_code == 404
    # An operator sees masked phones.
    page = client_for(city.operator_a).get(url).content.decode()
    assert "王芳" in page and "138****0001" in page and "13800000001" not in page


def test_round_scoped_to_another_county_is_404_for_its_outsiders(city, client_for):
    training_round = builders.training_round([city.county_a])
    url = reverse("rounds:coverage", args=[training_round.pk])
    assert client_for(city.secretary_b).get(url).status_code == 404
    assert client_for(city.secretary_a).get(url).status_code == 200


def test_export_is_what_the_screen_shows_and_is_audited(world, client_for):
    city, training_round, _session = world
    for n in range(60):
        builders.factories.member(city.branch_b, name=f"成员{n:02d}")
    client = client_for(city.trainer)
    response = client.get(
        reverse("rounds:coverage_export", args=[training_round.pk]),
        {"org": city.root.pk, "status": "missing"},
    )
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.content))
    coverage_sheet, names = workbook.worksheets
    rows = list(coverage_sheet.values)
    assert rows[2][0].startswith("示范市委") and rows[2][2] == 62
    names_rows = list(names.values)[1:]
    assert len(names_rows) == 62  # every missing member, not one page of 50
    entry = LogEntry.objects.get(additional_data__event="coverage_export")
    assert entry.additional_data["rows"] == 62
    assert entry.actor == city.trainer


def test_domain_and_position_filters(world, client_for):
    city, training_round, _session = world
    city.branch_b.domain = "rural"
    city.branch_b.save()
    client = client_for(city.trainer)
    url = reverse("rounds:coverage", args=[training_round.pk])
    page = client.get(url, {"domain": "rural"}).content.decode()
    assert 'data-figure="in_scope">1<' in page and "李强" in page and "王芳" not in page
    page = client.get(url, {"position": "secretary"}).content.decode()
    assert 'data-figure="in_scope">0<' in page


def test_exemption_over_http(world, client_for):
    city, training_round, _session = world
    client = client_for(city.secretary_a)
    url = reverse("rounds:exemption_create", args=[training_round.pk, city.member_a.pk])
    client.post(url, {"reason": "出国务工"})
    exemption = Exemption.objects.get(member=city.member_a)
    assert exemption.reason == "出国务工"
    # The operator (site role) may not exempt.
    assert client_for(city.operator_a).post(url, {"reason": "x"}).status_code == 404
    page = client.get(reverse("rounds:coverage", args=[training_round.pk])).content.decode()
    assert 'data-figure="exempt">1<' in page
    client.post(reverse("rounds:exemption_revoke", args=[training_round.pk, city.member_a.pk]))
    assert Participation.objects.get(member=city.member_a).status == P.NOT_STARTED


# --- Check-in ----------------------------------------------------------------------------------


def _token(sitting, at):
    return services.qr_token(sitting=sitting, now=at).token


def test_qr_check_in_then_again_is_harmless(world, client_for):
    city, _round, session = world
    sitting = builders.sitting(session)
    client = client_for(city.member_a.user)
    with time_machine.travel(NOW, tick=False):
        url = reverse("rounds:check_in", args=[_token(sitting, NOW)])
        first = client.get(url)
        second = client.get(url)
    assert first.status_code == 200 and "签到成功" in first.content.decode()
    assert second.status_code == 200 and "已经签到" in second.content.decode()
    assert Attendance.objects.filter(sitting=sitting, member=city.member_a).count() == 1
    assert Participation.objects.get(member=city.member_a).status == P.COMPLETED


def test_expired_and_replayed_codes_are_refused(world, client_for):
    city, _round, session = world
    sitting = builders.sitting(session)
    token = _token(sitting, NOW)
    client = client_for(city.member_a.user)
    # Within the 2 s grace after the next code appears: still fine.
    next_code_at = services.qr_token(sitting=sitting, now=NOW).next_at
    with time_machine.travel(next_code_at + timedelta(seconds=1.5), tick=False):
        assert services.qr_verify(token) == sitting
    with time_machine.travel(next_code_at + timedelta(seconds=3), tick=False):
        response = client.get(reverse("rounds:check_in", args=[token]))
    assert response.status_code == 400
    assert "已过期" in response.content.decode()
    assert not Attendance.objects.exists()
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    with time_machine.travel(NOW, tick=False):
        response = client.get(reverse("rounds:check_in", args=[forged]))
    assert response.status_code == 400 and "不是有效的签到码" in response.content.decode()


def test_check_in_outside_scope_or_outside_time_is_refused(city, client_for):
    training_round = builders.training_round([city.county_a])
    sitting = builders.sitting(builders.session(training_round, city.branch_a))
    with time_machine.travel(NOW, tick=False):
        response = client_for(city.member_b.user).get(
            reverse("rounds:check_in", args=[_token(sitting, NOW)])
        )
    assert response.status_code == 400 and "不在" in response.content.decode()
    later = sitting.end + timedelta(hours=3)
    with time_machine.travel(later, tick=False):
        response = client_for(city.member_a.user).get(
            reverse("rounds:check_in", args=[_token(sitting, later)])
        )
    assert response.status_code == 400
    assert not Attendance.objects.exists()


def test_scan_before_login_checks_in_after_login(world, client):
    city, _round, session = world
    sitting = builders.sitting(session)
    with time_machine.travel(NOW, tick=True):
        response = client.get(reverse("rounds:check_in", args=[_token(sitting, NOW)]))
        assert response.status_code == 302 and "/login/" in response["Location"]
        response = client.post(
            response["Location"],
            {"username": "13800000001", "password": builders.factories.PASSWORD},
            follow=True,
        )
    assert "签到成功" in response.content.decode()
    assert Attendance.objects.get(sitting=sitting).member == city.member_a


def test_roll_call_and_correction_after_close(world, client_for):
    city, _round, session = world
    sitting = builders.sitting(session)
    operator = client_for(city.operator_a)
    url = reverse("rounds:roll_call", args=[sitting.pk])
    page = operator.get(url).content.decode()
    assert "王芳" in page and "李强" not in page  # only the host's subtree
    operator.post(url, {f"m{city.member_a.pk}": "present"})
    assert Attendance.objects.get(sitting=sitting).status == "present"
    operator.post(reverse("rounds:sitting_close", args=[sitting.pk]))
    response = operator.post(url, {f"m{city.member_a.pk}": "absent"}, follow=True)
    assert "说明" in response.content.decode()
    assert Attendance.objects.get(sitting=sitting).status == "present"
    operator.post(url, {f"m{city.member_a.pk}": "absent", "reason": "误点"})
    assert Attendance.objects.get(sitting=sitting).status == "absent"
    entry = LogEntry.objects.get(
        additional_data__event="attendance_corrected", additional_data__result="ok"
    )
    assert entry.additional_data["reason"] == "误点" and entry.actor == city.operator_a
    # The other branch's secretary cannot reach this sitting at all.
    assert client_for(city.secretary_b).get(url).status_code == 404


def test_qr_screen_and_code_endpoint(world, client_for):
    city, _round, session = world
    sitting = builders.sitting(session)
    client = client_for(city.operator_a)
    with time_machine.travel(NOW, tick=False):
        page = client.get(reverse("rounds:sitting_screen", args=[sitting.pk])).content.decode()
        data = client.get(reverse("rounds:sitting_code", args=[sitting.pk])).json()
    assert "<svg" in page and data["url"] in page
    assert data["url"].endswith(reverse("rounds:check_in", args=[_token(sitting, NOW)]))
    assert 0 < data["expires_in"] <= 15


def test_sitting_open_from_calendar_occurrence(world, client_for):
    city, _round, session = world
    timestamp = int(session.event.start.timestamp())
    client = client_for(city.operator_a)
    response = client.get(reverse("rounds:sitting_open", args=[session.pk, timestamp]))
    assert response.status_code == 302
    assert (
        client.get(reverse("rounds:sitting_open", args=[session.pk, timestamp + 60])).status_code
        == 404
    )
    assert (
        client_for(city.secretary_b)
        .get(reverse("rounds:sitting_open", args=[session.pk, timestamp]))
        .status_code
        == 404
    )


def test_home_page_shows_the_members_round_and_staff_coverage_links(world, client_for):
    city, training_round, _session = world
    builders.course_builders.home_page()
    page = client_for(city.member_a.user).get("/").content.decode()
    assert training_round.title in page and "未开始：需完成 2 门必修课" in page
    page = client_for(city.secretary_a).get("/").content.decode()
    assert reverse("rounds:coverage", args=[training_round.pk]) in page
    page = client_for(city.member_b.user).get("/").content.decode()
    assert "未开始" in page  # the round covers the whole city


@pytest.mark.parametrize(
    ("status", "expected"),
    [("missing", 2), ("all", 3), ("completed", 1), ("not_started", 1), ("leave", 1), ("exempt", 0)],
)
def test_member_list_counts_agree_with_the_figures(world, client_for, status, expected):
    """The list's count comes from the grouped figures; it must match the names it shows."""
    city, training_round, _session = world
    for lesson in training_round.lessons.all():
        builders.complete_online(city.member_a, lesson)
    extra = builders.factories.member(city.branch_b, name="孙七")
    leave = services.leave_request(member=extra, training_round=training_round, reason="外出")
    services.leave_decide(leave=leave, approve=True, user=city.trainer)
    response = client_for(city.trainer).get(
        reverse("rounds:coverage", args=[training_round.pk]), {"status": status}
    )
    page = response.context["page"]
    assert page.paginator.count == expected == len(list(page.object_list))

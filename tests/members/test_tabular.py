from datetime import date, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from core.tabular import TableError, clean_name, parse_date, read_table
from members.importing import ROSTER_COLUMNS
from members.models import Member, SpreadsheetImport, mask_name, mask_phone, normalize_phone

from .spreadsheets import csv_bytes, xlsx

HEADER = ["姓名", "手机号码", "党组织编码"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        (" 138 0013 8000 ", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("１３８００１３８０００", "13800138000"),  # full-width digits
        (13800138000, "13800138000"),
        (13800138000.0, "13800138000"),  # Excel stored it as a number
        ("1380013800", ""),
        ("23800138000", ""),
        ("12800138000", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_phone_numbers_are_normalised(raw, expected):
    assert normalize_phone(raw) == expected


def test_phones_and_names_are_masked():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张三丰") == "张*丰"
    assert mask_name("李四") == "李*"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021-07-01", date(2021, 7, 1)),
        ("2021/7/1", date(2021, 7, 1)),
        ("2021.7.1", date(2021, 7, 1)),
        ("2021年7月1日", date(2021, 7, 1)),
        ("2021年07月01日", date(2021, 7, 1)),
        ("20210701", date(2021, 7, 1)),
        (" ２０２１－０７－０１ ", date(2021, 7, 1)),
        ("2021-07-01 00:00:00", date(2021, 7, 1)),
        (datetime(2021, 7, 1), date(2021, 7, 1)),
        (44378, date(2021, 7, 1)),  # an Excel serial number
        ("", None),
        (None, None),
    ],
)
def test_dates_in_every_form_people_write_them(raw, expected):
    assert parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["2021-13-01", "七月一日", "2021/2/30", "abc"])
def test_nonsense_dates_are_refused(raw):
    with pytest.raises(ValueError):
        parse_date(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("张  三", "张三"),
        ("\u3000王芳\u3000", "王芳"),
        ("𠮷祥", "𠮷祥"),
        ("刘䶮", "刘䶮"),
        ("买买提·艾力", "买买提·艾力"),
        ("  John   Smith ", "John Smith"),
        ("王\u202e芳\x07", "王芳"),
        ("\u200b李\u2066强\u2069", "李强"),
    ],
)
def test_names_keep_rare_characters_and_lose_padding(raw, expected):
    assert clean_name(raw) == expected


def _rows(table):
    return [values for _number, values in table.rows]


def test_xlsx_columns_in_any_order_with_extra_columns():
    data = xlsx(
        [
            ["序号", "党组织编码", " 姓 名 ", "备注", "手机号码"],
            [1, "A-01", "王芳", "x", "13800000001"],
            [None, None, None, None, None],
            [2, "A-01", "李强", "", 13900000002],
        ]
    )
    table = read_table(data, "名册.xlsx", ROSTER_COLUMNS)
    assert [number for number, _v in table.rows] == [2, 4]
    assert _rows(table)[1]["name"] == "李强"
    assert _rows(table)[1]["org_code"] == "A-01"


@pytest.mark.parametrize(
    ("encoding", "bom"), [("utf-8", False), ("utf-8", True), ("gbk", False), ("gb18030", False)]
)
def test_csv_in_utf8_with_or_without_bom_and_gbk(encoding, bom):
    data = csv_bytes([HEADER, ["王芳", "13800000001", "A-01"]], encoding=encoding, bom=bom)
    table = read_table(data, "roster.csv", ROSTER_COLUMNS)
    assert _rows(table) == [{"name": "王芳", "phone": "13800000001", "org_code": "A-01"}]


def test_missing_required_column_names_it_in_chinese():
    data = csv_bytes([["姓名", "党组织编码"], ["王芳", "A-01"]])
    with pytest.raises(TableError) as error:
        read_table(data, "roster.csv", ROSTER_COLUMNS)
    assert "手机号码" in str(error.value)
    assert "缺少" in str(error.value)


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        (b"hello", "roster.xlsx", "xlsx"),
        (b"PK\x03\x04broken", "roster.xlsx", "xlsx"),
        (b"\xd0\xcf\x11\xe0old excel", "roster.xls", ".xlsx"),
        (b"<svg/>", "roster.svg", ".xlsx"),
        (b"", "roster.csv", "空"),
        ("姓名,手机号码,党组织编码\n".encode(), "roster.csv", "没有数据"),
    ],
)
def test_unreadable_files_get_a_clear_message(data, name, words):
    with pytest.raises(TableError) as error:
        read_table(data, name, ROSTER_COLUMNS)
    assert words in str(error.value)


def test_oversized_file_is_refused_before_parsing(settings):
    settings.LUNXUN_IMPORT_MAX_BYTES = 1024
    with pytest.raises(TableError):
        read_table(b"x" * 2048, "roster.csv", ROSTER_COLUMNS)


# A file that says UTF-8 (a byte-order mark) but holds GBK text, as some editors and merge
# tools leave it: refused with the reason, like any other text that is not UTF-8 or GBK.
BOM_BUT_GBK = b"\xef\xbb\xbf" + csv_bytes([HEADER, ["王芳", "13800000001", "A-01"]], "gbk")


def test_csv_with_a_utf8_mark_but_gbk_text_gets_the_readable_error():
    with translation.override("en"), pytest.raises(TableError) as error:
        read_table(BOM_BUT_GBK, "roster.csv", ROSTER_COLUMNS)
    assert str(error.value) == (
        "The CSV file is neither UTF-8 nor GBK text. Save it again as CSV or .xlsx."
    )


def test_upload_of_a_utf8_marked_gbk_csv_shows_the_reason_and_stores_nothing(city, client_for):
    members = Member.objects.count()
    response = client_for(city.secretary_a).post(
        reverse("members:import_upload", args=["roster"]),
        {"file": SimpleUploadedFile("roster.csv", BOM_BUT_GBK)},
    )
    assert response.status_code == 200
    with translation.override("zh-hans"):
        reason = gettext(
            "The CSV file is neither UTF-8 nor GBK text. Save it again as CSV or .xlsx."
        )
    assert response.context["form"].errors["file"] == [reason]
    assert reason in response.content.decode()
    assert not SpreadsheetImport.objects.exists()
    assert Member.objects.count() == members

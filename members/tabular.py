"""Reading the spreadsheets people really send: .xlsx from Excel/WPS/LibreOffice, and CSV in
UTF-8 (with or without BOM) or GBK, which is what Chinese Excel writes.

Columns are found by their Chinese header in any order; other columns are ignored.
"""

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.utils.translation import gettext as _
from openpyxl import load_workbook
from openpyxl.utils.datetime import from_excel

SPACES = re.compile(r"[\s\u3000\u00a0\u200b\ufeff]+")


class TableError(Exception):
    """The file as a whole cannot be read; the message is for the person who sent it."""


@dataclass
class Column:
    key: str
    header: str
    required: bool = False
    aliases: tuple = ()


@dataclass
class Table:
    columns: dict  # key -> index in the row
    rows: list  # (spreadsheet row number, {key: raw value})


def normalize_header(value) -> str:
    return SPACES.sub("", unicodedata.normalize("NFKC", str(value or "")))


def clean_text(value) -> str:
    """Full-width letters, digits and spaces folded to their usual forms; ends trimmed."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return SPACES.sub(" ", unicodedata.normalize("NFKC", str(value))).strip()


def clean_name(value) -> str:
    """A person's name, without NFKC: it would rewrite rare compatibility ideographs.

    Chinese rosters pad two-character names with spaces to line them up ("张  三"), so
    spaces between CJK characters go; a name in Latin letters keeps single spaces.
    """
    if value is None:
        return ""
    text = SPACES.sub(" ", str(value)).strip()
    if all(unicodedata.category(ch) == "Lo" or ch == " " for ch in text):
        text = text.replace(" ", "")
    return text


def code_text(value) -> str:
    """An organisation code; Excel may have turned 1001 into 1001.0."""
    return clean_text(value).replace(" ", "").upper()


DATE_PATTERNS = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)


def parse_date(value):
    """A date from an Excel date cell, an Excel serial number or text; ValueError otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 1 <= value < 2958466:
            if 19000101 <= value <= 21001231 and float(value).is_integer():
                return parse_date(str(int(value)))
            return from_excel(value).date()
        raise ValueError(value)
    text = clean_text(value).replace(" ", "")
    if re.fullmatch(r"\d+(\.0+)?", text) and not re.fullmatch(r"\d{8}", text):
        return parse_date(float(text))
    # "2021-07-01 00:00:00" and "2021-07-01T00:00" as written by some exports.
    text = text.split("T")[0]
    if len(text) > 10 and text[:10].count("-") == 2:
        text = text[:10]
    for pattern in DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            return date(year, month, day)
    raise ValueError(value)


def _decode_csv(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        # GB18030 is a superset of GBK and GB2312: what Chinese Excel writes.
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise TableError(
            _("The CSV file is neither UTF-8 nor GBK text. Save it again as CSV or .xlsx.")
        ) from None


def _csv_rows(data: bytes):
    text = _decode_csv(data)
    if "\x00" in text:
        raise TableError(_("This is not a CSV text file."))
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    return list(csv.reader(io.StringIO(text), dialect))


def _xlsx_rows(data: bytes):
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise TableError(_("This file is not a valid .xlsx workbook."))
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        raise TableError(_("This file is not a valid .xlsx workbook.")) from None
    try:
        sheet = workbook.worksheets[0]
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


def read_table(data: bytes, file_name: str, columns: list[Column]) -> Table:
    """Parse ``data`` and locate ``columns`` by header; raise TableError with a reason."""
    if len(data) > settings.LUNXUN_IMPORT_MAX_BYTES:
        raise TableError(
            _("The file is larger than %(mb)d MB.")
            % {"mb": settings.LUNXUN_IMPORT_MAX_BYTES // (1024 * 1024)}
        )
    if not data:
        raise TableError(_("The file is empty."))
    suffix = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    if suffix == "xlsx":
        raw_rows = _xlsx_rows(data)
    elif suffix == "csv":
        raw_rows = _csv_rows(data)
    elif suffix in {"xls", "et", "wps"}:
        raise TableError(
            _("Old-format spreadsheets cannot be read. Save the file as .xlsx and upload it again.")
        )
    else:
        raise TableError(_("Upload an .xlsx or .csv file."))

    header_at = next((i for i, row in enumerate(raw_rows) if any(clean_text(v) for v in row)), None)
    if header_at is None:
        raise TableError(_("The file has no header row."))
    headers = [normalize_header(v) for v in raw_rows[header_at]]
    found = {}
    for column in columns:
        for name in (column.header, *column.aliases):
            if name in headers:
                found[column.key] = headers.index(name)
                break
    missing = [c.header for c in columns if c.required and c.key not in found]
    if missing:
        raise TableError(
            _("Required columns are missing: %(columns)s. Download the template to see them.")
            % {"columns": "、".join(missing)}
        )
    rows = []
    for offset, raw in enumerate(raw_rows[header_at + 1 :], start=header_at + 2):
        if not any(clean_text(v) for v in raw):
            continue
        values = {key: (raw[index] if index < len(raw) else None) for key, index in found.items()}
        rows.append((offset, values))
    if not rows:
        raise TableError(_("The file has a header row but no data rows."))
    if len(rows) > settings.LUNXUN_IMPORT_MAX_ROWS:
        raise TableError(
            _("The file has more than %(n)d rows; split it into smaller files.")
            % {"n": settings.LUNXUN_IMPORT_MAX_ROWS}
        )
    return Table(columns=found, rows=rows)


def workbook_bytes(workbook) -> bytes:
    """An openpyxl workbook (write-only ones too) as .xlsx bytes."""
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()

"""Reading the spreadsheets people really send: .xlsx from Excel/WPS/LibreOffice, and CSV in
UTF-8 (with or without BOM) or GBK, which is what Chinese Excel writes; and writing the
workbooks the site exports (``ExportWorkbook``, the only writer).

Columns are found by their Chinese header in any order; other columns are ignored. A file is
judged by its content: a web page renamed .csv or .xlsx, a workbook with something in front of
it, one that unpacks to gigabytes or has a million rows is refused with a reason.
"""

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import from_excel
from openpyxl.workbook.child import INVALID_TITLE_REGEX

from . import uploads
from .downloads import without_invisible

SPACES = re.compile(r"[\s\u3000\u00a0\u200b\ufeff]+")
# Columns read from each row: rosters have about ten; a sheet claiming thousands is not read.
MAX_COLUMNS = 200
# An .xlsx may unpack to at most this many times the largest file accepted (a zip bomb would
# unpack to gigabytes); real workbooks unpack to 5-10 times their size.
UNPACKED_RATIO = 20


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
    # Control, direction-changing and zero-width characters are never part of a name.
    text = without_invisible(SPACES.sub(" ", str(value))).strip()
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
    if data.startswith(codecs.BOM_UTF8):
        # The file says it is UTF-8; reading it as anything else would be a guess.
        data, encodings = data[len(codecs.BOM_UTF8) :], ("utf-8",)
    else:
        # GB18030 is a superset of GBK and GB2312: what Chinese Excel writes.
        encodings = ("utf-8", "gb18030")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise TableError(
        _("The CSV file is neither UTF-8 nor GBK text. Save it again as CSV or .xlsx.")
    )


def _too_many_rows() -> TableError:
    return TableError(
        _("The file has more than %(n)d rows; split it into smaller files.")
        % {"n": settings.LUNXUN_IMPORT_MAX_ROWS}
    )


def _capped(rows):
    """The rows as lists of at most MAX_COLUMNS cells; stops as soon as there are more
    non-empty rows than an import may have, so a huge sheet is never held in memory."""
    limit = settings.LUNXUN_IMPORT_MAX_ROWS + 1  # and the header row
    kept, filled = [], 0
    for row in rows:
        row = list(row[:MAX_COLUMNS])
        if any(clean_text(value) for value in row):
            filled += 1
            if filled > limit:
                raise _too_many_rows()
        kept.append(row)
    return kept


def _csv_rows(data: bytes):
    text = _decode_csv(data)
    if "\x00" in text:
        raise TableError(_("This is not a CSV text file."))
    if uploads.text_has_markup(text) or text.lstrip().startswith("<"):
        raise TableError(uploads.web_code_message())
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    try:
        return _capped(csv.reader(io.StringIO(text), dialect))
    except csv.Error:
        raise TableError(
            _(
                "The CSV file could not be read: a cell is too long or its quotes do not match. "
                "Save it again as CSV or .xlsx."
            )
        ) from None


def _xlsx_rows(data: bytes):
    if not data.startswith(b"PK\x03\x04") or not zipfile.is_zipfile(io.BytesIO(data)):
        raise TableError(_("This file is not a valid .xlsx workbook."))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        raise TableError(_("This file is not a valid .xlsx workbook.")) from None
    unpacked_limit = settings.LUNXUN_IMPORT_MAX_BYTES * UNPACKED_RATIO
    if unpacked > unpacked_limit:
        raise TableError(
            _("The workbook unpacks to more than %(limit)s and cannot be read.")
            % {"limit": filesizeformat(unpacked_limit)}
        )
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        raise TableError(_("This file is not a valid .xlsx workbook.")) from None
    try:
        sheet = workbook.worksheets[0]
        return _capped(sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS))
    except TableError:
        raise
    except Exception:
        raise TableError(_("This file is not a valid .xlsx workbook.")) from None
    finally:
        workbook.close()


def read_table(data: bytes, file_name: str, columns: list[Column]) -> Table:
    """Parse ``data`` and locate ``columns`` by header; raise TableError with a reason."""
    if len(data) > settings.LUNXUN_IMPORT_MAX_BYTES:
        raise TableError(uploads.too_large_message(len(data), settings.LUNXUN_IMPORT_MAX_BYTES))
    if not data:
        raise TableError(_("The file is empty."))
    suffix = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    if suffix in {"xls", "et", "wps"}:
        raise TableError(
            _("Old-format spreadsheets cannot be read. Save the file as .xlsx and upload it again.")
        )
    if suffix not in {"xlsx", "csv"}:
        raise TableError(_("Upload an .xlsx or .csv file."))
    try:
        uploads.check_ends(io.BytesIO(data))  # a web page, or one riding on a ZIP
    except uploads.UploadRefused as error:
        raise TableError(str(error)) from None
    raw_rows = _xlsx_rows(data) if suffix == "xlsx" else _csv_rows(data)

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
        raise _too_many_rows()
    return Table(columns=found, rows=rows)


# --- Writing -----------------------------------------------------------------------------------


class ExportWorkbook:
    """The one way the site writes a workbook for download: rosters, coverage, study hours,
    import templates and whatever export comes next.

    Rows go in only through ``ExportSheet.append``, which writes every piece of text as a
    text cell. Without it a name, an organisation or a round title typed as ``=HYPERLINK(...)``
    would become a live formula in the workbook of whoever opens the export; forced to text it
    stays exactly what was typed (no apostrophe added), so an exported roster imports back
    unchanged. Sheets are streamed (openpyxl write-only), so a city's roster is never held in
    memory as cells.
    """

    def __init__(self):
        self._workbook = Workbook(write_only=True)

    def sheet(self, title, *, widths=()) -> "ExportSheet":
        """A new sheet called ``title``; ``widths`` are the first columns' widths."""
        worksheet = self._workbook.create_sheet(sheet_title(title))
        for index, width in enumerate(widths, start=1):
            worksheet.column_dimensions[get_column_letter(index)].width = width
        return ExportSheet(worksheet)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self._workbook.save(buffer)
        return buffer.getvalue()


class ExportSheet:
    """One sheet of an ExportWorkbook; written row by row, top to bottom."""

    def __init__(self, worksheet):
        self._worksheet = worksheet

    def append(self, values) -> None:
        self._worksheet.append([_export_cell(self._worksheet, value) for value in values])


def _export_cell(worksheet, value):
    """``value`` as the cell it should be: text as text whatever it starts with (``=``, ``+``,
    ``-``, ``@``, ``#N/A``), numbers and dates as themselves, aware datetimes in local time."""
    if isinstance(value, Promise):
        value = str(value)
    if isinstance(value, str):
        # Characters XML cannot carry at all would make openpyxl refuse the whole export.
        text = ILLEGAL_CHARACTERS_RE.sub("", str(value))
        if text.startswith("=") or text in ERROR_CODES:
            # What openpyxl would write as a formula or an error: a cell typed as text. Other
            # text it writes as text already, and cheaper than a cell object per value.
            cell = WriteOnlyCell(worksheet, text)
            cell.data_type = "s"
            return cell
        return text
    if isinstance(value, datetime) and timezone.is_aware(value):
        return timezone.localtime(value).replace(tzinfo=None)
    return value


def sheet_title(title) -> str:
    """``title`` as Excel accepts a sheet name: no []:*?/\\, at most 31 characters."""
    text = ILLEGAL_CHARACTERS_RE.sub("", INVALID_TITLE_REGEX.sub(" ", str(title)))
    return text.strip()[:31].strip() or "Sheet"

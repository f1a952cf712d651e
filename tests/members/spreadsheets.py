"""Files as secretaries send them: written by a spreadsheet library, or as Chinese Excel's CSV;
and the site's own exports read cell by cell from their XML."""

import io
import zipfile
from dataclasses import dataclass
from datetime import datetime
from xml.etree import ElementTree

from openpyxl import Workbook


def xlsx(rows, sheet_title="Sheet1", date_format=None) -> bytes:
    """An .xlsx workbook whose first sheet holds ``rows`` (the first row is the header)."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = sheet_title
    for row in rows:
        sheet.append(list(row))
    if date_format:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, datetime):
                    cell.number_format = date_format
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_bytes(rows, encoding="utf-8", bom=False) -> bytes:
    text = "\r\n".join(",".join("" if v is None else str(v) for v in row) for row in rows) + "\r\n"
    data = text.encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


@dataclass
class XmlCell:
    sheet: str  # the part's name, e.g. xl/worksheets/sheet1.xml
    ref: str
    type: str | None  # the t= attribute: inlineStr, s, n, b, str (a formula's text), e
    formula: bool  # an <f> element: Excel would compute it
    text: str | None  # an inline string's text


def xml_cells(content: bytes) -> list[XmlCell]:
    """Every cell of every worksheet of an .xlsx, as its XML says (not as a library reads it)."""
    cells = []
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for name in sorted(archive.namelist()):
            if not (name.startswith("xl/worksheets/") and name.endswith(".xml")):
                continue
            root = ElementTree.fromstring(archive.read(name))
            for cell in root.iter(f"{MAIN}c"):
                inline = cell.find(f"{MAIN}is")
                cells.append(
                    XmlCell(
                        sheet=name,
                        ref=cell.get("r"),
                        type=cell.get("t"),
                        formula=cell.find(f"{MAIN}f") is not None,
                        text=None
                        if inline is None
                        else "".join(t.text or "" for t in inline.iter(f"{MAIN}t")),
                    )
                )
    return cells


def assert_no_formulas(content: bytes) -> list[XmlCell]:
    """Fail if any cell of the workbook is a formula or an error, or holds text other than as
    a plain string; returns the cells for further checks."""
    cells = xml_cells(content)
    assert cells, "the workbook has no cells"
    assert [c for c in cells if c.formula] == []
    assert [c for c in cells if c.type in {"str", "e"}] == []
    assert all(c.type in {"inlineStr", "s", "n", "b", "d", None} for c in cells), cells
    return cells

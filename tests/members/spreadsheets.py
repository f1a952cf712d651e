"""Files as secretaries send them: written by a spreadsheet library, or as Chinese Excel's CSV."""

import io
from datetime import datetime

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

"""Every file the site hands out gets its name here.

A download's name is built from data people typed (a round's title, an organisation's code or
name, a member's name), so it may hold anything: CR/LF that would split the header, quotes
that would end it early, "/" or "\\" that would make it a path, control and bidi characters
that hide or reorder the real extension. ``content_disposition`` cleans the name once and
writes it twice, as RFC 6266 asks: ``filename="..."`` in plain ASCII for old clients and
``filename*=UTF-8''...`` (RFC 5987, percent-encoded) with the Chinese intact for everyone else.

Views never set Content-Disposition themselves: they return ``xlsx_response``,
``download_response`` or ``file_response`` (tests/core/test_exports_safe.py holds them to it).
"""

import re
import unicodedata
from urllib.parse import quote

from django.http import FileResponse, HttpResponse

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Characters kept before the extension: long enough for "<round title>-<organisation>", short
# enough for every file system (255 bytes) once the Chinese is UTF-8 encoded.
MAX_STEM = 80
# Windows refuses these in a name; "/" and "\" would make the name a path.
UNSAFE = re.compile(r'[\\/:*?"<>|]+')
SPACES = re.compile(r"\s+")
# What the plain filename="..." keeps: ASCII that every client reads literally.
FALLBACK_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()\[\]+=@!#&'~,-]+")
# The extension (".xlsx", ".pdf") that shortening a long name must keep.
EXTENSION = re.compile(r"(\.[A-Za-z0-9]{1,8})$")


def without_invisible(text) -> str:
    """``text`` without control, direction-changing, zero-width, surrogate and private-use
    characters (unassigned ones stay: a rare character of a person's name may be newer than
    this Python's Unicode tables)."""
    return "".join(
        char for char in str(text) if unicodedata.category(char) not in {"Cc", "Cf", "Cs", "Co"}
    )


def safe_filename(name, *, default: str = "download") -> str:
    """``name`` as a file name on any system: one line, no path, no quotes, no control or
    direction-changing characters, not hidden, at most MAX_STEM characters plus its extension;
    ``default`` (keeping the extension) when nothing is left."""
    kept = []
    for char in unicodedata.normalize("NFC", str(name)):
        if char.isspace():
            kept.append(" ")  # CR, LF, tab, ideographic space...: one plain space
        elif unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co", "Cn"}:
            continue  # control, bidi override, zero-width, surrogate, private, unassigned
        else:
            kept.append(char)
    text = SPACES.sub(" ", UNSAFE.sub("_", "".join(kept)))
    match = EXTENSION.search(text)
    extension = match.group(1) if match else ""
    stem = text[: len(text) - len(extension)]
    # A leading dot hides the file; Windows drops trailing dots and spaces.
    stem = stem[:MAX_STEM].strip(" .")
    if not stem:
        stem = default
    return stem + extension


def ascii_filename(name: str, *, default: str = "download") -> str:
    """The plain-ASCII stand-in for a ``safe_filename``: each run of other characters becomes
    one "_" (";" and "%" too, which naive parsers split on or decode); ``default`` when no
    letter or digit is left."""
    text = FALLBACK_UNSAFE.sub("_", name)
    match = EXTENSION.search(text)
    extension = match.group(1) if match else ""
    stem = text[: len(text) - len(extension)]
    if not re.search(r"[A-Za-z0-9]", stem):
        stem = default
    return stem + extension


def content_disposition(filename, *, inline: bool = False) -> str:
    """The Content-Disposition value for a file called ``filename`` (any text)."""
    name = safe_filename(filename)
    disposition = "inline" if inline else "attachment"
    return (
        f'{disposition}; filename="{ascii_filename(name)}"; '
        f"filename*=UTF-8''{quote(name, safe='')}"
    )


def download_response(content: bytes, *, filename, content_type: str, inline=False):
    """An HttpResponse carrying ``content`` as a file called ``filename``."""
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition(filename, inline=inline)
    return response


def xlsx_response(content: bytes, filename) -> HttpResponse:
    """A workbook from ``core.tabular.ExportWorkbook`` as a download."""
    return download_response(content, filename=filename, content_type=XLSX)


def file_response(filelike, *, filename, content_type: str, inline=False) -> FileResponse:
    """A FileResponse streaming ``filelike`` as a file called ``filename``: the stored file's
    own name (a storage path) never reaches the client."""
    response = FileResponse(filelike, content_type=content_type)
    response["Content-Disposition"] = content_disposition(filename, inline=inline)
    return response

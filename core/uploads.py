"""Checks on uploaded bytes that every upload shares: videos, pictures, documents, rosters.

A browser that guesses a type from a file's first bytes may run HTML it finds there, and a
"polyglot" is a file that is valid as one type (a PNG, an MP4, a ZIP) while it carries HTML or
script for a browser that takes it as another. So an upload is judged by its content, never by
its name: markup is looked for where a browser would find it (the first and last bytes) and in
the text a picture carries (comments, text chunks, EXIF, XMP), and pictures are decoded in full.

These are pure functions over bytes and files; each caller turns ``UploadRefused`` into its own
error (a form error, a rejected video, a table error).
"""

import io
import re
import warnings

from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

# How much of each end of a file is searched for markup: more than any browser sniffs.
ENDS_BYTES = 64 * 1024
# Frames of an animated picture whose comments are read (and decoded); more are refused.
MAX_FRAMES = 1000

# A tag a browser acts on, or a script URL. The list, and the separator that must follow a
# tag, keep the chance that compressed bytes match by accident negligible.
MARKUP = re.compile(
    rb"<(?:script|iframe|frame|frameset|object|embed|applet|html|head|body|svg|math|meta|link|"
    rb"style|base|form|img|image|video|audio|source|!doctype|x:script)[\s/>]"
    rb"|javascript:|vbscript:",
    re.IGNORECASE,
)
# In text (a CSV, a .txt document) any tag at all is markup.
TEXT_MARKUP = re.compile(r"<(?:[a-z][a-z0-9:-]*|!doctype|!--|\?xml)(?=[\s/>])|javascript:", re.I)

BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


class UploadRefused(Exception):
    """The upload is not accepted; str(e) is a translated message for the person uploading."""


def web_code_message() -> str:
    return _(
        "This file contains web page code (HTML, SVG or script) and is not accepted. "
        "Please upload the original file."
    )


def too_large_message(size: int, limit: int) -> str:
    return _("The file is too large (%(size)s). The maximum is %(limit)s.") % {
        "size": filesizeformat(size),
        "limit": filesizeformat(limit),
    }


def check_size(size: int, limit: int | None) -> None:
    if limit is not None and size > limit:
        raise UploadRefused(too_large_message(size, limit))


def _as_utf8(head: bytes) -> bytes:
    """The bytes as UTF-8, a UTF-16 text (with its byte-order mark) converted."""
    if head.startswith(b"\xff\xfe"):
        return head[2:].decode("utf-16-le", "ignore").encode()
    if head.startswith(b"\xfe\xff"):
        return head[2:].decode("utf-16-be", "ignore").encode()
    return head.removeprefix(b"\xef\xbb\xbf")


def starts_like_markup(head: bytes) -> bool:
    """Text that opens with "<" (HTML, SVG, XML), whatever the byte-order mark and spaces."""
    return _as_utf8(head).lstrip(b" \t\r\n\f\v\x00").startswith(b"<")


def has_markup(data: bytes) -> bool:
    if MARKUP.search(data):
        return True
    return data.startswith(BOMS[1:]) and bool(MARKUP.search(_as_utf8(data)))


def text_has_markup(text: str) -> bool:
    return bool(TEXT_MARKUP.search(text))


def read_ends(file, limit: int = ENDS_BYTES) -> tuple[bytes, bytes]:
    """The first and the last ``limit`` bytes of a file (a path or an open binary file, which is
    left at its start). Both are the whole file when it is short."""
    if isinstance(file, str | bytes) or hasattr(file, "__fspath__"):
        with open(file, "rb") as handle:
            return read_ends(handle, limit)
    file.seek(0)
    head = file.read(limit)
    file.seek(0, io.SEEK_END)
    size = file.tell()
    if size <= limit:
        tail = head
    else:
        file.seek(max(limit, size - limit))
        tail = file.read(limit)
    file.seek(0)
    return head, tail


def check_ends(file, limit: int = ENDS_BYTES) -> bytes:
    """Refuse a file that opens like markup or has a tag or script URL near either end;
    return its first bytes."""
    head, tail = read_ends(file, limit)
    if starts_like_markup(head) or has_markup(head) or has_markup(tail):
        raise UploadRefused(web_code_message())
    return head


# --- Pictures ---------------------------------------------------------------------------------

PICTURE_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "GIF", "WEBP": "WebP", "AVIF": "AVIF"}


def unreadable_picture_message() -> str:
    return _("The file could not be read as a picture. It may be damaged, or not a picture at all.")


def _unreadable_picture() -> UploadRefused:
    return UploadRefused(unreadable_picture_message())


def _picture_texts(picture):
    """Every text and blob a picture carries beside its pixels: comments, PNG text chunks,
    EXIF, XMP, ICC profiles, JPEG application segments."""
    for value in picture.info.values():
        if isinstance(value, bytes | str):
            yield value
        elif isinstance(value, tuple | list):
            yield from (item for item in value if isinstance(item, bytes | str))
    for _marker, segment in getattr(picture, "applist", ()):
        yield segment
    for value in (getattr(picture, "text", None) or {}).values():  # PNG chunks after IDAT too
        yield value


def _too_many_pixels(limit) -> UploadRefused:
    return UploadRefused(
        _("The picture has too many pixels. It may have at most %(limit)s.")
        % {"limit": f"{limit:,}"}
    )


def check_picture(file, *, formats=None, max_pixels=None, max_bytes=None) -> str:
    """Decode a picture in full and refuse markup in it or around it; return Pillow's format
    name ("PNG", "JPEG"...). ``formats`` limits the formats accepted (Pillow names);
    ``max_pixels`` counts every frame of an animation, as Wagtail does."""
    from PIL import Image

    if max_bytes is not None:
        file.seek(0, io.SEEK_END)
        check_size(file.tell(), max_bytes)
        file.seek(0)
    head = check_ends(file)
    if not head:
        raise UploadRefused(_("The file is empty."))
    texts = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(file)
            picture_format = picture.format or ""
            if formats is not None and picture_format not in formats:
                raise UploadRefused(
                    _("This picture is a %(format)s file. Accepted formats: %(allowed)s.")
                    % {
                        "format": PICTURE_NAMES.get(picture_format, picture_format),
                        "allowed": ", ".join(PICTURE_NAMES.get(f, f) for f in formats),
                    }
                )
            width, height = picture.size
            frames = getattr(picture, "n_frames", 1)
            if max_pixels is not None and width * height * frames > max_pixels:
                raise _too_many_pixels(max_pixels)
            if frames > MAX_FRAMES:
                raise _unreadable_picture()
            for frame in range(frames):
                picture.seek(frame)
                picture.load()
                texts.extend(_picture_texts(picture))
    except UploadRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(Image.MAX_IMAGE_PIXELS) from None
    except Exception:  # whatever a crafted file makes the decoder raise: it is not a picture
        raise _unreadable_picture() from None
    finally:
        file.seek(0)
    for text in texts:
        data = text.encode("utf-8", "replace") if isinstance(text, str) else text
        if has_markup(data):
            raise UploadRefused(web_code_message())
    return picture_format

"""Captions of a lesson video: check an uploaded WebVTT or SRT file, keep it as WebVTT, and
write what the HLS master playlist needs to carry it as a subtitle track.

Pure functions over bytes and text; no models, no storage (courses.services stores them).

``read`` refuses, with a message for the trainer naming the line, anything that is not a
caption file: too big, not text, not UTF-8 or GB18030 (GBK; converted, see ``Captions.note``),
no ``WEBVTT`` header and no SRT cue at the top, a cue whose timing line is malformed or ends
before it starts, or no cue at all. The file is then parsed with webvtt-py (SRT converted) and
written out again as WebVTT, so what is stored is what the library could read.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
from dataclasses import dataclass

import m3u8
import webvtt
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

DEFAULT_MAX_BYTES = 1024 * 1024
GROUP_ID = "subs"
LANGUAGE = "zh"
NAME = "中文"  # the track's name in the playlist: what a player's own menu shows
VTT_NAME = "captions.vtt"
PLAYLIST_NAME = "index.m3u8"

_VTT_TIME = r"(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_SRT_TIME = r"(\d{1,3}):([0-5]\d):([0-5]\d)[,.](\d{1,3})"
VTT_TIMING = re.compile(rf"^{_VTT_TIME}[ \t]+-->[ \t]+{_VTT_TIME}(?:[ \t].*)?$")
SRT_TIMING = re.compile(rf"^\s*{_SRT_TIME}\s*-->\s*{_SRT_TIME}(?:\s.*)?$")
# A line that starts like a timing line (with its arrow mistyped, say).
TIMEISH = re.compile(r"^\s*(?:\d{1,3}:)?\d{1,2}:\d{2}[,.]\d")


class CaptionsRejected(Exception):
    """Not an acceptable caption file; str(e) is a translated message for the trainer."""


@dataclass(frozen=True)
class Captions:
    vtt: str  # the captions as WebVTT
    cues: int
    source_format: str  # "vtt" or "srt"
    note: str = ""  # what was done to it (a conversion), for the trainer


def max_bytes() -> int:
    return int(getattr(settings, "LUNXUN_CAPTIONS_MAX_BYTES", DEFAULT_MAX_BYTES))


def _seconds(groups) -> float:
    hours, minutes, seconds, fraction = groups
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(fraction) / 1000


def _at_line(number: int, message: str) -> CaptionsRejected:
    return CaptionsRejected(
        _("Line %(line)s of the caption file: %(problem)s") % {"line": number, "problem": message}
    )


def _decode(data: bytes) -> tuple[str, str]:
    """The text, and a note when it was not UTF-8."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), _("The file was in UTF-16 and has been converted.")
        except UnicodeDecodeError:
            pass
    else:
        try:
            return data.decode("utf-8-sig"), ""
        except UnicodeDecodeError:
            pass
        try:
            # GBK files (common from Chinese subtitle tools) are GB18030 too.
            return data.decode("gb18030"), _(
                "The file was in GBK (GB18030) encoding and has been converted to UTF-8."
            )
        except UnicodeDecodeError:
            pass
    raise CaptionsRejected(
        _(
            "The caption file's text encoding is not recognised. Please save it as UTF-8 "
            "(or GBK) text and upload it again."
        )
    )


def _blocks(lines):
    """(first line number, lines) of each block of non-empty lines."""
    block, start = [], 0
    for number, line in enumerate(lines, 1):
        if line.strip():
            if not block:
                start = number
            block.append(line)
        elif block:
            yield start, block
            block = []
    if block:
        yield start, block


def _check_timing(pattern, line: str, number: int, example: str) -> None:
    match = pattern.match(line)
    if match is None:
        raise _at_line(
            number,
            _("the timing line “%(line)s” is not valid; it should look like “%(example)s”.")
            % {"line": line.strip()[:80], "example": example},
        )
    start, end = _seconds(match.groups()[:4]), _seconds(match.groups()[4:8])
    if end <= start:
        raise _at_line(number, _("the caption ends before it starts."))


def _check_vtt(lines) -> int:
    header = lines[0]
    if not (header == "WEBVTT" or header.startswith(("WEBVTT ", "WEBVTT\t"))):
        raise _at_line(1, _("a WebVTT file must begin with “WEBVTT”."))
    cues = 0
    example = "00:00:01.000 --> 00:00:04.000"
    for index, (start, block) in enumerate(_blocks(lines)):
        if index == 0:  # the header block: WEBVTT and its metadata lines
            continue
        if block[0].startswith(("NOTE", "STYLE", "REGION")) and "-->" not in block[0]:
            continue
        arrows = [i for i, line in enumerate(block) if "-->" in line]
        if not arrows or arrows[0] > 1:
            raise _at_line(start, _("a caption needs a timing line, like “%s”.") % example)
        _check_timing(VTT_TIMING, block[arrows[0]], start + arrows[0], example)
        cues += 1
    return cues


def _check_srt(lines) -> int:
    cues = 0
    example = "00:00:01,000 --> 00:00:04,000"
    for start, block in _blocks(lines):
        first = block[0].strip()
        if first.isdigit() and len(block) > 1 and ("-->" in block[1] or TIMEISH.match(block[1])):
            _check_timing(SRT_TIMING, block[1], start + 1, example)
        elif "-->" in first or TIMEISH.match(first):
            _check_timing(SRT_TIMING, block[0], start, example)
        elif cues:  # a blank line inside a caption's text: the text goes on
            continue
        elif first.isdigit():
            raise _at_line(start + 1, _("a caption needs a timing line, like “%s”.") % example)
        else:
            raise _at_line(
                start,
                _(
                    "this is not a caption file. Please upload a WebVTT (.vtt) or SubRip "
                    "(.srt) file."
                ),
            )
        cues += 1
    return cues


def check_size(size: int) -> None:
    limit = max_bytes()
    if size > limit:
        raise CaptionsRejected(
            _("The caption file is too large (%(size)s). The maximum is %(limit)s.")
            % {"size": filesizeformat(size), "limit": filesizeformat(limit)}
        )


def read(data: bytes) -> Captions:
    """Check an uploaded caption file and return it as WebVTT; raise CaptionsRejected."""
    if not data:
        raise CaptionsRejected(_("The caption file is empty."))
    check_size(len(data))
    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CaptionsRejected(
            _("This is not a text file. Please upload a WebVTT (.vtt) or SubRip (.srt) file.")
        )
    text, note = _decode(data)
    if "\ufffd" in text or any(
        unicodedata.category(ch) == "Cc" and ch not in "\t\r\n" for ch in text
    ):
        raise CaptionsRejected(
            _("This is not a text file. Please upload a WebVTT (.vtt) or SubRip (.srt) file.")
        )
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[0].startswith("WEBVTT"):
        source_format, cues = "vtt", _check_vtt(lines)
    else:
        source_format, cues = "srt", _check_srt(lines)
    if not cues:
        raise CaptionsRejected(_("The caption file contains no captions."))
    try:
        parsed = webvtt.from_buffer(
            io.StringIO(text), format=source_format, strict=source_format == "vtt"
        )
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError) as error:
        raise CaptionsRejected(
            _("The caption file could not be read: %(error)s") % {"error": error}
        ) from None
    if len(parsed.captions) != cues:
        raise CaptionsRejected(
            _("The caption file could not be read completely: %(read)s of %(found)s captions.")
            % {"read": len(parsed.captions), "found": cues}
        )
    return Captions(vtt=parsed.content, cues=cues, source_format=source_format, note=note)


# --- HLS ----------------------------------------------------------------------------------------


def subtitle_playlist(duration: float) -> str:
    """The subtitle media playlist: the whole lesson is one WebVTT segment."""
    length = max(1.0, float(duration or 0))
    return (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        f"#EXT-X-TARGETDURATION:{math.ceil(length)}\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXTINF:{length:.3f},\n"
        f"{VTT_NAME}\n"
        "#EXT-X-ENDLIST\n"
    )


def master_with_subtitles(master: str, uri: str) -> str:
    """``master`` with a subtitle rendition at ``uri`` (relative to the master), shown by
    default where the player follows the playlist, on every variant stream."""
    playlist = m3u8.loads(master)
    if not playlist.is_variant:
        raise ValueError("not a master playlist")
    playlist.media = m3u8.MediaList(
        [media for media in playlist.media if (media.type or "").upper() != "SUBTITLES"]
    )
    subtitles = m3u8.Media(
        uri=uri,
        type="SUBTITLES",
        group_id=GROUP_ID,
        language=LANGUAGE,
        name=NAME,
        default="YES",
        autoselect="YES",
    )
    playlist.add_media(subtitles)
    for variant in playlist.playlists:
        # A variant writes SUBTITLES="…" from the renditions it is linked to.
        variant.media = [m for m in variant.media if (m.type or "").upper() != "SUBTITLES"]
        variant.media.append(subtitles)
        variant.stream_info.subtitles = GROUP_ID
    return playlist.dumps()

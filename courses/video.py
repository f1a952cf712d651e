"""The video pipeline: check an upload, then transcode it for streaming.

Pure functions over local file paths; no models, no storage. See DESIGN.md, "Video".

* ``validate_upload`` refuses anything that is not a real, complete video (by extension, size,
  first bytes, then ffprobe) with a message meant for the uploader.
* ``transcode`` decodes the source once, in one ffmpeg run, and writes an HLS ladder (one
  variant per rung, each with ~64 kbps AAC), an audio-only HLS variant (~48 kbps AAC), an MP4
  fallback and a poster JPEG.

The one-run command: the decoded picture is split and scaled once per rung; every rung is
encoded once with libx264 and the encoded streams go to a ``tee`` muxer, which writes them to
the ``hls`` muxer (all rungs + the audio-only variant, master playlist via ``var_stream_map``)
and, selecting the 360p rung (or the highest rung below it), to ``fallback.mp4``. So the
fallback costs no extra encode. A last branch of the split picks one frame for the poster.

Safety: every ffmpeg/ffprobe input is opened with ``-protocol_whitelist file`` and a
``-format_whitelist`` of real video containers, so a playlist (HLS, concat...) can never make
ffmpeg read another file or a URL; text and markup are refused from their first bytes before
ffprobe runs, and so is a video carrying HTML or script near either end (a polyglot).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core import uploads

DEFAULT_EXTENSIONS = (
    "mp4",
    "mov",
    "m4v",
    "mkv",
    "webm",
    "avi",
    "flv",
    "wmv",
    "mpg",
    "mpeg",
    "ts",
    "3gp",
)
DEFAULT_MAX_BYTES = 4 * 1024**3
DEFAULT_MIN_SECONDS = 1
DEFAULT_MAX_SECONDS = 6 * 3600
DEFAULT_THREADS = 2
DEFAULT_MAX_FPS = 30

# Demuxers allowed to open a source (ffmpeg matches any name of a demuxer, e.g. "mov" covers
# "mov,mp4,m4a,3gp,3g2,mj2" and "matroska" covers "matroska,webm"). No playlist, image or
# text demuxer is on it: hls, concat, image2, svg, tty... all fail to open.
FORMAT_WHITELIST = "mov,matroska,avi,flv,asf,mpeg,mpegts,mpegvideo"

SEGMENT_SECONDS = 6
KEYFRAME_SECONDS = 2
RUNG_AUDIO_BITRATE = "64k"
AUDIO_ONLY_BITRATE = "48k"
AUDIO_SAMPLE_RATE = 48000
# Downscaling by averaging: on 2 cores, a 720p source's full ladder took 27 s instead of 32 s
# with swscale's default bicubic (the scalers run in ffmpeg's single filtering thread), and
# for the 1.3x-3x reductions of the ladder it looks as clean.
SCALE_FLAGS = "area"
FALLBACK_MAX_HEIGHT = 360
POSTER_MAX_HEIGHT = 720

MASTER_NAME = "master.m3u8"
AUDIO_NAME = "audio"
PLAYLIST_NAME = "index.m3u8"
SEGMENT_PATTERN = "seg_%05d.ts"
FALLBACK_NAME = "fallback.mp4"
POSTER_NAME = "poster.jpg"

PROBE_TIMEOUT = 120  # seconds; a sane file answers in well under one
SNIFF_BYTES = 4096


class VideoRejected(Exception):
    """An upload that is not an acceptable video; str(e) is a clear, translatable message for
    the uploader."""


class TranscodeError(Exception):
    """ffmpeg failed; the message ends with the tail of its stderr (for logs, not for users)."""

    def __init__(self, message: str, stderr_tail: str = "", returncode: int | None = None):
        super().__init__(f"{message}\n{stderr_tail}".rstrip())
        self.stderr_tail = stderr_tail
        self.returncode = returncode


@dataclass(frozen=True)
class ProbeResult:
    duration: float  # seconds
    width: int  # as displayed: after the rotation a phone records is applied
    height: int
    video_codec: str  # e.g. "h264", "hevc"
    has_audio: bool
    format_name: str
    # What transcode needs beyond the interface; defaults keep ProbeResult(...) simple to build.
    frame_rate: float = 0.0  # average frames per second, 0 when unknown
    video_stream: int = 0  # index of the chosen video stream in the file
    audio_stream: int | None = None  # index of the chosen audio stream, None without audio
    interlaced: bool = False


@dataclass(frozen=True)
class Rung:
    name: str  # "234p", "360p", "540p", "720p"
    height: int  # the short side: height for landscape, width for portrait video
    video_bitrate: int  # bits/s


LADDER: tuple[Rung, ...] = (
    Rung("234p", 234, 200_000),
    Rung("360p", 360, 600_000),
    Rung("540p", 540, 1_300_000),
    Rung("720p", 720, 2_500_000),
)


@dataclass(frozen=True)
class X264:
    """libx264 settings of one rung: a preset, and ``-x264-params`` changed on top of it."""

    preset: str
    params: str = ""


@dataclass(frozen=True)
class Encoding:
    """How the ladder is encoded: x264 settings by rung, and the scaler of the rungs.

    ``x264`` is a list of (largest short side, settings), smallest first; a rung takes the
    first entry its height fits under (``None``: any height).
    """

    x264: tuple[tuple[int | None, X264], ...]
    scale_flags: str = SCALE_FLAGS

    @classmethod
    def uniform(cls, preset: str, params: str = "") -> Encoding:
        """The same x264 settings on every rung (what LUNXUN_FFMPEG_PRESET asks for)."""
        return cls(x264=((None, X264(preset, params)),))

    def for_rung(self, rung: Rung) -> X264:
        for bound, chosen in self.x264:
            if bound is None or rung.height <= bound:
                return chosen
        return self.x264[-1][1]


# The ladder's encoding, measured by bench/bench_transcode.py against the uniform "veryfast" it
# replaced (docs/courses.md has the figures). The lowest rung costs little and loses most from
# a cheaper motion search, so it keeps veryfast. 360p and 540p take superfast's motion search
# but keep veryfast's macroblock tree over a 10-frame lookahead (superfast turns it off; it
# is what keeps a still slide sharp). 720p, half of all the encoding, takes ultrafast's
# analysis with CABAC, the deblocking filter, the macroblock tree and quarter-pixel motion put
# back: every rung stays within 1 % of the SSIM veryfast reached, at about 0.6 of its CPU time.
TUNED_ENCODING = Encoding(
    x264=(
        (234, X264("veryfast")),
        (540, X264("superfast", "mbtree=1:rc-lookahead=10")),
        (None, X264("ultrafast", "cabac=1:deblock=0,0:mbtree=1:rc-lookahead=10:subme=1")),
    )
)


@dataclass
class TranscodeResult:
    master_playlist: str  # all paths relative to out_dir
    rungs: list[Rung]
    variant_playlists: list[str]
    audio_playlist: str
    mp4_fallback: str
    poster: str
    duration: float


# ---------------------------------------------------------------------------------------------
# Settings


def _setting(name, default):
    return getattr(settings, name, default)


def _ffmpeg_bin() -> str:
    return _setting("LUNXUN_FFMPEG", "ffmpeg")


def _ffprobe_bin() -> str:
    return _setting("LUNXUN_FFPROBE", "ffprobe")


def _threads() -> int:
    return max(1, int(_setting("LUNXUN_FFMPEG_THREADS", DEFAULT_THREADS)))


def _encoding() -> Encoding:
    """LUNXUN_FFMPEG_PRESET, when set, puts that x264 preset on every rung instead."""
    preset = _setting("LUNXUN_FFMPEG_PRESET", "")
    return Encoding.uniform(preset) if preset else TUNED_ENCODING


def allowed_extensions() -> list[str]:
    return [
        str(ext).lower().lstrip(".")
        for ext in _setting("LUNXUN_VIDEO_EXTENSIONS", DEFAULT_EXTENSIONS)
    ]


# ---------------------------------------------------------------------------------------------
# Messages


def _human_duration(seconds: float) -> str:
    if seconds < 60:
        shown = f"{seconds:.1f}".removesuffix(".0")
        return ngettext("%(count)s second", "%(count)s seconds", 1 if shown == "1" else 2) % {
            "count": shown
        }
    total = round(seconds)
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _unreadable() -> VideoRejected:
    return VideoRejected(
        _(
            "The file could not be read as a video. It may be damaged or incomplete, "
            "or in a format that is not supported."
        )
    )


# ---------------------------------------------------------------------------------------------
# Checking uploads

_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF
    b"MM\x00*",
)
_IMAGE_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")
_DOCUMENT_MAGIC = (
    b"%PDF",
    b"PK\x03\x04",  # zip, docx, pptx
    b"\xd0\xcf\x11\xe0",  # doc, ppt, xls
    b"Rar!",
    b"7z\xbc\xaf",
    b"\x1f\x8b",  # gzip
)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut by the read, or GBK/Latin-1 text.
        if error.start < len(head) - 4:
            try:
                text = head.decode("gb18030")
            except UnicodeDecodeError:
                return False
        else:
            text = head[: error.start].decode("utf-8")
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n\f")
    return printable >= 0.95 * len(text)


def sniff(path) -> None:
    """Refuse from the first bytes what is plainly not a video; ffprobe is never shown those."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as error:
        raise VideoRejected(_("The file could not be read.")) from error
    if not head:
        raise VideoRejected(_("The file is empty."))
    body = head
    for bom in _BOMS:
        if body.startswith(bom):
            body = body[len(bom) :]
            if bom != _BOMS[0]:  # UTF-16: look at it as text
                body = body.decode("utf-16-be" if bom == b"\xfe\xff" else "utf-16-le", "ignore")
                body = body.encode("utf-8")
            break
    stripped = body.lstrip(b" \t\r\n\f\v").lower()
    if stripped.startswith(b"#extm3u") or stripped.startswith(b"ffconcat"):
        raise VideoRejected(
            _("This file is a playlist, not a video. Please upload the video file itself.")
        )
    if stripped.startswith(b"<") or _looks_like_text(body):
        raise VideoRejected(
            _(
                "This file is a text document or a web page (for example HTML, SVG or XML), "
                "not a video."
            )
        )
    if (
        head.startswith(_IMAGE_MAGIC)
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or (head[4:8] == b"ftyp" and head[8:12] in _IMAGE_BRANDS)
    ):
        raise VideoRejected(_("This file is a picture, not a video. Please upload a video."))
    if head.startswith(_DOCUMENT_MAGIC):
        raise VideoRejected(_("This file is a document or an archive, not a video."))
    # A polyglot: a video (or a box header) that carries HTML or script where a browser
    # sniffing its type would find it.
    try:
        uploads.check_ends(path)
    except uploads.UploadRefused as error:
        raise VideoRejected(str(error)) from None


def _ffprobe(path, *args: str) -> dict:
    argv = [
        _ffprobe_bin(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        FORMAT_WHITELIST,
        *args,
        "-of",
        "json",
        "-i",
        os.path.abspath(path),
    ]
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT
        )
    except subprocess.TimeoutExpired as error:
        raise _unreadable() from error
    if done.returncode != 0:
        raise _unreadable()
    try:
        return json.loads(done.stdout.decode("utf-8", "replace") or "{}")
    except ValueError as error:
        raise _unreadable() from error


def _number(value, default=0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _rate(text) -> float:
    try:
        num, _sep, den = str(text).partition("/")
        rate = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0
    return rate if 0 < rate <= 1000 else 0.0


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return round(_number(side["rotation"]))
    return round(_number((stream.get("tags") or {}).get("rotate")))


def _inspect(path) -> tuple[ProbeResult, dict]:
    sniff(path)
    data = _ffprobe(path, "-show_format", "-show_streams")
    fmt = data.get("format") or {}
    streams = data.get("streams") or []

    def picture(stream):
        disposition = stream.get("disposition") or {}
        return stream.get("codec_type") == "video" and not (
            disposition.get("attached_pic")
            or disposition.get("timed_thumbnails")
            or disposition.get("still_image")
        )

    videos = [s for s in streams if picture(s)]
    if not fmt or not streams:
        raise _unreadable()
    if not videos:
        raise VideoRejected(
            _(
                "The file contains no moving picture (it may be sound only, or a sound "
                "with a cover image). Please upload a video."
            )
        )
    video = videos[0]
    if not video.get("codec_name"):
        raise VideoRejected(_("The video is encoded in a way that cannot be processed."))
    width, height = int(_number(video.get("width"))), int(_number(video.get("height")))
    if width <= 0 or height <= 0:
        raise VideoRejected(
            _("The picture size of the video could not be determined. The file may be damaged.")
        )
    if abs(_rotation(video)) % 180 == 90:
        width, height = height, width
    duration = _number(fmt.get("duration")) or _number(video.get("duration"))
    if duration <= 0:
        raise VideoRejected(
            _(
                "The length of the video could not be determined. "
                "The file may be damaged or incomplete."
            )
        )
    audios = [s for s in streams if s.get("codec_type") == "audio" and s.get("codec_name")]
    audios.sort(key=lambda s: not (s.get("disposition") or {}).get("default"))
    result = ProbeResult(
        duration=duration,
        width=width,
        height=height,
        video_codec=video["codec_name"],
        has_audio=bool(audios),
        format_name=fmt.get("format_name", ""),
        frame_rate=_rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate")),
        video_stream=int(video.get("index", 0)),
        audio_stream=int(audios[0].get("index", 0)) if audios else None,
        interlaced=video.get("field_order") in ("tt", "bb", "tb", "bt"),
    )
    return result, data


def probe(path) -> ProbeResult:
    """Describe a video file; raise VideoRejected if it is not one ffmpeg can read."""
    return _inspect(path)[0]


def _check_complete(path, info: ProbeResult, data: dict) -> None:
    """Read the last seconds of the file: a file cut short (an interrupted upload of an MP4
    whose index comes first, say) announces its full length but has nothing at the end."""
    start = _number((data.get("format") or {}).get("start_time"))
    end_expected = start + info.duration
    seek = max(start, end_expected - 10)
    try:
        packets = _ffprobe(
            path,
            "-read_intervals",
            f"{seek:.3f}%",
            "-show_entries",
            "packet=pts_time,duration_time",
        ).get("packets", [])
    except VideoRejected:
        packets = []
    end = max(
        (_number(p.get("pts_time"), -1) + _number(p.get("duration_time")) for p in packets),
        default=-1,
    )
    if end < end_expected - max(2.0, 0.02 * info.duration):
        raise VideoRejected(
            _(
                "The file is incomplete: it ends before the length it announces. "
                "Please upload the complete file again."
            )
        )


def validate_upload(path, original_name: str, size: int | None = None) -> ProbeResult:
    """Accept an uploaded video or raise VideoRejected with a message for the uploader."""
    allowed = allowed_extensions()
    allowed_text = ", ".join(allowed)
    stem, dot, extension = str(original_name or "").rpartition(".")
    extension = extension.lower().strip()
    if not dot or not stem or not extension:
        raise VideoRejected(
            _(
                "The file name has no extension. Please upload a video in one of these formats: "
                "%(allowed)s."
            )
            % {"allowed": allowed_text}
        )
    if extension not in allowed:
        raise VideoRejected(
            _(
                "Files of type “.%(extension)s” are not accepted. Please upload a video in one "
                "of these formats: %(allowed)s."
            )
            % {"extension": extension, "allowed": allowed_text}
        )
    try:
        actual = os.path.getsize(path)
    except OSError as error:
        raise VideoRejected(_("The file could not be read.")) from error
    size = max(actual, size or 0)
    limit = int(_setting("LUNXUN_VIDEO_MAX_BYTES", DEFAULT_MAX_BYTES))
    if size == 0:
        raise VideoRejected(_("The file is empty."))
    if size > limit:
        raise VideoRejected(
            _("The file is too large (%(size)s). The maximum is %(limit)s.")
            % {"size": filesizeformat(size), "limit": filesizeformat(limit)}
        )

    info, data = _inspect(path)

    minimum = float(_setting("LUNXUN_VIDEO_MIN_SECONDS", DEFAULT_MIN_SECONDS))
    maximum = float(_setting("LUNXUN_VIDEO_MAX_SECONDS", DEFAULT_MAX_SECONDS))
    if info.duration < minimum:
        raise VideoRejected(
            _("The video is too short (%(duration)s). It must last at least %(minimum)s.")
            % {"duration": _human_duration(info.duration), "minimum": _human_duration(minimum)}
        )
    if info.duration > maximum:
        raise VideoRejected(
            _("The video is too long (%(duration)s). It may last at most %(maximum)s.")
            % {"duration": _human_duration(info.duration), "maximum": _human_duration(maximum)}
        )
    _check_complete(path, info, data)
    return info


# ---------------------------------------------------------------------------------------------
# Transcoding


def ladder_for(source_height: int) -> list[Rung]:
    """The rungs for a source whose short side is source_height: never scaled up."""
    rungs = [rung for rung in LADDER if rung.height <= source_height]
    if rungs:
        return rungs
    lowest = LADDER[0]
    height = max(2, int(source_height) // 2 * 2)
    bitrate = max(64_000, round(lowest.video_bitrate * (height / lowest.height) ** 2, -3))
    return [Rung(f"{height}p", height, int(bitrate))]


def _fallback_index(rungs: list[Rung]) -> int:
    small = [i for i, rung in enumerate(rungs) if rung.height <= FALLBACK_MAX_HEIGHT]
    return small[-1] if small else 0


def _poster_time(duration: float) -> float:
    return round(max(duration * 0.10, min(1.0, duration / 2)), 3)


def _output_frame_rate(rate: float) -> tuple[float, int]:
    """Frame rate to encode at and the divisor applied: 50/60 fps phones are halved."""
    maximum = float(_setting("LUNXUN_VIDEO_MAX_FPS", DEFAULT_MAX_FPS))
    divisor = 1
    while rate and rate / divisor > maximum * 1.05:
        divisor += 1
    return (rate / divisor if rate else 0.0), divisor


def _scaled(stream, short_side: int, portrait: bool, pix_fmt="yuv420p", flags=SCALE_FLAGS):
    """Scale so the short side is short_side, keeping the displayed aspect (also of anamorphic
    sources), with even sizes, square pixels and 8-bit 4:2:0 (10-bit HEVC from phones too)."""
    if portrait:
        stream = stream.filter("scale", w=short_side, h="trunc(ow/dar/2)*2", flags=flags)
    else:
        stream = stream.filter("scale", w="trunc(oh*dar/2)*2", h=short_side, flags=flags)
    return stream.filter("format", pix_fmt).filter("setsar", "1")


_TEE_OPTION_SPECIAL = "\\':[]|"
_TEE_SLAVE_SPECIAL = "\\'|"


def _tee_escape(value: str, special: str) -> str:
    return "".join("\\" + ch if ch in special else ch for ch in str(value))


def _tee_slave(options: list[tuple[str, str]], target: str) -> str:
    """One slave of the tee muxer. Values are unescaped twice by ffmpeg: once when the tee
    target is split on "|", once when the slave's [key=value:...] options are parsed."""
    inner = ":".join(f"{key}={_tee_escape(value, _TEE_OPTION_SPECIAL)}" for key, value in options)
    return _tee_escape(f"[{inner}]{target}", _TEE_SLAVE_SPECIAL)


def build_command(
    source_path, out_dir, probe: ProbeResult, *, encoding: Encoding | None = None
) -> list[str]:
    """The ffmpeg argv for the whole job, built with ffmpeg-python. ``encoding`` defaults to
    the settings' (TUNED_ENCODING unless LUNXUN_FFMPEG_PRESET says otherwise)."""
    info = probe
    encoding = encoding if encoding is not None else _encoding()
    source_path = os.path.abspath(source_path)
    out = os.path.abspath(out_dir)
    if "%" in out:  # the hls muxer expands %v and %d patterns in its file names
        raise ValueError(f"out_dir may not contain '%': {out}")
    portrait = info.height > info.width
    rungs = ladder_for(min(info.width, info.height))
    threads = _threads()
    rate, divisor = _output_frame_rate(info.frame_rate)

    source = ffmpeg.input(
        source_path, protocol_whitelist="file", format_whitelist=FORMAT_WHITELIST, threads=threads
    )
    video = source[str(info.video_stream)]
    if info.interlaced:
        video = video.filter("yadif", deint="interlaced")
    if divisor > 1:
        video = video.filter("fps", fps=f"source_fps/{divisor}")
    pictures = video.filter_multi_output("split")

    if info.has_audio:
        sound = source[str(info.audio_stream)]
    else:
        sound = ffmpeg.input(
            f"anullsrc=channel_layout=stereo:sample_rate={AUDIO_SAMPLE_RATE}",
            format="lavfi",
            t=f"{info.duration:.3f}",
            protocol_whitelist="file",
        )["a"]
    sound = sound.filter("aresample", AUDIO_SAMPLE_RATE, **{"async": 1, "first_pts": 0})
    sounds = sound.filter(
        "aformat", sample_fmts="fltp", channel_layouts="stereo"
    ).filter_multi_output("asplit")

    streams = []
    options = {}
    stream_map = []
    for i, rung in enumerate(rungs):
        scaled = _scaled(pictures.stream(i), rung.height, portrait, flags=encoding.scale_flags)
        streams += [scaled, sounds.stream(i)]
        options[f"b:v:{i}"] = rung.video_bitrate
        options[f"maxrate:v:{i}"] = round(rung.video_bitrate * 1.07)
        options[f"bufsize:v:{i}"] = round(rung.video_bitrate * 1.5)
        options[f"b:a:{i}"] = RUNG_AUDIO_BITRATE
        stream_map.append(f"v:{i},a:{i},name:{rung.name}")
    streams.append(sounds.stream(len(rungs)).filter("aformat", channel_layouts="mono"))
    options[f"b:a:{len(rungs)}"] = AUDIO_ONLY_BITRATE
    stream_map.append(f"a:{len(rungs)},name:{AUDIO_NAME}")
    if rate:
        gop = max(1, round(KEYFRAME_SECONDS * rate))
        options.update(g=gop, keyint_min=gop)
    x264 = [encoding.for_rung(rung) for rung in rungs]
    if len(set(x264)) == 1:  # one setting for all: plain -preset, as an operator would write
        options["preset"] = x264[0].preset
        if x264[0].params:
            options["x264-params"] = x264[0].params
    else:
        for i, chosen in enumerate(x264):
            options[f"preset:v:{i}"] = chosen.preset
            if chosen.params:
                options[f"x264-params:v:{i}"] = chosen.params

    hls = _tee_slave(
        [
            ("f", "hls"),
            ("hls_time", str(SEGMENT_SECONDS)),
            ("hls_playlist_type", "vod"),
            ("hls_flags", "independent_segments"),
            ("hls_segment_type", "mpegts"),
            ("hls_segment_filename", f"{out}/%v/{SEGMENT_PATTERN}"),
            ("master_pl_name", MASTER_NAME),
            ("var_stream_map", " ".join(stream_map)),
        ],
        f"{out}/%v/{PLAYLIST_NAME}",
    )
    fallback = _fallback_index(rungs)
    mp4 = _tee_slave(
        [("f", "mp4"), ("movflags", "+faststart"), ("select", f"v:{fallback},a:{fallback}")],
        f"{out}/{FALLBACK_NAME}",
    )
    main = ffmpeg.output(
        *streams,
        f"{hls}|{mp4}",
        format="tee",
        **{
            "c:v": "libx264",
            "sc_threshold": 0,
            "force_key_frames": f"expr:gte(t,n_forced*{KEYFRAME_SECONDS})",
            "c:a": "aac",
            "threads": threads,
            # Codec parameters in the stream headers: the MP4 needs them, and hls reads its
            # CODECS attribute from them (TS segments still carry SPS/PPS at each keyframe).
            "flags": "+global_header",
            "max_muxing_queue_size": 4096,
            **options,
        },
    )

    poster_height = min(POSTER_MAX_HEIGHT, min(info.width, info.height)) // 2 * 2
    poster = (
        pictures.stream(len(rungs))
        .filter("trim", start=_poster_time(info.duration))
        .filter("trim", end_frame=1)
    )
    poster = _scaled(poster, poster_height, portrait, "yuvj420p", "bicubic")  # JPEG: full range
    still = ffmpeg.output(
        poster, f"{out}/{POSTER_NAME}", format="image2", update=1, **{"frames:v": 1, "q:v": 3}
    )
    return (
        ffmpeg.merge_outputs(main, still)
        .global_args(
            "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-progress", "pipe:1"
        )
        .compile(cmd=_ffmpeg_bin(), overwrite_output=True)
    )


def _output_names(rungs) -> list[str]:
    dirs = {rung.name for rung in LADDER} | {rung.name for rung in rungs} | {AUDIO_NAME}
    return [MASTER_NAME, FALLBACK_NAME, POSTER_NAME, *sorted(dirs)]


def _remove_outputs(out: Path, rungs) -> None:
    for name in _output_names(rungs):
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


def _tail(stream, limit: int = 4000) -> str:
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(max(0, size - limit))
    return stream.read().decode("utf-8", "replace").strip()


def _grab_poster(video_path: Path, poster_path: Path) -> None:
    """The poster from the first frame of the fallback, if the main run wrote none."""
    argv = (
        ffmpeg.input(str(video_path), protocol_whitelist="file", format_whitelist="mov")
        .output(str(poster_path), format="image2", update=1, **{"frames:v": 1, "q:v": 3})
        .global_args("-hide_banner", "-nostdin", "-nostats", "-loglevel", "error")
        .compile(cmd=_ffmpeg_bin(), overwrite_output=True)
    )
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    if done.returncode != 0:
        raise TranscodeError(
            "ffmpeg could not extract the poster",
            done.stderr.decode("utf-8", "replace")[-4000:],
            done.returncode,
        )


def _run_ffmpeg(argv: list[str], duration: float, on_progress) -> None:
    last = 0.0
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
        )
        try:
            for raw in process.stdout:
                key, _sep, value = raw.decode("ascii", "replace").strip().partition("=")
                if key != "out_time_us" or on_progress is None or duration <= 0:
                    continue
                try:
                    fraction = min(0.99, max(0.0, int(value) / 1e6 / duration))
                except ValueError:  # "N/A" before the first frame
                    continue
                if fraction > last:
                    last = fraction
                    on_progress(fraction)
            returncode = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            process.stdout.close()
        if returncode != 0:
            raise TranscodeError(f"ffmpeg failed (exit {returncode})", _tail(errors), returncode)


def transcode(
    source_path,
    out_dir,
    *,
    probe: ProbeResult | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> TranscodeResult:
    """Write the HLS ladder, audio-only variant, MP4 fallback and poster into out_dir."""
    info = probe if probe is not None else _inspect(source_path)[0]
    out = Path(out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    rungs = ladder_for(min(info.width, info.height))
    _remove_outputs(out, rungs)  # left over from an earlier run
    result = TranscodeResult(
        master_playlist=MASTER_NAME,
        rungs=rungs,
        variant_playlists=[f"{rung.name}/{PLAYLIST_NAME}" for rung in rungs],
        audio_playlist=f"{AUDIO_NAME}/{PLAYLIST_NAME}",
        mp4_fallback=FALLBACK_NAME,
        poster=POSTER_NAME,
        duration=info.duration,
    )
    try:
        _run_ffmpeg(build_command(source_path, out, info), info.duration, on_progress)
        expected = [
            result.master_playlist,
            *result.variant_playlists,
            result.audio_playlist,
            result.mp4_fallback,
        ]
        missing = [name for name in expected if not (out / name).is_file()]
        if missing:
            raise TranscodeError("ffmpeg finished without writing " + ", ".join(missing))
        poster = out / POSTER_NAME
        if not poster.is_file() or poster.stat().st_size == 0:
            _grab_poster(out / FALLBACK_NAME, poster)
        try:
            written = _ffprobe(out / FALLBACK_NAME, "-show_entries", "format=duration")
        except VideoRejected as error:
            raise TranscodeError("ffmpeg wrote an MP4 fallback that cannot be read") from error
        result.duration = _number((written.get("format") or {}).get("duration")) or info.duration
    except BaseException:
        _remove_outputs(out, rungs)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    if on_progress is not None:
        on_progress(1.0)
    return result

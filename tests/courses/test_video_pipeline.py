"""The video pipeline against real ffmpeg: uploads refused or accepted, and what a transcode
writes, read back with ffprobe. No database, no mocks.

Clips are generated once per session (testsrc2 + sine through lavfi); each is transcoded once
and the outputs are shared by the tests that inspect them.
"""

import json
import math
import re
import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from django.utils import translation

from courses import video
from courses.video import LADDER, ProbeResult, Rung, TranscodeError, VideoRejected

from .clips import ffmpeg_run, make_clip

# -------------------------------------------------------------------------------------------
# Helpers


def ffprobe(path, *args) -> dict:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-protocol_whitelist", "file", *args, "-of", "json", str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def streams(path, kind=None) -> list[dict]:
    found = ffprobe(path, "-show_streams")["streams"]
    return [s for s in found if kind is None or s["codec_type"] == kind]


def rotate_mp4_90(path):
    """Write a 90° display matrix into the first track's tkhd, as a phone held upright does."""
    data = bytearray(Path(path).read_bytes())
    at = data.find(b"tkhd")
    version = data[at + 4]
    times = 8 + 8 + 4 + 4 + 8 if version == 1 else 4 + 4 + 4 + 4 + 4
    matrix = at + 4 + 4 + times + 8 + 2 + 2 + 2 + 2
    struct.pack_into(">9i", data, matrix, 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    Path(path).write_bytes(data)


def require_encoder(name):
    listing = ffmpeg_run("-encoders").stdout
    assert re.search(rf"\s{re.escape(name)}\s", listing), (
        f"this ffmpeg has no {name} encoder; the pipeline must be tested with it"
    )


def rejection(path, name, size=None) -> str:
    with translation.override("en"), pytest.raises(VideoRejected) as caught:
        video.validate_upload(path, name, size)
    message = str(caught.value)
    assert message and "ffprobe" not in message and "Traceback" not in message
    return message


def extinf(playlist: Path) -> list[float]:
    return [float(x) for x in re.findall(r"^#EXTINF:([0-9.]+),", playlist.read_text(), re.M)]


def stream_infs(master: Path) -> list[tuple[dict, str]]:
    lines = master.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1]))
            attrs = {k: v.strip('"') for k, v in attrs.items()}
            found.append((attrs, lines[i + 1].strip()))
    return found


# -------------------------------------------------------------------------------------------
# Sources


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    return tmp_path_factory.mktemp("video-sources")


@pytest.fixture(scope="session")
def src_640(media):
    return make_clip(media / "talk-640.mp4", size="640x360", seconds=8)


@pytest.fixture(scope="session")
def src_720(media):
    # 50 fps, as phones record: encoded at 25 fps.
    return make_clip(media / "talk-720.mp4", size="1280x720", rate=50, seconds=7)


@pytest.fixture(scope="session")
def src_180_silent(media):
    return make_clip(media / "small-silent.mp4", size="320x180", seconds=4, audio=False)


@pytest.fixture(scope="session")
def src_hevc_portrait(media):
    """HEVC Main 10 from a phone held upright: stored 640x360 with a 90° display matrix."""
    require_encoder("libx265")
    path = make_clip(
        media / "phone.mp4",
        size="640x360",
        seconds=5,
        video_args=(
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-tag:v",
            "hvc1",
            "-pix_fmt",
            "yuv420p10le",
        ),
    )
    rotate_mp4_90(path)
    return path


@pytest.fixture(scope="session")
def src_dvd(media):
    """A DVD-style MPEG-2 programme stream: 720x576 anamorphic 16:9, interlaced, MP2 sound."""
    return make_clip(
        media / "lecture.mpg",
        size="720x576",
        rate=25,
        seconds=3,
        video_args=("-c:v", "mpeg2video", "-b:v", "4M", "-flags", "+ilme+ildct", "-top", "1"),
        audio_args=("-c:a", "mp2"),
        extra=("-aspect", "16:9", "-f", "vob"),
    )


# -------------------------------------------------------------------------------------------
# Transcoded jobs, one per source


@dataclass
class Job:
    source: Path
    info: ProbeResult
    out: Path
    result: video.TranscodeResult
    progress: list
    sizes: list  # expected (width, height) of each rung, in ladder order
    frame_rate: str


JOBS = {
    "640x360": ("src_640", [(416, 234), (640, 360)], "30/1"),
    "1280x720@50": ("src_720", [(416, 234), (640, 360), (960, 540), (1280, 720)], "25/1"),
    "320x180-silent": ("src_180_silent", [(320, 180)], "30/1"),
    "hevc-portrait": ("src_hevc_portrait", [(234, 416), (360, 640)], "30/1"),
    "dvd-anamorphic-interlaced": ("src_dvd", [(416, 234), (640, 360), (960, 540)], "25/1"),
}


@pytest.fixture(scope="session", params=list(JOBS))
def job(request, tmp_path_factory):
    fixture, sizes, frame_rate = JOBS[request.param]
    source = request.getfixturevalue(fixture)
    info = video.validate_upload(source, source.name)
    out = tmp_path_factory.mktemp("hls") / "out"
    progress = []
    result = video.transcode(source, out, on_progress=progress.append)
    return Job(source, info, out, result, progress, sizes, frame_rate)


def test_probe_reads_the_source(src_640):
    info = video.probe(src_640)
    assert info.duration == pytest.approx(8, abs=0.1)
    assert (info.width, info.height) == (640, 360)
    assert info.video_codec == "h264"
    assert info.has_audio is True
    assert "mp4" in info.format_name
    assert info.frame_rate == pytest.approx(30)


def test_probe_applies_phone_rotation_and_reads_hevc(src_hevc_portrait):
    (stored,) = streams(src_hevc_portrait, "video")
    assert (stored["width"], stored["height"], stored["pix_fmt"]) == (640, 360, "yuv420p10le")
    info = video.probe(src_hevc_portrait)
    assert info.video_codec == "hevc"
    assert (info.width, info.height) == (360, 640)


def test_probe_without_audio(src_180_silent):
    info = video.probe(src_180_silent)
    assert info.has_audio is False
    assert info.audio_stream is None


def test_outputs_are_where_the_result_says(job):
    r = job.result
    assert r.master_playlist == "master.m3u8"
    assert r.audio_playlist == "audio/index.m3u8"
    assert r.mp4_fallback == "fallback.mp4"
    assert r.poster == "poster.jpg"
    assert r.variant_playlists == [f"{rung.name}/index.m3u8" for rung in r.rungs]
    for name in [r.master_playlist, *r.variant_playlists, r.audio_playlist, r.mp4_fallback]:
        assert not Path(name).is_absolute()
        assert (job.out / name).is_file(), name
    assert r.duration == pytest.approx(job.info.duration, abs=0.25)


def test_rungs_never_exceed_the_source(job):
    short_side = min(job.info.width, job.info.height)
    heights = [rung.height for rung in job.result.rungs]
    assert heights == [min(w, h) for w, h in job.sizes]
    assert all(h <= short_side for h in heights)
    assert [rung.name for rung in job.result.rungs] == [f"{h}p" for h in heights]


def test_variants_are_h264_yuv420p_with_audio_at_the_rung_size(job):
    for rung, playlist, (width, height) in zip(
        job.result.rungs, job.result.variant_playlists, job.sizes, strict=True
    ):
        found = streams(job.out / playlist)
        pictures = [s for s in found if s["codec_type"] == "video"]
        sounds = [s for s in found if s["codec_type"] == "audio"]
        assert len(pictures) == 1 and len(sounds) == 1, rung
        picture, sound = pictures[0], sounds[0]
        assert (picture["width"], picture["height"]) == (width, height), rung
        assert picture["width"] % 2 == 0 and picture["height"] % 2 == 0
        assert picture["codec_name"] == "h264"
        assert picture["pix_fmt"] == "yuv420p"
        assert picture.get("sample_aspect_ratio", "1:1") in ("1:1", "0:1")
        assert picture["avg_frame_rate"] == job.frame_rate
        assert sound["codec_name"] == "aac"


def test_keyframes_every_two_seconds_exactly(job):
    for playlist in job.result.variant_playlists:
        packets = ffprobe(
            job.out / playlist, "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags"
        )["packets"]
        keys = [float(p["pts_time"]) for p in packets if "K" in p["flags"]]
        first = float(packets[0]["pts_time"])
        assert keys[0] == pytest.approx(first)
        relative = [t - keys[0] for t in keys]
        assert relative == pytest.approx([2.0 * i for i in range(len(keys))], abs=0.002), playlist
        assert 2 * (len(keys) - 1) <= job.info.duration < 2 * len(keys) + 0.1


def test_segments_are_six_seconds_in_vod_playlists(job):
    for playlist in [*job.result.variant_playlists, job.result.audio_playlist]:
        path = job.out / playlist
        text = path.read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text
        assert text.rstrip().endswith("#EXT-X-ENDLIST")
        durations = extinf(path)
        assert durations and all(d <= 6.05 for d in durations), (playlist, durations)
        assert all(d == pytest.approx(6, abs=0.05) for d in durations[:-1])
        assert sum(durations) == pytest.approx(job.info.duration, abs=0.25)
        segments = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert all((path.parent / s).is_file() for s in segments)


def test_master_lists_every_rung_and_an_audio_only_variant(job):
    variants = stream_infs(job.out / job.result.master_playlist)
    by_uri = {uri: attrs for attrs, uri in variants}
    assert set(by_uri) == {*job.result.variant_playlists, job.result.audio_playlist}
    for rung, playlist, (width, height) in zip(
        job.result.rungs, job.result.variant_playlists, job.sizes, strict=True
    ):
        attrs = by_uri[playlist]
        assert attrs["RESOLUTION"] == f"{width}x{height}"
        assert attrs["CODECS"].startswith("avc1.") and "mp4a.40.2" in attrs["CODECS"]
        muxed = rung.video_bitrate + 64_000  # video + the rung's AAC
        assert muxed <= int(attrs["BANDWIDTH"]) <= muxed * 1.2
    audio = by_uri[job.result.audio_playlist]
    assert "RESOLUTION" not in audio
    assert audio["CODECS"] == "mp4a.40.2"
    assert 40_000 <= int(audio["BANDWIDTH"]) <= 64_000


def test_audio_rendition_is_sound_only(job):
    found = streams(job.out / job.result.audio_playlist)
    assert [s["codec_type"] for s in found] == ["audio"]
    assert found[0]["codec_name"] == "aac"
    assert found[0]["channels"] == 1
    assert sum(extinf(job.out / job.result.audio_playlist)) == pytest.approx(
        job.info.duration, abs=0.25
    )


def test_mp4_fallback_plays(job):
    path = job.out / job.result.mp4_fallback
    info = ffprobe(path, "-show_format", "-show_streams")
    kinds = {s["codec_type"]: s for s in info["streams"]}
    assert kinds["video"]["codec_name"] == "h264"
    assert kinds["audio"]["codec_name"] == "aac"
    expected = [size for size in job.sizes if min(size) <= 360][-1]
    assert (kinds["video"]["width"], kinds["video"]["height"]) == expected
    assert float(info["format"]["duration"]) == pytest.approx(job.info.duration, abs=0.25)
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "not +faststart"
    decoded = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    assert decoded.returncode == 0 and not decoded.stderr.strip(), decoded.stderr


def test_poster_is_a_jpeg(job):
    path = job.out / job.result.poster
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    (picture,) = streams(path, "video")
    assert picture["codec_name"] == "mjpeg"
    width, height = job.sizes[-1]
    short = min(720, min(job.info.width, job.info.height))
    assert min(picture["width"], picture["height"]) == short
    assert (picture["width"] > picture["height"]) == (width > height)


def test_progress_goes_up_to_one(job):
    progress = job.progress
    assert len(progress) >= 2
    assert all(0 <= p <= 1 for p in progress)
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    assert progress.count(1.0) == 1


def test_a_silent_source_still_gets_sound_everywhere(tmp_path, src_180_silent):
    result = video.transcode(src_180_silent, tmp_path / "out")
    for playlist in [*result.variant_playlists, result.audio_playlist, result.mp4_fallback]:
        (sound,) = streams(tmp_path / "out" / playlist, "audio")
        assert sound["codec_name"] == "aac"
    assert sum(extinf(tmp_path / "out" / result.audio_playlist)) == pytest.approx(4, abs=0.25)


def test_awkward_paths(tmp_path, src_180_silent):
    """Quotes, brackets, colons, pipes and spaces survive the tee muxer's escaping."""
    source = tmp_path / "it's [a] b:c.mp4"
    shutil.copy(src_180_silent, source)
    out = tmp_path / "课程 it's [x]|y:z" / "hls"
    result = video.transcode(source, out)
    assert (out / result.master_playlist).is_file()
    assert (out / result.mp4_fallback).is_file()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["180p", "audio", "fallback.mp4", "master.m3u8", "poster.jpg"]
    )
    with pytest.raises(ValueError):
        video.build_command(source, tmp_path / "100%", video.probe(source))


def test_poster_can_be_grabbed_from_the_fallback(tmp_path, job):
    poster = tmp_path / "again.jpg"
    video._grab_poster(job.out / job.result.mp4_fallback, poster)
    assert poster.read_bytes()[:3] == b"\xff\xd8\xff"


# -------------------------------------------------------------------------------------------
# Every accepted container goes through


CONTAINERS = {
    "mp4": (),
    "m4v": ("-f", "mp4"),
    "mov": (),
    "3gp": (),
    "ts": (),
    "mkv": (),
    "webm": (
        "-c:v",
        "libvpx",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "300k",
        "-c:a",
        "libvorbis",
    ),
    "avi": ("-c:v", "mpeg4", "-c:a", "libmp3lame"),
    "flv": ("-c:v", "flv", "-c:a", "libmp3lame", "-ar", "44100"),
    "wmv": ("-c:v", "wmv2", "-c:a", "wmav2", "-f", "asf"),
    "mpg": ("-c:v", "mpeg2video", "-c:a", "mp2", "-f", "vob"),
    "mpeg": ("-c:v", "mpeg1video", "-c:a", "mp2", "-f", "mpeg"),
}


@pytest.mark.parametrize("extension", CONTAINERS)
def test_each_accepted_container_is_validated_and_transcoded(tmp_path, extension):
    source = make_clip(
        tmp_path / f"clip.{extension}",
        size="256x144",
        rate=25,
        seconds=3,
        sample_rate=44100,
        extra=CONTAINERS[extension],
    )
    info = video.validate_upload(source, f"讲座录像.{extension.upper()}")
    assert info.duration == pytest.approx(3, abs=0.15)
    assert (info.width, info.height) == (256, 144)
    result = video.transcode(source, tmp_path / "out", probe=info)
    assert [rung.height for rung in result.rungs] == [144]
    assert result.duration == pytest.approx(3, abs=0.25)
    assert (tmp_path / "out" / result.master_playlist).is_file()


# -------------------------------------------------------------------------------------------
# Uploads refused


@pytest.fixture
def passwd_playlist(tmp_path):
    path = tmp_path / "list.mp4"
    path.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n")
    return path


@pytest.fixture
def listener():
    """A local TCP server that must never be contacted."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    yield server
    server.close()


def assert_never_contacted(server):
    with pytest.raises(BlockingIOError):
        server.accept()


def test_text_renamed_mp4_is_refused(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("Minutes of the branch meeting.\nNot a video at all.\n" * 20)
    assert "text document" in rejection(path, "notes.mp4")


def test_chinese_text_in_gbk_is_refused(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_bytes(("学习贯彻会议精神，这不是视频。\n" * 50).encode("gbk"))
    assert "text document" in rejection(path, "notes.mp4")


@pytest.mark.parametrize(
    "content",
    [
        '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>',
        "<!DOCTYPE html><html><body><video src=x></video></body></html>",
        "\ufeff\n  <html><script>alert(1)</script></html>",
    ],
    ids=["svg-xml", "svg", "html", "html-bom"],
)
def test_markup_is_refused_before_ffprobe(tmp_path, content):
    path = tmp_path / "clip.mp4"
    path.write_text(content, encoding="utf-8")
    assert "web page" in rejection(path, "clip.mp4")


def test_truncated_mp4_is_refused(tmp_path, src_640):
    data = src_640.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) * 3 // 10])
    assert "could not be read as a video" in rejection(path, "cut.mp4")


def test_truncated_faststart_mp4_is_refused(tmp_path, src_640):
    """With its index first, a cut MP4 still announces its full length: read the end."""
    whole = tmp_path / "whole.mp4"
    ffmpeg_run("-i", src_640, "-c", "copy", "-movflags", "+faststart", whole)
    video.validate_upload(whole, "whole.mp4")
    data = whole.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) * 3 // 10])
    assert "incomplete" in rejection(path, "cut.mp4")


@pytest.mark.parametrize("image", ["png", "jpg"])
def test_pictures_are_refused(tmp_path, image):
    picture = tmp_path / f"photo.{image}"
    ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=320x180", "-frames:v", "1", picture)
    path = tmp_path / "photo.mp4"
    path.write_bytes(picture.read_bytes())
    assert "picture, not a video" in rejection(path, "photo.mp4")


def test_playlist_pointing_at_a_local_file_is_refused(passwd_playlist):
    message = rejection(passwd_playlist, "list.mp4")
    assert "playlist" in message
    assert "root" not in message


def test_playlist_pointing_at_a_url_is_refused(tmp_path, listener):
    port = listener.getsockname()[1]
    for url in ["http://127.0.0.1:9/x.ts", f"http://127.0.0.1:{port}/x.ts"]:
        path = tmp_path / "list.mp4"
        path.write_text(f"\ufeff\n#EXTM3U\n#EXTINF:10,\n{url}\n#EXT-X-ENDLIST\n")
        assert "playlist" in rejection(path, "list.mp4")
    assert_never_contacted(listener)


def test_playlist_extension_is_refused(passwd_playlist):
    assert "not accepted" in rejection(passwd_playlist, "list.m3u8")


def test_ffprobe_itself_refuses_playlists(tmp_path, passwd_playlist, listener):
    """Second line of defence: even unsniffed, ffprobe opens no playlist, file or URL."""
    port = listener.getsockname()[1]
    remote = tmp_path / "remote.mp4"
    remote.write_text(f"#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1:{port}/x.ts\n#EXT-X-ENDLIST\n")
    concat = tmp_path / "concat.mp4"
    concat.write_text("ffconcat version 1.0\nfile '/etc/passwd'\n")
    for path in [passwd_playlist, remote, concat]:
        with pytest.raises(VideoRejected):
            video._ffprobe(path, "-show_format", "-show_streams")
    assert_never_contacted(listener)


@pytest.mark.parametrize("name", ["clip.exe", "clip.svg", "clip.html", "clip.gif", "clip.mp3"])
def test_disallowed_extension_is_refused(src_640, name):
    message = rejection(src_640, name)
    assert "not accepted" in message and "mp4" in message


def test_name_without_extension_is_refused(src_640):
    for name in ["clip", "clip.", ".mp4"]:
        assert "no extension" in rejection(src_640, name)


def test_extensions_come_from_settings(settings, src_640):
    settings.LUNXUN_VIDEO_EXTENSIONS = ["mov"]
    assert "not accepted" in rejection(src_640, "clip.mp4")
    assert video.validate_upload(src_640, "clip.MOV").video_codec == "h264"


def test_too_large_is_refused(settings, src_640):
    settings.LUNXUN_VIDEO_MAX_BYTES = 1000
    assert "too large" in rejection(src_640, "clip.mp4")


def test_announced_size_counts_too(src_640):
    assert "too large" in rejection(src_640, "clip.mp4", size=5 * 1024**3)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    assert "empty" in rejection(path, "empty.mp4")


def test_too_short_is_refused(tmp_path):
    path = make_clip(tmp_path / "blink.mp4", seconds=0.5, size="160x90")
    assert "too short" in rejection(path, "blink.mp4")


def test_too_long_is_refused(settings, src_640):
    settings.LUNXUN_VIDEO_MAX_SECONDS = 5
    message = rejection(src_640, "clip.mp4")
    assert "too long" in message and "5 seconds" in message


def test_sound_only_is_refused(tmp_path):
    path = tmp_path / "sound.mp4"
    ffmpeg_run("-f", "lavfi", "-i", "sine=d=3", "-c:a", "aac", path)
    assert "no moving picture" in rejection(path, "sound.mp4")


def test_sound_with_cover_art_is_refused(tmp_path):
    cover = tmp_path / "cover.png"
    ffmpeg_run("-f", "lavfi", "-i", "testsrc2=size=320x180", "-frames:v", "1", cover)
    path = tmp_path / "song.mp4"
    ffmpeg_run(
        "-f", "lavfi", "-i", "sine=d=3", "-i", cover, "-map", "0", "-map", "1",
        "-c:a", "aac", "-c:v", "png", "-disposition:v", "attached_pic", path,
    )  # fmt: skip
    assert "no moving picture" in rejection(path, "song.mp4")


# -------------------------------------------------------------------------------------------
# The ladder and the command


def test_ladder():
    assert [(r.name, r.height, r.video_bitrate) for r in LADDER] == [
        ("234p", 234, 200_000),
        ("360p", 360, 600_000),
        ("540p", 540, 1_300_000),
        ("720p", 720, 2_500_000),
    ]
    assert video.ladder_for(2160) == list(LADDER)
    assert video.ladder_for(720) == list(LADDER)
    assert [r.height for r in video.ladder_for(719)] == [234, 360, 540]
    assert [r.height for r in video.ladder_for(360)] == [234, 360]
    assert [r.height for r in video.ladder_for(234)] == [234]
    (small,) = video.ladder_for(180)
    assert (small.name, small.height) == ("180p", 180)
    assert small.video_bitrate <= 200_000
    assert [r.height for r in video.ladder_for(179)] == [178]
    assert isinstance(small, Rung)


def test_command_decodes_once_with_safe_flags(tmp_path, src_640):
    argv = video.build_command(src_640, tmp_path / "out", video.probe(src_640))
    assert argv[0] == "ffmpeg"
    assert argv.count("-i") == 1
    at = argv.index("-i")
    assert argv[argv.index("-protocol_whitelist") + 1] == "file"
    assert argv.index("-protocol_whitelist") < at
    for flag in ["-nostdin", "-hide_banner", "-y", "-nostats", "-filter_complex"]:
        assert flag in argv
    assert argv[argv.index("-progress") + 1] == "pipe:1"
    assert argv[argv.index("-force_key_frames") + 1] == "expr:gte(t,n_forced*2)"
    assert argv[argv.index("-sc_threshold") + 1] == "0"
    assert argv[argv.index("-g") + 1] == "60"
    assert "-preset:v:0" in argv  # per rung: tests/courses/test_video_encoding.py
    assert argv[argv.index("-threads") + 1] == "2"
    graph = argv[argv.index("-filter_complex") + 1]
    assert "split=3" in graph  # two rungs and the poster
    tee = argv[argv.index("tee") + 2 :]
    assert any("hls_time=6" in a and "hls_playlist_type=vod" in a for a in tee)


def test_command_for_a_silent_source_adds_silence(tmp_path, src_180_silent):
    argv = video.build_command(src_180_silent, tmp_path / "out", video.probe(src_180_silent))
    inputs = [argv[i + 1] for i, a in enumerate(argv) if a == "-i"]
    assert len(inputs) == 2 and any(i.startswith("anullsrc") for i in inputs)
    assert argv.count("-protocol_whitelist") == 2


def test_command_reads_settings(settings, tmp_path, src_640):
    settings.LUNXUN_FFMPEG = shutil.which("ffmpeg")
    settings.LUNXUN_FFMPEG_PRESET = "faster"
    settings.LUNXUN_FFMPEG_THREADS = 1
    argv = video.build_command(src_640, tmp_path / "out", video.probe(src_640))
    assert argv[0] == shutil.which("ffmpeg")
    assert argv[argv.index("-preset") + 1] == "faster"
    assert argv[argv.index("-threads") + 1] == "1"


# -------------------------------------------------------------------------------------------
# Failures


def test_failure_raises_with_stderr_and_cleans_up(settings, tmp_path, src_640):
    out = tmp_path / "out"
    (out / "720p").mkdir(parents=True)
    (out / "720p" / "seg_00000.ts").write_bytes(b"stale")
    (out / "master.m3u8").write_text("#EXTM3U\n")
    (out / "keep.txt").write_text("not ours")
    settings.LUNXUN_FFMPEG_PRESET = "no-such-preset"
    with pytest.raises(TranscodeError) as caught:
        video.transcode(src_640, out)
    assert "preset" in str(caught.value).lower()
    assert caught.value.returncode != 0
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_failure_removes_an_out_dir_it_created(tmp_path, src_640):
    info = replace(video.probe(src_640), video_stream=7)
    out = tmp_path / "new" / "out"
    with pytest.raises(TranscodeError) as caught:
        video.transcode(src_640, out, probe=info)
    assert caught.value.stderr_tail
    assert not out.exists()


def test_an_interrupted_transcode_stops_ffmpeg_and_cleans_up(tmp_path, src_720):
    out = tmp_path / "out"

    def stop(fraction):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        video.transcode(src_720, out, on_progress=stop)
    assert not out.exists()


def test_messages_are_translatable():
    with translation.override("en"):
        assert "seconds" in video._human_duration(5)
        assert video._human_duration(1) == "1 second"
        assert video._human_duration(3 * 3600 + 61) == "3:01:01"
    assert math.isclose(video._poster_time(60), 6)
    assert video._poster_time(4) == 1.0

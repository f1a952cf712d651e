"""Captions: a trainer's WebVTT or SRT file is checked, kept as WebVTT and carried in the
video's HLS master playlist as a subtitle rendition, written when the video is processed and
rewritten when captions are added, replaced or removed later, without transcoding again."""

import subprocess

import m3u8
import pytest
from auditlog.models import LogEntry
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from courses import captions
from courses.models import LessonVideo

from .clips import make_clip

VTT = "WEBVTT\n\n1\n00:00:00.500 --> 00:00:02.000\n同志们好\n\n00:02.000 --> 00:00:03.500\n第二句\n"
SRT = (
    "1\n00:00:00,500 --> 00:00:02,000\n同志们好\n\n"
    "2\n00:00:02,000 --> 00:00:03,500\n<i>第二句</i>\n"
)


def read_en(data: bytes) -> captions.Captions:
    with translation.override("en"):
        return captions.read(data)


def refusal(data: bytes) -> str:
    with translation.override("en"), pytest.raises(captions.CaptionsRejected) as error:
        captions.read(data)
    return str(error.value)


# --- Checking a caption file --------------------------------------------------------------------


def test_a_good_webvtt_file_is_kept_as_webvtt():
    result = read_en(VTT.encode())
    assert result.source_format == "vtt"
    assert result.cues == 2
    assert result.vtt.startswith("WEBVTT")
    assert "00:00:02.000 --> 00:00:03.500\n第二句" in result.vtt
    assert result.note == ""


def test_an_srt_file_is_converted_to_webvtt():
    result = read_en(SRT.replace("\n", "\r\n").encode())
    assert result.source_format == "srt"
    assert result.cues == 2
    assert result.vtt.startswith("WEBVTT\n")
    assert "00:00:00.500 --> 00:00:02.000\n同志们好" in result.vtt
    assert "," not in result.vtt.split("\n", 3)[2]  # the timing line uses WebVTT's dot


def test_utf8_with_a_byte_order_mark_is_accepted():
    result = read_en(b"\xef\xbb\xbf" + SRT.encode())
    assert result.cues == 2
    assert "\ufeff" not in result.vtt
    assert result.note == ""


def test_a_gbk_file_is_converted_and_says_so():
    result = read_en(SRT.encode("gbk"))
    assert "同志们好" in result.vtt
    assert "GBK" in result.note


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (VTT.replace("00:02.000 --> 00:00:03.500", "00:02.000 -> 00:00:03.500"), 7),
        (VTT.replace("00:00:00.500 -->", "00:00:0x.500 -->"), 4),
        (SRT.replace("00:00:02,000 --> 00:00:03,500", "00:00:02,000 - 00:00:03,500"), 6),
        (SRT.replace("00:00:00,500 --> 00:00:02,000", "00:00:03,500 --> 00:00:02,000"), 2),
        ("WEBVTT\n\n同志们好\n", 3),
    ],
)
def test_a_malformed_file_is_refused_with_its_line_number(text, line):
    message = refusal(text.encode())
    assert message.startswith(f"Line {line} of the caption file:"), message


def test_a_file_that_is_not_captions_is_refused():
    assert "not a caption file" in refusal("会议通知：明天上午九点开会。\n".encode())
    assert "no captions" in refusal(b"WEBVTT\n\nNOTE nothing here\n")
    assert "empty" in refusal(b"")


def test_a_binary_file_is_refused_as_not_text():
    assert "not a text file" in refusal(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert "not a text file" in refusal(b"WEBVTT\n\n\x01\x02\x03")


def test_a_file_in_an_unknown_encoding_is_refused():
    assert "encoding" in refusal(b"WEBVTT\n\n00:00.000 --> 00:01.000\n\x81\x20\xff\xfe\n")


def test_a_file_over_the_limit_is_refused(settings):
    settings.LUNXUN_CAPTIONS_MAX_BYTES = 100
    assert "too large" in refusal(VTT.encode() * 3)
    with translation.override("en"), pytest.raises(captions.CaptionsRejected):
        captions.check_size(101)
    captions.check_size(100)


# --- The master playlist ------------------------------------------------------------------------

MASTER = (
    "#EXTM3U\n#EXT-X-VERSION:3\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=320x180,CODECS="avc1.64000d,mp4a.40.2"\n'
    "180p/index.m3u8\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=100,CODECS="mp4a.40.2"\naudio/index.m3u8\n'
)


def subtitle_renditions(text):
    playlist = m3u8.loads(text)
    return [m for m in playlist.media if m.type == "SUBTITLES"], playlist


def test_the_master_playlist_gets_one_subtitle_rendition_on_every_variant():
    once = captions.master_with_subtitles(MASTER, "subs-a/index.m3u8")
    twice = captions.master_with_subtitles(once, "subs-b/index.m3u8")
    renditions, playlist = subtitle_renditions(twice)
    assert [(m.uri, m.group_id, m.language, m.default) for m in renditions] == [
        ("subs-b/index.m3u8", "subs", "zh", "YES")
    ]
    assert twice.count("SUBTITLES=") == 2
    for line in twice.splitlines():
        if line.startswith("#EXT-X-STREAM-INF"):
            assert 'SUBTITLES="subs"' in line
    assert [v.uri for v in playlist.playlists] == ["180p/index.m3u8", "audio/index.m3u8"]


# --- Through the admin, on a real clip ----------------------------------------------------------


@pytest.fixture
def trainer_client(city, client_for):
    return client_for(city.trainer)


def stored(name) -> str:
    with storages["video"].open(name, "rb") as handle:
        return handle.read().decode("utf-8")


def video_path(name):
    return storages["video"].path(name)


def edit(client, video, **data):
    return client.post(
        reverse("wagtailmedia:edit", args=[video.pk]),
        {"title": video.title, "collection": video.collection_id, "tags": "", **data},
    )


def assert_playable_subtitles(video, text):
    """The master playlist's subtitle rendition is a playlist ffmpeg reads as WebVTT cues
    (ffmpeg 5's HLS demuxer does not follow subtitle renditions itself, so it is opened from
    the URI the master playlist gives)."""
    (rendition,), _playlist = subtitle_renditions(stored(video.master_playlist))
    folder = video.master_playlist.rsplit("/", 1)[0]
    done = subprocess.run(
        [
            "ffmpeg", "-v", "error", "-i", video_path(f"{folder}/{rendition.uri}"),
            "-f", "webvtt", "-",
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert text in done.stdout
    assert "00:00.500 --> 00:02.000" in done.stdout


def test_captions_uploaded_with_a_video_travel_in_its_master_playlist(
    trainer_client, tmp_path, django_capture_on_commit_callbacks
):
    clip = make_clip(tmp_path / "lecture.mp4")
    with django_capture_on_commit_callbacks(execute=True):
        response = trainer_client.post(
            reverse("wagtailmedia:add", args=["video"]),
            {
                "title": "带字幕的视频",
                "file": SimpleUploadedFile(clip.name, clip.read_bytes()),
                "captions_file": SimpleUploadedFile("lecture.srt", SRT.encode("gbk")),
                "collection": 1,
            },
        )
    assert response.status_code == 302, response.content.decode()[-2000:]
    video = LessonVideo.objects.get()
    assert video.state == LessonVideo.State.READY, video.failure_reason
    assert video.captions.startswith("WEBVTT")
    prefix = video.output_prefix
    assert video.master_playlist != f"{prefix}/master.m3u8"
    renditions, playlist = subtitle_renditions(stored(video.master_playlist))
    assert len(renditions) == 1 and renditions[0].default == "YES"
    assert all(v.stream_info.subtitles == "subs" for v in playlist.playlists)
    assert len(playlist.playlists) >= 2  # the rungs and the audio-only variant
    subtitle_playlist = f"{prefix}/{renditions[0].uri}"
    assert "captions.vtt" in stored(subtitle_playlist)
    assert stored(video.captions_vtt) == video.captions
    assert "同志们好" in stored(video.captions_vtt)
    # ffmpeg's own master playlist is left as it wrote it.
    assert "SUBTITLES" not in stored(f"{prefix}/master.m3u8")
    assert_playable_subtitles(video, "同志们好")
    (entry,) = LogEntry.objects.filter(additional_data__event="video_captions_set")
    assert "GBK" in entry.additional_data["note"]


@pytest.fixture
def ready_clip(trainer_client, tmp_path, django_capture_on_commit_callbacks):
    clip = make_clip(tmp_path / "lecture.mp4")
    with django_capture_on_commit_callbacks(execute=True):
        trainer_client.post(
            reverse("wagtailmedia:add", args=["video"]),
            {
                "title": "视频",
                "file": SimpleUploadedFile(clip.name, clip.read_bytes()),
                "collection": 1,
            },
        )
    video = LessonVideo.objects.get()
    assert video.state == LessonVideo.State.READY, video.failure_reason
    assert video.master_playlist == f"{video.output_prefix}/master.m3u8"
    assert video.captions_vtt == ""
    return video


def test_captions_added_later_rewrite_the_playlist_and_can_be_replaced_and_removed(
    trainer_client, ready_clip, django_capture_on_commit_callbacks
):
    video = ready_clip
    prefix = video.output_prefix
    processed = video.processed_at
    form = trainer_client.get(reverse("wagtailmedia:edit", args=[video.pk])).content.decode()
    assert 'name="captions_file"' in form
    assert 'name="remove_captions"' not in form  # nothing to remove yet
    with django_capture_on_commit_callbacks(execute=True):
        response = edit(
            trainer_client, video, captions_file=SimpleUploadedFile("a.vtt", VTT.encode())
        )
    assert response.status_code == 302, response.content.decode()[-3000:]
    video.refresh_from_db()
    assert video.processed_at == processed  # not transcoded again
    first_master, first_vtt = video.master_playlist, video.captions_vtt
    assert subtitle_renditions(stored(first_master))[0]
    assert_playable_subtitles(video, "第二句")

    # Replaced: new names (the store may be cached for good); the old ones are deleted.
    with django_capture_on_commit_callbacks(execute=True):
        edit(trainer_client, video, captions_file=SimpleUploadedFile("b.srt", SRT.encode()))
    video.refresh_from_db()
    assert video.master_playlist not in ("", first_master)
    assert video.captions_vtt not in ("", first_vtt)
    assert "第二句" in stored(video.captions_vtt)
    assert not storages["video"].exists(first_master)
    assert not storages["video"].exists(first_vtt)

    # Removed: the master playlist without subtitles is played again.
    form = trainer_client.get(reverse("wagtailmedia:edit", args=[video.pk])).content.decode()
    assert 'name="remove_captions"' in form
    second_master, second_vtt = video.master_playlist, video.captions_vtt
    with django_capture_on_commit_callbacks(execute=True):
        edit(trainer_client, video, remove_captions="on")
    video.refresh_from_db()
    assert video.captions == ""
    assert video.captions_vtt == ""
    assert video.master_playlist == f"{prefix}/master.m3u8"
    assert subtitle_renditions(stored(video.master_playlist))[0] == []
    assert not storages["video"].exists(second_master)
    assert not storages["video"].exists(second_vtt)
    events = LogEntry.objects.filter(object_pk=str(video.pk)).values_list(
        "additional_data__event", flat=True
    )
    assert list(events.order_by("pk")).count("video_captions_set") == 2
    assert "video_captions_removed" in events


def test_a_malformed_caption_file_is_refused_and_nothing_changes(trainer_client, ready_clip):
    video = ready_clip
    bad = VTT.replace("00:00:00.500 -->", "00:00:0x.500 -->")
    response = edit(trainer_client, video, captions_file=SimpleUploadedFile("a.vtt", bad.encode()))
    assert response.status_code == 200
    assert "00:00:0x.500" in response.content.decode()
    video.refresh_from_db()
    assert video.captions == ""
    assert video.master_playlist == f"{video.output_prefix}/master.m3u8"
    assert not LogEntry.objects.filter(additional_data__event="video_captions_set").exists()

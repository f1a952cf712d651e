"""The live-lecture server for real: nginx-rtmp started from the project's configuration,
asking this Django (pytest-django's live server) about stream keys, and ffmpeg pushing a
generated source. A lecture's key goes on air as the live HLS ladder; a wrong key is refused."""

import time

import m3u8
import pytest

from courses import live, services
from courses.models import LiveStream
from courses.services import live_stream_create

from .builders import lesson
from .live_helpers import fetch, live_stack, push, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_pushing_with_the_lecture_key_makes_the_live_ladder(settings, tmp_path, live_server):
    stream = live_stream_create(lesson=lesson(title="直播党课"))
    with live_stack(settings, tmp_path, live_server.url) as server:
        base = f"http://127.0.0.1:{server.config.http_port}/live/{stream.name}"
        pusher = push(settings.LUNXUN_LIVE_RTMP_URL, stream.key, 12)
        try:
            master = wait_for("the master playlist", lambda: fetch(f"{base}/master.m3u8"))
            playlist = m3u8.loads(master)
            names = [p.uri.split("/")[0] for p in playlist.playlists]
            assert names == ["234p", "360p", "720p", "audio"]
            heights = [p.stream_info.resolution[1] for p in playlist.playlists[:3]]
            assert heights == [234, 360, 720]
            assert playlist.playlists[3].stream_info.resolution is None  # audio only

            def two_segments():
                text = fetch(f"{base}/360p/index.m3u8")
                media = m3u8.loads(text) if text else None
                return media if media and len(media.segments) >= 2 else None

            media = wait_for("two 360p segments", two_segments)
            assert media.target_duration == 2
            assert not media.is_endlist  # live: the playlist grows
            assert media.segments[0].program_date_time is not None
            segment = fetch(f"{base}/360p/{media.segments[0].uri}")
            assert segment is not None
        finally:
            pusher.kill()
            pusher.wait()
    stream.refresh_from_db()
    assert stream.started_at is not None
    assert len(stream.pushes) == 1
    # The key is nowhere a player looks: the stream was renamed to the lecture's public name.
    assert not (tmp_path / "live" / "www" / "live" / stream.key).exists()


def test_a_wrong_key_is_refused(settings, tmp_path, live_server):
    stream = live_stream_create(lesson=lesson())
    with live_stack(settings, tmp_path, live_server.url):
        pusher = push(settings.LUNXUN_LIVE_RTMP_URL, "not-the-key", 5)
        assert pusher.wait(timeout=30) != 0
        assert not list((tmp_path / "live" / "www" / "live").iterdir())
    stream.refresh_from_db()
    assert stream.state == LiveStream.State.SCHEDULED
    assert stream.pushes == []


def test_the_rendered_configuration_passes_nginx_check(settings, tmp_path):
    settings.LUNXUN_LIVE_ROOT = tmp_path / "live"
    config = live.LiveConfig.from_settings()
    live.LiveServer(config).check()
    text = (tmp_path / "live" / "nginx.conf").read_text()
    assert "record_append on;" in text
    assert live.callback_secret() in text


def test_ending_the_lecture_cuts_a_push_still_on_air(settings, tmp_path, live_server):
    stream = live_stream_create(lesson=lesson())
    with live_stack(settings, tmp_path, live_server.url) as server:
        base = f"http://127.0.0.1:{server.config.http_port}/live/{stream.name}"
        pusher = push(settings.LUNXUN_LIVE_RTMP_URL, stream.key, 60)
        try:
            wait_for("the master playlist", lambda: fetch(f"{base}/master.m3u8"))
            stream.refresh_from_db()
            started = time.monotonic()
            services.live_end(stream=stream)  # the trainer's button; nginx drops the push
            pusher.wait(timeout=30)
            assert time.monotonic() - started < 30  # long before its 60 s were pushed
        finally:
            pusher.kill()
            pusher.wait()
    stream.refresh_from_db()
    assert stream.state in LiveStream.ENDED
    # The key is refused from now on.
    with pytest.raises(services.LiveKeyRefused):
        services.live_publish_begin(key=stream.key)

"""A live lecture on the scale profile: the live-lecture server as its own process behind the
site's nginx (issue 17).

The ``stack`` fixture (conftest.py) runs ``manage.py live_server`` beside gunicorn and the RQ
worker, and nginx from deploy/nginx/lunxun.conf with its ``lunxun_live`` upstream on it. A
lecture is made on the stack's database (``manage.py shell``, as the seed is); ffmpeg pushes a
generated source with its key to the stack's RTMP port; nginx-rtmp asks this run's gunicorn
about the key; the live ladder is then fetched through the public nginx, as a player would.
A wrong key is refused.
"""

import json
import re
from urllib.parse import urljoin

import m3u8
import pytest
import requests

from tests.courses.live_helpers import push

from .helpers import wait_until

pytestmark = pytest.mark.scale

PUSH_SECONDS = 8
LADDER_SECONDS = 60

CREATE_LECTURE = """
import json
from courses.models import LessonPage
from courses.services import live_stream_create
stream = live_stream_create(lesson=LessonPage.objects.get(pk={lesson}))
print("LIVE " + json.dumps({{"id": stream.pk, "name": stream.name, "key": stream.key}}))
"""


def create_lecture(stack, lesson_id) -> dict:
    out = stack.manage(
        "shell", "-c", CREATE_LECTURE.format(lesson=int(lesson_id)), log_name="shell-live"
    )
    lines = [line for line in out.splitlines() if line.startswith("LIVE ")]
    assert len(lines) == 1, out
    return json.loads(lines[0][5:])


def public_text(url):
    """A playlist through the public nginx, or None while there is none yet."""
    answer = requests.get(url, timeout=10)
    return answer.text if answer.status_code == 200 else None


def test_a_lecture_goes_live_through_the_public_nginx(stack):
    lecture = create_lecture(stack, stack.seed["lesson"])
    assert lecture["name"] == f"lecture-{lecture['id']}"
    stack.timer.lap("live: lecture created on the stack's database")

    # A wrong key: nginx-rtmp asks gunicorn, which refuses it, and the push is dropped.
    wrong = push(stack.live_rtmp_url, "not-the-key", 5)
    assert wrong.wait(timeout=30) != 0, "a push with a wrong key was accepted"
    stack.live.check_alive()
    assert not list((stack.live_root / "www" / "live").iterdir())

    # The lecture's key: on air, the ladder written by the live server.
    base = f"{stack.base_url}/live/{lecture['name']}"
    pusher = push(stack.live_rtmp_url, lecture["key"], PUSH_SECONDS)
    try:

        def master_listed():
            stack.live.check_alive()
            text = public_text(f"{base}/master.m3u8")
            return m3u8.loads(text) if text and text.startswith("#EXTM3U") else None

        master = wait_until("the live master playlist", master_listed, timeout=LADDER_SECONDS)
        names = [variant.uri.split("/")[0] for variant in master.playlists]
        assert names == ["234p", "360p", "720p", "audio"], [v.uri for v in master.playlists]
        heights = [variant.stream_info.resolution[1] for variant in master.playlists[:3]]
        assert heights == [234, 360, 720]

        variant_url = urljoin(f"{base}/master.m3u8", "360p/index.m3u8")

        def a_segment():
            text = public_text(variant_url)
            media = m3u8.loads(text) if text else None
            return media if media and media.segments else None

        media = wait_until("a 360p segment", a_segment, timeout=LADDER_SECONDS)
        assert media.target_duration == 2 and not media.is_endlist
        segment = requests.get(urljoin(variant_url, media.segments[0].uri), timeout=10)
        assert segment.status_code == 200, segment.status_code
        assert len(segment.content) > 1000 and segment.content[:1] == b"\x47"
        assert pusher.wait(timeout=PUSH_SECONDS + 30) == 0, pusher.stderr.read()
    finally:
        pusher.kill()
        pusher.wait()
        pusher.stderr.close()
        wrong.stderr.close()
    stack.timer.lap(f"live: {PUSH_SECONDS} s pushed; ladder fetched through nginx")

    # Only the lecture's public name was ever on disk: the key never named a folder.
    assert [p.name for p in (stack.live_root / "www" / "live").iterdir()] == [lecture["name"]]
    # The ladder came from the live server, not gunicorn; the callbacks went straight to
    # gunicorn (with the secret both were given) and are not reachable through nginx.
    gunicorn_log = stack.gunicorn_log()
    assert f"/live/{lecture['name']}/" not in gunicorn_log
    assert len(re.findall(r"POST /live/callbacks/publish/", gunicorn_log)) == 2, gunicorn_log[
        -3000:
    ]
    access = (stack.workdir / "nginx" / "access.log").read_text()
    assert "/live/callbacks/" not in access
    assert requests.get(f"{stack.base_url}/live/callbacks/publish/", timeout=10).status_code == 404
    for proc in stack.procs:
        proc.check_alive()

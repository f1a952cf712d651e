"""The real live-lecture server (nginx-rtmp, courses.live) for tests, and a generated push.

``live_stack`` starts nginx with the project's own configuration (deploy/live/nginx-rtmp.conf)
on free ports under a temporary LUNXUN_LIVE_ROOT, calling back to the given Django server.
``push`` sends a generated test source (lavfi testsrc + sine, small, in real time) like a
lecture hall's OBS would.
"""

import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from courses import live

from .server import free_port


@contextmanager
def live_stack(settings, tmp_path: Path, callback_url: str):
    why = live.why_not_available(live.LiveConfig.from_settings())
    assert not why, why  # scripts/system-deps.sh test installs nginx and its RTMP module
    rtmp_port, http_port = free_port(), free_port()
    settings.LUNXUN_LIVE_ROOT = tmp_path / "live"
    settings.LUNXUN_LIVE_RTMP_PORT = rtmp_port
    settings.LUNXUN_LIVE_HTTP_PORT = http_port
    settings.LUNXUN_LIVE_RTMP_URL = f"rtmp://127.0.0.1:{rtmp_port}/live"
    settings.LUNXUN_LIVE_CALLBACK_URL = callback_url
    settings.LUNXUN_LIVE_PRESET = "ultrafast"
    server = live.LiveServer(live.LiveConfig.from_settings(rtmp_listen="127.0.0.1"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def push(rtmp_url: str, key: str, seconds: float, *, size="320x180", rate=15):
    """Start pushing ``seconds`` of a generated source to ``rtmp_url``/``key``, in real time."""
    argv = [
        shutil.which("ffmpeg") or "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        f"testsrc=size={size}:rate={rate}",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        str(seconds),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        str(rate * 2),
        "-c:a",
        "aac",
        "-f",
        "flv",
        f"{rtmp_url}/{key}",
    ]
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def wait_for(what, check, timeout=30.0, interval=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"waited {timeout} s for {what}")


def fetch(url) -> str | None:
    try:
        answer = requests.get(url, timeout=3)
    except requests.RequestException:
        return None
    return answer.text if answer.status_code == 200 else None

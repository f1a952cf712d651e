"""The live-lecture streaming server: nginx's RTMP module (Debian: libnginx-mod-rtmp).

Pure plumbing, no models. The project renders its own nginx configuration from
``deploy/live/nginx-rtmp.conf`` and the ffmpeg script nginx runs for every push, under
``LUNXUN_LIVE_ROOT`` (config, pid, logs, temp dirs, ``www/live/`` and ``recordings/``), and starts
nginx as the current user with that prefix (``manage.py live_server``; ``make demo`` runs it
beside the site).

* The hall publishes ``rtmp://…/live/<stream key>``. nginx asks Django (``on_publish``, the
  shared secret in the URL) whether the key is a lecture's current one; Django answers with a
  redirect to the lecture's public stream name (``lecture-<id>``), so the key never appears in
  a file name or a URL players see, or refuses (403) and nginx drops the push.
* ``exec_push`` runs ``ladder.sh <name>``: one ffmpeg that pulls the stream back from nginx and
  writes the live HLS ladder (720p, 360p, 234p and audio-only, the rungs of recorded lessons)
  with 2-second segments, a master playlist and program date-times, appending to the playlists
  when a dropped push resumes.
* ``record all`` with ``record_append on`` keeps the pushed stream as one FLV per lecture: a
  push that drops and resumes is appended to the same file, so the recording is one lesson.
* ``on_publish_done`` tells Django the push has gone (interrupted, or ended).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac
from django.views.static import serve

from .video import AUDIO_NAME, KEYFRAME_SECONDS, LADDER, MASTER_NAME, PLAYLIST_NAME

TEMPLATE = Path(settings.BASE_DIR) / "deploy" / "live" / "nginx-rtmp.conf"
NGINX_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
APPLICATION = "live"
SEGMENT_SECONDS = 2
PLAYLIST_SEGMENTS = 10  # a 20-second live window
LIVE_RUNGS = ("720p", "360p", "234p")
STREAM_NAME = re.compile(r"^lecture-[0-9]+$")
AUDIO_BITRATE = "64k"
AUDIO_ONLY_BITRATE = "48k"
LIVE_FPS = 25


def stream_name(pk: int) -> str:
    """The public name of a lecture's stream: its HLS folder and its recording's name."""
    return f"lecture-{int(pk)}"


def callback_secret() -> str:
    """The secret nginx puts in its callback URLs: set, or derived from SECRET_KEY."""
    return (
        settings.LUNXUN_LIVE_CALLBACK_SECRET
        or salted_hmac("lunxun.live.callback", "nginx-rtmp").hexdigest()
    )


def callback_allowed(secret: str) -> bool:
    return bool(secret) and constant_time_compare(secret, callback_secret())


def root() -> Path:
    return Path(settings.LUNXUN_LIVE_ROOT)


def hls_dir(name: str) -> Path:
    return root() / "www" / "live" / name


def recording_path(name: str) -> Path:
    return root() / "recordings" / f"{name}.flv"


def hls_url(name: str, playlist: str = MASTER_NAME) -> str:
    return f"{settings.LUNXUN_LIVE_HLS_URL.rstrip('/')}/{name}/{playlist}"


def audio_url(name: str) -> str:
    return hls_url(name, f"{AUDIO_NAME}/{PLAYLIST_NAME}")


# ---------------------------------------------------------------------------------------------
# The ladder


def ladder_command(*, ffmpeg: str, source_url: str, out_dir: str, preset: str) -> list[str]:
    """The ffmpeg argv that turns one live push into the HLS ladder under ``out_dir``.

    The picture is split and scaled once per rung (720p, 360p, 234p: the live source's size is
    not known in advance, so every rung is made), each with ~64 kbps AAC, plus a mono
    audio-only variant; a keyframe every 2 s, 2-s segments, a master playlist (var_stream_map)
    and EXT-X-PROGRAM-DATE-TIME on every segment (the player reports what it played in those
    times; Django maps them onto the lecture's timeline). ``append_list``: a push that resumes
    continues the same playlists after a discontinuity instead of starting them again.
    """
    rungs = [rung for rung in LADDER if rung.name in LIVE_RUNGS]
    count = len(rungs)
    split = ";".join(
        [
            f"[0:v]fps={LIVE_FPS},split={count}" + "".join(f"[s{i}]" for i in range(count)),
            *(
                f"[s{i}]scale=-2:{rung.height}:flags=area,format=yuv420p,setsar=1[v{i}]"
                for i, rung in enumerate(rungs)
            ),
            "[0:a]aresample=48000:async=1,aformat=sample_fmts=fltp:channel_layouts=stereo,"
            f"asplit={count + 1}" + "".join(f"[a{i}]" for i in range(count + 1)),
            f"[a{count}]aformat=channel_layouts=mono[mono]",
        ]
    )
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "warning", "-i", source_url]
    argv += ["-filter_complex", split]
    stream_map = []
    for i, rung in enumerate(rungs):
        argv += ["-map", f"[v{i}]", "-map", f"[a{i}]"]
        argv += [f"-b:v:{i}", str(rung.video_bitrate)]
        argv += [f"-maxrate:v:{i}", str(round(rung.video_bitrate * 1.07))]
        argv += [f"-bufsize:v:{i}", str(round(rung.video_bitrate * 1.5))]
        argv += [f"-b:a:{i}", AUDIO_BITRATE]
        stream_map.append(f"v:{i},a:{i},name:{rung.name}")
    argv += ["-map", "[mono]", f"-b:a:{count}", AUDIO_ONLY_BITRATE]
    stream_map.append(f"a:{count},name:{AUDIO_NAME}")
    gop = LIVE_FPS * KEYFRAME_SECONDS
    argv += ["-c:v", "libx264", "-preset", preset, "-tune", "zerolatency"]
    argv += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"]
    argv += ["-c:a", "aac", "-f", "hls", "-hls_time", str(SEGMENT_SECONDS)]
    argv += ["-hls_list_size", str(PLAYLIST_SEGMENTS), "-hls_segment_type", "mpegts"]
    argv += [
        "-hls_flags",
        "program_date_time+append_list+delete_segments+independent_segments+omit_endlist",
    ]
    argv += ["-master_pl_name", MASTER_NAME, "-var_stream_map", " ".join(stream_map)]
    argv += ["-hls_segment_filename", f"{out_dir}/%v/seg_%05d.ts", f"{out_dir}/%v/{PLAYLIST_NAME}"]
    return argv


def ladder_script(*, ffmpeg: str, rtmp_port: int, live_root: Path, preset: str) -> str:
    """The script nginx's exec_push runs with the stream's name: checks the name, then
    becomes the ffmpeg of ladder_command (its errors go to ladder.log)."""
    name = "__NAME__"
    argv = ladder_command(
        ffmpeg=ffmpeg,
        source_url=f"rtmp://127.0.0.1:{rtmp_port}/{APPLICATION}/{name}",
        out_dir=f"{live_root}/www/live/{name}",
        preset=preset,
    )
    command = " ".join(shlex.quote(arg) for arg in argv).replace(name, '"$name"')
    return f"""#!/bin/sh
# Written by Lunxun (courses/live.py): the live HLS ladder of one push. Do not edit.
name="$1"
case "$name" in
  lecture-[0-9]*) ;;
  *) echo "refusing stream name $name" >&2; exit 2 ;;
esac
case "$name" in *[!a-z0-9-]*) exit 2 ;; esac
mkdir -p {shlex.quote(str(live_root))}/www/live/"$name"
exec {command} 2>>{shlex.quote(str(live_root / "ladder.log"))}
"""


# ---------------------------------------------------------------------------------------------
# The server


@dataclass
class LiveConfig:
    root: Path
    rtmp_port: int
    http_port: int
    callback_url: str  # where nginx reaches Django, e.g. http://127.0.0.1:8000
    nginx: str
    ffmpeg: str
    preset: str
    rtmp_listen: str = ""  # default: every interface, the hall pushes from elsewhere

    @classmethod
    def from_settings(cls, **overrides) -> LiveConfig:
        values = {
            "root": Path(settings.LUNXUN_LIVE_ROOT),
            "rtmp_port": settings.LUNXUN_LIVE_RTMP_PORT,
            "http_port": settings.LUNXUN_LIVE_HTTP_PORT,
            "callback_url": settings.LUNXUN_LIVE_CALLBACK_URL,
            "nginx": find_nginx(),
            "ffmpeg": shutil.which(getattr(settings, "LUNXUN_FFMPEG", "ffmpeg")) or "ffmpeg",
            "preset": settings.LUNXUN_LIVE_PRESET,
        }
        values.update(overrides)
        return cls(**values)


def find_nginx() -> str:
    configured = settings.LUNXUN_NGINX
    if configured:
        return configured
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/local/sbin"
    return shutil.which("nginx", path=path) or ""


def why_not_available(config: LiveConfig) -> str:
    """Why the live server cannot start here, in one sentence, or "" when it can."""
    if not config.nginx:
        return "nginx is not installed (apt-get install nginx libnginx-mod-rtmp)"
    if not Path(NGINX_MODULE).is_file():
        return f"nginx's RTMP module is missing: {NGINX_MODULE} (apt-get install libnginx-mod-rtmp)"
    if not shutil.which(config.ffmpeg):
        return "ffmpeg is not installed (apt-get install ffmpeg)"
    return ""


def render_config(config: LiveConfig) -> str:
    """deploy/live/nginx-rtmp.conf with this machine's paths, ports and callback URL."""
    callback = config.callback_url.rstrip("/")
    query = urllib.parse.urlencode({"secret": callback_secret()})
    values = {
        "module": NGINX_MODULE,
        "user": "user root;" if os.geteuid() == 0 else "",  # workers must write our files
        "root": str(config.root),
        "rtmp_listen": f"{config.rtmp_listen}:{config.rtmp_port}"
        if config.rtmp_listen
        else str(config.rtmp_port),
        "http_port": str(config.http_port),
        "on_publish": f"{callback}/live/callbacks/publish/?{query}",
        "on_publish_done": f"{callback}/live/callbacks/publish-done/?{query}",
        "ladder": str(config.root / "ladder.sh"),
        "www": str(config.root / "www"),
        "recordings": str(config.root / "recordings"),
        "mime_types": "/etc/nginx/mime.types",
    }
    text = TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace("{{ " + key + " }}", value)
    leftover = re.search(r"\{\{ *\w+ *\}\}", text)
    if leftover:
        raise ValueError(f"{TEMPLATE.name}: nothing to fill {leftover.group(0)}")
    return text


def prepare(config: LiveConfig) -> Path:
    """Write the config and the ladder script under config.root; return the config's path."""
    for sub in ("www/live", "www/static-baseline", "recordings", "temp", "logs"):
        (config.root / sub).mkdir(parents=True, exist_ok=True)
    script = config.root / "ladder.sh"
    script.write_text(
        ladder_script(
            ffmpeg=config.ffmpeg,
            rtmp_port=config.rtmp_port,
            live_root=config.root,
            preset=config.preset,
        )
    )
    script.chmod(0o755)
    conf = config.root / "nginx.conf"
    conf.write_text(render_config(config))
    return conf


class LiveServer:
    """One nginx-rtmp process for this machine's live lectures, in the foreground of its own
    process group (stopped with stop(), or by whoever runs it)."""

    def __init__(self, config: LiveConfig):
        self.config = config
        self.process: subprocess.Popen | None = None

    def argv(self, conf: Path) -> list[str]:
        log = self.config.root / "logs" / "error.log"
        return [self.config.nginx, "-p", str(self.config.root), "-c", str(conf), "-e", str(log)]

    def check(self) -> None:
        conf = prepare(self.config)
        done = subprocess.run(
            [*self.argv(conf), "-t"], capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if done.returncode != 0:
            raise RuntimeError(f"nginx -t refused the live configuration:\n{done.stderr}")

    def start(self, timeout: float = 15) -> LiveServer:
        self.check()
        conf = self.config.root / "nginx.conf"
        self.process = subprocess.Popen(
            self.argv(conf), stdin=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    "nginx (live) exited at once; see " + str(self.config.root / "logs")
                )
            if _listening(self.config.rtmp_port) and _listening(self.config.http_port):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nginx (live) did not listen within {timeout} s")

    def request_stop(self) -> None:
        """Ask nginx to finish (gracefully: recordings are closed); safe in a signal handler,
        where waiting for the process is not (the main thread may be waiting for it)."""
        if self.process is not None and self.process.returncode is None:
            try:
                os.killpg(self.process.pid, signal.SIGQUIT)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGQUIT)  # graceful: finishes recordings
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()

    def wait(self) -> int:
        return self.process.wait() if self.process else 0


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", int(port))) == 0


def drop_publisher(name: str) -> bool:
    """Ask the live server to cut the push of ``name`` (the trainer ended the lecture).
    False when no push was cut or the server could not be reached."""
    query = urllib.parse.urlencode({"app": APPLICATION, "name": name})
    url = f"http://127.0.0.1:{settings.LUNXUN_LIVE_HTTP_PORT}/control/drop/publisher?{query}"
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return answer.status == 200 and answer.read().strip() not in (b"", b"0")
    except OSError:
        return False


def serve_live_hls(request, path):
    """The embedded default serves the live ladder itself (as it serves MEDIA_ROOT's videos):
    public like a lesson's HLS, playlists never cached."""
    response = serve(request, path, document_root=str(root() / "www" / "live"))
    response["Cache-Control"] = "no-cache" if path.endswith(".m3u8") else "public, max-age=60"
    return response

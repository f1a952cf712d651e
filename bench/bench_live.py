"""Live lectures on the project's streaming server (nginx-rtmp, courses.live).

ffmpeg pushes a generated 640x360 source (lavfi testsrc + sine, in real time) with a lecture's
key; nginx asks Django (a threaded WSGI server in this process) about the key and runs the
live ladder (720p, 360p, 234p, audio; 2-s segments).

(a) Latency from push to what a player can fetch: the 360p playlist is polled every 50 ms;
    when a segment appears, the moment its last frame was pushed (push start + the segment's
    end on the stream's timeline) is compared with the moment it could be fetched. A player
    (hls.js, liveSyncDurationCount 2) starts two segments behind the newest one, so what a
    member sees lags by that plus two segments (4 s): both are printed, the target applies to
    the player's. Target: <= 10 s.
(b) Concurrent live viewers served by the same nginx (wrk, --connections viewers): the 360p
    playlist and its three newest segments, round robin, beside the baseline measured in the
    same run: the same nginx serving a static playlist and segment files of the same sizes.
    Targets: requests/s >= 0.8 of the baseline; 0 errors (non-2xx and socket errors).

    .venv/bin/python bench/bench_live.py [--connections 100] [--seconds 10] [--samples 8]
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
LUA = HERE / "live_paths.lua"
TARGET_LATENCY = 10.0
TARGET_RATIO = 0.8
PLAYER_HOLDBACK_SEGMENTS = 2
sys.path.insert(0, str(HERE))

import _setup  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=100, help="concurrent viewers")
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run")
    parser.add_argument("--samples", type=int, default=8, help="segments timed for latency")
    parser.add_argument("--wrk-threads", type=int, default=2)
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def fetch(url) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return answer.read().decode()
    except OSError:
        return None


def segments_of(playlist: str) -> list[tuple[int, float, str]]:
    """(media sequence number, end on the stream's timeline, file name) of each segment."""
    first = int((re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist) or [0, 0])[1])
    durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+)", playlist)]
    names = [line for line in playlist.splitlines() if line.endswith(".ts")]
    return [(first + i, durations[i], names[i]) for i in range(min(len(durations), len(names)))]


def run_wrk(args, base, paths) -> dict:
    from bench_progress import parse_wrk

    argv = ["wrk", "-t", str(args.wrk_threads), "-c", str(args.connections)]
    argv += ["-d", f"{args.seconds}s", "--latency", "-s", str(LUA), base, "--", *paths]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=args.seconds + 60)
    result = parse_wrk(done.stdout)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    result["errors"] = (int(non_2xx.group(1)) if non_2xx else 0) + sum(result["sockets"])
    return result


def main():
    args = parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (scripts/system-deps.sh bench)")
    work = Path(tempfile.mkdtemp(prefix="lunxun-bench-live-"))
    rtmp_port, http_port, django_port = free_port(), free_port(), free_port()
    os.environ.update(
        LUNXUN_LIVE_ROOT=str(work / "live"),
        LUNXUN_LIVE_RTMP_PORT=str(rtmp_port),
        LUNXUN_LIVE_HTTP_PORT=str(http_port),
        LUNXUN_LIVE_CALLBACK_URL=f"http://127.0.0.1:{django_port}",
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    _setup.django_with_fresh_db("live")
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from wagtail.models import Page

    from courses import live
    from courses.models import CoursePage, LessonPage
    from courses.services import live_stream_create

    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    root = Page.get_first_root_node()
    course = root.add_child(instance=CoursePage(title="直播基准", slug="bench-live"))
    lesson = course.add_child(instance=LessonPage(title="直播党课", slug="bench-live-lesson"))
    stream = live_stream_create(lesson=lesson)

    app = get_wsgi_application()
    httpd = make_server(
        "127.0.0.1", django_port, app, ThreadingWSGIServer, handler_class=QuietHandler
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    server = live.LiveServer(live.LiveConfig.from_settings(rtmp_listen="127.0.0.1"))
    server.start()
    push_seconds = 40 + args.samples * 2 + 2 * args.seconds
    pusher = subprocess.Popen(
        [
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(push_seconds), "-c:v", "libx264", "-preset", "ultrafast",
            "-pix_fmt", "yuv420p", "-g", "50", "-c:a", "aac", "-f", "flv",
            f"{settings.LUNXUN_LIVE_RTMP_URL}/{stream.key}",
        ],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    pushed_at = time.time()
    base = f"http://127.0.0.1:{http_port}"
    playlist_url = f"{base}/live/{stream.name}/360p/index.m3u8"
    ok = True
    notes = []
    try:
        # (a) latency: when each new segment can be fetched, against when its end was pushed.
        seen, latencies, timeline_end = set(), [], {}
        deadline = time.time() + 60 + args.samples * 3
        while len(latencies) < args.samples and time.time() < deadline:
            text = fetch(playlist_url)
            now = time.time()
            if text:
                for sequence, duration, _name in segments_of(text):
                    if sequence in seen:
                        continue
                    end = timeline_end.get(sequence - 1, 0.0) + duration
                    timeline_end[sequence] = end
                    first_poll = not seen
                    seen.add(sequence)
                    if not first_poll and sequence > 0:
                        latencies.append(now - (pushed_at + end))
            time.sleep(0.05)
        if len(latencies) < args.samples:
            ok = False
            notes.append(f"only {len(latencies)} segments were timed")
        fetchable = statistics.median(latencies) if latencies else float("nan")
        worst = max(latencies) if latencies else float("nan")
        player = worst + PLAYER_HOLDBACK_SEGMENTS * live.SEGMENT_SECONDS

        # (b) viewers: the live playlist and its newest segments, then the static baseline.
        text = fetch(playlist_url) or ""
        newest = [name for _seq, _d, name in segments_of(text)][-3:]
        live_paths = [f"/live/{stream.name}/360p/index.m3u8"] + [
            f"/live/{stream.name}/360p/{name}" for name in newest
        ]
        baseline_dir = work / "live" / "www" / "static-baseline"
        baseline_dir.mkdir(parents=True, exist_ok=True)
        (baseline_dir / "index.m3u8").write_text(text)
        for name in newest:
            source = work / "live" / "www" / "live" / stream.name / "360p" / name
            shutil.copyfile(source, baseline_dir / name)
        static_paths = ["/static-baseline/index.m3u8"] + [
            f"/static-baseline/{name}" for name in newest
        ]
        viewers = run_wrk(args, base, live_paths)
        baseline = run_wrk(args, base, static_paths)
    finally:
        pusher.kill()
        pusher.wait()
        server.stop()
        httpd.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    ratio = viewers["rps"] / baseline["rps"] if baseline["rps"] else float("nan")
    print("bench_live (targets: player latency <= 10 s; viewers >= 0.8 of static; 0 errors)")
    print(f"  fetchable after push: median {fetchable:.2f} s, worst {worst:.2f} s "
          f"({len(latencies)} segments of {live.SEGMENT_SECONDS} s)")  # fmt: skip
    print(f"  player latency (worst + {PLAYER_HOLDBACK_SEGMENTS} segments held back): "
          f"{player:.2f} s")  # fmt: skip
    print(f"  live viewers: {viewers['rps']:.0f} req/s, p99 {viewers['p99']:.2f} ms, "
          f"errors {viewers['errors']}  ({args.connections} connections)")  # fmt: skip
    print(f"  static file : {baseline['rps']:.0f} req/s, p99 {baseline['p99']:.2f} ms, "
          f"errors {baseline['errors']}  ratio {ratio:.2f}")  # fmt: skip
    row = _setup.result_row
    rows = [
        row("segment fetchable after push (median)", round(fetchable, 2), "s"),
        row(
            "player latency (worst + 2 segments)",
            round(player, 2),
            "s",
            target="<= 10 s",
            met=player <= TARGET_LATENCY,
        ),
        row(
            f"live viewers ({args.connections} connections): playlist + segments",
            round(viewers["rps"]),
            "req/s",
            baseline=round(baseline["rps"]),
            baseline_label="same nginx, static files",
            target=">= 0.8 of baseline",
            met=ratio >= TARGET_RATIO,
        ),
        row(
            "live viewers, p99",
            round(viewers["p99"], 2),
            "ms",
            baseline=round(baseline["p99"], 2),
            baseline_label="static files",
        ),
        row(
            "errors (non-2xx + socket)",
            viewers["errors"],
            baseline=baseline["errors"],
            target="0",
            met=viewers["errors"] == 0,
        ),
    ]
    _setup.write_results(
        "live",
        rows,
        title="Live lectures: latency and concurrent viewers on the project's nginx-rtmp",
        ok=ok,
        notes=notes,
    )


if __name__ == "__main__":
    main()

"""Transcoding a 60 s 1280x720 30 fps clip with sound into the full streaming set.

Measured (generating the clip is not counted):
  (a) courses.video.transcode(): probe, the one ffmpeg run (4-rung HLS ladder + audio-only
      rendition + MP4 fallback + poster) with progress parsing, reading the result back;
  (b) the same argv from build_command(), run by hand with subprocess, progress discarded;
  (c) reference baseline: a hand-written one-pass 720p + 360p HLS ladder, -preset veryfast.

Targets: (a) at least 2x real time; (a) no more than 5 % slower than (b).
Runs are interleaved and the best of --repeat is kept, as other work on the machine adds noise.

    .venv/bin/python bench/bench_transcode.py [--seconds 60] [--repeat 2] [--keep]
"""

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "transcode"
TARGET_SPEED = 2.0  # x real time
TARGET_OVERHEAD = 5.0  # %


def setup_django():
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import django

    django.setup()


def make_source(path: Path, seconds: int):
    from tests.courses.clips import make_clip

    make_clip(
        path,
        size="1280x720",
        rate=30,
        seconds=seconds,
        video_args=("-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p"),
        audio_args=("-c:a", "aac", "-b:a", "128k"),
    )


def baseline_argv(source: Path, out: Path) -> list[str]:
    """What one would write by hand: 720p + 360p in one pass, 2 s GOP, 6 s VOD segments."""
    return [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        "-y",
        "-protocol_whitelist",
        "file",
        "-i",
        str(source),
        "-filter_complex",
        "[0:v]split=2[a][b];[a]scale=-2:720[v720];[b]scale=-2:360[v360]",
        "-map",
        "[v720]",
        "-map",
        "0:a",
        "-map",
        "[v360]",
        "-map",
        "0:a",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-b:v:0",
        "2500k",
        "-b:v:1",
        "600k",
        "-g",
        "60",
        "-keyint_min",
        "60",
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "hls",
        "-hls_time",
        "6",
        "-hls_playlist_type",
        "vod",
        "-master_pl_name",
        "master.m3u8",
        "-var_stream_map",
        "v:0,a:0 v:1,a:1",
        "-hls_segment_filename",
        f"{out}/%v/seg_%05d.ts",
        f"{out}/%v/index.m3u8",
    ]


class Meter:
    """Wall time, CPU time of our child processes (ffmpeg, ffprobe), and CPU time the rest of
    the machine used meanwhile (from /proc/stat): the last shows when others competed."""

    def __enter__(self):
        self.wall = time.perf_counter()
        self.ours = children_cpu()
        self.machine = machine_cpu()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.ours = children_cpu() - self.ours
        busy = machine_cpu() - self.machine
        self.others = max(0.0, busy - self.ours) if busy else float("nan")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_cpu() -> float:
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, *rest = (int(x) for x in fields)
    steal = rest[0] if rest else 0
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="leave bench/out/transcode behind")
    args = parser.parse_args()
    setup_django()

    from courses import video

    fresh(OUT)
    source = OUT / "source-720p30.mp4"
    make_source(source, args.seconds)
    info = video.probe(source)
    argv = video.build_command(source, OUT / "b", info)

    runs = {"a": [], "b": [], "c": []}
    result = None
    try:
        for _round in range(args.repeat):
            out = fresh(OUT / "b")
            with Meter() as meter:
                subprocess.run(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True
                )
            runs["b"].append(meter)

            shutil.rmtree(OUT / "a", ignore_errors=True)
            with Meter() as meter:
                result = video.transcode(source, OUT / "a")
            runs["a"].append(meter)

            out = fresh(OUT / "c")
            with Meter() as meter:
                subprocess.run(baseline_argv(source, out), stdin=subprocess.DEVNULL, check=True)
            runs["c"].append(meter)
    finally:
        if not args.keep:
            shutil.rmtree(OUT, ignore_errors=True)

    best = {key: min(meters, key=lambda m: m.wall) for key, meters in runs.items()}
    speed = {key: args.seconds / meter.wall for key, meter in best.items()}
    overhead = (best["a"].wall / best["b"].wall - 1) * 100
    cpu_overhead = (best["a"].ours / best["b"].ours - 1) * 100
    rungs = " + ".join(rung.name for rung in result.rungs)
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout

    print(
        f"bench_transcode  machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{version.split(' Copyright')[0]}"
    )
    print(
        f"  source: {args.seconds} s 1280x720 30 fps H.264 + AAC; best of {args.repeat} "
        "interleaved run(s); 'others' = CPU s used meanwhile by other processes"
    )
    labels = {
        "a": f"(a) transcode(): {rungs} + audio + MP4 + poster",
        "b": "(b) same argv by hand, no progress parsing",
        "c": "(c) baseline: hand-written 720p + 360p ladder",
    }
    width = max(map(len, labels.values()))
    for key, label in labels.items():
        meter = best[key]
        print(
            f"  {label:<{width}} {meter.wall:6.2f} s = {speed[key]:4.2f}x real time"
            f"  (ffmpeg CPU {meter.ours:5.1f} s, others {meter.others:5.1f} s;"
            f" all runs: {', '.join(f'{m.wall:.2f}' for m in runs[key])} s)"
        )
    print(
        f"  overhead of (a) over (b): {overhead:+.1f} % wall clock, {cpu_overhead:+.1f} % CPU time"
    )
    print(
        f"  target: full ladder >= {TARGET_SPEED:g}x real time: "
        f"{'met' if speed['a'] >= TARGET_SPEED else 'NOT met'} ({speed['a']:.2f}x)"
    )
    print(
        f"  target: overhead <= {TARGET_OVERHEAD:g} %: "
        f"{'met' if overhead <= TARGET_OVERHEAD else 'NOT met'} ({overhead:+.1f} %)"
    )
    contended = max(m.others for m in best.values())
    notes = [
        f"best of {args.repeat} interleaved run(s) of a {args.seconds} s 1280x720 30 fps clip; "
        + version.split(" Copyright")[0]
    ]
    if contended > 0.05 * best["c"].wall:
        note = (
            f"other processes used up to {contended:.1f} CPU s during a measured run; "
            "figures are pessimistic"
        )
        print(f"  note: {note}")
        notes.append(note)
    from _setup import result_row, write_results

    write_results(
        "transcode",
        [
            result_row(
                f"transcode(): {rungs} + audio + MP4 + poster, x real time",
                round(speed["a"], 2),
                "x",
                baseline=round(speed["c"], 2),
                baseline_label="hand-written one-pass 720p + 360p ladder",
                target=f">= {TARGET_SPEED:g}x",
                met=speed["a"] >= TARGET_SPEED,
                notes=f"{best['a'].wall:.1f} s wall, ffmpeg CPU {best['a'].ours:.1f} s",
            ),
            result_row(
                "overhead of transcode() over its own ffmpeg command run by hand",
                round(overhead, 1),
                "%",
                baseline=f"{best['b'].wall:.2f} s (transcode() {best['a'].wall:.2f} s)",
                baseline_label="the same argv by hand, no progress parsing",
                target=f"<= {TARGET_OVERHEAD:g} %",
                met=overhead <= TARGET_OVERHEAD,
                notes=f"CPU time {cpu_overhead:+.1f} %",
            ),
        ],
        title="Transcoding a 720p clip into the streaming set",
        notes=notes,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

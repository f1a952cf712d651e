"""Small real clips made by ffmpeg (testsrc2 + a sine tone through lavfi), for tests and
benchmarks."""

import subprocess
from pathlib import Path


def ffmpeg_run(*args):
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *map(str, args)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done


def make_clip(
    path,
    *,
    size="320x180",
    rate=30,
    seconds=4,
    audio=True,
    video_args=("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
    audio_args=("-c:a", "aac"),
    extra=(),
    sample_rate=48000,
):
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={sample_rate}:d={seconds}"]
    args += [*video_args, *(audio_args if audio else ("-an",)), *extra, path]
    ffmpeg_run(*args)
    return Path(path)

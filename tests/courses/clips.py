"""Small real clips made by ffmpeg (testsrc2 + a sine tone through lavfi), for tests and
benchmarks."""

import re
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


LECTURE_FONT = "Noto Sans CJK SC"  # fonts-noto-cjk, in scripts/system-deps.sh


def _text(text, size, x, y, extra=""):
    return f"drawtext=font='{LECTURE_FONT}':text='{text}':fontsize={size}:x={x}:y={y}" + (
        f":{extra}" if extra else ""
    )


def make_lecture_clip(
    path,
    *,
    seconds=60,
    grain=6,
    video_args=("-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"),
    audio_args=("-c:a", "aac", "-b:a", "128k"),
):
    """A 1280x720 30 fps recorded lecture as a camera or a screen recorder would hand it over
    (H.264 at about 5 Mbit/s, AAC): a slide of Chinese and English text that changes every
    15 s, a clip playing on the slide (testsrc2), the speaker's window (a slowly zooming
    Mandelbrot set with camera grain: motion and fine detail), a pointer moving over the slide
    and a notice scrolling along the bottom; a tone with pink noise for the voice (``grain``:
    the strength of the camera's noise, 0-100). Not a still
    frame: that would flatter both the speed and the quality of a transcode."""
    first = "enable='lt(mod(t,30),15)'"
    second = "enable='gte(mod(t,30),15)'"
    slide = ",".join(
        [
            _text("第一讲 学习贯彻党的二十大精神", 46, 60, 40, "fontcolor=0x8b0000"),
            _text("一、深刻领会新时代新征程的使命任务", 30, 60, 140, first),
            _text("二、坚持以人民为中心的发展思想", 30, 60, 190, first),
            _text("三、Party members study - 45 minutes, 12 lessons", 28, 60, 240, first),
            _text("四、全面从严治党 永远在路上", 30, 60, 140, second),
            _text("五、加强基层组织建设 提高组织力", 30, 60, 190, second),
            _text(
                "六、Quarter-end review - coverage and study hours",
                26,
                60,
                240,
                second,
            ),
            _text(r"%{pts\:hms}", 22, 60, 300),
            _text(
                "通知：本季度轮训将于月底结束，请各支部书记督促党员按时完成学习。"
                " Notice - the quarter ends this month.",
                28,
                "w-mod(t*160\\,w+tw)",
                "h-50",
                "fontcolor=white:box=1:boxcolor=0x8b0000:boxborderw=8",
            ),
        ]
    )
    graph = ";".join(
        [
            f"[0:v]{slide}[slide]",
            f"[1:v]noise=alls={grain}:allf=t[head]",
            "[slide][2:v]overlay=x=60:y=350[s1]",
            "[s1][head]overlay=x=840:y=360[s2]",
            "[s2][3:v]overlay=x='60+mod(t*90\\,460)':y='200+40*sin(t)':shortest=1,"
            "format=yuv420p[v]",
            "[4:a][5:a]amix=inputs=2[a]",
        ]
    )
    ffmpeg_run(
        "-f", "lavfi", "-i", f"color=c=0xf2f0e6:size=1280x720:rate=30:duration={seconds}",
        "-f", "lavfi", "-i", "mandelbrot=size=400x300:rate=30:end_scale=0.3:maxiter=300",
        "-f", "lavfi", "-i", "testsrc2=size=480x270:rate=30",
        "-f", "lavfi", "-i", "color=c=red:size=14x14:rate=30",
        "-f", "lavfi", "-i", f"sine=frequency=220:sample_rate=48000:d={seconds}",
        "-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.08:sample_rate=48000:d={seconds}",
        "-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-t", seconds,
        *video_args, *audio_args, path,
    )  # fmt: skip
    return Path(path)


def rung_ssim(source, out_dir, rungs, *, size=None) -> list[float]:
    """SSIM (all planes) of each rung's HLS variant in out_dir against the source, in one
    ffmpeg run: each rung is scaled back up to the source's size (bicubic), as a player on a
    bigger screen shows it, so what the scaler lost counts as well as what x264 lost."""
    width, height = size or _size(source)
    n = len(rungs)
    stats = [Path(out_dir) / f"ssim-{rung.name}.log" for rung in rungs]
    parts = [f"[0:v]setpts=PTS-STARTPTS,split={n}" + "".join(f"[s{i}]" for i in range(n))]
    for i, log in enumerate(stats):
        parts.append(
            f"[{i + 1}:v]setpts=PTS-STARTPTS,scale={width}:{height}:flags=bicubic,"
            f"format=yuv420p[d{i}];[d{i}][s{i}]ssim=stats_file={log}[o{i}]"
        )
    args = ["-threads", "2", "-i", source]
    for rung in rungs:
        args += ["-i", Path(out_dir) / rung.name / "index.m3u8"]
    args += ["-filter_complex", ";".join(parts)]
    for i in range(n):
        args += ["-map", f"[o{i}]", "-f", "null", "-"]
    ffmpeg_run(*args)
    figures = []
    for log in stats:
        frames = [float(x) for x in re.findall(r"All:([0-9.]+)", log.read_text())]
        log.unlink()
        assert frames, f"no SSIM figures in {log}"
        figures.append(sum(frames) / len(frames))
    return figures


def _size(path) -> tuple[int, int]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    width, height = done.stdout.strip().split(",")[:2]
    return int(width), int(height)

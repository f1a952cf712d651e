"""The ladder's per-rung x264 settings (courses.video.TUNED_ENCODING): what the command asks
for, what the encoder really used, and that no rung loses more than 1 % of the SSIM the old
uniform "veryfast" reached on the same lecture. Real ffmpeg, no mocks; the speed is measured
by bench/bench_transcode.py, never here."""

import re
import subprocess

import pytest

from courses import video

from .clips import make_lecture_clip, rung_ssim

VERYFAST = video.Encoding.uniform("veryfast")  # every rung, before issue 18


@pytest.fixture(scope="module")
def lecture(tmp_path_factory):
    # Strong camera grain: in 4 s the clip must be as hard to encode as a whole lecture is,
    # or every setting would look good enough (plain ultrafast loses 1.3 % at 720p here).
    return make_lecture_clip(
        tmp_path_factory.mktemp("lecture") / "lecture.mp4", seconds=4, grain=24
    )


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, lecture):
    out = tmp_path_factory.mktemp("tuned")
    result = video.transcode(lecture, out)
    return out, result


@pytest.fixture(scope="module")
def veryfast(tmp_path_factory, lecture):
    out = tmp_path_factory.mktemp("veryfast")
    argv = video.build_command(lecture, out, video.probe(lecture), encoding=VERYFAST)
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
    return out


def option(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


def x264_options(segment) -> dict:
    """The settings x264 wrote into its SEI message at the start of the stream (read from the
    raw H.264 stream: in the TS segment the text is cut by packet headers)."""
    raw = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(segment),
            "-map",
            "0:v",
            "-c",
            "copy",
            "-f",
            "h264",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    found = re.search(rb"options: ([ -~]+)", raw)
    assert found, f"no x264 settings in {segment}"
    return dict(pair.split("=", 1) for pair in found.group(1).decode().split() if "=" in pair)


def test_each_rung_gets_its_own_x264_settings(tmp_path, lecture):
    argv = video.build_command(lecture, tmp_path / "out", video.probe(lecture))
    rungs = video.ladder_for(720)
    assert [r.name for r in rungs] == ["234p", "360p", "540p", "720p"]
    asked = [
        (option(argv, f"-preset:v:{i}"), option(argv, f"-x264-params:v:{i}")) for i in range(4)
    ]
    assert asked == [
        ("veryfast", None),
        ("superfast", "mbtree=1:rc-lookahead=10"),
        ("superfast", "mbtree=1:rc-lookahead=10"),
        ("ultrafast", "cabac=1:deblock=0,0:mbtree=1:rc-lookahead=10:subme=1"),
    ]
    assert "-preset" not in argv and "-x264-params" not in argv


def test_a_preset_in_the_settings_goes_on_every_rung(settings, tmp_path, lecture):
    settings.LUNXUN_FFMPEG_PRESET = "veryfast"
    argv = video.build_command(lecture, tmp_path / "out", video.probe(lecture))
    assert option(argv, "-preset") == "veryfast"
    assert not [a for a in argv if a.startswith(("-preset:", "-x264-params"))]
    assert argv == video.build_command(
        lecture, tmp_path / "out", video.probe(lecture), encoding=VERYFAST
    )


def test_the_encoder_uses_each_rungs_settings(tuned):
    out, result = tuned
    used = {rung.name: x264_options(out / rung.name / "seg_00000.ts") for rung in result.rungs}
    # veryfast: hexagon search, subme 2; superfast: diamond, subme 1, with the macroblock tree
    # put back; ultrafast's analysis with CABAC, deblocking and the tree put back.
    assert {k: used["234p"][k] for k in ("me", "subme", "mbtree", "rc_lookahead")} == {
        "me": "hex",
        "subme": "2",
        "mbtree": "1",
        "rc_lookahead": "10",
    }
    for name in ("360p", "540p"):
        assert {k: used[name][k] for k in ("me", "subme", "mbtree", "rc_lookahead")} == {
            "me": "dia",
            "subme": "1",
            "mbtree": "1",
            "rc_lookahead": "10",
        }
    assert {k: used["720p"][k] for k in ("cabac", "deblock", "subme", "mbtree", "bframes")} == {
        "cabac": "1",
        "deblock": "1:0:0",
        "subme": "1",
        "mbtree": "1",
        "bframes": "0",
    }
    # What the output contract needs holds on every rung: 2 s GOPs, no scene-cut keyframes.
    for options in used.values():
        assert options["keyint"] == "60" and options["scenecut"] == "0"


def test_no_rung_loses_more_than_one_percent_of_veryfasts_ssim(lecture, tuned, veryfast):
    out, result = tuned
    new = rung_ssim(lecture, out, result.rungs)
    old = rung_ssim(lecture, veryfast, result.rungs)
    for rung, figure, before in zip(result.rungs, new, old, strict=True):
        assert figure >= 0.99 * before, (rung.name, figure, before)
    # The figures are real: a rung scaled down and back up loses detail.
    assert new[0] < new[-1] < 1

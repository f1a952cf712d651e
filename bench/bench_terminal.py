"""Site terminals: the package a site downloads, and the sync of what it recorded offline.

1. Package: a sitting that shows three 30-minute lessons, at the 360p rung. The terminal asks
   for the package (rounds.terminals.terminal_package: the sitting's key, roster and the file
   list) and downloads every file it names, through the app (Django's test client, in this
   process, as the embedded default serves the video store). Baseline, in the same run: the
   rung's files alone (their sizes on disk, and the time to download just them the same way).
   Targets: the package is at most 2 % larger than the media itself.
2. Sync: 1,000 personal-code records the terminal kept offline, signed as terminal.js signs
   them, sent in one sync (rounds.terminals.terminal_sync through the sync view) against
   1,000 online check-ins in the same run (each member's phone opening the rotating code's
   URL, logged in). Both write the attendance and refresh the member's participation.
   Targets: sync of 1,000 <= 5 s and no slower per record than the online path.

The media are made cheaply and once (kept in bench/out/terminal-media): ffmpeg encodes a still
testsrc picture at 640x360, 10 fps, with libx264 ultrafast held at the 360p rung's constant
600 kbit/s (nal-hrd=cbr pads the still picture up to the rate a real lecture uses) and a 64
kbit/s AAC tone, cut into 6-second HLS segments exactly as courses.video writes the rung
(<prefix>/360p/index.m3u8 + seg_00000.ts…); the three lessons are three copies of that output.

    .venv/bin/python bench/bench_terminal.py [--minutes 30] [--records 1000]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
MEDIA = OUT / "terminal-media"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

TARGET_OVERHEAD = 2.0  # percent
TARGET_SYNC_SECONDS = 5.0


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=30, help="length of each lesson")
    parser.add_argument("--records", type=int, default=1000)
    return parser.parse_args()


def make_rung(minutes: int) -> Path:
    """One lesson's 360p rung as courses.video writes it; made once per length."""
    source = MEDIA / f"source-{minutes}m" / "360p"
    if (source / "index.m3u8").exists():
        return source.parent
    shutil.rmtree(source.parent, ignore_errors=True)
    source.mkdir(parents=True)
    from courses.video import SEGMENT_PATTERN, SEGMENT_SECONDS

    seconds = minutes * 60
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size=640x360:rate=10:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-b:v", "600k", "-minrate", "600k", "-maxrate", "600k", "-bufsize", "1200k",
            "-x264-params", "nal-hrd=cbr", "-g", "60",
            "-c:a", "aac", "-b:a", "64k", "-ac", "1",
            "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_playlist_type", "vod",
            "-hls_segment_type", "mpegts",
            "-hls_segment_filename", str(source / SEGMENT_PATTERN),
            str(source / "index.m3u8"),
        ],
        check=True,
    )  # fmt: skip
    return source.parent


def build(args):
    from django.conf import settings
    from django.utils import timezone

    from courses.models import LessonVideo
    from members.models import Role
    from rounds import terminals
    from tests import factories
    from tests.courses import builders as course_builders
    from tests.rounds import builders as round_builders

    rung = make_rung(args.minutes)
    root = factories.org("示范市委", code="CITY")
    branch = factories.org("幸福社区党支部", root, code="A-01")
    operator = factories.staff("op_a", Role.OPERATOR, branch)
    trainer = factories.staff("trainer", Role.TRAINER, root)
    parent = course_builders.course(title="基准课程")
    lessons = []
    for n in range(3):
        prefix = f"videos/hls/bench-{args.minutes}m-{n}"
        target = Path(settings.MEDIA_ROOT) / prefix
        if not (target / "360p" / "index.m3u8").exists():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(rung, target)
        lesson = course_builders.lesson(parent, title=f"第{n + 1}课", duration=args.minutes * 60.0)
        LessonVideo.objects.filter(pk=lesson.video_id).update(output_prefix=prefix)
        lessons.append(lesson)
    now = timezone.now()
    training_round = round_builders.training_round(
        [root],
        lessons,
        opens_on=(now - timedelta(days=30)).date(),
        closes_on=(now + timedelta(days=60)).date(),
        makeup_deadline=(now + timedelta(days=90)).date(),
    )
    online = round_builders.sitting(
        round_builders.session(
            training_round, branch, start=now - timedelta(minutes=10), end=now + timedelta(hours=2)
        )
    )
    yesterday = now - timedelta(days=1)
    offline = round_builders.sitting(
        round_builders.session(
            training_round,
            branch,
            title="昨天的集中学习",
            start=yesterday,
            end=yesterday + timedelta(hours=2),
        )
    )
    terminal = terminals.terminal_register(name="基准站点", host=branch, user=trainer)
    return {
        "branch": branch,
        "operator": operator,
        "terminal": terminal,
        "online": online,
        "offline": offline,
        "lessons": lessons,
    }


def client_for(user):
    from django.test import Client

    client = Client()
    client.force_login(user, backend="members.backends.PhoneOrUsernameBackend")
    return client


def download(client, urls) -> int:
    total = 0
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        total += sum(len(chunk) for chunk in response.streaming_content)
    return total


def bench_package(world):
    from django.urls import reverse

    client = client_for(world["operator"])
    terminal = world["terminal"]
    started = time.perf_counter()
    response = client.get(reverse("rounds:terminal_package", args=[terminal.pk]), {"rung": "360p"})
    assert response.status_code == 200, response.content[:200]
    manifest = response.content
    package = json.loads(manifest)
    urls = [f["url"] for lesson in package["lessons"] for f in lesson["files"]]
    media_bytes = download(client, urls)
    package_seconds = time.perf_counter() - started
    # The baseline: the same files alone, their size on disk and their download.
    on_disk = sum(f["bytes"] for lesson in package["lessons"] for f in lesson["files"])
    assert on_disk == media_bytes == package["media_bytes"]
    started = time.perf_counter()
    download(client, urls)
    files_seconds = time.perf_counter() - started
    return {
        "lessons": len(package["lessons"]),
        "files": len(urls),
        "manifest_bytes": len(manifest),
        "media_bytes": media_bytes,
        "package_bytes": len(manifest) + media_bytes,
        "package_seconds": package_seconds,
        "files_seconds": files_seconds,
    }


def bench_sync(world, records_count):
    from _setup import logged_in_sessions
    from django.urls import reverse

    from members import services as member_services
    from members.models import Member
    from rounds import services, terminals
    from rounds.models import Attendance

    members = [
        member_services.member_create(
            name=f"党员{n:04d}", organization=world["branch"], phone=f"139{n:08d}", password=None
        )
        for n in range(records_count)
    ]
    members = list(Member.objects.filter(pk__in=[m.pk for m in members]).select_related("user"))
    keys = logged_in_sessions(members)
    online, offline, terminal = world["online"], world["offline"], world["terminal"]

    # Online: each member's phone opens the code on the screen.
    from django.test import Client

    client = Client()
    started = time.perf_counter()
    for key in keys:
        client.cookies["sessionid"] = key
        token = services.qr_token(sitting=online).token
        response = client.get(reverse("rounds:check_in", args=[token]))
        assert response.status_code == 200, response.status_code
    online_seconds = time.perf_counter() - started
    assert Attendance.objects.filter(sitting=online).count() == records_count

    # Offline: the terminal read their personal codes yesterday, during the sitting.
    at = int((offline.start + timedelta(minutes=5)).timestamp() * 1000)
    records = []
    for member in members:
        record = {
            "uuid": str(uuid.uuid4()),
            "kind": "personal_code",
            "sitting": offline.pk,
            "code": services.personal_code(sitting=offline, member=member),
            "at": at,
        }
        record["sig"] = terminals.record_sign(secret=terminal.secret, record=record)
        records.append(record)
    body = json.dumps({"records": records})
    operator = client_for(world["operator"])
    url = reverse("rounds:terminal_sync", args=[terminal.pk])
    started = time.perf_counter()
    response = operator.post(url, data=body, content_type="application/json")
    sync_seconds = time.perf_counter() - started
    results = response.json()["results"]
    accepted = sum(1 for r in results if r["result"] == "accepted")
    assert accepted == records_count, results[:3]
    started = time.perf_counter()
    replay = operator.post(url, data=body, content_type="application/json").json()["results"]
    replay_seconds = time.perf_counter() - started
    assert all(r["replayed"] for r in replay)
    assert Attendance.objects.filter(sitting=offline).count() == records_count
    return {
        "records": records_count,
        "online_seconds": online_seconds,
        "sync_seconds": sync_seconds,
        "replay_seconds": replay_seconds,
    }


def main():
    args = parse_args()
    os.environ.setdefault("MEDIA_ROOT", str(MEDIA / "store"))
    os.environ.setdefault("LUNXUN_TERMINAL_SYNC_RATE", "1000/m")
    MEDIA.mkdir(parents=True, exist_ok=True)
    from _setup import django_with_fresh_db, machine, result_row, write_results

    django_with_fresh_db("terminal")
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's hosts and e-mail, as in tests
    world = build(args)
    package = bench_package(world)
    sync = bench_sync(world, args.records)

    mb = 1024 * 1024
    overhead = 100.0 * (package["package_bytes"] - package["media_bytes"]) / package["media_bytes"]
    per_online = 1000 * sync["online_seconds"] / sync["records"]
    per_sync = 1000 * sync["sync_seconds"] / sync["records"]
    print(f"machine: {machine()}")
    print(
        f"package: {package['lessons']} lessons x {args.minutes} min at 360p, "
        f"{package['files']} files: {package['package_bytes'] / mb:.1f} MB in "
        f"{package['package_seconds']:.2f} s; the rung's files alone "
        f"{package['media_bytes'] / mb:.1f} MB in {package['files_seconds']:.2f} s; "
        f"overhead {overhead:.4f} % (manifest {package['manifest_bytes']:,} bytes)"
    )
    print(
        f"sync: {sync['records']:,} offline records in {sync['sync_seconds']:.2f} s "
        f"({per_sync:.2f} ms each; replayed: {sync['replay_seconds']:.2f} s); "
        f"{sync['records']:,} online check-ins in {sync['online_seconds']:.2f} s "
        f"({per_online:.2f} ms each)"
    )
    rows = [
        result_row(
            f"package of a sitting: {package['lessons']} lessons x {args.minutes} min at 360p "
            f"({package['files']} files)",
            round(package["package_bytes"] / mb, 1),
            "MB",
            baseline=round(package["media_bytes"] / mb, 1),
            baseline_label="the rung's files alone",
            notes=f"manifest {package['manifest_bytes']:,} bytes",
        ),
        result_row(
            "package overhead over the media",
            round(overhead, 4),
            "%",
            target=f"<= {TARGET_OVERHEAD:g} %",
            met=overhead <= TARGET_OVERHEAD,
        ),
        result_row(
            "building and downloading the package",
            round(package["package_seconds"], 2),
            "s",
            baseline=round(package["files_seconds"], 2),
            baseline_label="downloading the rung's files alone",
        ),
        result_row(
            f"sync of {sync['records']:,} offline records (one request)",
            round(sync["sync_seconds"], 2),
            "s",
            baseline=round(sync["online_seconds"], 2),
            baseline_label=f"{sync['records']:,} online check-ins",
            target=f"<= {TARGET_SYNC_SECONDS:g} s",
            met=sync["sync_seconds"] <= TARGET_SYNC_SECONDS,
        ),
        result_row(
            "per record: offline sync vs online check-in",
            round(per_sync, 2),
            "ms",
            baseline=round(per_online, 2),
            baseline_label="per online check-in",
            target="no slower than online",
            met=per_sync <= per_online,
        ),
        result_row(
            f"the same {sync['records']:,} records sent again (all answered 'already received')",
            round(sync["replay_seconds"], 2),
            "s",
        ),
    ]
    write_results(
        "terminal",
        rows,
        title="Site terminals: the package and the offline sync",
        data=f"3 lessons x {args.minutes} min, 360p rung at 600+64 kbit/s CBR; "
        f"{sync['records']:,} members; {machine()}",
        notes=[
            "media: ffmpeg still testsrc 640x360 10 fps, libx264 ultrafast CBR 600k "
            "(nal-hrd=cbr) + 64k AAC, 6 s HLS segments as courses.video writes the rung; "
            "three copies",
            "downloads through Django's test client in one process (no network)",
        ],
    )
    met = overhead <= TARGET_OVERHEAD and sync["sync_seconds"] <= TARGET_SYNC_SECONDS
    return 0 if met and per_sync <= per_online else 1


if __name__ == "__main__":
    sys.exit(main())

"""Backup and restore: a backup of a running instance, restored by ``manage.py restore`` in
another process into an empty instance (a new SQLite file or a new PostgreSQL database, and new
media storage), holds every member, progress row, attendance record and certificate, with the
same bytes in every file; what cannot be restored safely is refused before anything is written."""

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
import time_machine
from auditlog.models import LogEntry
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import translation

from certificates import services as certificate_services
from certificates.models import Certificate
from core.backup import _walk
from courses.models import LessonProgress
from members.models import Member
from rounds import services as round_services
from rounds.models import Attendance

from .. import factories
from ..rounds import builders

pytestmark = pytest.mark.django_db(transaction=True)

VIDEO_BYTES = os.urandom(3 * 1024 * 1024 + 17)  # more than one copy chunk
MARK = "SNAPSHOT:"


def snapshot(video_names=()):
    """What a restore must bring back: the key rows by id with their fields, and the bytes of
    the certificate PDFs and of the given video-storage files. Run here and, through
    ``manage.py shell``, in the restored instance."""
    from django.contrib.auth import get_user_model

    def when(value):
        return value.isoformat() if value else None

    def pdf(certificate):
        if not certificate.pdf:
            return None
        with certificate.pdf.open("rb") as handle:
            return base64.b64encode(handle.read()).decode()

    video = storages["video"]
    return {
        "users": [
            list(row)
            for row in get_user_model()
            .objects.order_by("pk")
            .values_list("pk", "username", "password", "is_active")
        ],
        "members": [
            [m.pk, m.user_id, m.name, m.phone, m.organization.code, m.status, m.is_active]
            for m in Member.objects.select_related("organization").order_by("pk")
        ],
        "progress": [
            [
                p.pk,
                p.member_id,
                p.lesson_id,
                p.segments,
                p.watched_seconds,
                when(p.completed_at),
                str(p.hours_earned),
            ]
            for p in LessonProgress.objects.order_by("pk")
        ],
        "attendance": [
            [a.pk, a.sitting_id, a.member_id, a.status, a.method, when(a.recorded_at)]
            for a in Attendance.objects.order_by("pk")
        ],
        "certificates": [
            [
                c.pk,
                c.number,
                c.code,
                c.member_id,
                c.round_id,
                c.state,
                str(c.hours),
                c.pdf.name,
                pdf(c),
            ]
            for c in Certificate.objects.order_by("pk")
        ],
        "video": {
            name: base64.b64encode(video.open(name, "rb").read()).decode() for name in video_names
        },
    }


@pytest.fixture
def media(settings, tmp_path):
    """This instance's media in a folder of the test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def data(city, media):
    """A round in progress: online progress, a group session with check-ins, certificates with
    a rendered PDF, and one file in the video storage."""
    extra = [factories.member(city.branch_a, name=f"党员{i}") for i in range(3)]
    training_round = builders.training_round([city.root])
    lessons = list(training_round.lessons.order_by("pk"))
    for lesson in lessons:
        builders.complete_online(city.member_a, lesson)
    builders.complete_online(extra[0], lessons[0])
    sitting = builders.sitting(builders.session(training_round, city.branch_b))
    with time_machine.travel(sitting.start + timedelta(minutes=20), tick=False):
        round_services.check_in(member=city.member_b, sitting=sitting)
        round_services.check_in(member=extra[1], sitting=sitting)
    issued = certificate_services.certificates_issue(
        training_round=training_round, user=city.trainer, render=False
    )
    certificate = Certificate.objects.get(pk=issued.ids[0])
    pdf = certificate_services.certificate_pdf(certificate=certificate)
    video_name = storages["video"].save(
        f"videos/hls/{uuid.uuid4().hex}/720p/segment00001.ts", ContentFile(VIDEO_BYTES)
    )
    assert LessonProgress.objects.count() == 3
    assert Attendance.objects.count() == 2
    assert Certificate.objects.count() == 3
    return {"certificate": certificate, "pdf_name": pdf.name, "video_name": video_name}


@pytest.fixture
def empty_instance(tmp_path):
    """The environment of a new, empty instance for ``manage.py``: the test settings with its
    own var directory and media root, and a new SQLite file or a new database created on the
    same PostgreSQL server (dropped afterwards)."""
    var = tmp_path / "restored"
    var.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "LUNXUN_VAR_DIR": str(var),
        # The test settings derive MEDIA_ROOT from the var directory; the same place either way.
        "MEDIA_ROOT": str(var / "test-media"),
    }
    if connection.vendor == "postgresql":
        name = f"lunxun_restore_{uuid.uuid4().hex[:12]}"
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = urlunsplit(
            urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}")
        )
        yield env
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(var / "new.sqlite3")
        yield env


def manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def shell_json(env, code):
    """Run ``code`` (an expression) in ``manage.py shell`` of ``env``; its value, via JSON."""
    result = manage(env, "shell", "-c", f"import json; print({MARK!r} + json.dumps({code}))")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith(MARK))
    return json.loads(line[len(MARK) :])


def target_state():
    """The tables of this instance's database and the files of its storages."""
    return {
        "tables": connection.introspection.table_names(),
        "media": {alias: list(_walk(storages[alias])) for alias in ("default", "video")},
    }


def in_instance(env, call):
    """The value of ``call`` (a call of a function of this module) in the instance of ``env``."""
    return shell_json(env, f"__import__('tests.core.test_backup').core.test_backup.{call}")


def make_backup(tmp_path):
    archive = tmp_path / "backup.tar"
    out = io.StringIO()
    call_command("backup", "-o", str(archive), stdout=out)
    assert str(archive) in out.getvalue()
    return archive


def read_manifest(archive):
    with tarfile.open(archive) as tar:
        return json.load(tar.extractfile("manifest.json"))


def test_restore_into_an_empty_instance_brings_back_every_row_and_file(
    data, tmp_path, empty_instance
):
    archive = make_backup(tmp_path)
    expected = json.loads(json.dumps(snapshot([data["video_name"]])))
    assert expected["certificates"][0][-1] is not None  # the PDF is in the comparison

    manifest = read_manifest(archive)
    assert manifest["database"]["vendor"] == connection.vendor
    assert manifest["counts"] == {
        "members.member": Member.objects.count(),
        "courses.lessonprogress": 3,
        "rounds.attendance": 2,
        "certificates.certificate": 3,
        "auth.user": len(expected["users"]),
    }
    assert "0001_initial" in manifest["migrations"]["members"]
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        stored_pdf = tar.extractfile(f"media/default/{data['pdf_name']}").read()
    assert f"media/default/{data['pdf_name']}" in names
    video_entries = [
        item
        for entry in manifest["media"].values()
        for item in entry["files"]
        if item["name"] == data["video_name"]
    ]
    assert video_entries == [
        {
            "name": data["video_name"],
            "size": len(VIDEO_BYTES),
            "sha256": hashlib.sha256(VIDEO_BYTES).hexdigest(),
        }
    ]
    with data["certificate"].pdf.open("rb") as handle:
        assert stored_pdf == handle.read()
    record = LogEntry.objects.get(additional_data__event="backup_created")
    assert record.additional_data["path"] == str(archive)
    assert record.additional_data["counts"] == manifest["counts"]

    result = manage(empty_instance, "restore", str(archive))
    assert result.returncode == 0, result.stderr + result.stdout
    restored = in_instance(empty_instance, f"snapshot([{data['video_name']!r}])")
    assert restored == expected
    assert len(restored["members"]) == Member.objects.count() == 5


def test_restore_refuses_a_database_that_is_not_empty_and_changes_nothing(data, tmp_path, media):
    archive = make_backup(tmp_path)
    before = snapshot([data["video_name"]])
    files_before = sorted(path.relative_to(media) for path in media.rglob("*"))
    for extra in ([], ["--force"]):
        with translation.override("en"), pytest.raises(CommandError, match="not empty"):
            call_command("restore", str(archive), *extra, stdout=io.StringIO())
    assert snapshot([data["video_name"]]) == before
    assert sorted(path.relative_to(media) for path in media.rglob("*")) == files_before


def test_a_tampered_archive_is_refused_before_anything_is_written(data, tmp_path, empty_instance):
    archive = make_backup(tmp_path)
    member_name = f"media/default/{data['pdf_name']}"
    with tarfile.open(archive) as tar:
        offset = tar.getmember(member_name).offset_data + 200
    with open(archive, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))

    result = manage(empty_instance, "restore", str(archive))
    assert result.returncode == 1
    assert member_name in result.stderr
    assert in_instance(empty_instance, "target_state()") == {
        "tables": [],
        "media": {"default": [], "video": []},
    }


def test_restore_into_storage_holding_the_same_names_needs_force_which_replaces_them(
    data, tmp_path, empty_instance
):
    archive = make_backup(tmp_path)
    clash = tmp_path / "restored" / "test-media" / data["pdf_name"]
    clash.parent.mkdir(parents=True)
    clash.write_bytes(b"an older file")

    refused = manage(empty_instance, "restore", str(archive))
    assert refused.returncode == 1
    assert data["pdf_name"] in refused.stderr and "--force" in refused.stderr
    assert clash.read_bytes() == b"an older file"

    forced = manage(empty_instance, "restore", str(archive), "--force")
    assert forced.returncode == 0, forced.stderr
    with data["certificate"].pdf.open("rb") as handle:
        assert clash.read_bytes() == handle.read()
    assert [path.name for path in clash.parent.iterdir()] == [clash.name]  # nothing renamed


def rewrite_manifest(archive, target, change, renames=None):
    """A copy of ``archive`` with its manifest passed through ``change`` and members renamed."""
    renames = renames or {}
    with tarfile.open(archive) as source, tarfile.open(target, "w") as copy:
        for member in source.getmembers():
            content = source.extractfile(member)
            if member.name == "manifest.json":
                data = json.dumps(change(json.load(content))).encode()
                member.size, content = len(data), io.BytesIO(data)
            member.name = renames.get(member.name, member.name)
            copy.addfile(member, content)
    return target


def test_restore_refuses_another_database_engine_and_a_newer_schema(data, tmp_path):
    archive = make_backup(tmp_path)
    files = {"sqlite": "database/db.sqlite3", "postgresql": "database/db.dump"}
    other = "postgresql" if connection.vendor == "sqlite" else "sqlite"

    def other_engine(manifest):
        manifest["database"].update(vendor=other, file=files[other])
        return manifest

    crossed = rewrite_manifest(
        archive,
        tmp_path / "crossed.tar",
        other_engine,
        renames={files[connection.vendor]: files[other]},
    )
    with translation.override("en"), pytest.raises(CommandError) as refused:
        call_command("restore", str(crossed), stdout=io.StringIO())
    assert "across database engines is not supported" in str(refused.value)

    def newer(manifest):
        manifest["migrations"]["members"].append("9999_from_the_future")
        return manifest

    future = rewrite_manifest(archive, tmp_path / "future.tar", newer)
    with translation.override("en"), pytest.raises(CommandError) as refused:
        call_command("restore", str(future), stdout=io.StringIO())
    assert "members.9999_from_the_future" in str(refused.value)


def storage_layout(settings, default, video):
    settings.STORAGES = {
        "default": default,
        "video": video,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return storages["default"], storages["video"]


def archived_media(archive):
    """{member name: bytes} of the media in ``archive``, and the manifest's media part."""
    with tarfile.open(archive) as tar:
        files = {
            member.name: tar.extractfile(member).read()
            for member in tar.getmembers()
            if member.name.startswith("media/")
        }
    return files, read_manifest(archive)["media"]


def test_each_storage_is_archived_once_even_when_one_lives_inside_the_other(
    city, settings, media, tmp_path
):
    default, video = storage_layout(
        settings,
        {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": media / "public", "base_url": "/media/public/"},
        },
    )
    default.save("certificates/2026/a.pdf", ContentFile(b"%PDF private"))
    video.save("videos/hls/x/master.m3u8", ContentFile(b"#EXTM3U"))

    with time_machine.travel("2026-11-12 09:30:00+08:00", tick=False):
        call_command("backup", "-o", str(tmp_path), stdout=io.StringIO())
    archive = tmp_path / "lunxun-backup-20261112-093000.tar"
    assert archive.stat().st_mode & 0o777 == 0o600  # personal data: the owner's only
    files, manifest = archived_media(archive)
    assert files == {
        "media/default/certificates/2026/a.pdf": b"%PDF private",
        "media/video/videos/hls/x/master.m3u8": b"#EXTM3U",
    }
    assert manifest["video"]["files"] == [
        {
            "name": "videos/hls/x/master.m3u8",
            "size": 7,
            "sha256": hashlib.sha256(b"#EXTM3U").hexdigest(),
        }
    ]

    with (
        time_machine.travel("2026-11-12 09:30:00+08:00", tick=False),
        translation.override("en"),
        pytest.raises(CommandError, match="already exists"),
    ):
        call_command("backup", "-o", str(tmp_path), stdout=io.StringIO())


def test_media_on_s3_are_read_through_the_storage_api(city, settings, media, tmp_path):
    from moto import mock_aws

    s3 = {
        "bucket_name": "lunxun-backup-test",
        "region_name": "us-east-1",
        "access_key": "testing",
        "secret_key": "testing",
        "file_overwrite": False,
    }
    with mock_aws():
        import boto3

        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=s3["bucket_name"])
        default, video = storage_layout(
            settings,
            {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**s3, "location": "private"}},
            {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**s3, "location": "public"}},
        )
        default.save("certificates/2026/b.pdf", ContentFile(b"%PDF on s3"))
        video.save("videos/hls/y/720p/segment00001.ts", ContentFile(VIDEO_BYTES))
        archive = make_backup(tmp_path)
    files, manifest = archived_media(archive)
    assert files == {
        "media/default/certificates/2026/b.pdf": b"%PDF on s3",
        "media/video/videos/hls/y/720p/segment00001.ts": VIDEO_BYTES,
    }
    assert [item["sha256"] for item in manifest["video"]["files"]] == [
        hashlib.sha256(VIDEO_BYTES).hexdigest()
    ]


def test_an_archive_naming_a_file_outside_its_storage_is_refused(city, media, tmp_path):
    storages["default"].save("certificates/2026/c.pdf", ContentFile(b"%PDF"))
    archive = make_backup(tmp_path)

    def escape(manifest):
        manifest["media"]["default"]["files"][0]["name"] = "../../escaped.pdf"
        return manifest

    crafted = rewrite_manifest(
        archive,
        tmp_path / "crafted.tar",
        escape,
        renames={"media/default/certificates/2026/c.pdf": "media/default/../../escaped.pdf"},
    )
    with translation.override("en"), pytest.raises(CommandError, match="unsafe file name"):
        call_command("restore", str(crafted), stdout=io.StringIO())
    assert not (media.parent / "escaped.pdf").exists()

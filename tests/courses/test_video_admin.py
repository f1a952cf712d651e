"""Trainers upload videos in the admin; the worker transcodes them; failures can be retried."""

from pathlib import Path

import pytest
from django.core.files.storage import default_storage, storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from courses.models import LessonPage, LessonVideo

from .builders import course
from .clips import make_clip


@pytest.fixture
def trainer_client(city, client_for):
    return client_for(city.trainer)


def upload(client, name, data):
    return client.post(
        reverse("wagtailmedia:add", args=["video"]),
        {"title": "上传的视频", "file": SimpleUploadedFile(name, data), "collection": 1},
    )


def test_trainer_uploads_a_video_and_the_worker_makes_the_ladder(
    trainer_client, tmp_path, django_capture_on_commit_callbacks
):
    clip = make_clip(tmp_path / "讲座 第一讲.mp4")
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(trainer_client, clip.name, clip.read_bytes())
    assert response.status_code == 302, response.content.decode()[-2000:]
    video = LessonVideo.objects.get()
    assert video.state == LessonVideo.State.READY, video.failure_reason
    assert "讲座" not in video.file.name  # stored under a generated name
    assert video.file.name.startswith("videos/sources/")
    assert video.duration == pytest.approx(4, abs=0.2)
    assert storages["video"].exists(video.master_playlist)
    assert storages["video"].exists(video.audio_playlist)
    assert storages["video"].exists(video.poster)
    assert video.progress == 100
    status = trainer_client.get(reverse("lesson_video_status", args=[video.pk])).json()
    assert status["state"] == "ready"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("lecture.mp4", "这不是视频，只是改了扩展名的文字。".encode()),
        ("lecture.mp4", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"),
        ("lecture.mp4", b"<!DOCTYPE html><html><script>alert(1)</script></html>"),
    ],
)
def test_bad_uploads_are_refused_before_storing(trainer_client, name, data):
    before = (
        set(default_storage.listdir("videos/sources")[1])
        if default_storage.exists("videos/sources")
        else set()
    )
    response = upload(trainer_client, name, data)
    assert response.status_code == 200
    assert "不是视频" in response.content.decode()
    assert not LessonVideo.objects.exists()
    after = (
        set(default_storage.listdir("videos/sources")[1])
        if default_storage.exists("videos/sources")
        else set()
    )
    assert after == before


def test_truncated_mp4_is_refused(trainer_client, tmp_path):
    clip = make_clip(tmp_path / "full.mp4", seconds=6)
    data = clip.read_bytes()
    response = upload(trainer_client, "cut.mp4", data[: len(data) // 3])
    assert response.status_code == 200
    assert not LessonVideo.objects.exists()


def test_failed_processing_shows_why_and_can_be_retried(
    trainer_client, tmp_path, django_capture_on_commit_callbacks
):
    clip = make_clip(tmp_path / "a.mp4")
    with django_capture_on_commit_callbacks(execute=True):
        upload(trainer_client, "a.mp4", clip.read_bytes())
    video = LessonVideo.objects.get()
    # The source disappears from storage (a broken disk, a bad copy): processing fails.
    Path(video.file.path).write_bytes(b"broken")
    from courses.services import video_process

    failed = video_process(video_id=video.pk)
    assert failed.state == LessonVideo.State.FAILED
    assert failed.failure_reason
    page = trainer_client.get(reverse("wagtailmedia:edit", args=[video.pk])).content.decode()
    assert "重新处理" in page
    Path(video.file.path).write_bytes(clip.read_bytes())
    with django_capture_on_commit_callbacks(execute=True):
        trainer_client.post(reverse("lesson_video_reprocess", args=[video.pk]))
    video.refresh_from_db()
    assert video.state == LessonVideo.State.READY
    assert video.attempts == 3  # upload, the failed run, the retry


def test_a_member_cannot_see_video_admin(city, client_for):
    video = LessonVideo.objects.create(title="x", type="video", file="videos/sources/x.mp4")
    response = client_for(city.member_a.user).get(reverse("lesson_video_status", args=[video.pk]))
    assert response.status_code in (302, 403, 404)


def test_import_videos_reports_each_file_and_fails_on_any_refusal(
    city, tmp_path, capsys, django_capture_on_commit_callbacks
):
    target = course(title="档案讲座", slug="archive")
    good = make_clip(tmp_path / "第一讲.mp4")
    bad = tmp_path / "第二讲.mp4"
    bad.write_text("not a video")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CommandError):
        call_command("import_videos", str(good), str(bad), "--course", "archive")
    out = capsys.readouterr()
    assert "OK" in out.out and "第一讲.mp4" in out.out
    assert "REFUSED" in out.err and "第二讲.mp4" in out.err
    video = LessonVideo.objects.get()
    assert video.state == LessonVideo.State.READY
    assert LessonPage.objects.child_of(target).get().video == video


def test_trainer_can_publish_courses_under_the_course_centre(trainer_client):
    from courses.models import CourseIndexPage

    index = CourseIndexPage.objects.get()
    response = trainer_client.get(
        reverse("wagtailadmin_pages:add", args=["courses", "coursepage", index.pk])
    )
    assert response.status_code == 200
    response = trainer_client.post(
        reverse("wagtailadmin_pages:add", args=["courses", "coursepage", index.pk]),
        {
            "title": "新课程",
            "slug": "new-course",
            "summary": "简介",
            "lecturer": "",
            "action-publish": "publish",
        },
    )
    assert response.status_code == 302
    from courses.models import CoursePage

    assert CoursePage.objects.child_of(index).live().filter(slug="new-course").exists()

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from courses.models import CoursePage, LessonPage
from courses.services import video_create_from_path
from courses.video import VideoRejected


class Command(BaseCommand):
    help = (
        "Load lecture videos from disk through the same checks and pipeline as an upload. "
        "With --course SLUG, each video also becomes a lesson (a draft page) of that course. "
        "Exits non-zero if any file was refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help="video files, or folders of them")
        parser.add_argument("--course", help="slug of the course to add lessons to")

    def handle(self, *args, paths, course=None, **options):
        course_page = None
        if course:
            course_page = CoursePage.objects.filter(slug=course).first()
            if course_page is None:
                raise CommandError(f"No course with slug {course!r}.")
        files = []
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                files.extend(sorted(p for p in path.iterdir() if p.is_file()))
            elif path.is_file():
                files.append(path)
            else:
                self.stderr.write(f"REFUSED {path}: no such file")
                files.append(None)
        refused = sum(1 for f in files if f is None)
        for path in filter(None, files):
            try:
                with transaction.atomic():
                    video = video_create_from_path(path=path)
                    if course_page is not None:
                        lesson = LessonPage(title=video.title, video=video, live=False)
                        course_page.add_child(instance=lesson)
                        lesson.save_revision()
            except VideoRejected as error:
                refused += 1
                self.stderr.write(f"REFUSED {path}: {error}")
                continue
            self.stdout.write(
                f"OK      {path}: {video.duration:.0f} s, {video.width}x{video.height}, "
                f"queued for transcoding (video {video.pk})"
            )
        if refused:
            raise CommandError(f"{refused} file(s) refused.")

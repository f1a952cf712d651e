"""The demo course: short lessons whose videos ffmpeg generates at setup (a test pattern, a
tone and burned-in Chinese captions), uploaded through the same pipeline as any video."""

import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

from django.db import transaction

from members.models import Organization

from .models import CourseIndexPage, CoursePage, HomePage, LessonPage, LessonVideo, Topic
from .services import video_create_from_path

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
LESSONS = (
    ("第一课：党章的由来", "学习党章 第一课", 440),
    ("第二课：党员的权利和义务", "学习党章 第二课", 660),
    ("第三课：基层组织建设", "学习党章 第三课", 880),
)


def make_clip(path: Path, caption: str, tone: int, seconds: int = 20):
    """A small test video with a caption, written by ffmpeg."""
    drawtext = (
        f"drawtext=fontfile={FONT}:text='{caption}':fontsize=36:fontcolor=white:"
        "box=1:boxcolor=black@0.6:x=(w-text_w)/2:y=h-80"
    )
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=854x480:rate=25:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={tone}:duration={seconds}",
            "-vf",
            drawtext,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
    )


@transaction.atomic
def seed_demo_course() -> CourseIndexPage:
    """Course centre, one course, three video lessons (queued for the worker) and a lesson to
    read. Idempotent."""
    home = HomePage.objects.first()
    index = CourseIndexPage.objects.first()
    if index is None:
        index = CourseIndexPage(
            title="课程中心", slug="courses", intro="<p>全市党员远程教育课程。</p>"
        )
        home.add_child(instance=index)
    topic, _created = Topic.objects.get_or_create(slug="党章党规", defaults={"name": "党章党规"})
    course = CoursePage.objects.filter(slug="learn-party-constitution").first()
    if course is None:
        course = CoursePage(
            title="学习党章 做合格党员",
            slug="learn-party-constitution",
            summary="三节短课，了解党章的由来、党员的权利和义务、基层组织建设。",
            lecturer="市委党校 示范讲师",
            # The city's course: its trainers change it, the counties' use it.
            owner_organization=Organization.objects.filter(depth=1).order_by("path").first(),
        )
        index.add_child(instance=course)
        course.topics.add(topic)
        course.save_revision().publish()
    with tempfile.TemporaryDirectory() as work:
        for number, (title, caption, tone) in enumerate(LESSONS, start=1):
            slug = f"lesson-{number}"
            if LessonPage.objects.child_of(course).filter(slug=slug).exists():
                continue
            clip = Path(work) / f"demo-{number}.mp4"
            make_clip(clip, caption, tone)
            video = video_create_from_path(path=clip, title=title)
            # The demo clips last seconds; credit them as a real lesson would be.
            lesson = LessonPage(title=title, slug=slug, video=video, hours_override=Decimal("0.5"))
            course.add_child(instance=lesson)
            lesson.save_revision().publish()
    if not LessonPage.objects.child_of(course).filter(slug="reading-1").exists():
        # A lesson to read (读原著学原文): text, and a reading time instead of a video.
        reading = LessonPage(
            title="原文选读：《中国共产党章程》总纲",
            slug="reading-1",
            reading_minutes=10,
            body=[("text", READING_TEXT)],
        )
        course.add_child(instance=reading)
        reading.save_revision().publish()
    return index


READING_TEXT = (
    "<p>读原著、学原文、悟原理。请通读党章总纲，边读边思考：党章对党员提出了哪些基本要求？</p>"
    "<p>中国共产党是中国工人阶级的先锋队，同时是中国人民和中华民族的先锋队，是中国特色社会主义事业"
    "的领导核心，代表中国先进生产力的发展要求，代表中国先进文化的前进方向，代表中国最广大人民的"
    "根本利益。</p>"
    "<p>党的最高理想和最终目标是实现共产主义。</p>"
)


def demo_videos_pending():
    return LessonVideo.objects.exclude(state=LessonVideo.State.READY).count()

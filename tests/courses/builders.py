"""Course pages and videos for tests. Videos here are records only (no transcoding); the
pipeline has its own tests on real clips."""

from decimal import Decimal

from django.test import Client
from wagtail.models import Collection, Locale, Page, Site

from courses.models import CourseIndexPage, CoursePage, HomePage, LessonPage, LessonVideo


def home_page():
    """The home page the migrations create; rebuilt after a transactional test flushed it."""
    home = HomePage.objects.first()
    if home is not None:
        return home
    Locale.objects.get_or_create(language_code="zh-hans")
    root = Page.get_first_root_node() or Page.add_root(title="Root", slug="root")
    home = HomePage(title="轮训", slug="home")
    root.add_child(instance=home)
    Site.objects.update_or_create(
        is_default_site=True, defaults={"root_page": home, "hostname": "localhost"}
    )
    return home


def course_index():
    index = CourseIndexPage.objects.first()
    if index is None:
        index = CourseIndexPage(title="课程中心", slug="courses")
        home_page().add_child(instance=index)
    return index


def course(title="学习党章", **fields):
    page = CoursePage(
        title=title, slug=fields.pop("slug", None) or f"c{CoursePage.objects.count()}", **fields
    )
    course_index().add_child(instance=page)
    return page


def root_collection():
    """Wagtail's root collection, which a transactional test's flush removes."""
    return Collection.get_first_root_node() or Collection.add_root(name="Root")


def ready_video(duration=100.0, title="示范视频"):
    root_collection()
    return LessonVideo.objects.create(
        title=title,
        type="video",
        file="videos/sources/x.mp4",
        duration=duration,
        width=640,
        height=360,
        state=LessonVideo.State.READY,
        master_playlist="videos/hls/x/master.m3u8",
        audio_playlist="videos/hls/x/audio/index.m3u8",
        mp4_fallback="videos/hls/x/fallback.mp4",
        poster="videos/hls/x/poster.jpg",
    )


def lesson(parent=None, duration=100.0, hours=Decimal("0.5"), **fields):
    parent = parent or course()
    page = LessonPage(
        title=fields.pop("title", "第一课"),
        slug=fields.pop("slug", None) or f"l{LessonPage.objects.count()}",
        video=ready_video(duration),
        hours_override=hours,
        **fields,
    )
    parent.add_child(instance=page)
    return page


def session_of(member) -> str:
    """The key of a new login session of ``member``: a viewing is bound to the one that began it."""
    client = Client()
    client.force_login(member.user, backend="members.backends.PhoneOrUsernameBackend")
    return client.session.session_key

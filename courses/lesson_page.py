"""What a lesson page shows: its course, the course's lessons with the viewer's progress, and
the player's configuration. LessonPage.get_context asks here (a Wagtail page renders itself, so
this is the lesson's view, kept out of courses.models)."""

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from . import live, services
from .models import LessonPage, LiveStream, progress_by_lesson


def counting_member(request):
    """The member whose watching counts: an active member record, else None."""
    member = getattr(request.user, "member", None)
    return member if member is not None and member.is_active else None


def current_live(lesson: LessonPage) -> LiveStream | None:
    """The lesson's live lecture that the page is about: one not yet over, or one whose
    recording is still being processed. None once the replay plays like any lesson."""
    stream = LiveStream.objects.filter(lesson=lesson).order_by("-pk").first()
    if stream is None or stream.state == LiveStream.State.REPLAY:
        return None
    return services.live_expire(stream_id=stream.pk) or stream


def live_player_config(request, lesson: LessonPage, stream: LiveStream) -> dict:
    """The player in live mode: the live ladder, the lecture's viewing and status URLs."""
    config = player_config(request, lesson)
    watchable = stream.is_watchable
    config.update(
        {
            "ready": watchable,
            "live": True,
            "live_state": stream.state,
            "start_url": reverse("courses:live_viewing_start", args=[stream.pk]),
            "status_url": reverse("courses:live_status", args=[stream.pk]),
            "master_url": live.hls_url(stream.name) if watchable else "",
            "audio_url": live.audio_url(stream.name) if watchable else "",
            "mp4_url": "",
            "renditions": [],
            "captions_url": "",
            "poster_url": "",
        }
    )
    return config


def player_config(request, lesson: LessonPage) -> dict:
    """What the lesson page's player needs, serialised into the page with json_script."""
    video = lesson.video
    ready = video is not None and video.is_ready
    return {
        "live": False,
        "ready": ready,
        "start_url": reverse("courses:viewing_start", args=[lesson.pk]),
        "keepalive_url": reverse("courses:keepalive"),
        "master_url": video.master_url if ready else "",
        "audio_url": video.audio_url if ready else "",
        "mp4_url": video.mp4_url if ready else "",
        "renditions": video.renditions if ready else [],
        "captions_url": video.captions_url if ready else "",
        "poster_url": video.poster_url if ready else "",
        "title": lesson.title,
        "course": lesson.get_parent().title,
        "fixed_speed": settings.LUNXUN_FIXED_PLAYBACK_SPEED,
        "block_seek_ahead": settings.LUNXUN_BLOCK_SEEK_AHEAD,
        "report_seconds": settings.LUNXUN_PROGRESS_REPORT_SECONDS,
        "is_member": counting_member(request) is not None,
    }


def reading_context(request, lesson: LessonPage, progress) -> dict | None:
    """For a lesson to read: the rule in words, and where this member's reading stands."""
    if not lesson.is_reading:
        return None
    member = counting_member(request)
    open_here = (
        progress is not None
        and progress.viewing is not None
        and progress.viewing_session == request.session.session_key
    )
    return {
        "rule": services.reading_status_text(lesson, progress),
        "is_member": member is not None,
        "done": progress is not None and progress.completed_at is not None,
        "started": open_here,
        "ready_at": services.reading_ready_at(progress) if open_here else None,
    }


def lesson_context(request, lesson: LessonPage) -> dict:
    """The lesson page: its course, the course's lessons with progress, the player."""
    course = lesson.get_parent().specific
    lessons = list(course.lessons())
    progress = progress_by_lesson(request.user, lessons)
    stream = current_live(lesson)
    player = (
        live_player_config(request, lesson, stream) if stream else player_config(request, lesson)
    )
    status = services.status_text(progress.get(lesson.pk))
    if stream is not None and stream.is_watchable:
        status = services.live_status_text(progress.get(lesson.pk))
    return {
        "live": stream,
        "course": course,
        "lessons": lessons,
        "progress": progress,
        "status_text": status,
        "reading": reading_context(request, lesson, progress.get(lesson.pk)),
        "player": player,
        "player_text": {
            "superseded": _(
                "A lesson is playing on another page or device, so this page has stopped "
                "counting. Press play here to count here instead."
            ),
            "ended": _(
                "This page has stopped counting: your sign-in has ended or your account is no "
                "longer active. Sign in again, then reload this page."
            ),
            "no_seek_ahead": _("You cannot skip ahead past what you have watched."),
            "fixed_speed": _("Lessons play at normal speed."),
            "unavailable": _("This lesson cannot be played right now."),
            "rule_video": _(
                "Watching the video: time counts while this page is open in front of you. "
                "Switching apps or turning the screen off pauses it."
            ),
            "rule_audio": _(
                "Listening (audio only): it keeps playing and counting with the screen off or "
                "another app in front, at normal speed. Pausing stops the count."
            ),
            "listen": _("Listen only (keeps counting with the screen off)"),
            "watch": _("Back to the video"),
            "captions_on": _("Captions: on"),
            "captions_off": _("Captions: off"),
            "captions_label": _("Chinese"),
            "site": _("Lunxun training"),
            "live_interrupted": _(
                "The signal from the lecture hall was lost. Please wait: the lecture goes on "
                "here as soon as it is back."
            ),
            "live_over": _("The live lecture has ended. Its recording will be the lesson's video."),
            "live_no_seek_ahead": _("A live lecture cannot be skipped ahead."),
        },
    }

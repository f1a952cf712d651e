import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.middleware import session_free

from . import services
from .models import LessonPage, LessonProgress, progress_by_lesson


def _counting_member(request):
    """The member whose watching counts: an active member record, else None."""
    member = getattr(request.user, "member", None)
    return member if member is not None and member.is_active else None


def _member_or_404(request):
    member = _counting_member(request)
    if member is None:
        raise Http404
    return member


def player_config(request, lesson: LessonPage) -> dict:
    """What the lesson page's player needs, serialised into the page with json_script."""
    video = lesson.video
    ready = video is not None and video.is_ready
    return {
        "ready": ready,
        "start_url": reverse("courses:viewing_start", args=[lesson.pk]),
        "keepalive_url": reverse("courses:keepalive"),
        "master_url": video.master_url if ready else "",
        "audio_url": video.audio_url if ready else "",
        "mp4_url": video.mp4_url if ready else "",
        "renditions": video.renditions if ready else [],
        "fixed_speed": settings.LUNXUN_FIXED_PLAYBACK_SPEED,
        "block_seek_ahead": settings.LUNXUN_BLOCK_SEEK_AHEAD,
        "report_seconds": settings.LUNXUN_PROGRESS_REPORT_SECONDS,
        "is_member": _counting_member(request) is not None,
    }


def lesson_context(request, lesson: LessonPage) -> dict:
    """The lesson page: its course, the course's lessons with progress, the player."""
    course = lesson.get_parent().specific
    lessons = list(course.lessons())
    progress = progress_by_lesson(request.user, lessons)
    return {
        "course": course,
        "lessons": lessons,
        "progress": progress,
        "status_text": services.status_text(progress.get(lesson.pk)),
        "player": player_config(request, lesson),
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
        },
    }


def _progress_json(progress: LessonProgress) -> dict:
    return {
        "progress": progress.pk,
        "viewing": str(progress.viewing),
        "duration": progress.duration,
        "segments": progress.segments,
        "furthest": progress.furthest,
        "position": progress.last_position,
        "percent": progress.percent,
        "complete": progress.completed_at is not None,
        "status": services.status_text(progress),
        "report_url": reverse("courses:progress_report", args=[progress.pk]),
    }


@login_required
@require_POST
def viewing_start(request, lesson_id):
    """Start a viewing of a lesson, bound to this login session; any other viewing by this
    member, of whichever lesson, stops counting."""
    member = _member_or_404(request)
    lesson = get_object_or_404(LessonPage.objects.live().select_related("video"), pk=lesson_id)
    try:
        progress = services.progress_start(
            member=member, lesson=lesson, session_key=request.session.session_key
        )
    except services.LessonNotPlayable as error:
        return JsonResponse({"error": str(error)}, status=409)
    return JsonResponse(_progress_json(progress))


@session_free
@require_POST
def progress_report(request, progress_id):
    """A player's report, authenticated by its viewing token (see services.progress_report).

    Form-encoded, because sendBeacon can send that with the CSRF token in the body. No session
    or user is loaded on this path; only a rejected report asks whose progress it was, so a
    player of the same member hears 409 with the reason it stops counting (``superseded``:
    another viewing took over; ``ended``: the viewing's session ended or the member was
    deactivated) and anyone else, a signed-out player included, 404.
    """
    try:
        segments = json.loads(request.POST.get("segments", "[]"))
    except ValueError:
        return JsonResponse({"error": "segments"}, status=400)
    try:
        progress = services.progress_report(
            progress_id=progress_id,
            viewing=request.POST.get("viewing", ""),
            segments=segments,
            position=request.POST.get("position", 0),
        )
    except services.ViewingRejected as rejection:
        own = request.user.is_authenticated and (
            LessonProgress.objects.filter(pk=progress_id, member__user=request.user).exists()
        )
        if not own:
            raise Http404 from None
        reason = "ended" if isinstance(rejection, services.ViewingEnded) else "superseded"
        return JsonResponse({reason: True}, status=409)
    return JsonResponse(
        {
            "percent": progress.percent,
            "watched": progress.watched_seconds,
            "furthest": progress.furthest,
            "complete": progress.completed_at is not None,
            "status": services.status_text(progress),
        }
    )


@login_required
@require_POST
def keepalive(request):
    """The player calls this every few minutes while a lesson plays: watching is activity."""
    return HttpResponse(status=204)

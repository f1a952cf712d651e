import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.middleware import session_free

from . import services
from .lesson_page import counting_member
from .models import LessonPage, LessonProgress


def _member_or_404(request):
    member = counting_member(request)
    if member is None:
        raise Http404
    return member


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


def _reading_lesson(lesson_id):
    lesson = get_object_or_404(LessonPage.objects.live(), pk=lesson_id)
    if not lesson.is_reading:
        raise Http404
    return lesson


@login_required
@require_POST
def reading_start(request, lesson_id):
    """Start reading a lesson to read (读原著学原文): its reading time runs from now."""
    member = _member_or_404(request)
    lesson = _reading_lesson(lesson_id)
    services.reading_start(member=member, lesson=lesson, session_key=request.session.session_key)
    return redirect(lesson.url + "#reading")


@login_required
@require_POST
def reading_done(request, lesson_id):
    """The member says they have read it: counted once the reading time has passed."""
    member = _member_or_404(request)
    lesson = _reading_lesson(lesson_id)
    try:
        progress = services.reading_done(
            member=member, lesson=lesson, session_key=request.session.session_key
        )
    except services.ReadingRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, services.reading_status_text(lesson, progress))
    return redirect(lesson.url + "#reading")

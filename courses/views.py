import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.lean import FullStackNeeded, lean_path, on_lean_path
from core.middleware import session_free

from . import live, progress_state, services
from .lesson_page import counting_member
from .models import LessonPage, LessonProgress, LiveStream


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
        # Sent back with the first report, so that it needs no read (courses/progress_state.py).
        "state": progress_state.issue(progress),
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


def _rejected(request, progress_id, rejection):
    """A report that counted nothing: 409 with the reason to a player of the same member
    (``superseded``: another viewing took over; ``ended``: the viewing's session ended or the
    member was deactivated), 404 to anyone else, a signed-out player included."""
    own = request.user.is_authenticated and (
        LessonProgress.objects.filter(pk=progress_id, member__user=request.user).exists()
    )
    if not own:
        raise Http404
    reason = "ended" if isinstance(rejection, services.ViewingEnded) else "superseded"
    return JsonResponse({reason: True}, status=409)


@lean_path
# No CSRF check: the write is authorised by the viewing token in the body, never by the
# session cookie (a cross-site page cannot know the token; with it, cookies add nothing). The
# cookie is read only to choose between 404 and 409 for a report that wrote nothing.
@csrf_exempt
@session_free
@require_POST
def progress_report(request, progress_id):
    """A player's report, authenticated by its viewing token (see services.progress_report).

    Form-encoded, so sendBeacon can send it. Answered on the lean path (core/lean.py): no
    session, user or CSRF check. Only a rejected report asks whose progress it was, through
    the whole middleware stack, so a player of the same member hears 409 with the reason it
    stops counting (``superseded``: another viewing took over; ``ended``: the viewing's
    session ended or the member was deactivated) and anyone else, a signed-out player
    included, 404.
    """
    rejected = getattr(request, "lean_handoff", None)
    if isinstance(rejected, services.ViewingRejected):
        return _rejected(request, progress_id, rejected)
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
            request=request,
            state=request.POST.get("state", ""),
        )
    except services.ViewingRejected as rejection:
        if on_lean_path(request):
            raise FullStackNeeded(rejection) from None  # nothing was written
        return _rejected(request, progress_id, rejection)
    return JsonResponse(
        {
            "percent": progress.percent,
            "watched": progress.watched_seconds,
            "furthest": progress.furthest,
            "complete": progress.completed_at is not None,
            "status": services.status_text(progress),
            # The row as this report left it, for the next report (courses/progress_state.py).
            "state": progress_state.issue(progress),
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


# --- Live lectures --------------------------------------------------------------------------


@session_free
@csrf_exempt
@require_POST
def live_publish(request):
    """nginx-rtmp's on_publish: may this push go on air? Only with the shared secret (nginx's
    own configuration carries it): otherwise 404, as if there were nothing here. A lecture's
    current key gets a redirect to the lecture's public stream name (nginx renames the stream:
    the key never shows in a file or a URL); anything else 403, and nginx drops the push."""
    if not live.callback_allowed(request.GET.get("secret", "")):
        raise Http404
    if request.POST.get("call", "publish") != "publish":
        return HttpResponse(status=403)
    try:
        stream = services.live_publish_begin(key=request.POST.get("name", ""))
    except services.LiveKeyRefused as refused:
        return HttpResponse(str(refused), status=403, content_type="text/plain")
    response = HttpResponse(status=302)
    response["Location"] = stream.name
    return response


@session_free
@csrf_exempt
@require_POST
def live_publish_done(request):
    """nginx-rtmp's on_publish_done: the push has gone (the stream is named by its public
    name here, after the redirect)."""
    if not live.callback_allowed(request.GET.get("secret", "")):
        raise Http404
    services.live_publish_end(name=request.POST.get("name", ""))
    return HttpResponse(status=200)


def _live_json(stream: LiveStream) -> dict:
    return {
        "state": stream.state,
        "status": stream.status_text,
        "watchable": stream.is_watchable,
        "ended": stream.state in LiveStream.ENDED,
    }


@login_required
def live_status(request, stream_id):
    """The lecture's state in words, which the live player asks every few seconds (a push
    gone past the grace period ends the lecture here too)."""
    stream = get_object_or_404(LiveStream, pk=stream_id)
    stream = services.live_expire(stream_id=stream.pk) or stream
    return JsonResponse(_live_json(stream))


@login_required
@require_POST
def live_viewing_start(request, stream_id):
    """Start watching a lecture live; any other viewing by this member stops counting."""
    member = _member_or_404(request)
    stream = get_object_or_404(LiveStream.objects.select_related("lesson"), pk=stream_id)
    try:
        progress = services.live_viewing_start(
            member=member, stream=stream, session_key=request.session.session_key
        )
    except services.LiveNotWatchable as error:
        return JsonResponse({"error": str(error), **_live_json(stream)}, status=409)
    data = _progress_json(progress)
    data["status"] = services.live_status_text(progress)
    data["report_url"] = reverse("courses:live_report", args=[stream.pk, progress.pk])
    return JsonResponse(data)


@session_free
@require_POST
def live_report(request, stream_id, progress_id):
    """A live player's report: the moments it played (see services.live_progress_report),
    authenticated by the viewing token like progress_report."""
    stream = get_object_or_404(LiveStream, pk=stream_id)
    try:
        played = json.loads(request.POST.get("segments", "[]"))
    except ValueError:
        return JsonResponse({"error": "segments"}, status=400)
    try:
        progress = services.live_progress_report(
            stream=stream,
            progress_id=progress_id,
            viewing=request.POST.get("viewing", ""),
            played=played,
            position=request.POST.get("position", 0),
        )
    except services.ViewingRejected as rejection:
        return _rejected(request, progress_id, rejection)
    return JsonResponse(
        {
            "watched": progress.watched_seconds,
            "complete": progress.completed_at is not None,
            "status": services.live_status_text(progress),
        }
    )

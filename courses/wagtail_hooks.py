"""Trainers see each video's processing state and progress in the admin, and can retry."""

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from wagtail import hooks
from wagtail.permissions import policy_registry

from .models import LessonVideo
from .services import video_schedule


def _video_for(request, video_id, action="change"):
    video = get_object_or_404(LessonVideo, pk=video_id)
    policy = policy_registry.get_by_type(LessonVideo)
    if not policy.user_has_permission_for_instance(request.user, action, video):
        raise Http404
    return video


def video_status(request, video_id):
    video = _video_for(request, video_id)
    return JsonResponse(
        {
            "state": video.state,
            "state_label": video.get_state_display(),
            "progress": video.progress,
            "failure_reason": video.failure_reason,
            "can_reprocess": video.can_reprocess,
        }
    )


@require_POST
def video_reprocess(request, video_id):
    video = _video_for(request, video_id)
    if not video.can_reprocess:
        messages.error(request, _("This video is being processed already."))
    else:
        video_schedule(video=video)
        messages.success(request, _("The video will be processed again."))
    return redirect("wagtailmedia:edit", video.pk)


@hooks.register("register_admin_urls")
def register_video_urls():
    return [
        path("lesson-videos/<int:video_id>/status/", video_status, name="lesson_video_status"),
        path(
            "lesson-videos/<int:video_id>/reprocess/",
            video_reprocess,
            name="lesson_video_reprocess",
        ),
    ]


@hooks.register("insert_global_admin_js")
def video_status_js():
    from django.templatetags.static import static
    from django.utils.html import format_html

    return format_html('<script src="{}" defer></script>', static("js/admin-video-status.js"))


@hooks.register("before_serve_document")
def documents_need_a_login(document, request):
    """Lesson attachments are for logged-in users, like the lesson pages that link them."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return None

"""The admin views of courses: a lesson video's processing state (polled by the edit page) and
"process again"."""

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
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

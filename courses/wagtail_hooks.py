"""Trainers see each video's processing state and progress in the admin, and can retry; lesson
attachments need a login. This module only registers: the views are in courses.admin_views."""

from django.contrib.auth.views import redirect_to_login
from django.templatetags.static import static
from django.urls import path
from django.utils.html import format_html
from wagtail import hooks

from . import admin_views


@hooks.register("register_admin_urls")
def register_video_urls():
    return [
        path(
            "lesson-videos/<int:video_id>/status/",
            admin_views.video_status,
            name="lesson_video_status",
        ),
        path(
            "lesson-videos/<int:video_id>/reprocess/",
            admin_views.video_reprocess,
            name="lesson_video_reprocess",
        ),
    ]


@hooks.register("insert_global_admin_js")
def video_status_js():
    return format_html('<script src="{}" defer></script>', static("js/admin-video-status.js"))


@hooks.register("before_serve_document")
def documents_need_a_login(document, request):
    """Lesson attachments are for logged-in users, like the lesson pages that link them."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return None

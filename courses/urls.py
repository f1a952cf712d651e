from django.urls import path

from . import views

app_name = "courses"

urlpatterns = [
    path("lessons/<int:lesson_id>/viewings/", views.viewing_start, name="viewing_start"),
    path("progress/<int:progress_id>/", views.progress_report, name="progress_report"),
    path("lessons/<int:lesson_id>/reading/", views.reading_start, name="reading_start"),
    path("lessons/<int:lesson_id>/reading/done/", views.reading_done, name="reading_done"),
    path("session/keepalive/", views.keepalive, name="keepalive"),
    path("live/callbacks/publish/", views.live_publish, name="live_publish"),
    path("live/callbacks/publish-done/", views.live_publish_done, name="live_publish_done"),
    path("live/<int:stream_id>/status/", views.live_status, name="live_status"),
    path("live/<int:stream_id>/viewings/", views.live_viewing_start, name="live_viewing_start"),
    path("live/<int:stream_id>/progress/<int:progress_id>/", views.live_report, name="live_report"),
]

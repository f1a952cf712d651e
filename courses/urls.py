from django.urls import path

from . import views

app_name = "courses"

urlpatterns = [
    path("lessons/<int:lesson_id>/viewings/", views.viewing_start, name="viewing_start"),
    path("progress/<int:progress_id>/", views.progress_report, name="progress_report"),
    path("lessons/<int:lesson_id>/reading/", views.reading_start, name="reading_start"),
    path("lessons/<int:lesson_id>/reading/done/", views.reading_done, name="reading_done"),
    path("session/keepalive/", views.keepalive, name="keepalive"),
]

from django.urls import path

from . import reminder_views

urlpatterns = [
    path("rounds/<int:round_pk>/remind/", reminder_views.remind, name="remind"),
    path("notices/", reminder_views.notice_list, name="notices"),
    path("notices/read/", reminder_views.notices_read, name="notices_read"),
]

from django.urls import path

from . import calendar_views

urlpatterns = [
    path("calendar/", calendar_views.month, name="calendar"),
    path("calendar/agenda/", calendar_views.agenda, name="calendar_agenda"),
    path("calendar/feed/", calendar_views.feed, name="calendar_feed"),
    path("calendar/feed/reset/", calendar_views.feed_reset, name="calendar_feed_reset"),
    path("ical/<str:token>.ics", calendar_views.ical_feed, name="ical_feed"),
]

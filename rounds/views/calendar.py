"""Calendar pages (month, agenda), the member's feed page, and the iCalendar feed itself."""

import calendar as pycalendar
from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from core.downloads import download_response
from members import access

from .. import calendar, ical
from ..models import CalendarFeed, day_start

AGENDA_DAYS = 60
MONTHS_SHOWN = range(1970, 2100)


def _month_from(request, today: date) -> date:
    """The first day of the month named by ?month=YYYY-MM; this month when absent or odd."""
    raw = request.GET.get("month", "")
    try:
        year, month = (int(part) for part in raw.split("-"))
        if year in MONTHS_SHOWN:
            return date(year, month, 1)
    except ValueError:
        pass
    return today.replace(day=1)


def _shift(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _active_member(user):
    member = access.member_of(user)
    return member if member is not None and member.is_active else None


def _own_member(request):
    member = _active_member(request.user)
    if member is None:
        raise Http404
    return member


@login_required
def month(request):
    today = timezone.localdate()
    first = _month_from(request, today)
    weeks = pycalendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    grid_start, grid_end = weeks[0][0], weeks[-1][-1]
    occurrences = calendar.occurrences_for_user(
        request.user, day_start(grid_start), day_start(grid_end + timedelta(days=1))
    )
    by_day = dict(calendar.group_by_day(occurrences))
    days = [
        {
            "date": day,
            "in_month": day.month == first.month,
            "is_today": day == today,
            "items": by_day.get(day, []),
        }
        for week in weeks
        for day in week
    ]
    return render(
        request,
        "rounds/calendar/month.html",
        {
            "month_start": first,
            "weekdays": [WEEKDAYS_ABBR[i] for i in range(7)],
            "days": days,
            "month_has_sessions": any(d["items"] for d in days if d["in_month"]),
            "previous_month": _shift(first, -1).strftime("%Y-%m"),
            "next_month": _shift(first, 1).strftime("%Y-%m"),
            "is_this_month": first == today.replace(day=1),
            "is_member": _active_member(request.user) is not None,
        },
    )


@login_required
def agenda(request):
    now = timezone.now()
    occurrences = calendar.occurrences_for_user(
        request.user, now, day_start(timezone.localdate(now) + timedelta(days=AGENDA_DAYS))
    )
    return render(
        request,
        "rounds/calendar/agenda.html",
        {
            "days": calendar.group_by_day(occurrences),
            "today": timezone.localdate(now),
            "agenda_days": AGENDA_DAYS,
            "is_member": _active_member(request.user) is not None,
        },
    )


@never_cache
@login_required
def feed(request):
    member = _own_member(request)
    subscription = ical.feed_for(member)
    https_url = request.build_absolute_uri(reverse("rounds:ical_feed", args=[subscription.token]))
    webcal_url = "webcal://" + https_url.split("://", 1)[1]
    return render(
        request,
        "rounds/calendar/feed.html",
        {"feed": subscription, "https_url": https_url, "webcal_url": webcal_url},
    )


@login_required
@require_POST
def feed_reset(request):
    member = _own_member(request)
    ical.feed_reset(feed=ical.feed_for(member), request=request)
    messages.success(
        request, _("Your calendar link has been replaced. The old link no longer works.")
    )
    return redirect("rounds:calendar_feed")


def ical_feed(request, token):
    """The feed a phone calendar subscribes to: no login, the token is the key."""
    subscription = (
        CalendarFeed.objects.select_related("member__user", "member__organization")
        .filter(token=token)
        .first()
    )
    if subscription is None or not subscription.member.is_active:
        raise Http404
    member = subscription.member
    if not member.user.is_active:
        raise Http404
    body = ical.member_ics(
        member=member,
        feed=subscription,
        url=request.build_absolute_uri(reverse("rounds:calendar_agenda")),
    )
    response = download_response(
        body, filename="lunxun.ics", content_type="text/calendar; charset=utf-8", inline=True
    )
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response

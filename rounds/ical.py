"""A member's personal iCalendar feed of their group sessions.

One VEVENT per session, not per occurrence: a recurring session carries its recurrence rule
(RRULE with UNTIL), its cancelled occurrences (EXDATE) and its moved ones (a VEVENT with the
same UID and a RECURRENCE-ID), so a phone calendar shows every occurrence django-scheduler
shows. Times carry TZID Asia/Shanghai with its VTIMEZONE.
"""

from datetime import UTC, timedelta

from django.conf import settings
from django.db import transaction
from django.template.defaultfilters import floatformat
from django.utils import timezone
from django.utils.translation import gettext as _
from icalendar import Calendar, Event

from core.audit import audit_event

from .calendar import sessions_for_member, with_calendar_data
from .models import CalendarFeed

PRODID = "-//Lunxun//Group sessions//ZH"
REFRESH = timedelta(hours=1)
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# dateutil's rrule arguments (as django-scheduler passes them) and their RFC 5545 names.
# ``byeaster`` has no iCalendar equivalent and is left out.
RRULE_PARTS = {
    "interval": "INTERVAL",
    "count": "COUNT",
    "wkst": "WKST",
    "bysetpos": "BYSETPOS",
    "bymonth": "BYMONTH",
    "bymonthday": "BYMONTHDAY",
    "byyearday": "BYYEARDAY",
    "byweekno": "BYWEEKNO",
    "byweekday": "BYDAY",
    "byhour": "BYHOUR",
    "byminute": "BYMINUTE",
    "bysecond": "BYSECOND",
}


def feed_for(member) -> CalendarFeed:
    """The member's feed, created on first need."""
    feed, _created = CalendarFeed.objects.get_or_create(member=member)
    return feed


def feed_reset(*, feed: CalendarFeed, request=None) -> CalendarFeed:
    """Give the feed a new token: the old address stops working at once."""
    with transaction.atomic():
        feed.token = CalendarFeed._meta.get_field("token").get_default()
        feed.save(update_fields=["token"])
        audit_event(event="calendar_feed_reset", obj=feed, actor=feed.member.user, request=request)
    return feed


def _weekday(value) -> str:
    """MO…SU from dateutil's weekday (with its ordinal, e.g. +1TU) or a number 0–6."""
    if isinstance(value, int):
        return WEEKDAYS[value]
    n = getattr(value, "n", None)
    return f"{n:+d}{WEEKDAYS[value.weekday]}" if n else WEEKDAYS[value.weekday]


def recurrence(event) -> dict | None:
    """The RRULE of a django-scheduler event, from the same parameters it gives dateutil."""
    if event.rule is None:
        return None
    rule = {"FREQ": event.rule.frequency}
    # _event_params() is the rule's get_params() as django-scheduler adjusts it to the start;
    # it is exactly what get_occurrences() feeds dateutil, so both calendars agree.
    for key, value in event._event_params().items():
        part = RRULE_PARTS.get(key)
        if part is None:
            continue
        values = list(value) if isinstance(value, list | tuple | set) else [value]
        if key in ("byweekday", "wkst"):
            values = [_weekday(v) for v in values]
        rule[part] = values if len(values) > 1 else values[0]
    if event.end_recurring_period and "COUNT" not in rule:
        # django-scheduler ends a series before end_recurring_period; UNTIL is inclusive.
        rule["UNTIL"] = (event.end_recurring_period - timedelta(seconds=1)).astimezone(UTC)
    return rule


def _local(moment):
    return timezone.localtime(moment)


def _hours(value) -> str:
    return floatformat(value, -1)


def _fill(vevent: Event, session, url: str):
    vevent.add("summary", session.title)
    place = " · ".join(p for p in (session.location.strip(), session.host.name) if p)
    vevent.add("location", place)
    lines = [
        _("Round: %(title)s") % {"title": session.round.title}
        if session.round_id
        else _("Group study outside a training")
    ]
    lessons = list(session.lessons.all())
    if lessons:
        lines.append(_("Lessons shown:"))
        lines.extend(f"- {lesson.title}" for lesson in lessons)
    lines.append(_("Study hours: %(hours)s") % {"hours": _hours(session.hours)})
    if session.live_stream_id:
        stream = session.live_stream
        lines.append(
            _("Live lecture (直播课堂): watch it at the site or on the lesson's page: %(status)s")
            % {"status": stream.status_text}
        )
    if session.event.description.strip():
        lines.append(session.event.description.strip())
    vevent.add("description", "\n".join(lines))
    if url:
        vevent.add("url", url)


def session_vevents(session, *, stamp, url: str = "") -> list[Event]:
    """The VEVENTs of one session: the series (or the single event) and any moved occurrences.

    A single event whose only occurrence was cancelled yields nothing.
    """
    event = session.event
    uid = f"session-{session.pk}@lunxun"
    persisted = list(event.occurrence_set.all())
    start, end = event.start, event.end
    overrides = []
    exdates = []
    if event.rule is None:
        for occurrence in persisted:
            if occurrence.original_start == event.start:
                if occurrence.cancelled:
                    return []
                start, end = occurrence.start, occurrence.end
    else:
        for occurrence in sorted(persisted, key=lambda o: o.original_start):
            if occurrence.cancelled:
                exdates.append(_local(occurrence.original_start))
            elif occurrence.moved:
                overrides.append(occurrence)
        # RFC 5545 counts DTSTART as the first instance; dateutil (and so django-scheduler)
        # does not when the start does not match the rule.
        first = next(iter(event.get_rrule_object(timezone.get_current_timezone())), None)
        if first is None or first != timezone.make_naive(event.start):
            exdates.append(_local(event.start))
    master = Event()
    master.add("uid", uid)
    master.add("dtstamp", stamp)
    master.add("dtstart", _local(start))
    master.add("dtend", _local(end))
    master.add("last-modified", event.updated_on.astimezone(UTC))
    _fill(master, session, url)
    rule = recurrence(event)
    if rule:
        master.add("rrule", rule)
    if exdates:
        master.add("exdate", sorted(set(exdates)))
    vevents = [master]
    for occurrence in overrides:
        moved = Event()
        moved.add("uid", uid)
        moved.add("dtstamp", stamp)
        moved.add("recurrence-id", _local(occurrence.original_start))
        moved.add("dtstart", _local(occurrence.start))
        moved.add("dtend", _local(occurrence.end))
        _fill(moved, session, url)
        vevents.append(moved)
    return vevents


def member_calendar(*, member, feed: CalendarFeed, url: str = "") -> Calendar:
    """The member's calendar: every session that concerns them, past and future.

    ``url``: an address shown with each event (the calendar page), if any.
    """
    calendar = Calendar.new(
        name=_("Lunxun · %(name)s") % {"name": member.name},
        prodid=PRODID,
        method="PUBLISH",
        refresh_interval=REFRESH,
        uid=f"lunxun-feed-{feed.pk}",
    )
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-timezone", settings.TIME_ZONE)
    calendar.add("x-published-ttl", "PT1H")
    stamp = timezone.now().astimezone(UTC).replace(microsecond=0)
    sessions = with_calendar_data(sessions_for_member(member)).order_by("event__start", "pk")
    earliest = None
    for session in sessions:
        for vevent in session_vevents(session, stamp=stamp, url=url):
            calendar.add_component(vevent)
        day = _local(session.event.start).date()
        earliest = day if earliest is None else min(earliest, day)
    if earliest is not None:
        calendar.add_missing_timezones(first_date=earliest - timedelta(days=1))
    return calendar


def member_ics(*, member, feed: CalendarFeed, url: str = "") -> bytes:
    return member_calendar(member=member, feed=feed, url=url).to_ical()

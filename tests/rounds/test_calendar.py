"""Calendar pages (month, agenda), the upcoming snippet, and the personal iCalendar feed."""

import re
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import icalendar
import pytest
import time_machine
from dateutil.rrule import rrulestr
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members.models import Role
from members.services import role_assign
from rounds.calendar import occurrences_between, sessions_for_member, upcoming_for_user
from rounds.models import CalendarFeed, Round

from . import builders
from .builders import aware

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOV_1 = aware(2026, 11, 1, 10, 0)


@pytest.fixture
def plan(city):
    """A published round over the whole city with sessions at four levels of the tree."""
    training_round = builders.training_round([city.root])
    sessions = {
        "branch_a": builders.session(
            training_round,
            city.branch_a,
            title="幸福社区集中学习",
            start=aware(2026, 11, 12, 9, 0),
            location="社区活动室",
            hours=Decimal("1.5"),
        ),
        "branch_b": builders.session(
            training_round, city.branch_b, title="红旗村集中学习", start=aware(2026, 11, 13, 9, 0)
        ),
        "county_a": builders.session(
            training_round, city.county_a, title="城关区集中收看", start=aware(2026, 11, 18, 14, 30)
        ),
        "city": builders.session(
            training_round, city.root, title="全市专题报告会", start=aware(2026, 11, 20, 9, 0)
        ),
    }
    return city, training_round, sessions


def titles_in(html, sessions):
    return {key for key, session in sessions.items() if session.title in html}


def feed_url(client, member):
    """The member's feed address, as the feed page creates it."""
    response = client.get(reverse("rounds:calendar_feed"))
    assert response.status_code == 200
    token = CalendarFeed.objects.get(member=member).token
    return reverse("rounds:ical_feed", args=[token])


def parse(body):
    return icalendar.Calendar.from_ical(body)


def unfolded(body: bytes) -> str:
    return body.decode("utf-8").replace("\r\n ", "").replace("\r\n\t", "")


def raw_vevent(body: bytes, uid: str) -> list[str]:
    """The lines of the master VEVENT with ``uid``, read from the raw text (no icalendar)."""
    for block in re.findall(r"BEGIN:VEVENT\r\n(.*?)END:VEVENT", unfolded(body), re.S):
        lines = block.split("\r\n")
        if f"UID:{uid}" in lines and not any(x.startswith("RECURRENCE-ID") for x in lines):
            return [line for line in lines if line]
    raise AssertionError(f"no VEVENT {uid}")


# --- Pages -----------------------------------------------------------------------------------


def test_month_shows_the_members_sessions_and_not_another_countys(plan, client_for):
    city, _round, sessions = plan
    html = client_for(city.member_a.user).get("/calendar/?month=2026-11").content.decode()
    assert titles_in(html, sessions) == {"branch_a", "county_a", "city"}
    other = client_for(city.member_b.user).get("/calendar/?month=2026-11").content.decode()
    assert titles_in(other, sessions) == {"branch_b", "city"}


def test_month_places_sessions_on_their_local_day(plan, client_for):
    city, _round, _sessions = plan
    response = client_for(city.member_a.user).get("/calendar/?month=2026-11")
    by_day = {d["date"]: [o.session.title for o in d["items"]] for d in response.context["days"]}
    assert by_day[date(2026, 11, 12)] == ["幸福社区集中学习"]
    assert by_day[date(2026, 11, 18)] == ["城关区集中收看"]
    assert by_day[date(2026, 11, 13)] == []  # branch B's session is not hers
    # The grid runs Monday to Sunday around November 2026 (1 November is a Sunday).
    assert response.context["days"][0]["date"] == date(2026, 10, 26)
    assert response.context["previous_month"] == "2026-10"
    assert response.context["next_month"] == "2026-12"


def test_month_in_another_month_shows_nothing_and_says_so(plan, client_for):
    city, _round, sessions = plan
    html = client_for(city.member_a.user).get("/calendar/?month=2027-02").content.decode()
    assert titles_in(html, sessions) == set()
    assert "cal-empty" in html


def test_month_with_a_bad_parameter_falls_back_to_this_month(plan, client_for):
    city, _round, _sessions = plan
    with time_machine.travel(NOV_1, tick=False):
        for value in ("nonsense", "2026-13", "99999-01", "2026-11-05"):
            response = client_for(city.member_a.user).get("/calendar/", {"month": value})
            assert response.status_code == 200
            assert response.context["month_start"] == date(2026, 11, 1)


def test_pages_render_in_chinese_by_default(plan, client_for):
    city, _round, _sessions = plan
    html = client_for(city.member_a.user).get("/calendar/?month=2026-11").content.decode()
    assert '<html lang="zh-hans">' in html
    assert "2026年11月" in html  # the month heading
    assert "星期四" in html  # 12 November 2026 is a Thursday
    with time_machine.travel(NOV_1, tick=False):
        agenda = client_for(city.member_a.user).get("/calendar/agenda/").content.decode()
    assert "11月12日 星期四" in agenda


def test_agenda_lists_upcoming_sessions_with_lessons_and_hours(plan, client_for):
    city, training_round, sessions = plan
    with time_machine.travel(NOV_1, tick=False):
        response = client_for(city.member_a.user).get("/calendar/agenda/")
    html = response.content.decode()
    assert titles_in(html, sessions) == {"branch_a", "county_a", "city"}
    days = response.context["days"]
    assert [d for d, _items in days] == [date(2026, 11, 12), date(2026, 11, 18), date(2026, 11, 20)]
    assert "社区活动室" in html and city.branch_a.name in html
    assert ">1.5<" in html  # 学时 of the branch session
    for lesson in training_round.lessons.all():
        assert f'href="{lesson.url}"' in html
        assert lesson.title in html
    # A plain member gets no check-in and roll-call links.
    assert "/sessions/" not in html


def test_agenda_covers_sixty_days_and_keeps_a_session_in_progress(plan, client_for):
    city, _round, sessions = plan
    client = client_for(city.member_a.user)
    with time_machine.travel(aware(2026, 11, 12, 10, 0), tick=False):  # branch A's is running
        html = client.get("/calendar/agenda/").content.decode()
    assert titles_in(html, sessions) == {"branch_a", "county_a", "city"}
    with time_machine.travel(aware(2026, 9, 1, 10, 0), tick=False):  # 72 days before
        html = client.get("/calendar/agenda/").content.decode()
    assert titles_in(html, sessions) == set()
    assert "cal-empty" in html


def test_staff_see_their_subtree_and_the_levels_above_and_run_only_their_own(plan, client_for):
    city, _round, sessions = plan
    s = sessions
    with time_machine.travel(NOV_1, tick=False):
        html = client_for(city.secretary_a).get("/calendar/agenda/").content.decode()
        county = client_for(city.trainer_a).get("/calendar/agenda/").content.decode()
        whole = client_for(city.trainer).get("/calendar/agenda/").content.decode()
    assert titles_in(html, s) == {"branch_a", "county_a", "city"}
    assert titles_in(county, s) == {"branch_a", "county_a", "city"}
    assert titles_in(whole, s) == set(s)

    def link(key):
        return reverse("rounds:sitting_open", args=[s[key].pk, int(s[key].event.start.timestamp())])

    assert link("branch_a") in html
    assert link("county_a") not in html and link("city") not in html  # hosted above her branch
    assert link("branch_a") in county and link("county_a") in county
    assert all(link(key) in whole for key in s)


def test_a_member_who_is_also_staff_sees_both_sets(plan, client_for):
    city, _round, sessions = plan
    role_assign(user=city.member_a.user, role=Role.OPERATOR, organization=city.branch_b)
    with time_machine.travel(NOV_1, tick=False):
        html = client_for(city.member_a.user).get("/calendar/agenda/").content.decode()
    assert titles_in(html, sessions) == set(sessions)
    b = sessions["branch_b"]
    assert reverse("rounds:sitting_open", args=[b.pk, int(b.event.start.timestamp())]) in html
    a = sessions["branch_a"]
    assert reverse("rounds:sitting_open", args=[a.pk, int(a.event.start.timestamp())]) not in html


def test_staff_see_nothing_of_a_round_outside_their_subtree(city, client_for):
    county_b_round = builders.training_round([city.county_b], title="青山县专题轮训")
    builders.session(county_b_round, city.root, title="市里为青山县办的报告会")
    html = client_for(city.secretary_a).get("/calendar/?month=2026-11").content.decode()
    assert "市里为青山县办的报告会" not in html
    html = client_for(city.secretary_b).get("/calendar/?month=2026-11").content.decode()
    assert "市里为青山县办的报告会" in html


def test_a_weekly_session_shows_on_each_week_and_not_when_cancelled(city, client_for):
    training_round = builders.training_round([city.root])
    weekly = builders.session(
        training_round,
        city.branch_a,
        title="每周四夜校",
        start=aware(2026, 11, 5, 19, 30),
        recurrence="WEEKLY",
        until=date(2026, 11, 26),
    )
    client = client_for(city.member_a.user)

    def days_with_it():
        response = client.get("/calendar/?month=2026-11")
        return [
            d["date"].day
            for d in response.context["days"]
            if any(o.session.pk == weekly.pk for o in d["items"])
        ]

    assert days_with_it() == [5, 12, 19, 26]  # until 26 November, inclusive
    occurrence = weekly.event.get_occurrences(aware(2026, 11, 19), aware(2026, 11, 20))[0]
    occurrence.cancel()
    assert days_with_it() == [5, 12, 26]


def test_a_draft_rounds_sessions_do_not_appear(city, client_for):
    draft = builders.training_round([city.root], state=Round.State.DRAFT, title="草稿轮训")
    builders.session(draft, city.branch_a, title="草稿里的集中学习")
    client = client_for(city.member_a.user)
    html = client.get("/calendar/?month=2026-11").content.decode()
    assert "草稿里的集中学习" not in html
    html = client_for(city.trainer).get("/calendar/?month=2026-11").content.decode()
    assert "草稿里的集中学习" not in html
    body = Client().get(feed_url(client, city.member_a)).content
    assert parse(body).walk("VEVENT") == []


def test_pages_require_login(plan):
    for url in ("/calendar/", "/calendar/agenda/", "/calendar/feed/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert reverse("members:login") in response["Location"]


def test_upcoming_snippet(plan):
    city, _round, sessions = plan
    with time_machine.travel(NOV_1, tick=False):
        upcoming = upcoming_for_user(city.member_a.user, days=30, limit=2)
        html = render_to_string("rounds/calendar/_upcoming.html", {"upcoming": upcoming})
    assert [o.session.pk for o in upcoming] == [sessions["branch_a"].pk, sessions["county_a"].pk]
    assert upcoming[0].start == aware(2026, 11, 12, 9, 0)
    assert titles_in(html, sessions) == {"branch_a", "county_a"}
    assert reverse("rounds:calendar_agenda") in html
    empty = render_to_string("rounds/calendar/_upcoming.html", {"upcoming": []})
    assert "cal-upcoming-list" not in empty


# --- The iCalendar feed --------------------------------------------------------------------------


def test_feed_page_shows_webcal_and_https_links_and_creates_the_feed_once(plan, client_for):
    city, _round, _sessions = plan
    client = client_for(city.member_a.user)
    assert not CalendarFeed.objects.filter(member=city.member_a).exists()
    html = client.get("/calendar/feed/", secure=True).content.decode()
    token = CalendarFeed.objects.get(member=city.member_a).token
    assert len(token) >= 32
    assert f"webcal://testserver/ical/{token}.ics" in html
    assert f"https://testserver/ical/{token}.ics" in html
    client.get("/calendar/feed/")
    assert CalendarFeed.objects.filter(member=city.member_a).count() == 1
    assert CalendarFeed.objects.get(member=city.member_a).token == token


def test_feed_page_is_for_members_only(plan, client_for):
    city, _round, _sessions = plan
    assert client_for(city.secretary_a).get("/calendar/feed/").status_code == 404
    assert client_for(city.secretary_a).post("/calendar/feed/reset/").status_code == 404


def test_feed_parses_and_holds_exactly_the_members_sessions(plan, client_for):
    city, _round, sessions = plan
    url = feed_url(client_for(city.member_a.user), city.member_a)
    response = Client().get(url)  # a phone calendar: no login
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Cache-Control"] == "private, max-age=300"
    calendar = parse(response.content)
    assert "王芳" in str(calendar["X-WR-CALNAME"])
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Asia/Shanghai"]
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    expected = {key: sessions[key] for key in ("branch_a", "county_a", "city")}
    assert set(events) == {f"session-{s.pk}@lunxun" for s in expected.values()}
    branch = events[f"session-{sessions['branch_a'].pk}@lunxun"]
    assert branch["DTSTART"].params["TZID"] == "Asia/Shanghai"
    assert branch.decoded("DTSTART") == aware(2026, 11, 12, 9, 0)
    assert branch.decoded("DTEND") == aware(2026, 11, 12, 11, 0)
    assert str(branch["SUMMARY"]) == "幸福社区集中学习"
    assert str(branch["LOCATION"]) == f"社区活动室 · {city.branch_a.name}"
    description = str(branch["DESCRIPTION"])
    assert "第一课" in description and "第二课" in description and "1.5" in description
    assert "RRULE" not in branch
    assert "BEGIN:VTIMEZONE\r\nTZID:Asia/Shanghai" in response.content.decode()


def test_feed_unknown_token_and_inactive_member_are_404(plan, client_for):
    city, _round, _sessions = plan
    assert Client().get("/ical/not-a-real-token-at-all-0123456789.ics").status_code == 404
    url = feed_url(client_for(city.member_a.user), city.member_a)
    assert Client().get(url).status_code == 200
    city.member_a.is_active = False
    city.member_a.save(update_fields=["is_active"])
    assert Client().get(url).status_code == 404


def test_reset_link_replaces_the_token(plan, client_for):
    city, _round, _sessions = plan
    client = client_for(city.member_a.user)
    old = feed_url(client, city.member_a)
    assert client.get("/calendar/feed/reset/").status_code == 405  # POST only
    response = client.post("/calendar/feed/reset/")
    assert response.status_code == 302
    new = reverse("rounds:ical_feed", args=[CalendarFeed.objects.get(member=city.member_a).token])
    assert new != old
    assert Client().get(old).status_code == 404
    assert Client().get(new).status_code == 200
    assert new in client.get("/calendar/feed/").content.decode()


@pytest.mark.parametrize("kind", ["WEEKLY", "BIWEEKLY", "MONTHLY"])
def test_feed_recurrence_expands_to_django_schedulers_occurrences(city, client_for, kind):
    """Read back with dateutil from the raw text, the RRULE and EXDATE give exactly the
    occurrences django-scheduler gives, a cancelled one left out."""
    training_round = builders.training_round([city.root])
    series = builders.session(
        training_round,
        city.branch_a,
        title="党员夜校",
        start=aware(2026, 10, 8, 19, 30),
        recurrence=kind,
        until=date(2027, 3, 31),
    )
    period = (aware(2026, 9, 1), aware(2027, 6, 1))
    series.event.get_occurrences(*period)[1].cancel()
    expected = [o.start for o in series.event.get_occurrences(*period) if not o.cancelled]
    assert len(expected) >= 4
    assert expected[-1] <= aware(2027, 3, 31, 23, 59)

    body = Client().get(feed_url(client_for(city.member_a.user), city.member_a)).content
    lines = raw_vevent(body, f"session-{series.pk}@lunxun")
    wanted = [x for x in lines if x.split(":")[0].split(";")[0] in ("DTSTART", "RRULE", "EXDATE")]
    assert any(x.startswith("RRULE:") and "UNTIL=" in x for x in wanted)
    assert any(x.startswith("EXDATE;TZID=Asia/Shanghai:") for x in wanted)
    rules = rrulestr("\n".join(wanted), forceset=True, tzids={"Asia/Shanghai": SHANGHAI})
    assert list(rules.between(*period, inc=True)) == expected

    # And icalendar reads the same rule.
    event = next(e for e in parse(body).walk("VEVENT") if e["UID"] == f"session-{series.pk}@lunxun")
    assert event["RRULE"]["FREQ"] == [kind.replace("BI", "")]
    assert event["RRULE"].get("INTERVAL", [1]) == [2 if kind == "BIWEEKLY" else 1]


def test_feed_moved_occurrence_is_an_override_with_recurrence_id(city, client_for):
    training_round = builders.training_round([city.root])
    series = builders.session(
        training_round,
        city.branch_a,
        title="每周四夜校",
        start=aware(2026, 11, 5, 19, 30),
        recurrence="WEEKLY",
        until=date(2026, 11, 26),
    )
    third = series.event.get_occurrences(aware(2026, 11, 19), aware(2026, 11, 20))[0]
    third.move(aware(2026, 11, 20, 19, 30), aware(2026, 11, 20, 21, 30))
    period = (aware(2026, 11, 1), aware(2026, 12, 1))
    expected = sorted(o.start for o in series.event.get_occurrences(*period))
    assert aware(2026, 11, 20, 19, 30) in expected

    body = Client().get(feed_url(client_for(city.member_a.user), city.member_a)).content
    uid = f"session-{series.pk}@lunxun"
    events = [e for e in parse(body).walk("VEVENT") if e["UID"] == uid]
    master = next(e for e in events if "RECURRENCE-ID" not in e)
    overrides = {
        e.decoded("RECURRENCE-ID"): e.decoded("DTSTART") for e in events if e is not master
    }
    assert overrides == {aware(2026, 11, 19, 19, 30): aware(2026, 11, 20, 19, 30)}
    rules = rrulestr(
        "\n".join(x for x in raw_vevent(body, uid) if x.startswith(("DTSTART", "RRULE"))),
        forceset=True,
        tzids={"Asia/Shanghai": SHANGHAI},
    )
    starts = [overrides.get(s, s) for s in rules.between(*period, inc=True)]
    assert sorted(starts) == expected


def test_feed_leaves_out_a_cancelled_single_session(plan, client_for):
    city, _round, sessions = plan
    occurrence = sessions["branch_a"].event.get_occurrences(
        *(aware(2026, 11, 1), aware(2026, 12, 1))
    )
    occurrence[0].cancel()
    body = Client().get(feed_url(client_for(city.member_a.user), city.member_a)).content
    uids = {str(e["UID"]) for e in parse(body).walk("VEVENT")}
    assert f"session-{sessions['branch_a'].pk}@lunxun" not in uids
    assert f"session-{sessions['city'].pk}@lunxun" in uids


def test_occurrences_between_and_member_sessions_agree_with_the_scheduler(plan):
    city, _round, sessions = plan
    found = occurrences_between(
        sessions_for_member(city.member_b), aware(2026, 11, 1), aware(2026, 12, 1)
    )
    assert [(o.session.pk, o.start) for o in found] == [
        (sessions["branch_b"].pk, aware(2026, 11, 13, 9, 0)),
        (sessions["city"].pk, aware(2026, 11, 20, 9, 0)),
    ]
    assert all(
        o.start.tzinfo is not None and o.start.utcoffset() == timedelta(hours=8) for o in found
    )
    assert found[0].timestamp == int(aware(2026, 11, 13, 9, 0).timestamp())
    assert timezone.localtime(found[0].start).hour == 9

"""Across all of a member's lessons, never more credited seconds than wall-clock seconds.

One viewing at a time per member, whichever lesson: a new one supersedes the old. The member's
watch clock is not re-granted by opening viewings, and no report, however many, credits more
than the time that has passed. A viewing stops earning when its login session ends (logout,
expiry, deletion) or the member or their account is deactivated. Completion is judged by the
seconds watched, never by how far the playhead went.
"""

import json
import re
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from courses import services
from courses.models import LessonProgress

from .builders import course, lesson, session_of


@pytest.fixture
def lessons():
    parent = course()
    return [lesson(parent, duration=600, title=f"第{n}课") for n in range(1, 4)]


def start(member, page, session_key=None):
    key = session_key or session_of(member)
    return services.progress_start(member=member, lesson=page, session_key=key)


def report(progress, segments, position=0):
    return services.progress_report(
        progress_id=progress.pk, viewing=progress.viewing, segments=segments, position=position
    )


def credited(member) -> float:
    return sum(
        LessonProgress.objects.filter(member=member).values_list("watched_seconds", flat=True)
    )


# --- The clock is the member's, not the viewing's -----------------------------------------------


@pytest.mark.parametrize("alternate", [False, True], ids=["same-lesson", "alternating-lessons"])
def test_restarting_a_viewing_every_few_seconds_credits_no_more_than_the_clock(
    city, lessons, clock, alternate
):
    member = city.member_a
    session_key = session_of(member)
    for step in range(15):  # a new viewing every 4 s for a minute, each claiming everything
        page = lessons[step % 2] if alternate else lessons[0]
        progress = start(member, page, session_key)
        clock.shift(timedelta(seconds=4))
        report(progress, [[0, 600]], position=600)
    assert credited(member) == 60


def test_two_lessons_played_at_once_credit_no_more_than_the_clock(city, lessons, clock):
    member = city.member_a
    first = start(member, lessons[0])
    second = start(member, lessons[1])  # another tab: the first stops counting
    for elapsed in range(5, 61, 5):
        clock.shift(timedelta(seconds=5))
        with pytest.raises(services.ViewingSuperseded):
            report(first, [[0, elapsed]], position=elapsed)
        report(second, [[0, elapsed]], position=elapsed)
    assert LessonProgress.objects.get(pk=first.pk).watched_seconds == 0
    assert LessonProgress.objects.get(pk=second.pk).watched_seconds == 60
    assert credited(member) == 60


def test_the_older_page_hears_it_was_superseded(city, lessons, client_for, clock):
    client = client_for(city.member_a.user)
    first = client.post(reverse("courses:viewing_start", args=[lessons[0].pk])).json()
    second = client.post(reverse("courses:viewing_start", args=[lessons[1].pk])).json()
    clock.shift(timedelta(seconds=20))
    body = {"segments": "[[0, 20]]", "position": "20"}
    older = client.post(first["report_url"], {**body, "viewing": first["viewing"]})
    assert older.status_code == 409
    assert older.json() == {"superseded": True}
    newer = client.post(second["report_url"], {**body, "viewing": second["viewing"]})
    assert newer.json()["watched"] == 20
    assert credited(city.member_a) == 20


def test_two_over_claiming_reports_in_one_viewing_credit_no_more_than_real_time(
    city, lessons, clock
):
    progress = start(city.member_a, lessons[0])
    clock.shift(timedelta(seconds=30))
    assert report(progress, [[0, 600]], position=600).watched_seconds == 30
    clock.shift(timedelta(seconds=1))
    assert report(progress, [[0, 600]], position=600).watched_seconds == 31
    # Claiming other parts instead buys nothing either: the clock is spent.
    assert report(progress, [[300, 600]], position=600).watched_seconds == 31
    clock.shift(timedelta(seconds=9))
    assert report(progress, [[0, 20], [300, 600]]).watched_seconds == 40
    assert LessonProgress.objects.get(pk=progress.pk).segments == [[0.0, 31.0], [300.0, 309.0]]


def test_a_new_viewing_starts_where_the_last_credit_reached(city, lessons, clock):
    """Clocks of two servers may differ a little: a viewing opened on a server that is behind
    must not hand out the seconds the previous viewing was already credited for."""
    member = city.member_a
    first = start(member, lessons[0])
    ahead = timezone.now() + timedelta(seconds=10)
    LessonProgress.objects.filter(pk=first.pk).update(credited_until=ahead)
    second = start(member, lessons[1])
    assert second.viewing_started_at == ahead
    clock.shift(timedelta(seconds=10))
    assert report(second, [[0, 10]]).watched_seconds == 0
    clock.shift(timedelta(seconds=5))
    assert report(second, [[0, 15]]).watched_seconds == 5


def test_the_database_keeps_one_open_viewing_per_member(city, lessons):
    member = city.member_a
    first = start(member, lessons[0])
    second = start(member, lessons[1])
    assert LessonProgress.objects.filter(member=member, viewing__isnull=False).get() == second
    with pytest.raises(IntegrityError), transaction.atomic():
        LessonProgress.objects.filter(pk=first.pk).update(viewing=second.viewing)


# --- Completion -----------------------------------------------------------------------------------


def test_completion_is_judged_by_seconds_watched_not_by_the_furthest_point(
    city, lessons, clock, settings
):
    settings.LUNXUN_COMPLETION_THRESHOLD = 0.9
    progress = start(city.member_a, lessons[0])  # 600 s
    clock.shift(timedelta(seconds=10))
    report(progress, [[0, 10]], position=10)
    # Seek near the end and play a little: the playhead has been everywhere, the member has not.
    clock.shift(timedelta(seconds=20))
    result = report(progress, [[0, 10], [580, 600]], position=600)
    assert result.furthest == 600
    assert result.last_position == 600
    assert result.watched_seconds == 30
    assert result.completed_at is None
    assert LessonProgress.objects.get(pk=progress.pk).completed_at is None
    # Watching the rest in real time completes it at 90 % of the seconds.
    clock.shift(timedelta(seconds=510))
    done = report(progress, [[0, 520], [580, 600]], position=520)
    assert done.watched_seconds == 540
    assert done.completed_at is not None


def test_the_completing_report_keeps_its_seconds(city, lessons, clock, settings):
    """The report that completes a lesson stores its seconds and position with the completion."""
    settings.LUNXUN_COMPLETION_THRESHOLD = 0.9
    progress = start(city.member_a, lessons[0])  # 600 s
    clock.shift(timedelta(seconds=550))
    report(progress, [[0, 550]], position=550)
    stored = LessonProgress.objects.get(pk=progress.pk)
    assert (stored.watched_seconds, stored.segments, stored.last_position) == (
        550,
        [[0, 550]],
        550,
    )
    assert stored.completed_at is not None and stored.hours_earned > 0


@pytest.mark.parametrize("speed", [2.0, 0.5])
def test_the_permitted_speed_scales_the_credit_and_the_clock(city, lessons, clock, settings, speed):
    """With LUNXUN_MAX_PLAYBACK_SPEED at ``speed``, 20 s of wall clock credit 20 × speed
    seconds, and the member's clock moves on by the credited seconds ÷ speed."""
    settings.LUNXUN_MAX_PLAYBACK_SPEED = speed
    progress = start(city.member_a, lessons[0])
    began = LessonProgress.objects.get(pk=progress.pk).watch_clock
    clock.shift(timedelta(seconds=20))
    assert report(progress, [[0, 100]], position=100).watched_seconds == 20 * speed
    stored = LessonProgress.objects.get(pk=progress.pk)
    assert stored.credited_until == began + timedelta(seconds=20)


def test_a_position_before_the_start_is_kept_at_zero(city, lessons, clock):
    progress = start(city.member_a, lessons[0])
    clock.shift(timedelta(seconds=5))
    assert report(progress, [[0, 0.5]], position=0.5).last_position == 0.5
    assert report(progress, [[0, 0.5]], position=-3).last_position == 0


# --- A viewing ends with its sign-in ----------------------------------------------------------


@pytest.fixture
def playing(city, lessons, client_for, clock):
    """member_a's player on a lesson page, credited 20 s so far."""
    client = client_for(city.member_a.user)
    started = client.post(reverse("courses:viewing_start", args=[lessons[0].pk])).json()
    clock.shift(timedelta(seconds=20))

    def send(seconds, using=None):
        return (using or client).post(
            started["report_url"],
            {
                "viewing": started["viewing"],
                "segments": f"[[0, {seconds}]]",
                "position": str(seconds),
            },
        )

    assert send(20).json()["watched"] == 20
    clock.shift(timedelta(seconds=20))
    return client, send


def test_a_viewing_is_bound_to_the_session_that_started_it(city, playing):
    client, _send = playing
    progress = LessonProgress.objects.get(member=city.member_a)
    assert progress.viewing_session == client.session.session_key


def test_logging_out_stops_the_viewing_earning(city, playing, client_for):
    client, send = playing
    client.post(reverse("members:logout"))
    assert send(40).status_code == 404  # whoever this is now, the viewing is not theirs
    assert credited(city.member_a) == 20
    # Signed in again in the same browser: the old page is told why it stopped.
    again = client_for(city.member_a.user)
    response = send(40, using=again)
    assert response.status_code == 409
    assert response.json() == {"ended": True}
    assert credited(city.member_a) == 20


@pytest.mark.parametrize("engine", ["db", "cached_db", "cache"])
def test_a_viewing_ends_with_its_session_whatever_the_session_engine(
    city, lessons, client_for, clock, settings, engine
):
    settings.SESSION_ENGINE = f"django.contrib.sessions.backends.{engine}"
    client = client_for(city.member_a.user)
    started = client.post(reverse("courses:viewing_start", args=[lessons[0].pk])).json()
    body = {"viewing": started["viewing"], "position": "0"}
    clock.shift(timedelta(seconds=20))
    assert client.post(started["report_url"], {**body, "segments": "[[0, 20]]"}).status_code == 200
    client.post(reverse("members:logout"))
    clock.shift(timedelta(seconds=20))
    response = client.post(started["report_url"], {**body, "segments": "[[0, 40]]"})
    assert response.status_code == 404
    assert credited(city.member_a) == 20


def test_a_deactivated_member_stops_earning(city, playing):
    _client, send = playing
    city.member_a.is_active = False
    city.member_a.save()
    response = send(40)
    assert response.status_code == 409
    assert response.json() == {"ended": True}
    assert credited(city.member_a) == 20


def test_a_deactivated_account_stops_earning(city, playing):
    _client, send = playing
    city.member_a.user.is_active = False
    city.member_a.user.save()
    assert send(40).status_code == 404  # an inactive account is signed in no more
    assert credited(city.member_a) == 20


def test_a_deleted_session_stops_the_viewing_earning(city, playing):
    client, send = playing
    Session.objects.filter(session_key=client.session.session_key).delete()
    assert send(40).status_code == 404
    assert credited(city.member_a) == 20


def test_an_expired_session_stops_the_viewing_earning(city, playing, clock, settings):
    _client, send = playing
    # Paused long enough for the idle limit to end the session (reports do not renew it).
    clock.shift(timedelta(seconds=settings.SESSION_COOKIE_AGE))
    assert send(40).status_code == 404
    assert credited(city.member_a) == 20


def test_the_players_keepalive_keeps_a_long_viewing_earning(city, client_for, clock, settings):
    """A lesson longer than the idle limit: the player's keepalive renews the session."""
    minutes = settings.SESSION_COOKIE_AGE // 60 + 15
    page = lesson(duration=minutes * 60)
    client = client_for(city.member_a.user)
    started = client.post(reverse("courses:viewing_start", args=[page.pk])).json()
    for minute in range(1, minutes + 1):
        clock.shift(timedelta(minutes=1))
        seconds = minute * 60
        response = client.post(
            started["report_url"],
            {"viewing": started["viewing"], "segments": f"[[0, {seconds}]]", "position": seconds},
        )
        assert response.status_code == 200, minute
        if minute % 5 == 0:
            assert client.post(reverse("courses:keepalive")).status_code == 204
    assert response.json()["complete"]
    assert credited(city.member_a) == minutes * 60


def test_an_inactive_member_cannot_start_a_viewing(city, lessons, client_for):
    city.member_a.is_active = False
    city.member_a.save()
    client = client_for(city.member_a.user)
    response = client.post(reverse("courses:viewing_start", args=[lessons[0].pk]))
    assert response.status_code == 404
    assert client.get(lessons[0].url).context["player"]["is_member"] is False


# --- Under concurrency, on the real clock ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_racing_reports_and_a_new_viewing_never_credit_more_than_real_time(city):
    """Players of two lessons report as fast as they can, each claiming the whole lesson, while
    the member opens the second lesson: whatever interleaving the database allows, the seconds
    credited across both never exceed the seconds that passed."""
    member = city.member_a
    parent = course()
    first_page, second_page = (lesson(parent, duration=600, title=t) for t in ("一", "二"))
    session_key = session_of(member)
    began = time.monotonic()
    first = start(member, first_page, session_key)
    viewings = {"first": first}
    errors, outcomes = [], {"credited": 0, "refused": 0}
    lock = threading.Lock()
    stop_at = began + 2.0

    def player(name):
        try:
            while time.monotonic() < stop_at:
                progress = viewings.get(name)
                if progress is None:
                    time.sleep(0.01)
                    continue
                try:
                    report(progress, [[0, 600]], position=600)
                    outcome = "credited"
                except services.ViewingSuperseded:
                    outcome = "refused"
                with lock:
                    outcomes[outcome] += 1
        except Exception as error:  # collected and reported below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [
        threading.Thread(target=player, args=(name,)) for name in ["first"] * 3 + ["second"] * 2
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.7)
    viewings["second"] = start(member, second_page, session_key)
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    assert errors == []
    watched = {
        row.lesson_id: row.watched_seconds for row in LessonProgress.objects.filter(member=member)
    }
    assert watched[first_page.pk] > 0 and watched[second_page.pk] > 0, watched
    assert sum(watched.values()) <= elapsed, (watched, elapsed)
    assert outcomes["refused"] > 0  # the first lesson's player kept reporting, in vain
    assert outcomes["credited"] > 0


@pytest.mark.django_db(transaction=True)
def test_racing_starts_leave_one_open_viewing(city):
    """Several pages of one member opening lessons at the same moment: starts queue, and one
    viewing, the last to start, is open at the end."""
    member = city.member_a
    parent = course()
    pages = [lesson(parent, duration=60, title=f"并发{n}") for n in range(4)]
    session_key = session_of(member)
    errors = []
    barrier = threading.Barrier(len(pages))

    def opener(page):
        try:
            barrier.wait()
            for _ in range(5):
                start(member, page, session_key)
        except Exception as error:  # collected and reported below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=opener, args=(page,)) for page in pages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert LessonProgress.objects.filter(member=member).count() == len(pages)
    open_rows = LessonProgress.objects.filter(member=member, viewing__isnull=False)
    assert open_rows.count() == 1
    latest = LessonProgress.objects.filter(member=member).order_by("-viewing_started_at").first()
    assert open_rows.get() == latest


def test_the_page_gives_the_player_both_reasons_to_stop(city, lessons, client_for):
    page = client_for(city.member_a.user).get(lessons[0].url).content.decode()
    found = re.search(r'<script id="player-text" type="application/json">(.*?)</script>', page)
    text = json.loads(found.group(1))
    assert text["superseded"] and text["ended"]
    assert text["superseded"] != text["ended"]

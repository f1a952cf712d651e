"""Group study outside any training (党课, 集中学习 at a site): scheduled by a trainer like a
session, on the calendar of everyone at the site and below, with QR check-in and roll call,
and its 学时 in the ledger of those present."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from members.models import Member, Organization, Posting
from rounds import calendar, ledger, services
from rounds.models import Participation, Session

from .. import factories
from . import builders

pytestmark = pytest.mark.django_db


@pytest.fixture
def party_lecture(city):
    Organization.objects.filter(pk=city.branch_a.pk).update(is_site=True)
    city.branch_a.refresh_from_db()
    return services.session_save(
        training_round=None,
        title="七一党课",
        host=city.branch_a,
        start=builders.aware(2026, 7, 1, 9, 0),
        end=builders.aware(2026, 7, 1, 11, 0),
        hours=Decimal("2"),
    )


def test_group_study_is_on_the_calendar_of_those_at_the_site(city, party_lecture):
    away = factories.member(city.branch_b, name="外出务工", activity_organization=city.branch_a)
    assert party_lecture.is_group_study and party_lecture.round is None
    assert party_lecture.event.calendar.slug == "group-study"
    mine = set(calendar.sessions_for_member(city.member_a))
    assert mine == {party_lecture}
    assert set(calendar.sessions_for_member(away)) == {party_lecture}
    assert set(calendar.sessions_for_member(city.member_b)) == set()
    assert party_lecture in set(calendar.sessions_for_user(city.secretary_a))
    assert party_lecture not in set(calendar.sessions_for_user(city.secretary_b))


def test_check_in_and_roll_call_count_the_hours_of_those_present(city, party_lecture):
    sitting = builders.sitting(party_lecture)
    posted = factories.member(city.branch_b, name="第一书记")
    Posting.objects.create(
        member=posted,
        organization=city.branch_a,
        title="第一书记",
        starts_on=builders.aware(2026, 1, 1, 0, 0).date(),
    )
    with time_machine.travel(builders.aware(2026, 7, 1, 9, 5)):
        listed = set(services.roll_call_members(sitting).values_list("name", flat=True))
        assert listed == {"王芳", "第一书记"}
        result = services.check_in(member=city.member_a, sitting=sitting)
        assert result.created
        with pytest.raises(services.CheckInRefused):
            services.check_in(member=city.member_b, sitting=sitting)
        services.roll_call_save(
            sitting=sitting, marks={posted.pk: "present"}, user=city.secretary_a
        )
    for member in (city.member_a, posted):
        entries = ledger.ledger_entries(member=member, year=2026)
        assert [(e.kind, e.title, e.hours) for e in entries] == [
            ("session", "七一党课", Decimal("2"))
        ]
        assert entries[0].detail == "轮训以外的集中学习"
    assert ledger.ledger_total(member=city.member_b, year=2026) == 0
    # No training is touched: nobody gains a participation from it.
    assert not Participation.objects.exists()


def test_a_trainer_schedules_group_study_in_the_admin(city, client_for):
    Organization.objects.filter(pk=city.branch_a.pk).update(is_site=True)
    client = client_for(city.trainer)
    response = client.post(
        reverse("group_sessions:add"),
        {
            "round": "",
            "title": "十二月集中学习",
            "host": "A-01",
            "location": "党员活动室",
            "start": "2026-12-10 09:00",
            "end": "2026-12-10 11:00",
            "recurrence": "",
            "until": "",
            "lessons": [],
            "hours": "2",
            "description": "",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    session = Session.objects.get(event__title="十二月集中学习")
    assert session.round is None and session.hours == Decimal("2")
    index = client.get(reverse("group_sessions:index")).content.decode()
    assert "轮训以外的集中学习" in index
    edit = client.get(reverse("group_sessions:edit", args=[session.pk]))
    assert edit.status_code == 200
    # The member sees it on their calendar and in their iCalendar feed.
    page = client_for(city.member_a.user).get(reverse("rounds:calendar"), {"month": "2026-12"})
    assert "十二月集中学习" in page.content.decode()


def test_the_site_operator_opens_its_sitting(city, party_lecture, client_for):
    client = client_for(city.operator_a)
    start = party_lecture.event.start
    response = client.get(
        reverse("rounds:sitting_open", args=[party_lecture.pk, int(start.timestamp())])
    )
    assert response.status_code in (200, 302)
    sitting = party_lecture.sittings.get()
    page = client.get(reverse("rounds:roll_call", args=[sitting.pk])).content.decode()
    assert "王芳" in page and "李强" not in page
    outsider = client_for(city.secretary_b)
    assert outsider.get(reverse("rounds:roll_call", args=[sitting.pk])).status_code == 404
    assert Member.objects.count() >= 2 and start + timedelta(hours=2) == party_lecture.event.end

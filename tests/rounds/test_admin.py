"""Trainers manage rounds and group sessions in the Wagtail admin, within their scope."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from members.models import Organization
from rounds import services
from rounds.models import CoverageSnapshot, Participation, Round, Session

from . import builders

course_builders = builders.course_builders


@pytest.fixture
def lessons(db):
    course = course_builders.course("学习党章")
    return [
        course_builders.lesson(course, title="第一课"),
        course_builders.lesson(course, title="第二课"),
    ]


def round_data(lessons, **overrides):
    data = {
        "title": "2026年第四季度专题轮训",
        "kind": "quarterly",
        "theme": "学习贯彻党章",
        "opens_on": "2026-10-01",
        "closes_on": "2026-12-31",
        "makeup_deadline": "2027-01-31",
        "scope_roots": "A\nb-01",
        "statuses": ["full"],
        "positions": [],
        "lessons": [lesson.pk for lesson in lessons],
        "completion_rule": "either",
        "hours": "4",
        "state": "draft",
    }
    data.update(overrides)
    return data


def round_form_data(training_round, **overrides):
    """The edit form as the admin would post it back unchanged."""
    data = {
        "title": training_round.title,
        "kind": training_round.kind,
        "theme": training_round.theme,
        "opens_on": training_round.opens_on.isoformat(),
        "closes_on": training_round.closes_on.isoformat(),
        "makeup_deadline": training_round.makeup_deadline.isoformat(),
        "scope_roots": " ".join(o.code for o in training_round.scope_roots.all()),
        "statuses": training_round.statuses,
        "positions": training_round.positions,
        "new_in_position_months": training_round.new_in_position_months or "",
        "domains": training_round.domains,
        "categories": training_round.categories,
        "lessons": list(training_round.lessons.values_list("pk", flat=True)),
        "completion_rule": training_round.completion_rule,
        "hours": str(training_round.hours),
        "state": training_round.state,
    }
    data.update(overrides)
    return data


def site(organization):
    organization.is_site = True
    organization.save(update_fields=["is_site"])
    return organization


def session_data(training_round, host, **overrides):
    data = {
        "round": training_round.pk,
        "title": "11月集中学习",
        "host": host.code,
        "location": "党员活动室",
        "start": "2026-11-03 09:00",
        "end": "2026-11-03 11:00",
        "recurrence": "",
        "until": "",
        "lessons": list(training_round.lessons.values_list("pk", flat=True)),
        "hours": "2",
        "description": "",
    }
    data.update(overrides)
    return data


def errors_of(response):
    form = response.context["form"]
    return {name: " ".join(str(e) for e in errs) for name, errs in form.errors.items()}


# --- Rounds -------------------------------------------------------------------------------------


def test_trainer_creates_a_round_with_scope_by_codes_and_lessons(city, client_for, lessons):
    client = client_for(city.trainer)
    response = client.post(reverse("training_rounds:add"), round_data(lessons))
    assert response.status_code == 302, errors_of(response)
    created = Round.objects.get(title="2026年第四季度专题轮训")
    assert set(created.scope_roots.all()) == {city.county_a, city.branch_b}
    assert set(created.lessons.all()) == set(lessons)
    assert created.statuses == ["full"] and created.positions == []
    assert created.state == Round.State.DRAFT
    assert created.created_by == city.trainer
    assert created.calendar is not None and created.calendar.slug == f"round-{created.pk}"


def test_a_training_is_aimed_by_position_domain_and_category(city, client_for, lessons):
    """书记专题培训 for new village secretaries: the criteria are saved, shown in words on the
    round's page, and decide who is in scope."""
    from datetime import date

    from members.models import Member, Organization

    Organization.objects.filter(pk=city.branch_b.pk).update(domain="rural")
    Member.objects.filter(pk=city.member_b.pk).update(
        position="secretary", position_since=date(2026, 8, 1)
    )
    client = client_for(city.trainer)
    data = round_data(
        lessons,
        title="新任村书记专题培训",
        scope_roots="CITY",
        statuses=[],
        positions=["secretary"],
        new_in_position_months="6",
        domains=["rural"],
        categories=[],
    )
    response = client.post(reverse("training_rounds:add"), data)
    assert response.status_code == 302, errors_of(response)
    created = Round.objects.get(title="新任村书记专题培训")
    assert (created.positions, created.domains, created.new_in_position_months) == (
        ["secretary"],
        ["rural"],
        6,
    )
    assert list(created.members_in_scope()) == [Member.objects.get(pk=city.member_b.pk)]
    page = client.get(reverse("training_rounds:inspect", args=[created.pk])).content.decode()
    assert "在培训开始前 6 个月内任职" in page and "农村" in page
    assert "全体党员（正式党员和预备党员）" in page


def test_an_unknown_code_is_named_in_the_error(city, client_for, lessons):
    client = client_for(city.trainer)
    response = client.post(
        reverse("training_rounds:add"), round_data(lessons, scope_roots="A, X-9")
    )
    assert response.status_code == 200
    assert "X-9" in errors_of(response)["scope_roots"]
    assert not Round.objects.exists()


def test_county_trainer_cannot_put_another_county_in_scope(city, client_for, lessons):
    client = client_for(city.trainer_a)
    response = client.post(reverse("training_rounds:add"), round_data(lessons, scope_roots="A, B"))
    assert response.status_code == 200
    error = errors_of(response)["scope_roots"]
    assert "B" in error and "A," not in error
    assert not Round.objects.exists()
    response = client.post(reverse("training_rounds:add"), round_data(lessons, scope_roots="a-01"))
    assert response.status_code == 302
    assert list(Round.objects.get().scope_roots.all()) == [city.branch_a]


def test_county_trainer_sees_a_city_round_but_cannot_change_or_close_it(city, client_for):
    city_round = builders.training_round([city.root], title="全市专题轮训")
    other_county = builders.training_round([city.county_b], title="青山县专题轮训")
    own = builders.training_round([city.county_a], title="城关区专题轮训")
    client = client_for(city.trainer_a)
    listing = client.get(reverse("training_rounds:index")).content.decode()
    assert "全市专题轮训" in listing and "城关区专题轮训" in listing
    assert "青山县专题轮训" not in listing
    assert reverse("training_rounds:edit", args=[city_round.pk]) not in listing
    assert reverse("training_rounds:edit", args=[own.pk]) in listing
    assert client.get(reverse("training_rounds:inspect", args=[city_round.pk])).status_code == 200
    for name, pk in (
        ("training_rounds:edit", city_round.pk),
        ("training_rounds:close", city_round.pk),
        ("training_rounds:edit", other_county.pk),
        ("training_rounds:inspect", other_county.pk),
        ("training_rounds:history", other_county.pk),
    ):
        assert client.get(reverse(name, args=[pk])).status_code == 404, name
    response = client.post(
        reverse("training_rounds:edit", args=[city_round.pk]),
        round_form_data(city_round, scope_roots="A", title="改名"),
    )
    assert response.status_code == 404
    assert Round.objects.get(pk=city_round.pk).title == "全市专题轮训"
    assert client.get(reverse("training_rounds:edit", args=[own.pk])).status_code == 200


def test_list_filters_by_state_and_year(city, client_for):
    builders.training_round([city.root], title="今年的轮训")
    builders.training_round(
        [city.root],
        title="明年的草稿",
        opens_on=date(2027, 1, 1),
        closes_on=date(2027, 3, 31),
        makeup_deadline=date(2027, 4, 30),
        state=Round.State.DRAFT,
    )
    client = client_for(city.trainer)
    index = reverse("training_rounds:index")
    by_year = client.get(index, {"year": "2027"}).content.decode()
    assert "明年的草稿" in by_year and "今年的轮训" not in by_year
    by_state = client.get(index, {"state": "published"}).content.decode()
    assert "今年的轮训" in by_state and "明年的草稿" not in by_state


def test_list_counts_members_in_the_trainers_own_subtree(city, client_for):
    training_round = builders.training_round([city.root], title="全市专题轮训")
    builders.complete_online(city.member_a, training_round.lessons.order_by("pk")[0])
    builders.complete_online(city.member_a, training_round.lessons.order_by("pk")[1])
    assert Participation.objects.get(member=city.member_a).status == Participation.Status.COMPLETED
    county = client_for(city.trainer_a).get(reverse("training_rounds:index"))
    table = county.context["table"]
    row = next(iter(table.rows))
    assert (row.instance.admin_figures.in_scope, row.instance.admin_figures.completed) == (1, 1)
    table = client_for(city.trainer).get(reverse("training_rounds:index")).context["table"]
    figures = next(iter(table.rows)).instance.admin_figures
    assert (figures.in_scope, figures.completed) == (2, 1)


def test_changing_the_lessons_of_a_published_round_recomputes_statuses(city, client_for, lessons):
    training_round = builders.training_round([city.root], [lessons[0]])
    builders.complete_online(city.member_a, lessons[1])  # not required yet: nothing recorded
    assert not Participation.objects.filter(round=training_round).exists()
    client = client_for(city.trainer)
    response = client.post(
        reverse("training_rounds:edit", args=[training_round.pk]),
        round_form_data(training_round, lessons=[lessons[1].pk]),
    )
    assert response.status_code == 302, errors_of(response)
    row = Participation.objects.get(round=training_round, member=city.member_a)
    assert row.status == Participation.Status.COMPLETED


def test_publishing_a_draft_counts_what_members_already_did(city, client_for, lessons):
    training_round = builders.training_round([city.root], lessons, state=Round.State.DRAFT)
    for lesson in lessons:
        builders.complete_online(city.member_a, lesson)
    assert not Participation.objects.filter(round=training_round).exists()
    response = client_for(city.trainer).post(
        reverse("training_rounds:edit", args=[training_round.pk]),
        round_form_data(training_round, state="published"),
    )
    assert response.status_code == 302, errors_of(response)
    assert Participation.objects.get(member=city.member_a).status == Participation.Status.COMPLETED


def test_a_round_with_participants_cannot_go_back_to_draft(city, client_for):
    training_round = builders.training_round([city.root])
    builders.complete_online(city.member_a, training_round.lessons.first())
    response = client_for(city.trainer).post(
        reverse("training_rounds:edit", args=[training_round.pk]),
        round_form_data(training_round, state="draft"),
    )
    assert response.status_code == 200
    assert "state" in errors_of(response)
    assert Round.objects.get(pk=training_round.pk).state == Round.State.PUBLISHED


def test_dates_are_checked(city, client_for, lessons):
    response = client_for(city.trainer).post(
        reverse("training_rounds:add"),
        round_data(lessons, closes_on="2026-09-01"),
    )
    assert response.status_code == 200
    assert "closes_on" in errors_of(response)


# --- Planning the year --------------------------------------------------------------------------


def test_plan_the_year_creates_four_quarterly_drafts_once(city, client_for):
    client = client_for(city.trainer)
    assert (
        reverse("training_rounds:plan_year")
        in client.get(reverse("training_rounds:index")).content.decode()
    )
    data = {"year": "2027", "title": "专题轮训", "scope_roots": "CITY"}
    response = client.post(reverse("training_rounds:plan_year"), data)
    assert response.status_code == 302
    assert response["Location"].endswith("?year=2027")
    planned = list(Round.objects.order_by("opens_on"))
    assert [r.opens_on for r in planned] == [
        date(2027, 1, 1),
        date(2027, 4, 1),
        date(2027, 7, 1),
        date(2027, 10, 1),
    ]
    assert planned[0].closes_on == date(2027, 3, 31)
    event = planned[0].plan_event
    assert event is not None and event.rule is not None
    assert all(r.plan_event == event and r.state == Round.State.DRAFT for r in planned)
    assert all(list(r.scope_roots.all()) == [city.root] for r in planned)
    assert all(r.calendar is not None for r in planned)
    assert "2027" in planned[0].title and "专题轮训" in planned[0].title

    again = client.post(reverse("training_rounds:plan_year"), data, follow=True)
    assert again.status_code == 200
    assert Round.objects.count() == 4
    assert "2027" in again.content.decode()


def test_planned_rounds_close_at_the_end_of_their_quarter(city, client_for):
    client_for(city.trainer).post(
        reverse("training_rounds:plan_year"),
        {"year": "2027", "title": "专题轮训", "scope_roots": "CITY"},
    )
    assert [(r.opens_on, r.closes_on) for r in Round.objects.order_by("opens_on")] == [
        (date(2027, 1, 1), date(2027, 3, 31)),
        (date(2027, 4, 1), date(2027, 6, 30)),
        (date(2027, 7, 1), date(2027, 9, 30)),
        (date(2027, 10, 1), date(2027, 12, 31)),
    ]


def test_plan_the_year_is_for_the_city_level_only(city, client_for):
    client = client_for(city.trainer_a)
    assert client.get(reverse("training_rounds:plan_year")).status_code == 404
    listing = client.get(reverse("training_rounds:index")).content.decode()
    assert reverse("training_rounds:plan_year") not in listing


def test_plan_the_year_form_renders(city, client_for):
    response = client_for(city.trainer).get(reverse("training_rounds:plan_year"))
    assert response.status_code == 200
    assert 'name="scope_roots"' in response.content.decode()


# --- Closing ------------------------------------------------------------------------------------


def test_closing_a_round_freezes_the_figures(city, client_for):
    training_round = builders.training_round([city.root])
    for lesson in training_round.lessons.all():
        builders.complete_online(city.member_a, lesson)
    client = client_for(city.trainer)
    url = reverse("training_rounds:close", args=[training_round.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert confirm.context["figures"].in_scope == 2
    assert not CoverageSnapshot.objects.exists()
    response = client.post(url, follow=True)
    assert response.status_code == 200
    training_round.refresh_from_db()
    assert training_round.state == Round.State.CLOSED
    assert training_round.closed_by == city.trainer
    snapshot = CoverageSnapshot.objects.get(round=training_round, organization=city.root)
    assert (snapshot.in_scope, snapshot.completed) == (2, 1)
    message = " ".join(str(m) for m in response.context["messages"])
    assert training_round.title in message and "50.0" in message
    # A closed round is frozen: it cannot be edited or closed again.
    edit = client.get(reverse("training_rounds:edit", args=[training_round.pk]))
    assert edit.status_code == 302
    assert client.get(url).status_code == 302


def test_closing_runs_on_the_worker_with_the_database_backend(city, client_for, settings):
    """Freezing a city takes a while: with the real task backend the request only queues it."""
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    training_round = builders.training_round([city.root])
    response = client_for(city.trainer).post(
        reverse("training_rounds:close", args=[training_round.pk]), follow=True
    )
    message = " ".join(str(m) for m in response.context["messages"])
    assert "后台" in message
    training_round.refresh_from_db()
    assert training_round.state == Round.State.PUBLISHED
    queued = DBTaskResult.objects.get(task_path__endswith="round_close_task")
    # What the worker does with it (db_worker itself would close the test's connection).
    queued.task.call(*queued.args_kwargs["args"], **queued.args_kwargs["kwargs"])
    training_round.refresh_from_db()
    assert training_round.state == Round.State.CLOSED
    assert training_round.closed_by == city.trainer
    assert CoverageSnapshot.objects.filter(round=training_round, organization=city.root).exists()


def test_only_published_rounds_can_be_closed(city, client_for):
    draft = builders.training_round([city.root], state=Round.State.DRAFT)
    response = client_for(city.trainer).post(reverse("training_rounds:close", args=[draft.pk]))
    assert response.status_code == 302
    assert Round.objects.get(pk=draft.pk).state == Round.State.DRAFT
    assert not CoverageSnapshot.objects.exists()


# --- Group sessions -----------------------------------------------------------------------------


def test_weekly_session_becomes_a_recurring_event_in_the_rounds_calendar(city, client_for):
    training_round = builders.training_round([city.root])
    site(city.branch_a)
    client = client_for(city.trainer_a)
    response = client.post(
        reverse("group_sessions:add"),
        session_data(training_round, city.branch_a, recurrence="WEEKLY", until="2026-11-24"),
    )
    assert response.status_code == 302, errors_of(response)
    session = Session.objects.get()
    event = session.event
    assert event.calendar == training_round.calendar
    assert event.rule is not None and event.rule.frequency == "WEEKLY"
    assert event.creator == city.trainer_a
    assert (session.host, session.hours, session.location) == (
        city.branch_a,
        Decimal("2"),
        "党员活动室",
    )
    assert set(session.lessons.all()) == set(training_round.lessons.all())
    occurrences = event.get_occurrences(
        builders.aware(2026, 10, 1, 0, 0), builders.aware(2027, 1, 1, 0, 0)
    )
    starts = [timezone.localtime(o.start).date() for o in occurrences]
    assert starts == [date(2026, 11, 3), date(2026, 11, 10), date(2026, 11, 17), date(2026, 11, 24)]


def test_editing_a_session_changes_its_event(city, client_for):
    training_round = builders.training_round([city.root])
    site(city.branch_a)
    session = builders.session(
        training_round, city.branch_a, recurrence="WEEKLY", until=date(2026, 11, 30)
    )
    client = client_for(city.trainer)
    edit_url = reverse("group_sessions:edit", args=[session.pk])
    form = client.get(edit_url)
    assert form.status_code == 200
    assert form.context["form"].initial["recurrence"] == "WEEKLY"
    assert form.context["form"].initial["until"] == date(2026, 11, 30)
    response = client.post(
        edit_url,
        session_data(
            training_round,
            city.branch_a,
            title="改期的集中学习",
            start="2026-11-20 14:00",
            end="2026-11-20 16:00",
            recurrence="",
        ),
    )
    assert response.status_code == 302, errors_of(response)
    event = Session.objects.get(pk=session.pk).event
    assert event.title == "改期的集中学习"
    assert timezone.localtime(event.start) == builders.aware(2026, 11, 20, 14, 0)
    assert event.rule is None and event.end_recurring_period is None
    assert Session.objects.count() == 1


def test_session_form_checks_host_dates_and_recurrence(city, client_for):
    training_round = builders.training_round([city.county_a])
    client = client_for(city.trainer)
    url = reverse("group_sessions:add")
    not_a_site = client.post(url, session_data(training_round, city.branch_a))
    assert "host" in errors_of(not_a_site)
    site(city.branch_b)
    out_of_scope = client.post(url, session_data(training_round, city.branch_b))
    assert "host" in errors_of(out_of_scope)
    site(city.branch_a)
    no_until = client.post(url, session_data(training_round, city.branch_a, recurrence="WEEKLY"))
    assert "until" in errors_of(no_until)
    too_early = client.post(
        url,
        session_data(
            training_round, city.branch_a, start="2026-09-01 09:00", end="2026-09-01 11:00"
        ),
    )
    assert "start" in errors_of(too_early)
    backwards = client.post(
        url, session_data(training_round, city.branch_a, end="2026-11-03 08:00")
    )
    assert "end" in errors_of(backwards)
    assert not Session.objects.exists()


def test_county_trainer_hosts_sessions_only_at_own_sites(city, client_for):
    training_round = builders.training_round([city.root])
    site(city.branch_a)
    site(city.branch_b)
    other = builders.session(training_round, city.branch_b, title="青山县集中学习")
    client = client_for(city.trainer_a)
    response = client.post(
        reverse("group_sessions:add"), session_data(training_round, city.branch_b)
    )
    assert "host" in errors_of(response)
    listing = client.get(reverse("group_sessions:index")).content.decode()
    assert "青山县集中学习" not in listing
    assert client.get(reverse("group_sessions:edit", args=[other.pk])).status_code == 404
    assert client.get(reverse("group_sessions:delete", args=[other.pk])).status_code == 404
    own = client.post(reverse("group_sessions:add"), session_data(training_round, city.branch_a))
    assert own.status_code == 302
    listing = client.get(reverse("group_sessions:index")).content.decode()
    assert "11月集中学习" in listing


def test_sessions_list_filters_by_round(city, client_for):
    site(city.branch_a)
    first = builders.training_round([city.root], title="第一轮")
    second = builders.training_round([city.root], title="第二轮")
    builders.session(first, city.branch_a, title="第一轮的学习")
    builders.session(second, city.branch_a, title="第二轮的学习")
    response = client_for(city.trainer).get(reverse("group_sessions:index"), {"round": first.pk})
    content = response.content.decode()
    assert "第一轮的学习" in content and "第二轮的学习" not in content


def test_deleting_a_session_deletes_its_event(city, client_for):
    from schedule.models import Event

    training_round = builders.training_round([city.root])
    site(city.branch_a)
    session = builders.session(training_round, city.branch_a)
    event_pk = session.event.pk
    client = client_for(city.trainer)
    url = reverse("group_sessions:delete", args=[session.pk])
    assert client.get(url).status_code == 200
    assert client.post(url).status_code == 302
    assert not Session.objects.exists()
    assert not Event.objects.filter(pk=event_pk).exists()


def test_a_session_with_attendance_is_not_deleted(city, client_for):
    training_round = builders.training_round([city.root])
    site(city.branch_a)
    sitting = builders.sitting(builders.session(training_round, city.branch_a))
    with time_machine.travel(sitting.start + timedelta(minutes=1), tick=False):
        services.check_in(member=city.member_a, sitting=sitting)
    response = client_for(city.trainer).post(
        reverse("group_sessions:delete", args=[sitting.session.pk])
    )
    assert response.status_code == 302
    assert Session.objects.filter(pk=sitting.session.pk).exists()


def test_changing_the_lessons_a_session_showed_updates_attendees(city, client_for):
    training_round = builders.training_round([city.root])
    first, _second = training_round.lessons.order_by("pk")
    site(city.branch_a)
    session = builders.session(training_round, city.branch_a, lessons=[first])
    sitting = builders.sitting(session)
    with time_machine.travel(sitting.start + timedelta(minutes=1), tick=False):
        services.check_in(member=city.member_a, sitting=sitting)
    row = Participation.objects.get(member=city.member_a)
    assert row.status == Participation.Status.IN_PROGRESS
    response = client_for(city.trainer).post(
        reverse("group_sessions:edit", args=[session.pk]),
        session_data(
            training_round, city.branch_a, start="2026-11-12 09:00", end="2026-11-12 11:00"
        ),
    )
    assert response.status_code == 302, errors_of(response)
    row.refresh_from_db()
    assert row.status == Participation.Status.COMPLETED


def test_add_session_link_prefills_the_round(city, client_for):
    training_round = builders.training_round([city.root])
    response = client_for(city.trainer).get(
        reverse("group_sessions:add"), {"round": training_round.pk}
    )
    form = response.context["form"]
    assert form.initial["round"] == training_round.pk
    assert set(form.initial["lessons"]) == set(training_round.lessons.all())


# --- Access and rendering -----------------------------------------------------------------------


def test_secretary_gets_no_access(city, client_for):
    training_round = builders.training_round([city.root])
    site(city.branch_a)
    session = builders.session(training_round, city.branch_a)
    client = client_for(city.secretary_a)
    for url in (
        reverse("training_rounds:index"),
        reverse("training_rounds:add"),
        reverse("training_rounds:edit", args=[training_round.pk]),
        reverse("training_rounds:inspect", args=[training_round.pk]),
        reverse("training_rounds:plan_year"),
        reverse("training_rounds:close", args=[training_round.pk]),
        reverse("group_sessions:index"),
        reverse("group_sessions:add"),
        reverse("group_sessions:edit", args=[session.pk]),
        reverse("group_sessions:delete", args=[session.pk]),
    ):
        response = client.get(url)
        assert response.status_code in (302, 403, 404), url
        assert response.status_code != 302 or "/login" in response["Location"], url
    response = client.post(reverse("training_rounds:close", args=[training_round.pk]))
    assert Round.objects.get(pk=training_round.pk).state == Round.State.PUBLISHED


def test_admin_pages_render_in_chinese(city, client_for):
    training_round = builders.training_round([city.root])
    site(city.branch_a)
    session = builders.session(
        training_round, city.branch_a, recurrence="WEEKLY", until=date(2026, 11, 30)
    )
    client = client_for(city.trainer)
    pages = {
        reverse("training_rounds:index"): ["专题轮训", "过滤", "示范市委（CITY）"],
        reverse("training_rounds:add"): ["补学截止日期", "学习党章 · 第一课"],
        reverse("training_rounds:edit", args=[training_round.pk]): ["完成规则", "CITY"],
        reverse("training_rounds:inspect", args=[training_round.pk]): ["示范市委（CITY）"],
        reverse("training_rounds:plan_year"): ["首页", "CITY"],
        reverse("training_rounds:close", args=[training_round.pk]): ["覆盖率", "已完成"],
        reverse("group_sessions:index"): ["集中学习", "幸福社区党支部（A-01）"],
        reverse("group_sessions:add"): ["地点", "学习党章 · 第二课"],
        reverse("group_sessions:edit", args=[session.pk]): ["学时", "11月集中学习"],
        reverse("group_sessions:delete", args=[session.pk]): ["集中学习"],
    }
    for url, texts in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert '<html lang="zh-hans"' in content, url
        for text in texts:
            assert text in content, (url, text)


def test_menu_shows_the_rounds_group_to_trainers(city, client_for):
    content = client_for(city.trainer_a).get("/admin/").content.decode()
    assert reverse("training_rounds:index") in content
    assert reverse("group_sessions:index") in content


def test_organisation_codes_accept_several_separators(city):
    from rounds.admin_forms import OrganizationCodesField

    field = OrganizationCodesField(queryset=Organization.objects.all())
    assert field.clean("a，B-01、 CITY\nA") == [city.county_a, city.branch_b, city.root]


def test_an_online_only_round_needs_lessons_to_be_published(city, client_for):
    response = client_for(city.trainer).post(
        reverse("training_rounds:add"),
        round_data([], completion_rule="online", state="published"),
    )
    assert response.status_code == 200
    assert "lessons" in errors_of(response)
    assert not Round.objects.exists()

"""The five-year plan: each kind of target counted right for a subtree, year by year, with the
names still missing; the quarterly rounds' coverage (frozen at close); the page and its export
scoped to the viewer's subtree; queries that do not grow with the data."""

import io
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from members.models import Member, Organization
from rounds import plans, services
from rounds.models import PlanTarget, Round, StudyPlan, StudyRecord

from .. import factories
from . import builders

pytestmark = pytest.mark.django_db
T = PlanTarget
NOW = builders.aware(2026, 11, 20, 10, 0)


def _hours(member, hours, day):
    StudyRecord.objects.create(
        member=member,
        kind=StudyRecord.Kind.PARTY_SCHOOL,
        title="党校",
        studied_on=day,
        hours=Decimal(hours),
        state=StudyRecord.State.APPROVED,
        form_token=f"{member.pk}-{day}-{hours}",
    )


@pytest.fixture
def plan(city):
    made = StudyPlan.objects.create(title="五年规划", organization=city.root, first_year=2025)
    return made


def _target(plan, **fields):
    return PlanTarget.objects.create(plan=plan, **fields)


def _figures(plan, node):
    with time_machine.travel(NOW, tick=False):
        return {f.target.pk: f for f in plans.target_figures(plan, node)}


def test_hours_per_year_counts_each_year_on_its_own(city, plan):
    target = _target(plan, kind=T.Kind.HOURS, audience=T.Audience.MEMBERS, number=32)
    _hours(city.member_a, 32, date(2025, 3, 1))
    _hours(city.member_a, 10, date(2026, 3, 1))
    _hours(city.member_b, 31.5, date(2026, 3, 1))
    factories.member(city.branch_b, name="发展对象", status=Member.Status.CANDIDATE)
    item = _figures(plan, city.root)[target.pk]
    assert [(f.year, f.audience, f.met) for f in item.years] == [(2025, 2, 1), (2026, 2, 0)]
    assert {m.name for m in item.missing} == {"王芳", "李强"} and item.missing_count == 2
    county = _figures(plan, city.county_a)[target.pk]
    assert [(f.audience, f.met) for f in county.years] == [(1, 1), (1, 0)]


def test_a_training_of_the_kind_each_year(city, plan):
    Organization.objects.filter(pk=city.branch_b.pk).update(domain="rural")
    Member.objects.filter(pk=city.member_b.pk).update(position="secretary")
    Member.objects.filter(pk=city.member_a.pk).update(position="secretary")  # domain "other"
    target = _target(
        plan,
        kind=T.Kind.TRAINED,
        audience=T.Audience.VILLAGE_SECRETARIES,
        training_kind=Round.Kind.SECRETARY,
    )
    training = builders.training_round(
        [city.root], kind=Round.Kind.SECRETARY, positions=["secretary"], title="书记专题培训"
    )
    for lesson in training.lessons.all():
        builders.complete_online(city.member_b, lesson)
    item = _figures(plan, city.root)[target.pk]
    # Only the rural branch's secretary is a village secretary; they did it in 2026.
    assert [(f.year, f.audience, f.met) for f in item.years] == [(2025, 1, 0), (2026, 1, 1)]
    assert item.missing == []


def test_new_secretaries_trained_within_the_months(city, plan):
    target = _target(
        plan,
        kind=T.Kind.NEW_IN_POSITION,
        audience=T.Audience.SECRETARIES,
        number=6,
        training_kind=Round.Kind.NEW_SECRETARY,
    )
    on_time = factories.member(
        city.branch_a, name="及时", position="secretary", position_since=date(2026, 2, 1)
    )
    factories.member(
        city.branch_b, name="未培训", position="secretary", position_since=date(2026, 3, 1)
    )
    factories.member(
        city.branch_b, name="老书记", position="secretary", position_since=date(2019, 3, 1)
    )
    training = builders.training_round(
        [city.root],
        kind=Round.Kind.NEW_SECRETARY,
        positions=["secretary"],
        title="新任书记培训",
        opens_on=date(2026, 3, 1),
    )
    late = factories.member(
        city.branch_b, name="超期", position="secretary", position_since=date(2026, 1, 5)
    )
    for lesson in training.lessons.all():
        builders.complete_online(on_time, lesson, at=builders.aware(2026, 7, 20, 9, 0))
        # Trained, but more than six months after taking office.
        builders.complete_online(late, lesson, at=builders.aware(2026, 9, 1, 9, 0))
    item = _figures(plan, city.root)[target.pk]
    assert [(f.year, f.audience, f.met) for f in item.years] == [(2025, 0, 0), (2026, 3, 1)]
    assert [m.name for m in item.missing] == ["未培训", "超期"]
    assert item.years[0].percent is None


def test_candidates_hours_before_admission_count_every_year(city, plan):
    target = _target(
        plan, kind=T.Kind.HOURS_BEFORE_ADMISSION, audience=T.Audience.CANDIDATES, number=24
    )
    ready = factories.member(city.branch_a, name="甲", status=Member.Status.CANDIDATE)
    factories.member(city.branch_a, name="乙", status=Member.Status.CANDIDATE)
    _hours(ready, 12, date(2025, 11, 1))
    _hours(ready, 12, date(2026, 1, 10))
    item = _figures(plan, city.root)[target.pk]
    assert [(f.audience, f.met) for f in item.years] == [(2, 1)]
    assert [m.name for m in item.missing] == ["乙"]


def test_quarterly_coverage_is_frozen_at_close_and_live_otherwise(city, plan):
    closed = builders.training_round(
        [city.root], opens_on=date(2026, 7, 1), closes_on=date(2026, 9, 30), title="第三季度"
    )
    for lesson in closed.lessons.all():
        builders.complete_online(city.member_a, lesson, at=builders.aware(2026, 8, 1, 9, 0))
    services.round_close(training_round=closed, user=city.trainer)
    live = builders.training_round([city.root], title="第四季度")
    other_kind = builders.training_round([city.root], title="书记培训", kind=Round.Kind.SECRETARY)
    with time_machine.travel(NOW, tick=False):
        quarters = plans.quarterly_coverage(plan, city.root)
    assert [(q.round.title, q.frozen) for q in quarters] == [
        ("第三季度", True),
        ("第四季度", False),
    ]
    assert (quarters[0].figures.in_scope, quarters[0].figures.completed) == (2, 1)
    assert other_kind not in [q.round for q in quarters] and live == quarters[1].round


def test_the_page_is_the_viewers_subtree_and_counts_in_flat_queries(city, plan, client_for):
    _target(plan, kind=T.Kind.HOURS, audience=T.Audience.MEMBERS, number=32)
    _target(plan, kind=T.Kind.TRAINED, audience=T.Audience.MEMBERS, training_kind="quarterly")
    client = client_for(city.secretary_a)
    url = reverse("rounds:plan", args=[plan.pk])
    with time_machine.travel(NOW, tick=True):
        page = client.get(url)
        assert page.status_code == 200
        assert page.context["node"] == city.branch_a  # her own node, not the city
        html = page.content.decode()
        assert "<svg" in html and "王芳" in html and "李强" not in html
        assert client.get(url, {"org": city.county_b.pk}).status_code == 404
        assert client_for(city.trainer).get(url, {"org": city.county_b.pk}).status_code == 200

        def queries():
            with CaptureQueriesContext(connection) as captured:
                assert client_for(city.trainer).get(url).status_code == 200
            return len(captured)

        queries()
        few = queries()
        for number in range(15):
            member = factories.member(city.branch_b, name=f"党员{number}")
            _hours(member, 40, date(2026, 5, 1))
        assert queries() == few


def test_a_plan_outside_the_viewers_subtree_is_not_found(city, client_for):
    theirs = StudyPlan.objects.create(
        title="青山县规划", organization=city.county_b, first_year=2026
    )
    assert (
        client_for(city.secretary_a).get(reverse("rounds:plan", args=[theirs.pk])).status_code
        == 404
    )
    mine = client_for(city.secretary_b).get(reverse("rounds:plans")).content.decode()
    assert "青山县规划" in mine


def test_the_export_has_every_year_and_every_missing_name(city, plan, client_for):
    _target(plan, kind=T.Kind.HOURS, audience=T.Audience.MEMBERS, number=32)
    for number in range(3):
        factories.member(city.branch_a, name=f"未达标{number}")
    with time_machine.travel(NOW, tick=True):
        response = client_for(city.trainer).get(reverse("rounds:plan_export", args=[plan.pk]))
    book = load_workbook(io.BytesIO(response.content))
    targets, names = book.worksheets
    rows = list(targets.iter_rows(values_only=True))
    assert [r[1] for r in rows[2:]] == [2025, 2026]
    missing = [r[1] for r in list(names.iter_rows(values_only=True))[1:]]
    assert sorted(missing) == sorted(["王芳", "李强", "未达标0", "未达标1", "未达标2"])


def test_a_trainer_sets_a_plan_with_targets_in_the_admin(city, client_for):
    client = client_for(city.trainer_a)
    data = {
        "title": "城关区五年规划",
        "organization": "A",
        "first_year": "2026",
        "targets-TOTAL_FORMS": "2",
        "targets-INITIAL_FORMS": "0",
        "targets-MIN_NUM_FORMS": "1",
        "targets-MAX_NUM_FORMS": "1000",
        "targets-0-kind": "hours",
        "targets-0-audience": "members",
        "targets-0-number": "32",
        "targets-0-training_kind": "",
        "targets-0-goal_percent": "100",
        "targets-0-ORDER": "1",
        "targets-0-DELETE": "",
        "targets-0-id": "",
        "targets-1-kind": "trained",
        "targets-1-audience": "secretaries",
        "targets-1-number": "",
        "targets-1-training_kind": "",
        "targets-1-goal_percent": "100",
        "targets-1-ORDER": "2",
        "targets-1-DELETE": "",
        "targets-1-id": "",
    }
    refused = client.post(reverse("study_plans:add"), data)
    assert refused.status_code == 200  # "trained" needs its kind of training
    assert not StudyPlan.objects.exists()
    data["targets-1-training_kind"] = "secretary"
    outside = client.post(reverse("study_plans:add"), {**data, "organization": "B"})
    assert outside.status_code == 200 and not StudyPlan.objects.exists()
    assert client.post(reverse("study_plans:add"), data).status_code == 302
    plan = StudyPlan.objects.get()
    assert plan.organization == city.county_a and plan.years == [2026, 2027, 2028, 2029, 2030]
    assert [t.label for t in plan.targets.all()] == [
        "全体党员：每年学时不少于 32",
        "书记、副书记：每年参加书记专题培训",
    ]

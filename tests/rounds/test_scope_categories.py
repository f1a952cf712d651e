"""Who a training counts, by category: people in training to join only when named, domains,
positions and "new in the position", member categories, postings (第一书记) counted where they
are posted, and mobile members (流动党员) counted at home but ticked at roll call where they are.

Each rule is checked three ways that must agree: the queryset (``members_in_scope``), the
per-member test (``includes``, decided in Python) and the coverage figures."""

from datetime import date

import pytest
from django.urls import reverse

from members.models import Member, Organization, Posting
from rounds import services
from rounds.coverage import coverage_by_organization, coverage_children, coverage_tree
from rounds.models import Round, add_months

from .. import factories
from . import builders

pytestmark = pytest.mark.django_db


def in_scope(training_round) -> set[str]:
    """Names in scope, checked to agree with ``includes`` for every member on record."""
    names = set(training_round.members_in_scope().values_list("name", flat=True))
    for member in Member.objects.select_related("organization"):
        assert training_round.includes(member) == (member.name in names), member.name
    return names


def test_people_in_training_to_join_count_only_where_a_training_names_them(city):
    factories.member(city.branch_a, name="发展对象甲", status=Member.Status.CANDIDATE)
    factories.member(city.branch_a, name="积极分子乙", status=Member.Status.ACTIVIST)
    factories.member(city.branch_a, name="预备党员丙", status=Member.Status.PROBATIONARY)
    quarterly = builders.training_round([city.root])
    assert in_scope(quarterly) == {"王芳", "李强", "预备党员丙"}
    assert coverage_children(training_round=quarterly, node=city.root).head.figures.in_scope == 3
    candidates = builders.training_round(
        [city.root], title="发展对象培训", statuses=[Member.Status.CANDIDATE]
    )
    assert in_scope(candidates) == {"发展对象甲"}


def test_a_domain_is_a_scope_criterion(city):
    Organization.objects.filter(pk=city.branch_b.pk).update(domain=Organization.Domain.RURAL)
    rural = builders.training_round(
        [city.root], title="村书记专题培训", domains=[Organization.Domain.RURAL]
    )
    assert in_scope(rural) == {"李强"}
    rows = coverage_children(training_round=rural, node=city.root).rows
    assert [(r.organization.code, r.figures.in_scope) for r in rows] == [("B", 1)]


def test_new_secretaries_are_those_who_took_office_within_the_months(city):
    opens = date(2026, 10, 1)
    factories.member(
        city.branch_a, name="新书记", position="secretary", position_since=date(2026, 6, 1)
    )
    factories.member(
        city.branch_b, name="老书记", position="secretary", position_since=date(2019, 3, 1)
    )
    factories.member(city.branch_b, name="不详书记", position="secretary")
    factories.member(
        city.branch_b, name="新委员", position="committee", position_since=date(2026, 7, 1)
    )
    new = builders.training_round(
        [city.root],
        title="新任书记培训",
        opens_on=opens,
        positions=[Member.Position.SECRETARY],
        new_in_position_months=6,
    )
    assert new.position_since_limit() == date(2026, 4, 1)
    assert in_scope(new) == {"新书记"}
    # The boundary: exactly six months before the round opens is still new.
    Member.objects.filter(name="新书记").update(position_since=date(2026, 4, 1))
    assert in_scope(new) == {"新书记"}
    Member.objects.filter(name="新书记").update(position_since=date(2026, 3, 31))
    assert in_scope(new) == set()


def test_categories_take_members_having_any_of_them(city):
    factories.member(city.branch_a, name="老党员", is_retired=True)
    factories.member(city.branch_b, name="卧床党员", limited_mobility=True)
    factories.member(city.branch_b, name="外出党员", activity_organization=city.branch_a)
    door = builders.training_round(
        [city.root], title="送学上门", categories=["limited_mobility", "retired"]
    )
    assert in_scope(door) == {"老党员", "卧床党员"}
    mobile = builders.training_round([city.root], title="流动党员培训", categories=["mobile"])
    assert in_scope(mobile) == {"外出党员"}


def test_add_months_keeps_to_the_end_of_a_shorter_month():
    assert add_months(date(2026, 8, 31), -6) == date(2026, 2, 28)
    assert add_months(date(2026, 1, 15), -1) == date(2025, 12, 15)
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)


# --- Postings -------------------------------------------------------------------------------


@pytest.fixture
def first_secretary(city):
    """A member of county A's branch posted as 第一书记 to the village branch in county B."""
    person = factories.member(city.branch_a, name="第一书记")
    Posting.objects.create(
        member=person,
        organization=city.branch_b,
        title="第一书记",
        position=Member.Position.SECRETARY,
        starts_on=date(2026, 3, 1),
    )
    return person


def test_a_posted_secretary_is_in_the_scope_of_where_they_are_posted(city, first_secretary):
    county_b = builders.training_round(
        [city.county_b], title="书记专题培训", positions=[Member.Position.SECRETARY]
    )
    # Their own position is "member": only the posting makes them a secretary in county B.
    assert in_scope(county_b) == {"第一书记"}
    coverage = coverage_children(training_round=county_b, node=city.county_b)
    assert coverage.head.figures.in_scope == 1
    assert [(r.organization.code, r.figures.in_scope) for r in coverage.rows] == [("B-01", 1)]
    # Their membership did not move, and county A's trainings do not see them as a secretary.
    assert first_secretary.organization == city.branch_a
    county_a = builders.training_round(
        [city.county_a], title="A 书记", positions=[Member.Position.SECRETARY]
    )
    assert in_scope(county_a) == set()


def test_someone_in_scope_at_home_and_posted_counts_once_at_home(city, first_secretary):
    quarterly = builders.training_round([city.root])
    assert in_scope(quarterly) == {"王芳", "李强", "第一书记"}
    by_org = coverage_by_organization(training_round=quarterly)
    assert by_org[city.root.pk]["in_scope"] == 3
    assert by_org[city.branch_a.pk]["in_scope"] == 2
    assert by_org[city.branch_b.pk]["in_scope"] == 1
    tree = coverage_tree(training_round=quarterly, node=city.root)
    assert tree.figures.in_scope == 3


def test_a_posted_persons_completion_counts_where_they_are_posted(city, first_secretary):
    county_b = builders.training_round([city.county_b], title="青山县轮训")
    for lesson in county_b.lessons.all():
        builders.complete_online(first_secretary, lesson)
    by_org = coverage_by_organization(training_round=county_b)
    assert by_org[city.branch_b.pk]["in_scope"] == 2
    assert by_org[city.branch_b.pk]["completed"] == 1
    assert city.branch_a.pk not in by_org


def test_a_posting_outside_the_rounds_dates_does_not_count(city, first_secretary):
    Posting.objects.filter(member=first_secretary).update(
        starts_on=date(2025, 1, 1), ends_on=date(2026, 9, 30)
    )
    county_b = builders.training_round([city.county_b], opens_on=date(2026, 10, 1))
    assert in_scope(county_b) == {"李强"}
    Posting.objects.filter(member=first_secretary).update(ends_on=date(2026, 10, 1))
    assert in_scope(county_b) == {"李强", "第一书记"}


def test_the_posted_persons_round_appears_on_their_home_page(city, first_secretary, client_for):
    county_b = builders.training_round([city.county_b], title="青山县轮训")
    assert Round.objects.for_member(first_secretary) == [county_b]
    page = client_for(first_secretary.user).get(reverse("rounds:list")).content.decode()
    assert "青山县轮训" in page


# --- Mobile members ---------------------------------------------------------------------------


def test_a_mobile_member_counts_at_home_and_is_on_the_roll_call_where_they_take_part(
    city, client_for
):
    away = factories.member(city.branch_a, name="外出务工", activity_organization=city.branch_b)
    quarterly = builders.training_round([city.root])
    by_org = coverage_by_organization(training_round=quarterly)
    assert by_org[city.branch_a.pk]["in_scope"] == 2
    assert by_org[city.branch_b.pk]["in_scope"] == 1
    session = builders.session(quarterly, city.branch_b)
    sitting = builders.sitting(session)
    listed = set(services.roll_call_members(sitting).values_list("name", flat=True))
    assert listed == {"李强", "外出务工"}
    services.roll_call_save(sitting=sitting, marks={away.pk: "present"}, user=city.secretary_b)
    assert sitting.attendances.get(member=away).status == "present"
    # The home secretary sees where they take part; the host secretary sees them listed.
    home = client_for(city.secretary_a).get(reverse("members:member_detail", args=[away.pk]))
    assert city.branch_b.name in home.content.decode()
    host = client_for(city.secretary_b).get(
        reverse("members:organization_detail", args=[city.branch_b.pk])
    )
    assert "外出务工" in host.content.decode()
    # Still counted at home only.
    assert coverage_by_organization(training_round=quarterly)[city.branch_b.pk]["in_scope"] == 1

"""Full phone numbers are decided per member, never per viewer (DESIGN.md: minimal personal
data). A site operator sees masked numbers; a secretary sees her own subtree's in full. A user
holding both roles in two sibling branches sees each member as the role over that member says."""

import io

import pytest
from auditlog.models import LogEntry
from django.urls import reverse
from openpyxl import load_workbook

from members import access
from members import services as member_services
from members.models import Member, Role

from .. import factories
from . import builders

A_FULL, A_MASKED = "13800000001", "138****0001"
A2_FULL, A2_MASKED = "13600000003", "136****0003"


@pytest.fixture
def siblings(city):
    """Branch A and its sibling A2 under county A, and one user who is branch A's site operator
    and branch A2's secretary."""
    city.branch_a2 = factories.org("团结社区党支部", city.county_a, code="A-02")
    city.member_a2 = factories.member(city.branch_a2, name="陈静", phone=A2_FULL)
    city.both = factories.staff("op_a_sec_a2", Role.OPERATOR, city.branch_a)
    member_services.role_assign(user=city.both, role=Role.SECRETARY, organization=city.branch_a2)
    city.round = builders.training_round([city.root])
    return city


def names_sheet(response):
    assert response.status_code == 200
    rows = list(load_workbook(io.BytesIO(response.content)).worksheets[1].values)
    return {row[0]: row[1] for row in rows[1:]}


def test_coverage_page_shows_full_phones_only_where_the_secretary_role_reaches(
    siblings, client_for
):
    city = siblings
    client = client_for(city.both)
    url = reverse("rounds:coverage", args=[city.round.pk])
    own_site = client.get(url, {"org": city.branch_a.pk, "status": "all"}).content.decode()
    assert "王芳" in own_site and A_MASKED in own_site and A_FULL not in own_site
    next_door = client.get(url, {"org": city.branch_a2.pk, "status": "all"}).content.decode()
    assert "陈静" in next_door and A2_FULL in next_door and A2_MASKED not in next_door


def test_coverage_export_decides_each_row_and_records_it(siblings, client_for):
    city = siblings
    client = client_for(city.both)
    url = reverse("rounds:coverage_export", args=[city.round.pk])
    assert names_sheet(client.get(url, {"org": city.branch_a.pk, "status": "all"})) == {
        "王芳": A_MASKED
    }
    entry = LogEntry.objects.get(additional_data__event="coverage_export")
    assert entry.additional_data["full_phones"] is False
    assert names_sheet(client.get(url, {"org": city.branch_a2.pk, "status": "all"})) == {
        "陈静": A2_FULL
    }
    latest = LogEntry.objects.filter(additional_data__event="coverage_export").latest("pk")
    assert latest.additional_data["full_phones"] is True


def test_member_pages_and_roster_export_follow_the_role_over_each_member(siblings, client_for):
    city = siblings
    client = client_for(city.both)
    for url_name, args in (
        ("members:member_detail", []),
        ("rounds:member_status", [city.round.pk]),
    ):
        mine = client.get(reverse(url_name, args=[*args, city.member_a.pk])).content.decode()
        assert A_MASKED in mine and A_FULL not in mine, url_name
        theirs = client.get(reverse(url_name, args=[*args, city.member_a2.pk])).content.decode()
        assert A2_FULL in theirs and A2_MASKED not in theirs, url_name
    response = client.get(reverse("members:roster_export"))
    rows = load_workbook(io.BytesIO(response.content)).worksheets[0].values
    phones = {row[0]: row[1] for row in list(rows)[1:]}
    assert phones == {"王芳": A_MASKED, "陈静": A2_FULL}


def test_ledger_list_follows_the_role_over_each_member(siblings, client_for):
    page = client_for(siblings.both).get(reverse("rounds:ledger_org")).content.decode()
    assert A_MASKED in page and A_FULL not in page
    assert A2_FULL in page and A2_MASKED not in page


def test_member_page_shows_a_site_operator_the_masked_number(city, client_for):
    training_round = builders.training_round([city.root])
    for url in (
        reverse("members:member_detail", args=[city.member_a.pk]),
        reverse("rounds:member_status", args=[training_round.pk, city.member_a.pk]),
    ):
        operator_page = client_for(city.operator_a).get(url)
        assert operator_page.status_code == 200
        text = operator_page.content.decode()
        assert A_MASKED in text and A_FULL not in text, url
        assert A_FULL in client_for(city.secretary_a).get(url).content.decode(), url


def test_phone_visibility_agrees_with_can_see_phone_without_queries(
    siblings, django_assert_num_queries
):
    city = siblings
    members = list(Member.objects.select_related("organization").order_by("pk"))
    user = city.both
    access.role_assignments(user)  # the user's roles, read once per request
    with django_assert_num_queries(0):
        visible = access.phone_visibility(user)
        shown = {m.name for m in members if visible(m)}
    assert shown == {"陈静"}
    assert shown == {m.name for m in members if access.can_see_phone(user, m)}
    # Everyone sees their own number; a trainer sees the whole subtree's.
    assert access.phone_visibility(city.member_b.user)(city.member_b)
    assert not access.phone_visibility(city.member_b.user)(city.member_a)
    everyone = {m.name for m in members if access.phone_visibility(city.trainer)(m)}
    assert everyone == {m.name for m in members}

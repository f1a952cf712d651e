"""Scoped power in members: who sees whom, lists and filters. That every URL naming an object
answers 404 outside the viewer's subtree is proven for all apps in tests/test_access_matrix.py."""

from django.urls import reverse

from members import access
from members.models import Member, Organization


def test_higher_levels_see_their_whole_subtree(city):
    assert set(access.visible_members(city.trainer)) == set(Member.objects.all())
    assert set(access.visible_members(city.trainer_a)) == {city.member_a}
    assert set(access.visible_organizations(city.trainer_a)) == {city.county_a, city.branch_a}


def test_a_plain_member_sees_no_roster(city, client_for):
    client = client_for(city.member_a.user)
    assert client.get(reverse("members:roster")).status_code == 404
    assert client.get(reverse("members:roster_export")).status_code == 404


def test_roster_filter_for_an_organisation_outside_scope_is_404(city, client_for):
    client = client_for(city.secretary_a)
    url = reverse("members:roster") + f"?org={city.branch_b.pk}"
    assert client.get(url).status_code == 404


def test_activation_slips_only_for_own_members(city, client_for):
    client = client_for(city.secretary_a)
    response = client.post(reverse("members:activation_slips"), {"member": [city.member_b.pk]})
    assert response.status_code == 302  # nothing selected that this secretary may see
    assert not city.member_b.activation_codes.exists()
    response = client.post(reverse("members:activation_slips"), {"org": city.branch_b.pk})
    assert response.status_code == 404


def test_site_operator_sees_masked_phones_only(city):
    assert not access.can_see_phone(city.operator_a, city.member_a)
    assert access.can_see_phone(city.secretary_a, city.member_a)
    assert not access.can_see_phone(city.secretary_a, city.member_b)


def test_subtree_queries_use_the_materialized_path(city, django_assert_num_queries):
    with django_assert_num_queries(1):
        ids = list(Organization.objects.in_subtree(city.county_a).values_list("code", flat=True))
    assert ids == ["A", "A-01"]

"""Scoped power: every URL that names an object answers 404 outside the viewer's subtree."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from members import access
from members.models import Member, Organization


def object_urls():
    """Every public (non-admin) URL pattern of ours that takes an object id."""
    found = []

    def walk(patterns, namespace=None):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "members":
                    walk(pattern.url_patterns, pattern.namespace)
            elif isinstance(pattern, URLPattern) and "pk" in pattern.pattern.converters:
                found.append(f"{namespace}:{pattern.name}")

    walk(get_resolver().url_patterns)
    return found


def target_for(name, city):
    name = name.split(":")[1]
    if "member" in name:
        return city.member_b.pk
    if "organization" in name:
        return city.branch_b.pk
    if "import" in name:
        from members import services

        from .spreadsheets import csv_bytes

        record = services.roster_check(
            data=csv_bytes([["姓名", "手机号码", "党组织编码"], ["甲", "13700000009", "B-01"]]),
            file_name="r.csv",
            user=city.secretary_b,
        )
        return record.pk
    raise AssertionError(f"add a target for {name}")


def test_there_are_object_urls_to_check():
    assert set(object_urls()) >= {
        "members:member_detail",
        "members:organization_detail",
        "members:import_detail",
        "members:import_apply",
    }


@pytest.mark.parametrize("name", object_urls())
def test_secretary_of_another_branch_gets_404(city, client_for, name):
    url = reverse(name, kwargs={"pk": target_for(name, city)})
    client = client_for(city.secretary_a)
    # POST-only views may answer a GET with 405, which reveals nothing either.
    assert client.get(url).status_code in (404, 405)
    if client.get(url).status_code == 405:
        assert client.post(url).status_code == 404


@pytest.mark.parametrize("name", object_urls())
def test_anonymous_is_sent_to_log_in(city, client, name):
    url = reverse(name, kwargs={"pk": target_for(name, city)})
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("members:login"))


@pytest.mark.parametrize("name", ["members:member_detail", "members:organization_detail"])
def test_own_subtree_is_visible(city, client_for, name):
    pk = city.member_a.pk if name == "members:member_detail" else city.branch_a.pk
    assert client_for(city.secretary_a).get(reverse(name, kwargs={"pk": pk})).status_code == 200


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

"""Scoped power in members: who sees whom, lists and filters. That every URL naming an object
answers 404 outside the viewer's subtree is proven for all apps in tests/test_access_matrix.py."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http import Http404, HttpResponse
from django.urls import reverse

from certificates.models import CertificateTemplate
from members import access, services
from members.models import Member, Organization, Role

from .. import factories


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


def test_only_the_roles_asked_for_count(city):
    """A role without the power asked for covers nothing: an operator of branch A who is also
    secretary of branch B sees both branches, and manages branch B's roster alone."""
    user = city.operator_a
    services.role_assign(user=user, role=Role.SECRETARY, organization=city.branch_b)
    managing = access.ROLES_MANAGING_ROSTER
    assert set(access.visible_members(user)) == {city.member_a, city.member_b}
    assert set(access.visible_members(user, managing)) == {city.member_b}
    assert set(access.visible_organizations(user)) == {city.branch_a, city.branch_b}
    assert set(access.visible_organizations(user, managing)) == {city.branch_b}
    assert access.get_organization_or_404(user, city.branch_a.pk) == city.branch_a
    assert access.get_organization_or_404(user, city.branch_b.pk, managing) == city.branch_b
    with pytest.raises(Http404):
        access.get_organization_or_404(user, city.branch_a.pk, managing)
    assert access.get_member_or_404(user, city.member_a.pk) == city.member_a
    with pytest.raises(Http404):
        access.get_member_or_404(user, city.member_a.pk, managing)


@pytest.mark.parametrize("pk", [987_654_321, "abc", None])
def test_an_id_that_names_nothing_is_404(city, pk):
    with pytest.raises(Http404):
        access.get_organization_or_404(city.trainer, pk)
    with pytest.raises(Http404):
        access.get_member_or_404(city.trainer, pk)


def test_a_member_looked_up_by_id_comes_with_organisation_and_account(
    city, django_assert_num_queries
):
    access.role_assignments(city.secretary_a)  # the viewer's roles, read once per request
    with django_assert_num_queries(1):
        member = access.get_member_or_404(city.secretary_a, city.member_a.pk)
        assert (member.organization.code, member.user.pk) == ("A-01", city.member_a.user.pk)


def test_a_superuser_sees_everyone_and_every_phone(city):
    root = get_user_model().objects.create_superuser("root", password=factories.PASSWORD)
    assert access.role_roots(root) is None
    assert access.has_role(root, (Role.TRAINER,))
    assert set(access.visible_members(root)) == set(Member.objects.all())
    assert access.can_see_member(root, city.member_b)
    show_phone = access.phone_visibility(root)
    assert show_phone(city.member_a) is True
    assert show_phone(city.member_b) is True


def test_everyone_sees_their_own_record_and_phone(city):
    user = city.member_b.user
    assert access.can_see_member(user, city.member_b)
    assert access.can_see_phone(user, city.member_b)
    assert not access.can_see_member(user, city.member_a)
    assert not access.can_see_phone(user, city.member_a)
    assert not access.can_see_phone(AnonymousUser(), city.member_a)


def test_role_required_guards_by_role_anywhere_in_the_tree(city, rf):
    """Any staff role by default; the roles named otherwise. A plain member and a user without
    the role get 404, an anonymous visitor is sent to log in."""

    @access.role_required()
    def staff_view(request):
        return HttpResponse("ok")

    @access.role_required(Role.SECRETARY)
    def secretaries_view(request):
        return HttpResponse("ok")

    def call(view, user):
        request = rf.get("/somewhere/")
        request.user = user
        return view(request)

    for user in (city.operator_a, city.secretary_b, city.trainer_a):
        assert call(staff_view, user).status_code == 200
    assert call(secretaries_view, city.secretary_b).status_code == 200
    for view, user in ((staff_view, city.member_a.user), (secretaries_view, city.operator_a)):
        with pytest.raises(Http404):
            call(view, user)
    response = call(staff_view, AnonymousUser())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("members:login"))


def test_covering_the_whole_tree_takes_the_roles_asked_for_at_every_root(city):
    """The city trainer covers the whole tree with her trainer role; a trainer of branch A who
    is also secretary at the top covers it with her staff roles, not as a trainer; nobody covers
    it once a second tree exists that they hold nothing in."""
    two_roles = factories.staff("sec_top", Role.SECRETARY, city.root)
    services.role_assign(user=two_roles, role=Role.TRAINER, organization=city.branch_a)
    trainers = (Role.TRAINER,)
    assert access.covers_whole_tree(city.trainer, trainers)
    assert not access.covers_whole_tree(city.trainer_a, trainers)
    assert not access.covers_whole_tree(two_roles, trainers)
    assert access.covers_whole_tree(two_roles)
    factories.org("另一市委", code="OTHER")
    assert not access.covers_whole_tree(city.trainer, trainers)
    root = get_user_model().objects.create_superuser("root", password=factories.PASSWORD)
    assert access.covers_whole_tree(root, trainers)


# --- Content (courses, certificate templates) belongs to the level that made it -----------------

OWNERS = ("top", "CITY", "A", "A-01", "B")  # "top": no owner organisation (what the system made)


def test_content_is_used_from_above_and_changed_within_the_trainers_subtree(city):
    """A trainer uses what the levels on her path from the top own and what is owned inside her
    subtree; she changes only the latter, and what the top owns only from the top. Her other
    roles give her nothing here: a trainer of branch A who is also secretary at the top is a
    branch trainer. Without a trainer role: the top's content, to use."""
    owner = {
        "top": None,
        "CITY": city.root,
        "A": city.county_a,
        "A-01": city.branch_a,
        "B": city.county_b,
    }
    templates = {
        key: CertificateTemplate.objects.create(
            name=f"模板{key}",
            kind=CertificateTemplate.Kind.COMPLETION,
            body="{name}",
            issuer_lines="示范市委组织部",
            owner_organization=owner[key],
        )
        for key in OWNERS
    }
    branch_trainer = factories.staff("sec_top", Role.SECRETARY, city.root)
    services.role_assign(user=branch_trainer, role=Role.TRAINER, organization=city.branch_a)
    superuser = get_user_model().objects.create_superuser("root", password=factories.PASSWORD)
    everything = set(OWNERS)
    expected = {  # user: (may use, may change)
        superuser: (everything, everything),
        city.trainer: (everything, everything),
        city.trainer_a: ({"top", "CITY", "A", "A-01"}, {"A", "A-01"}),
        branch_trainer: ({"top", "CITY", "A", "A-01"}, {"A-01"}),
        city.secretary_a: ({"top"}, set()),
    }

    def matching(condition):
        rows = CertificateTemplate.objects.filter(pk__in=[t.pk for t in templates.values()])
        if condition is not None:
            rows = rows.filter(condition)
        return {template.name.removeprefix("模板") for template in rows}

    for user, (usable, changeable) in expected.items():
        who = user.username
        assert {key for key in OWNERS if access.may_use_content(user, owner[key])} == usable, who
        assert matching(access.usable_content_q(user)) == usable, who
        assert {key for key in OWNERS if access.may_change_content(user, owner[key])} == (
            changeable
        ), who
        assert matching(access.changeable_content_q(user)) == changeable, who

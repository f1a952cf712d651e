"""Trainers in the Wagtail admin: organisations, members and roles, within their subtree."""

from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.urls import reverse
from wagtail.log_actions import log as log_action

from members.models import Member, Organization, RoleAssignment

from .. import factories


def test_trainer_gets_admin_access_through_the_role(city, client_for):
    client = client_for(city.trainer_a)
    assert client.get("/admin/").status_code == 200
    assert city.trainer_a.groups.filter(name="培训管理员").exists()
    RoleAssignment.objects.filter(user=city.trainer_a).delete()
    assert not city.trainer_a.groups.exists()


def test_secretary_has_no_admin(city, client_for):
    response = client_for(city.secretary_a).get("/admin/")
    assert response.status_code == 302


def test_county_trainer_lists_only_own_subtree(city, client_for):
    client = client_for(city.trainer_a)
    orgs = client.get(reverse("org_tree:index")).content.decode()
    assert "幸福社区党支部" in orgs and "红旗村党支部" not in orgs
    members = client.get(reverse("party_members:index")).content.decode()
    assert "王芳" in members and "李强" not in members


def test_county_trainer_gets_404_for_other_subtree_objects(city, client_for):
    client = client_for(city.trainer_a)
    for name, pk in (
        ("org_tree:edit", city.branch_b.pk),
        ("org_tree:delete", city.branch_b.pk),
        ("party_members:edit", city.member_b.pk),
        ("party_members:delete", city.member_b.pk),
        ("org_roles:edit", city.secretary_b.role_assignments.get().pk),
    ):
        assert client.get(reverse(name, args=[pk])).status_code == 404, name
    assert client.get(reverse("org_tree:edit", args=[city.branch_a.pk])).status_code == 200


def test_trainer_adds_an_organisation_under_a_parent_by_code(city, client_for):
    client = client_for(city.trainer_a)
    response = client.post(
        reverse("org_tree:add"),
        {"name": "新村党支部", "code": "a-02", "kind": "branch", "domain": "rural", "parent": "A"},
    )
    assert response.status_code == 302
    created = Organization.objects.get(code="A-02")
    assert created.get_parent() == city.county_a
    assert Organization.find_problems() == ([], [], [], [], [])


def test_trainer_cannot_add_under_another_subtree(city, client_for):
    client = client_for(city.trainer_a)
    response = client.post(
        reverse("org_tree:add"),
        {"name": "外村党支部", "code": "B-02", "kind": "branch", "domain": "rural", "parent": "B"},
    )
    assert response.status_code == 200
    assert not Organization.objects.filter(code="B-02").exists()


def test_trainer_moves_an_organisation(city, client_for):
    factories.org("新支部", city.county_a, code="A-03")
    client = client_for(city.trainer)
    target = Organization.objects.get(code="A-03")
    response = client.post(
        reverse("org_tree:edit", args=[target.pk]),
        {"name": "新支部", "code": "A-03", "kind": "branch", "domain": "rural", "parent": "B"},
    )
    assert response.status_code == 302
    assert Organization.objects.get(code="A-03").get_parent() == city.county_b
    assert Organization.find_problems() == ([], [], [], [], [])


def test_trainer_adds_a_member_with_a_login_account(city, client_for):
    client = client_for(city.trainer_a)
    response = client.post(
        reverse("party_members:add"),
        {
            "name": "赵  敏",
            "phone": "+86 137-1234-5678",
            "organization": "A-01",
            "status": "full",
            "position": "member",
            "gender": "female",
            "joined_on": "2020-07-01",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    member = Member.objects.get(phone="13712345678")
    assert member.name == "赵敏"
    assert member.user.username == "13712345678"
    assert not member.user.has_usable_password()
    assert LogEntry.objects.get_for_object(member).exists()


def test_member_changes_are_audit_logged_with_the_trainer(city, client_for):
    client = client_for(city.trainer_a)
    client.post(
        reverse("party_members:edit", args=[city.member_a.pk]),
        {
            "name": "王芳",
            "phone": "13800000001",
            "organization": "A-01",
            "status": "full",
            "position": "secretary",
            "gender": "",
            "joined_on": "",
            "is_active": "on",
        },
    )
    entry = LogEntry.objects.get_for_object(city.member_a).filter(action=LogEntry.Action.UPDATE)
    assert entry.get().actor == city.trainer_a


def test_trainer_assigns_a_role_by_mobile_number(city, client_for):
    client = client_for(city.trainer_a)
    response = client.post(
        reverse("org_roles:add"),
        {"login": "138 0000 0001", "role": "secretary", "organization": "A-01"},
    )
    assert response.status_code == 302
    assert city.member_a.user.role_assignments.get().organization == city.branch_a
    assert LogEntry.objects.filter(content_type__model="roleassignment").exists()


def test_trainer_cannot_give_roles_to_other_subtrees_members(city, client_for):
    client = client_for(city.trainer_a)
    response = client.post(
        reverse("org_roles:add"),
        {"login": "13900000002", "role": "secretary", "organization": "A-01"},
    )
    assert response.status_code == 200
    assert not city.member_b.user.role_assignments.exists()


# --- Site history: the city's change log is not a county trainer's to read ---------------------

SITE_HISTORY_URLS = (
    "/admin/reports/site-history/",
    "/admin/reports/site-history/results/",
    "/admin/reports/site-history/?export=csv",
)


def test_site_history_is_refused_to_a_county_trainer(city, client_for):
    # A change in the other county, which the report would name with its author.
    log_action(instance=city.member_b, action="wagtail.edit", user=city.trainer)
    assert "李强" in client_for(city.trainer).get(SITE_HISTORY_URLS[0]).content.decode()
    client = client_for(city.trainer_a)
    for url in SITE_HISTORY_URLS:
        response = client.get(url)
        assert response.status_code == 404, url
        assert "李强" not in response.content.decode()
    menu = client.get("/admin/reports/locked-pages/").content.decode()
    assert "/admin/reports/site-history/" not in menu


def test_site_history_stays_open_to_the_city_trainer_and_superusers(city, client_for):
    admin = get_user_model().objects.create_superuser("root", password=factories.PASSWORD)
    for user in (city.trainer, admin):
        client = client_for(user)
        for url in SITE_HISTORY_URLS:
            assert client.get(url).status_code == 200, (user, url)
        assert "/admin/reports/site-history/" in client.get("/admin/").content.decode()

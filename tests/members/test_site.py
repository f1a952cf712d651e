"""The site as a whole: home page, language, the database profile, demo data."""

from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from members.demo import DEMO_PASSWORD
from members.models import Member, Organization, RoleAssignment


def test_home_page_is_a_wagtail_page_in_chinese(db, client):
    from wagtail.models import Site

    from courses.models import HomePage

    assert isinstance(Site.objects.get(is_default_site=True).root_page.specific, HomePage)
    response = client.get("/")
    assert response.status_code == 200
    assert '<html lang="zh-hans">' in response.content.decode()
    assert "登录" in response.content.decode()


def test_language_switcher_speaks_english(db, client):
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"}, follow=True)
    text = response.content.decode()
    assert '<html lang="en">' in text
    assert "Log in" in text


def test_database_profile_is_what_the_environment_says(db):
    """SQLite by default (WAL, IMMEDIATE transactions); PostgreSQL when DATABASE_URL is set."""
    import os

    if os.environ.get("DATABASE_URL"):
        assert connection.vendor == "postgresql"
        assert connection.pg_version >= 150000
        return
    assert connection.vendor == "sqlite"
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 5000
    assert connection.transaction_mode == "IMMEDIATE"


def test_seed_demo_is_idempotent(db, capsys):
    call_command("seed_demo")
    counts = (Organization.objects.count(), Member.objects.count(), RoleAssignment.objects.count())
    call_command("seed_demo")
    assert counts == (
        Organization.objects.count(),
        Member.objects.count(),
        RoleAssignment.objects.count(),
    )
    assert 250 <= Member.objects.party_members().count() <= 350
    # People in training to join, and members of every category the department trains by.
    assert Member.objects.filter(status=Member.Status.CANDIDATE).exists()
    assert Member.objects.filter(status=Member.Status.ACTIVIST).exists()
    assert Member.objects.filter(activity_organization__isnull=False).exists()
    assert Member.objects.filter(is_retired=True).exists()
    assert Member.objects.filter(limited_mobility=True).exists()
    assert Member.objects.filter(position="secretary", position_since__isnull=False).exists()
    assert 25 <= Organization.objects.filter(kind="branch").count() <= 35
    assert Organization.find_problems() == ([], [], [], [], [])
    output = capsys.readouterr().out
    assert "trainer" in output and DEMO_PASSWORD in output


def test_demo_logins_work(db, client):
    call_command("seed_demo")
    for login in ("trainer", "13900000001", "operator", "13900000004", "county"):
        response = client.post(
            reverse("members:login"), {"username": login, "password": DEMO_PASSWORD}
        )
        assert response.status_code == 302, login
        client.logout()


def test_scale_seed_builds_a_valid_tree_that_treebeard_can_extend(db):
    call_command("seed_demo", "--members", "3000")
    city = Organization.objects.get(code="S")
    assert Member.objects.in_subtree(city).count() == 3000
    assert Organization.find_problems() == ([], [], [], [], [])
    branch = Organization.objects.filter(code__startswith="S-", kind="branch").first()
    village = Organization.objects.get(pk=branch.pk).get_parent()
    before = village.get_children_count()
    village.add_child(code=branch.code + "-ZZ", name="新支部")
    assert Organization.objects.get(pk=village.pk).get_children_count() == before + 1
    call_command("seed_demo", "--members", "3000")  # idempotent
    assert Member.objects.in_subtree(city).count() == 3000


def test_admin_link_only_for_those_who_may_enter(city, client_for):
    from django.test.utils import CaptureQueriesContext

    trainer_page = client_for(city.trainer).get("/").content.decode()
    assert 'href="/admin/"' in trainer_page
    member = client_for(city.member_a.user)
    with CaptureQueriesContext(connection) as queries:
        member_page = member.get("/").content.decode()
    assert 'href="/admin/"' not in member_page
    # A member's pages never ask for admin permissions (two queries on every page).
    assert not [q for q in queries if "auth_permission" in q["sql"]]

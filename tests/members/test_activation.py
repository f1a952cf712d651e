"""Activation slips only ever activate an account that has never been in use (issue 11).

An account is in use once it is activated or has a usable password by any other means (demo
and staff accounts, ``member_create(password=...)``). Such an account gets a new password only
through a password reset (tests/members/test_password_reset.py), never through a slip.
"""

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members import services
from members.models import ActivationCode, Member, Role

from .. import factories

PASSWORD = "Xin-ren-2026"
ACTIVATE = reverse("members:activate")
SLIPS = reverse("members:activation_slips")


@pytest.fixture(autouse=True)
def _fresh_counts():
    cache.clear()  # the activation page's rate limit
    yield
    cache.clear()


def newcomer(city, name="新人"):
    """A member as a roster import leaves them: no usable password, never activated."""
    return factories.member(city.branch_a, name=name, password=None)


def secretary(city) -> Client:
    client = Client()
    client.force_login(city.secretary_a, backend="members.backends.PhoneOrUsernameBackend")
    return client


def activate(client, member, code, password=PASSWORD, **extra):
    return client.post(
        ACTIVATE,
        {"phone": member.phone, "code": code, "password1": password, "password2": password},
        **extra,
    )


def audit(event):
    return list(LogEntry.objects.filter(additional_data__event=event).order_by("timestamp", "pk"))


# --- Who gets a slip ---------------------------------------------------------------------------


def test_an_account_in_use_is_what_the_queryset_and_the_model_say(city):
    fresh = newcomer(city)
    with_password = factories.member(city.branch_a, name="有密码")  # member_create(password=…)
    activated = newcomer(city, "已激活")
    Member.objects.filter(pk=activated.pk).update(activated_at=timezone.now())
    activated.refresh_from_db()
    assert [m.account_in_use for m in (fresh, with_password, activated)] == [False, True, True]
    never = Member.objects.filter(pk__in=[fresh.pk, with_password.pk, activated.pk])
    assert list(never.never_activated()) == [fresh]


def test_selecting_an_activated_member_by_id_prints_no_slip(city):
    """The attack: a branch secretary selects, by id, a member of her branch who activated long
    ago and is a trainer over the whole city, and prints a new slip for them."""
    victim = factories.member(city.branch_a, name="赵培训")
    services.role_assign(user=victim.user, role=Role.TRAINER, organization=city.root)
    Member.objects.filter(pk=victim.pk).update(activated_at=timezone.now())

    response = secretary(city).post(SLIPS, {"member": [victim.pk]})

    assert response.status_code == 302
    assert not ActivationCode.objects.filter(member=victim).exists()
    (entry,) = audit("activation_codes_issued")
    assert entry.additional_data["result"] == "refused"
    assert entry.additional_data["refused_member_ids"] == [victim.pk]
    assert entry.actor == city.secretary_a


@pytest.mark.parametrize("how", ["activated", "password"])
def test_the_service_itself_refuses_accounts_in_use(city, how):
    member = newcomer(city) if how == "activated" else factories.member(city.branch_a)
    if how == "activated":
        Member.objects.filter(pk=member.pk).update(activated_at=timezone.now())
    fresh = newcomer(city, "新人二")
    issued = services.activation_codes_issue(members=[member, fresh], user=city.secretary_a)
    assert [m for m, _code in issued] == [fresh]
    assert not ActivationCode.objects.filter(member=member).exists()
    (entry,) = audit("activation_codes_issued")
    assert entry.additional_data["result"] == "ok"
    assert entry.additional_data["member_ids"] == [fresh.pk]
    assert entry.additional_data["refused_member_ids"] == [member.pk]


def test_a_mixed_selection_prints_slips_for_the_newcomers_and_says_why_not_the_rest(city):
    fresh = newcomer(city)
    response = secretary(city).post(SLIPS, {"member": [fresh.pk, city.member_a.pk]})
    assert response.status_code == 200
    assert [m for m, _code in response.context["issued"]] == [fresh]
    warnings = [m for m in response.context["messages"] if m.level_tag == "warning"]
    assert len(warnings) == 1
    assert not ActivationCode.objects.filter(member=city.member_a).exists()


def test_selecting_by_organisation_skips_accounts_in_use(city):
    fresh = newcomer(city)
    response = secretary(city).post(SLIPS, {"org": city.branch_a.pk})
    assert response.status_code == 200
    assert [m for m, _code in response.context["issued"]] == [fresh]


def test_members_not_on_record_get_no_slip(city):
    gone = newcomer(city)
    Member.objects.filter(pk=gone.pk).update(is_active=False)
    assert services.activation_codes_issue(members=[gone]) == []


def test_the_member_page_offers_a_slip_only_to_an_account_never_in_use(city):
    client = secretary(city)
    fresh = newcomer(city)
    page = client.get(reverse("members:member_detail", args=[fresh.pk])).content.decode()
    assert SLIPS in page
    page = client.get(reverse("members:member_detail", args=[city.member_a.pk])).content.decode()
    assert SLIPS not in page


# --- Using a slip ------------------------------------------------------------------------------


def test_an_outstanding_code_does_not_open_an_account_activated_since(city, client):
    member = newcomer(city)
    [(_m, first)] = services.activation_codes_issue(members=[member])
    # A second code, outstanding beside the first (an older slip, a race).
    second = ActivationCode(member=member, expires_at=ActivationCode.expiry_from_now())
    second.set_code("ZWEITER234")
    second.save()
    assert activate(client, member, first).status_code == 302
    second.refresh_from_db()
    assert second.revoked  # activating revoked every other outstanding code
    (entry,) = audit("member_activated")
    assert entry.additional_data["revoked_codes"] == 1
    # Even a code that escaped the revocation is refused: the account is in use.
    ActivationCode.objects.filter(pk=second.pk).update(revoked=False)
    thief = Client()
    response = activate(thief, member, "ZWEITER234", password="Dieb-pass-2026")
    assert response.status_code == 200
    assert SESSION_KEY not in thief.session
    member.user.refresh_from_db()
    assert member.user.check_password(PASSWORD)
    refused = audit("member_activated")[-1]
    assert refused.additional_data["result"] == "refused"
    second.refresh_from_db()
    assert second.revoked


def test_an_activation_code_does_not_open_an_account_with_a_password(city, client):
    """A demo or staff account created with a password has never been "activated" but is in
    use: a code made for it (before the password was set) is refused."""
    member = newcomer(city)
    [(_m, code)] = services.activation_codes_issue(members=[member])
    member.user.set_password(factories.PASSWORD)
    member.user.save()
    response = activate(client, member, code)
    assert response.status_code == 200
    assert SESSION_KEY not in client.session
    member.user.refresh_from_db()
    assert member.user.check_password(factories.PASSWORD)
    member.refresh_from_db()
    assert member.activated_at is None


def test_an_activation_is_audit_logged_with_the_address(city, client):
    member = newcomer(city)
    [(_m, code)] = services.activation_codes_issue(members=[member])
    assert activate(client, member, code, REMOTE_ADDR="203.0.113.80").status_code == 302
    (entry,) = audit("member_activated")
    assert entry.actor == member.user and entry.remote_addr == "203.0.113.80"


def test_a_disabled_account_is_not_opened_by_a_slip(city, client):
    member = newcomer(city)
    [(_m, code)] = services.activation_codes_issue(members=[member])
    member.user.is_active = False
    member.user.save()
    assert activate(client, member, code).status_code == 200
    member.user.refresh_from_db()
    assert not member.user.is_active and not member.user.has_usable_password()


# --- The activation page's rate limit ----------------------------------------------------------


def test_activation_tries_are_limited_per_address(city, settings):
    settings.LUNXUN_ACTIVATE_RATE = "3/m"
    member = newcomer(city)
    [(_m, code)] = services.activation_codes_issue(members=[member])
    here = Client(REMOTE_ADDR="203.0.113.9")
    statuses = [activate(here, member, "WRONGCODE1").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    # Over the limit not even the right code is checked, and nothing is charged.
    limited = activate(here, member, code)
    assert limited.status_code == 429
    assert SESSION_KEY not in here.session
    assert 'name="phone"' in limited.content.decode()
    assert ActivationCode.objects.get(member=member).failures == 3
    # Another address is not affected.
    there = Client(REMOTE_ADDR="203.0.113.10")
    assert activate(there, member, code).status_code == 302


def test_viewing_the_activation_page_is_not_counted(db, settings):
    settings.LUNXUN_ACTIVATE_RATE = "1/m"
    here = Client(REMOTE_ADDR="203.0.113.11")
    assert [here.get(ACTIVATE).status_code for _ in range(3)] == [200, 200, 200]


def test_the_default_limit_lets_a_room_activate_one_after_another(city, settings):
    """A remote-education site: one address, a branch activating in turn, some mistyping."""
    members = [newcomer(city, f"党员{i}") for i in range(8)]
    codes = dict(services.activation_codes_issue(members=members))
    site = Client(REMOTE_ADDR="203.0.113.12")
    for member in members:
        assert activate(site, member, "WRONGCODE1").status_code == 200  # a typo first
        assert activate(site, member, codes[member]).status_code == 302
        site.logout()
    waiting = Member.objects.filter(pk__in=[m.pk for m in members], activated_at__isnull=True)
    assert not waiting.exists()

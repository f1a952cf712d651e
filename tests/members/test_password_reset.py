"""Password resets (重置密码) and changing one's own password.

A reset hands an account to whoever holds the reset slip, so it is a separate, explicit,
audit-logged action, allowed only for members whose every power lies within the resetter's own
(members.access.can_reset_password). It takes effect at once: the password stops working, every
session of the account ends, the member is told by SMS, and a one-time code on a printed slip
lets them set a new password at the activation page.
"""

import ast
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from auditlog.models import LogEntry
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from core.sms import BaseSmsBackend, SmsMessage
from members import access, services
from members.models import ActivationCode, Role

from .. import factories

BACKEND = "members.backends.PhoneOrUsernameBackend"
NEW_PASSWORD = "Xin-mi-ma-2026"


class RecordingBackend(BaseSmsBackend):
    """A deployment's SMS gateway, as the setting names it."""

    sent: list[SmsMessage] = []

    def send_messages(self, messages):
        RecordingBackend.sent.extend(messages)
        return len(messages)


class BrokenBackend(BaseSmsBackend):
    """A gateway that is down and raises whatever it is told."""

    def send_messages(self, messages):
        raise ConnectionError("gateway unreachable")


@pytest.fixture(autouse=True)
def _recording_sms(settings):
    settings.LUNXUN_SMS_BACKEND = "tests.members.test_password_reset.RecordingBackend"
    RecordingBackend.sent = []
    cache.clear()
    yield
    cache.clear()


def browser(user) -> Client:
    client = Client()
    client.force_login(user, backend=BACKEND)
    return client


def with_role(member, role, organization):
    services.role_assign(user=member.user, role=role, organization=organization)
    return member


def events(name, **filters):
    return list(
        LogEntry.objects.filter(additional_data__event=name, **filters).order_by("timestamp", "pk")
    )


def sessions_of(user) -> int:
    return sum(1 for s in Session.objects.all() if s.get_decoded().get(SESSION_KEY) == str(user.pk))


def reset_url(member):
    return reverse("members:member_password_reset", args=[member.pk])


# --- The rule: members.access.can_reset_password ----------------------------------------------


def test_a_secretary_may_reset_a_plain_member_of_her_branch(city):
    assert access.can_reset_password(city.secretary_a, city.member_a)


def test_no_one_resets_a_member_outside_their_subtree(city):
    assert not access.can_reset_password(city.secretary_a, city.member_b)
    assert not access.can_reset_password(city.trainer_a, city.member_b)


def test_no_one_resets_a_member_holding_a_role_above_them(city):
    # The attack of issue 11: a member of branch A who is a trainer over the whole city.
    city_trainer = with_role(
        factories.member(city.branch_a, name="赵培训"), Role.TRAINER, city.root
    )
    county_secretary = with_role(
        factories.member(city.branch_a, name="钱书记"), Role.SECRETARY, city.county_a
    )
    for user in (city.secretary_a, city.trainer_a):
        assert not access.can_reset_password(user, city_trainer)
    assert not access.can_reset_password(city.secretary_a, county_secretary)
    # County A's trainer is above the county's secretary; the city's trainer above everyone.
    assert access.can_reset_password(city.trainer_a, county_secretary)
    assert access.can_reset_password(city.trainer, county_secretary)
    assert access.can_reset_password(city.trainer, city_trainer)


def test_no_one_resets_a_member_holding_a_role_beside_them(city):
    secretary_elsewhere = with_role(
        factories.member(city.branch_a, name="孙书记"), Role.SECRETARY, city.branch_b
    )
    assert not access.can_reset_password(city.secretary_a, secretary_elsewhere)
    assert not access.can_reset_password(city.trainer_a, secretary_elsewhere)
    assert access.can_reset_password(city.trainer, secretary_elsewhere)


def test_roles_inside_her_subtree_are_hers_to_reset_but_a_trainer_only_by_a_trainer(city):
    co_secretary = with_role(
        factories.member(city.branch_a, name="周委员"), Role.SECRETARY, city.branch_a
    )
    site_operator = with_role(
        factories.member(city.branch_a, name="吴站长"), Role.OPERATOR, city.branch_a
    )
    branch_trainer = with_role(
        factories.member(city.branch_a, name="郑培训"), Role.TRAINER, city.branch_a
    )
    assert access.can_reset_password(city.secretary_a, co_secretary)
    assert access.can_reset_password(city.secretary_a, site_operator)
    # A trainer's account reaches the admin and the city's shared content: beyond a subtree.
    assert not access.can_reset_password(city.secretary_a, branch_trainer)
    assert access.can_reset_password(city.trainer_a, branch_trainer)
    county_secretary = factories.staff("county_sec_a", Role.SECRETARY, city.county_a)
    assert access.can_reset_password(county_secretary, co_secretary)


def test_operators_and_plain_members_reset_no_one(city):
    assert not access.can_reset_password(city.operator_a, city.member_a)
    other = factories.member(city.branch_a, name="冯敏")
    assert not access.can_reset_password(city.member_a.user, other)


def test_no_one_resets_their_own_password_this_way(city):
    secretary = with_role(
        factories.member(city.branch_a, name="陈书记"), Role.SECRETARY, city.branch_a
    )
    assert not access.can_reset_password(secretary.user, secretary)
    assert access.can_reset_password(city.trainer, secretary)


def test_superuser_and_staff_accounts_are_never_reset(city):
    admin_member = factories.member(city.branch_a, name="管理员")
    User = get_user_model()
    User.objects.filter(pk=admin_member.user_id).update(is_superuser=True)
    admin_member.refresh_from_db()
    staff_member = factories.member(city.branch_a, name="后台")
    User.objects.filter(pk=staff_member.user_id).update(is_staff=True)
    staff_member.refresh_from_db()
    root = User.objects.create_superuser("root", password=factories.PASSWORD)
    for member in (admin_member, staff_member):
        assert not access.can_reset_password(city.trainer, member)
        assert not access.can_reset_password(root, member)
    assert access.can_reset_password(root, city.member_a)


def test_anonymous_and_disabled_users_reset_no_one(city):
    from django.contrib.auth.models import AnonymousUser

    assert not access.can_reset_password(AnonymousUser(), city.member_a)
    city.secretary_a.is_active = False
    assert not access.can_reset_password(city.secretary_a, city.member_a)


# --- The reset ----------------------------------------------------------------------------------


def test_a_reset_locks_the_account_ends_its_sessions_and_tells_the_member(city):
    member = city.member_a
    phone, laptop = browser(member.user), browser(member.user)
    bystander = browser(city.member_b.user)
    assert sessions_of(member.user) == 2
    stale = ActivationCode(member=member, expires_at=ActivationCode.expiry_from_now())
    stale.set_code("OLDCODE234")
    stale.save()

    response = browser(city.secretary_a).post(reset_url(member), {"confirm": "on"})

    assert response.status_code == 200
    ((shown, code),) = response.context["issued"]
    assert shown == member and response.context["reset"] is True
    assert code[:5] in response.content.decode()
    member.user.refresh_from_db()
    assert not member.user.has_usable_password()
    assert not member.user.check_password(factories.PASSWORD)
    # Every session of the member ended, nobody else's.
    assert sessions_of(member.user) == 0
    assert sessions_of(city.member_b.user) == 1
    for client in (phone, laptop):
        assert client.get(reverse("members:password_change")).status_code == 302
    assert bystander.get(reverse("members:password_change")).status_code == 200
    # One usable code, a reset code, stored hashed; the earlier one revoked.
    stale.refresh_from_db()
    assert stale.revoked
    record = ActivationCode.objects.get(member=member, revoked=False)
    assert record.kind == ActivationCode.Kind.RESET and record.created_by == city.secretary_a
    assert code not in record.code_hash
    # The member is told, on their own number, without the code.
    (sms,) = RecordingBackend.sent
    assert sms.phone == member.phone and member.name in sms.text and code not in sms.text
    assert sms.purpose == "password_reset_notice" and sms.params["name"] == member.name
    assert set(sms.params) == {"name", "when"} and code not in str(sms.params)
    # Audit: who did it to whom, the result, and the notice.
    (entry,) = events("password_reset")
    assert entry.actor == city.secretary_a and entry.object_pk == str(member.pk)
    assert entry.additional_data["result"] == "ok"
    assert entry.additional_data["sessions_ended"] == 2
    assert entry.additional_data["revoked_codes"] == 1
    (notice,) = events("password_reset_notified")
    assert notice.additional_data["result"] == "ok" and notice.actor == city.secretary_a


def test_the_member_sets_a_new_password_with_the_reset_slip(city, client):
    member = city.member_a
    activated_at = member.activated_at = member.created_at
    member.save(update_fields=["activated_at"])
    code = services.member_password_reset(member=member, user=city.secretary_a)
    form = {
        "phone": member.phone,
        "code": code,
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    response = client.post(reverse("members:activate"), form)
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(member.user_id)
    member.refresh_from_db()
    assert member.user.check_password(NEW_PASSWORD)
    assert member.activated_at == activated_at  # still the day of the first activation
    (entry,) = events("password_set")
    assert entry.actor == member.user and entry.additional_data["result"] == "ok"
    # The slip worked once.
    client.logout()
    again = {**form, "password1": "Noch-mal-2026", "password2": "Noch-mal-2026"}
    assert client.post(reverse("members:activate"), again).status_code == 200
    member.user.refresh_from_db()
    assert member.user.check_password(NEW_PASSWORD)


def test_a_reset_code_stops_working_once_a_password_is_set_by_other_means(city, client):
    member = city.member_a
    code = services.member_password_reset(member=member, user=city.secretary_a)
    member.user.set_password("Admin-gesetzt-1")  # e.g. by an administrator in the meantime
    member.user.save()
    form = {
        "phone": member.phone,
        "code": code,
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    response = client.post(reverse("members:activate"), form)
    assert response.status_code == 200
    assert SESSION_KEY not in client.session
    member.user.refresh_from_db()
    assert member.user.check_password("Admin-gesetzt-1")
    assert ActivationCode.objects.get(member=member).revoked
    (entry,) = events("password_set")
    assert entry.additional_data["result"] == "refused"


def test_a_refused_reset_changes_nothing_and_is_recorded(city):
    city_trainer = with_role(
        factories.member(city.branch_a, name="赵培训"), Role.TRAINER, city.root
    )
    secretary = browser(city.secretary_a)
    trainer_session = browser(city_trainer.user)

    response = secretary.post(reset_url(city_trainer), {"confirm": "on"})

    assert response.status_code == 302
    assert response["Location"] == reverse("members:member_detail", args=[city_trainer.pk])
    city_trainer.user.refresh_from_db()
    assert city_trainer.user.check_password(factories.PASSWORD)
    assert not ActivationCode.objects.filter(member=city_trainer).exists()
    assert sessions_of(city_trainer.user) == 1
    assert trainer_session.get(reverse("members:password_change")).status_code == 200
    assert RecordingBackend.sent == []
    (entry,) = events("password_reset")
    assert entry.actor == city.secretary_a and entry.object_pk == str(city_trainer.pk)
    assert entry.additional_data["result"] == "refused" and entry.additional_data["error"]


def test_outside_her_subtree_the_answer_is_a_404_and_the_attempt_is_recorded(city):
    response = browser(city.secretary_a).post(reset_url(city.member_b), {"confirm": "on"})
    assert response.status_code == 404
    city.member_b.user.refresh_from_db()
    assert city.member_b.user.check_password(factories.PASSWORD)
    (entry,) = events("password_reset")
    assert entry.additional_data["result"] == "refused"
    assert entry.object_pk == str(city.member_b.pk)


def test_her_own_password_is_not_reset_through_the_reset(city):
    secretary = with_role(
        factories.member(city.branch_a, name="陈书记"), Role.SECRETARY, city.branch_a
    )
    client = browser(secretary.user)
    response = client.post(reset_url(secretary), {"confirm": "on"})
    assert response.status_code == 302
    secretary.user.refresh_from_db()
    assert secretary.user.check_password(factories.PASSWORD)
    assert events("password_reset")[0].additional_data["result"] == "refused"


def test_a_reset_needs_the_confirmation_and_a_post(city):
    secretary = browser(city.secretary_a)
    assert secretary.get(reset_url(city.member_a)).status_code == 405
    response = secretary.post(reset_url(city.member_a), {})
    assert response.status_code == 302
    city.member_a.user.refresh_from_db()
    assert city.member_a.user.check_password(factories.PASSWORD)
    assert not ActivationCode.objects.exists()
    assert events("password_reset") == []


def test_a_member_no_longer_on_record_is_not_reset(city):
    city.member_a.is_active = False
    city.member_a.save()
    with pytest.raises(services.PasswordResetRefused):
        services.member_password_reset(member=city.member_a, user=city.secretary_a)
    city.member_a.user.refresh_from_db()
    assert city.member_a.user.has_usable_password()
    assert events("password_reset")[0].additional_data["result"] == "refused"


def test_a_failed_sms_leaves_the_reset_in_force_and_says_so(city, settings):
    settings.LUNXUN_SMS_BACKEND = "tests.members.test_password_reset.BrokenBackend"
    code = services.member_password_reset(member=city.member_a, user=city.secretary_a)
    assert code
    city.member_a.user.refresh_from_db()
    assert not city.member_a.user.has_usable_password()
    (notice,) = events("password_reset_notified")
    assert notice.additional_data["result"] == "failed"
    assert "gateway unreachable" in notice.additional_data["error"]


def test_the_reset_button_shows_only_to_who_may_reset(city):
    city_trainer = with_role(
        factories.member(city.branch_a, name="赵培训"), Role.TRAINER, city.root
    )
    url = reset_url(city.member_a)
    page = browser(city.secretary_a).get(reverse("members:member_detail", args=[city.member_a.pk]))
    assert url in page.content.decode()
    assert 'name="confirm"' in page.content.decode()
    # member_a's account is in use: a reset, never an activation slip.
    assert reverse("members:activation_slips") not in page.content.decode()
    for user, member in (
        (city.operator_a, city.member_a),
        (city.secretary_a, city_trainer),
    ):
        page = browser(user).get(reverse("members:member_detail", args=[member.pk]))
        assert page.status_code == 200
        assert reset_url(member) not in page.content.decode()


# --- Changing one's own password --------------------------------------------------------------


def test_a_member_changes_their_own_password_and_stays_logged_in(city):
    member = city.member_a
    here, elsewhere = browser(member.user), browser(member.user)
    url = reverse("members:password_change")
    assert here.get(url).status_code == 200
    response = here.post(
        url,
        {
            "old_password": factories.PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    member.user.refresh_from_db()
    assert member.user.check_password(NEW_PASSWORD)
    assert here.get(url).status_code == 200  # still logged in here
    assert elsewhere.get(url).status_code == 302  # logged out everywhere else
    assert sessions_of(member.user) == 1
    (entry,) = events("password_changed")
    assert entry.actor == member.user and entry.object_pk == str(member.user_id)
    assert entry.additional_data["result"] == "ok"
    assert entry.additional_data["sessions_ended"] == 1


def test_a_wrong_current_password_or_a_weak_new_one_changes_nothing(city):
    client = browser(city.secretary_a)
    url = reverse("members:password_change")
    for data in (
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        {
            "old_password": factories.PASSWORD,
            "new_password1": "abcdefgh",
            "new_password2": "abcdefgh",
        },
    ):
        assert client.post(url, data).status_code == 200
    city.secretary_a.refresh_from_db()
    assert city.secretary_a.check_password(factories.PASSWORD)
    assert events("password_changed") == []


def test_wrong_current_passwords_lock_the_check_for_a_while(city, settings):
    """A stolen session cannot be used to guess the password: after 5 wrong current passwords
    in 15 minutes even the right one is not checked, for that user only, until the window
    passes. Every wrong try and every refusal is in the audit log."""
    settings.LUNXUN_PASSWORD_CHECK_RATE = "5/15m"
    url = reverse("members:password_change")
    right = {
        "old_password": factories.PASSWORD,
        "new_password1": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD,
    }
    with time_machine.travel("2026-11-05 10:01", tick=False) as clock:
        thief = browser(city.secretary_a)
        for attempt in range(5):
            response = thief.post(url, {**right, "old_password": f"guess-{attempt}"})
            assert response.status_code == 200
        locked = thief.post(url, right)
        assert locked.status_code == 429
        assert "当前密码错误次数过多" in locked.content.decode()
        city.secretary_a.refresh_from_db()
        assert city.secretary_a.check_password(factories.PASSWORD)
        refusals = [e.additional_data["error"] for e in events("password_change")]
        assert refusals == ["wrong current password"] * 5 + ["too many wrong current passwords"]
        # Another user's check is not locked.
        assert browser(city.secretary_b).post(url, right).status_code == 302
        # When the window has passed, the right password works again.
        clock.shift(timedelta(minutes=15))
        assert thief.post(url, right).status_code == 302
    city.secretary_a.refresh_from_db()
    assert city.secretary_a.check_password(NEW_PASSWORD)


def test_the_password_page_needs_a_login_and_is_in_the_menu(city, client):
    url = reverse("members:password_change")
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('members:login')}?next={url}"
    page = browser(city.member_a.user).get(reverse("rounds:notices"))
    assert f'href="{url}"' in page.content.decode()


# --- SMS is sent from core, below every domain app ----------------------------------------------


def test_members_imports_no_higher_app():
    """The app order: core <- members <- courses <- rounds <- certificates. Sending SMS lives
    below members (core.sms) so that a reset can tell the member."""
    higher = {"courses", "rounds", "certificates"}
    folder = Path(__file__).resolve().parents[2] / "members"
    found = []
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in higher]
    assert found == []

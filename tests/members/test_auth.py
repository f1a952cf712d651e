import re
from datetime import timedelta

import pytest
import time_machine
from auditlog.models import LogEntry
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from members import importing, services
from members.models import ActivationCode

from .. import factories

LOGIN = reverse("members:login")


def test_log_in_with_mobile_number(city, client):
    response = client.post(LOGIN, {"username": "138 0000 0001", "password": factories.PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(city.member_a.user.pk)


def test_log_in_with_username(city, client):
    response = client.post(LOGIN, {"username": "sec_a", "password": factories.PASSWORD})
    assert response.status_code == 302


def test_wrong_password_message_is_chinese_and_generic(city, client):
    response = client.post(LOGIN, {"username": "13800000001", "password": "wrong"})
    assert response.status_code == 200
    text = response.content.decode()
    assert "密码" in text


def fail(client, login, times):
    for _ in range(times):
        client.post(LOGIN, {"username": login, "password": "wrong-password"})


def test_five_failures_lock_the_account_even_with_the_right_password(city, client):
    fail(client, "13800000001", 5)
    response = client.post(LOGIN, {"username": "13800000001", "password": factories.PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert "30" in response.content.decode()


def test_lock_is_by_account_whichever_way_it_is_named(city, client):
    fail(client, "13800000001", 3)
    fail(client, "138-0000-0001", 2)
    response = client.post(LOGIN, {"username": "13800000001", "password": factories.PASSWORD})
    assert response.status_code == 429


def test_lock_is_not_by_address(city, client):
    """A whole village shares one IP: one member's failures must not lock another."""
    fail(client, "13800000001", 5)
    response = client.post(LOGIN, {"username": "13900000002", "password": factories.PASSWORD})
    assert response.status_code == 302


def test_lockout_reads_the_same_for_unknown_accounts(city, client):
    fail(client, "13800000001", 5)
    known = client.post(LOGIN, {"username": "13800000001", "password": "x"})
    fail(client, "13711112222", 5)
    unknown = client.post(LOGIN, {"username": "13711112222", "password": "x"})
    assert known.status_code == unknown.status_code == 429

    def page(response):
        return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", response.content)

    assert page(known) == page(unknown)


def test_lock_expires_after_thirty_minutes(city, client):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        fail(client, "13800000001", 5)
        traveller.shift(timedelta(minutes=31))
        response = client.post(LOGIN, {"username": "13800000001", "password": factories.PASSWORD})
    assert response.status_code == 302


@pytest.mark.parametrize("password", ["abcdefgh", "abcd1234", "ABCDabcd", "Ab1!"])
def test_weak_passwords_are_refused(password):
    with pytest.raises(ValidationError):
        validate_password(password)


@pytest.mark.parametrize("password", ["Abcd-1234", "qz9#Kp2mLx", "长城Wall-2026"])
def test_passwords_mixing_three_classes_are_accepted(password):
    validate_password(password)


def test_session_ends_after_thirty_idle_minutes(city, client):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        client.post(LOGIN, {"username": "sec_a", "password": factories.PASSWORD})
        traveller.shift(timedelta(minutes=29))
        assert client.get(reverse("members:roster")).status_code == 200
        traveller.shift(timedelta(minutes=31))
        response = client.get(reverse("members:roster"))
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_session_ends_after_twelve_hours_however_active(city, client):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        client.post(LOGIN, {"username": "sec_a", "password": factories.PASSWORD})
        for _step in range(28):  # active every 25 minutes for 11 h 40 min
            traveller.shift(timedelta(minutes=25))
            assert client.get(reverse("members:roster")).status_code == 200
        traveller.shift(timedelta(minutes=25))
        response = client.get(reverse("members:roster"))
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_login_and_failure_are_audit_logged(city, client):
    client.post(LOGIN, {"username": "sec_a", "password": "wrong"}, REMOTE_ADDR="10.1.2.3")
    client.post(LOGIN, {"username": "sec_a", "password": factories.PASSWORD})
    events = list(
        LogEntry.objects.filter(object_pk=str(city.secretary_a.pk))
        .order_by("timestamp")
        .values_list("additional_data__event", "remote_addr")
    )
    assert ("login_failed", "10.1.2.3") in events
    assert events[-1][0] == "login"


# --- Activation codes ----------------------------------------------------------------------------


@pytest.fixture
def newcomer(city):
    record = importing.roster_check(
        data="姓名,手机号码,党组织编码\n新人,13700005555,A-01\n".encode(), file_name="r.csv"
    )
    importing.roster_apply(spreadsheet_import=record)
    from members.models import Member

    return Member.objects.get(phone="13700005555")


def test_activation_slip_lets_a_member_set_a_password_once(city, client_for, client, newcomer):
    secretary = client_for(city.secretary_a)
    response = secretary.post(reverse("members:activation_slips"), {"member": [newcomer.pk]})
    assert response.status_code == 200
    ((member, code),) = response.context["issued"]
    assert member == newcomer
    assert code in response.content.decode().replace("-", "")
    stored = ActivationCode.objects.get(member=newcomer)
    assert code not in stored.code_hash

    form = {
        "phone": "137 0000 5555",
        "code": code.lower(),
        "password1": "Xin-ren-2026",
        "password2": "Xin-ren-2026",
    }
    response = client.post(reverse("members:activate"), form)
    assert response.status_code == 302
    newcomer.refresh_from_db()
    assert newcomer.activated_at is not None
    assert newcomer.user.check_password("Xin-ren-2026")
    client.logout()
    again = client.post(
        reverse("members:activate"),
        {**form, "password1": "Other-pass-99", "password2": "Other-pass-99"},
    )
    assert again.status_code == 200
    assert "激活码" in again.content.decode()


def test_wrong_codes_burn_the_code(city, client, newcomer, settings):
    [(_member, code)] = services.activation_codes_issue(members=[newcomer])
    for _ in range(settings.LUNXUN_ACTIVATION_MAX_FAILURES):
        client.post(
            reverse("members:activate"),
            {
                "phone": "13700005555",
                "code": "WRONGCODE1",
                "password1": "Xin-ren-2026",
                "password2": "Xin-ren-2026",
            },
        )
    response = client.post(
        reverse("members:activate"),
        {
            "phone": "13700005555",
            "code": code,
            "password1": "Xin-ren-2026",
            "password2": "Xin-ren-2026",
        },
    )
    assert response.status_code == 200
    newcomer.refresh_from_db()
    assert newcomer.activated_at is None


def test_new_slip_cancels_the_old_code(city, client, newcomer):
    [(_m, old)] = services.activation_codes_issue(members=[newcomer])
    services.activation_codes_issue(members=[newcomer])
    response = client.post(
        reverse("members:activate"),
        {
            "phone": "13700005555",
            "code": old,
            "password1": "Xin-ren-2026",
            "password2": "Xin-ren-2026",
        },
    )
    assert response.status_code == 200


def test_activation_refuses_a_weak_password(city, client, newcomer):
    [(_m, code)] = services.activation_codes_issue(members=[newcomer])
    response = client.post(
        reverse("members:activate"),
        {"phone": "13700005555", "code": code, "password1": "12345678", "password2": "12345678"},
    )
    assert response.status_code == 200
    newcomer.refresh_from_db()
    assert newcomer.activated_at is None
    assert ActivationCode.objects.get(member=newcomer).used_at is None

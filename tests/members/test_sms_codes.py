"""Logging in, activating and resetting a password with a six-digit code sent by SMS (issue 14).

Codes expire in five minutes, one at a time, hashed at rest, five wrong tries burn them; sends
are limited per number and per address; asking answers the same whatever the number; every send
and use is audit-logged, never with the code. Driven over HTTP where people use it, through the
console SMS backend (the real default) whose printed messages the tests read the code from.
"""

import re
from datetime import timedelta

import pytest
import time_machine
from auditlog.models import LogEntry
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members import services, sms_codes
from members.models import ActivationCode, SmsCode

from .. import factories
from . import sms_outbox
from .sms_outbox import RecordingConsoleBackend, last_code

NEW_PASSWORD = "Xin-mi-ma-2026"
BACKEND = "members.backends.PhoneOrUsernameBackend"
START = {
    "login": "members:sms_login",
    "reset": "members:sms_reset",
    "activate": "members:sms_activate",
}
CODE = {
    "login": "members:sms_login_code",
    "reset": "members:sms_reset_code",
    "activate": "members:sms_activate_code",
}


@pytest.fixture(autouse=True)
def _console_outbox(settings):
    settings.LUNXUN_SMS_BACKEND = sms_outbox.BACKEND
    sms_outbox.clear()
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def newcomer(city):
    """A member whose account was never activated (no password yet)."""
    return factories.member(city.branch_a, name="新人", phone="13700000001", password=None)


def events(name, **filters):
    return list(
        LogEntry.objects.filter(additional_data__event=name, **filters).order_by("timestamp", "pk")
    )


def ask(client, purpose, phone, **extra):
    return client.post(reverse(START[purpose]), {"phone": phone, **extra})


def enter(client, purpose, code, password=NEW_PASSWORD):
    data = {"code": code}
    if purpose != "login":
        data |= {"password1": password, "password2": password}
    return client.post(reverse(CODE[purpose]), data)


def logged_in_as(client) -> str | None:
    return client.session.get(SESSION_KEY)


# --- The code ---------------------------------------------------------------------------------


def test_a_code_is_six_digits_sent_to_the_number_and_stored_only_hashed(city):
    member = city.member_a
    assert sms_codes.sms_code_send(phone=member.phone, purpose="login") is True
    (message,) = RecordingConsoleBackend.messages
    code = message.params["code"]
    assert re.fullmatch(r"\d{6}", code)
    assert message.phone == member.phone
    assert message.purpose == "verification_code"
    assert message.params == {"code": code, "minutes": "5"}
    assert code in message.text and code == last_code("138****0001")
    stored = SmsCode.objects.get(member=member)
    assert code not in stored.code_hash and stored.code_hash.startswith("md5$")
    assert stored.matches(code) and not stored.matches("000000" if code != "000000" else "1")
    assert stored.expires_at == stored.created_at + timedelta(minutes=5) or (
        abs((stored.expires_at - stored.created_at) - timedelta(minutes=5)) < timedelta(seconds=1)
    )


def test_the_code_logs_the_member_in_with_a_real_session(city):
    browser = Client()
    response = ask(browser, "login", "138 0000 0001")
    assert response.status_code == 302 and response["Location"] == reverse(CODE["login"])
    page = browser.get(reverse(CODE["login"]))
    assert "138****0001" in page.content.decode()
    response = enter(browser, "login", last_code("138****0001"))
    assert response.status_code == 302 and response["Location"] == "/"
    assert logged_in_as(browser) == str(city.member_a.user.pk)
    # A page behind the login opens: a real, authenticated session.
    assert browser.get(reverse("members:password_change")).status_code == 200
    assert Session.objects.filter(session_key=browser.session.session_key).exists()


def test_a_code_expires_after_five_minutes(city):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        browser = Client()
        ask(browser, "login", city.member_a.phone)
        code = last_code("138****0001")
    with time_machine.travel(start + timedelta(minutes=5, seconds=1), tick=False):
        response = enter(browser, "login", code)
        assert response.status_code == 200 and logged_in_as(browser) is None
    (refused,) = events("sms_code_used", additional_data__result="refused")
    assert refused.additional_data["error"] == "code expired"


def test_a_code_still_works_just_before_five_minutes(city):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        browser = Client()
        ask(browser, "login", city.member_a.phone)
        code = last_code("138****0001")
    with time_machine.travel(start + timedelta(minutes=4, seconds=59), tick=False):
        assert enter(browser, "login", code).status_code == 302
        assert logged_in_as(browser) == str(city.member_a.user.pk)


def test_a_new_code_revokes_the_earlier_one(city):
    sms_codes.sms_code_send(phone=city.member_a.phone, purpose="login")
    first = last_code("138****0001")
    sms_codes.sms_code_send(phone=city.member_a.phone, purpose="reset")
    second = last_code("138****0001")
    assert SmsCode.objects.filter(member=city.member_a).usable().count() == 1
    if first != second:
        with pytest.raises(sms_codes.SmsCodeError):
            sms_codes.sms_code_login(phone=city.member_a.phone, code=first)
    assert SmsCode.objects.get(member=city.member_a, purpose="login").revoked
    sms_codes.sms_code_send(phone=city.member_a.phone, purpose="login")
    member = sms_codes.sms_code_login(phone=city.member_a.phone, code=last_code("138****0001"))
    assert member == city.member_a


def test_a_code_works_once(city):
    sms_codes.sms_code_send(phone=city.member_a.phone, purpose="login")
    code = last_code("138****0001")
    sms_codes.sms_code_login(phone=city.member_a.phone, code=code)
    with pytest.raises(sms_codes.SmsCodeError):
        sms_codes.sms_code_login(phone=city.member_a.phone, code=code)
    assert events("sms_code_used")[-1].additional_data["error"] == "code already used"


def test_a_code_is_for_its_purpose_only(city):
    sms_codes.sms_code_send(phone=city.member_a.phone, purpose="reset")
    code = last_code("138****0001")
    with pytest.raises(sms_codes.SmsCodeError):
        sms_codes.sms_code_login(phone=city.member_a.phone, code=code)
    sms_codes.sms_code_password_set(
        phone=city.member_a.phone, purpose="reset", code=code, password=NEW_PASSWORD
    )


def test_five_wrong_codes_burn_the_code(city, settings):
    sms_codes.sms_code_send(phone=city.member_a.phone, purpose="login")
    code = last_code("138****0001")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(settings.LUNXUN_SMS_CODE_MAX_FAILURES):
        with pytest.raises(sms_codes.SmsCodeError):
            sms_codes.sms_code_login(phone=city.member_a.phone, code=wrong)
    with pytest.raises(sms_codes.SmsCodeError):
        sms_codes.sms_code_login(phone=city.member_a.phone, code=code)
    stored = SmsCode.objects.get(member=city.member_a)
    assert stored.failures == 5 and stored.revoked and stored.used_at is None
    refused = events("sms_code_used", additional_data__result="refused")
    assert [e.additional_data.get("burnt") for e in refused[:5]] == [False] * 4 + [True]
    assert refused[5].additional_data["error"] == "code burnt by wrong tries"


def test_four_wrong_codes_leave_the_right_one_working(city):
    sms_codes.sms_code_send(phone=city.member_a.phone, purpose="login")
    code = last_code("138****0001")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(4):
        with pytest.raises(sms_codes.SmsCodeError):
            sms_codes.sms_code_login(phone=city.member_a.phone, code=wrong)
    assert sms_codes.sms_code_login(phone=city.member_a.phone, code=code) == city.member_a


def test_after_five_wrong_codes_the_page_asks_for_a_new_one(city):
    browser = Client()
    ask(browser, "login", city.member_a.phone)
    code = last_code("138****0001")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    pages = [enter(browser, "login", wrong).content.decode() for _ in range(5)]
    assert "data-sms-burnt" not in pages[3] and "data-sms-burnt" in pages[4]
    # The right code now: not even checked, and the member is not logged in.
    assert "data-sms-burnt" in enter(browser, "login", code).content.decode()
    assert logged_in_as(browser) is None


# --- Who gets a code --------------------------------------------------------------------------


def _without_csrf(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def _answer(purpose, phone):
    """Everything a person asking for a code sees: the answer, the page it leads to, and what
    a guessed code gets."""
    browser = Client()
    response = ask(browser, purpose, phone)
    page = browser.get(response["Location"]) if response.status_code == 302 else response
    tried = enter(browser, purpose, "123456")
    return (
        response.status_code,
        response.get("Location"),
        page.status_code,
        _without_csrf(page.content.decode()),
        tried.status_code,
        _without_csrf(tried.content.decode()),
    )


@pytest.mark.parametrize("purpose", ["login", "reset", "activate"])
def test_asking_answers_the_same_whether_or_not_the_number_may_have_a_code(city, purpose):
    """Every number below masks to 138****0001: the pages may differ only in the CSRF token."""
    activated = factories.member(city.branch_a, name="甲", phone="13811110001")
    never_activated = factories.member(city.branch_a, name="乙", phone="13822220001", password=None)
    deactivated = factories.member(city.branch_a, name="丙", phone="13833330001")
    deactivated.is_active = False
    deactivated.save()
    disabled = factories.member(city.branch_a, name="丁", phone="13844440001")
    disabled.user.is_active = False
    disabled.user.save()
    qualifies = never_activated if purpose == "activate" else activated
    numbers = {
        "qualifies": qualifies.phone,
        "unknown": "13899990001",
        "deactivated": deactivated.phone,
        "disabled": disabled.phone,
        "wrong state": activated.phone if purpose == "activate" else never_activated.phone,
    }
    answers = {}
    for name, phone in numbers.items():
        sms_outbox.clear()
        cache.clear()
        answers[name] = _answer(purpose, phone)
        assert len(RecordingConsoleBackend.messages) == (1 if name == "qualifies" else 0), name
    expected = answers.pop("qualifies")
    assert expected[0] == 302 and expected[2] == 200
    for name, answer in answers.items():
        assert answer == expected, name


def test_a_superuser_gets_no_code(city):
    member = factories.member(city.branch_a, name="管理员", phone="13855550001")
    member.user.is_superuser = True
    member.user.save()
    assert sms_codes.sms_code_send(phone=member.phone, purpose="login") is False
    assert RecordingConsoleBackend.messages == []
    (refused,) = events("sms_code_sent")
    assert refused.additional_data["result"] == "refused"


def test_a_number_that_is_not_a_mobile_number_is_refused_in_words(city):
    response = ask(Client(), "login", "12345")
    assert response.status_code == 200
    assert "11" in response.content.decode()
    assert RecordingConsoleBackend.messages == []


# --- Activation and reset ---------------------------------------------------------------------


def test_a_never_activated_member_activates_by_sms(city, newcomer):
    services.activation_codes_issue(members=[newcomer])
    browser = Client()
    ask(browser, "activate", newcomer.phone)
    response = enter(browser, "activate", last_code("137****0001"))
    assert response.status_code == 302
    newcomer.refresh_from_db()
    assert newcomer.activated_at is not None
    assert newcomer.user.check_password(NEW_PASSWORD)
    assert logged_in_as(browser) == str(newcomer.user.pk)
    # The printed slip stops working too: one password set, every other code gone.
    assert ActivationCode.objects.get(member=newcomer).revoked
    (activated,) = events("member_activated")
    assert activated.additional_data["via"] == "sms"


def test_a_weak_password_keeps_the_code_good(city, newcomer):
    browser = Client()
    ask(browser, "activate", newcomer.phone)
    code = last_code("137****0001")
    response = enter(browser, "activate", code, password="12345678")
    assert response.status_code == 200 and logged_in_as(browser) is None
    assert enter(browser, "activate", code).status_code == 302


def test_the_two_passwords_must_match(city, newcomer):
    browser = Client()
    ask(browser, "activate", newcomer.phone)
    response = browser.post(
        reverse(CODE["activate"]),
        {"code": last_code("137****0001"), "password1": NEW_PASSWORD, "password2": "Other-2026-x"},
    )
    assert response.status_code == 200
    newcomer.refresh_from_db()
    assert newcomer.activated_at is None


def test_a_reset_by_sms_sets_the_password_and_ends_the_other_sessions(city):
    member = city.member_a
    elsewhere = Client()
    elsewhere.force_login(member.user, backend=BACKEND)
    elsewhere_key = elsewhere.session.session_key
    browser = Client()
    ask(browser, "reset", member.phone)
    response = enter(browser, "reset", last_code("138****0001"))
    assert response.status_code == 302
    member.user.refresh_from_db()
    assert member.user.check_password(NEW_PASSWORD)
    assert not member.user.check_password(factories.PASSWORD)
    assert not Session.objects.filter(session_key=elsewhere_key).exists()  # ended, not only stale
    assert elsewhere.get(reverse("members:password_change")).status_code == 302  # logged out
    assert logged_in_as(browser) == str(member.user.pk)
    (password_set,) = events("password_set")
    assert password_set.additional_data["via"] == "sms"
    assert password_set.additional_data["sessions_ended"] == 1


def test_a_secretary_reset_account_can_set_its_password_by_sms(city):
    """After a reset by the secretary (password unusable, slip on its way), the member need not
    wait for the slip: the account is in use, so a reset by SMS works, and the slip dies."""
    city.member_a.activated_at = timezone.now()  # activated with a slip, long ago
    city.member_a.save()
    services.member_password_reset(member=city.member_a, user=city.secretary_a)
    browser = Client()
    ask(browser, "reset", city.member_a.phone)
    assert enter(browser, "reset", last_code("138****0001")).status_code == 302
    assert not ActivationCode.objects.filter(member=city.member_a).usable().exists()


# --- Rate limits ------------------------------------------------------------------------------


def test_one_number_gets_one_code_a_minute_and_five_an_hour(city):
    start = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    statuses = []
    for index, minute in enumerate((0, 0, 2, 4, 6, 8, 10)):
        with time_machine.travel(start + timedelta(minutes=minute, seconds=1), tick=False):
            # From another address each time: the number is counted, wherever the asking is.
            statuses.append(
                ask(
                    Client(REMOTE_ADDR=f"203.0.113.{index + 1}"), "login", city.member_a.phone
                ).status_code
            )
    assert statuses == [302, 429, 302, 302, 302, 302, 429]
    assert len(RecordingConsoleBackend.messages) == 5


def test_over_the_limit_nothing_is_sent_and_the_page_says_so(city):
    browser = Client()
    ask(browser, "login", city.member_a.phone)
    response = ask(browser, "login", city.member_a.phone)
    assert response.status_code == 429
    assert "Nothing was sent" in response.content.decode() or "未发送" in response.content.decode()
    assert len(RecordingConsoleBackend.messages) == 1


def test_one_address_may_ask_for_a_limited_number_of_codes(city, settings):
    settings.LUNXUN_SMS_SEND_RATE_ADDRESS = "3/h"
    members = [
        factories.member(city.branch_a, name=f"成员{i}", phone=f"1370000100{i}") for i in range(4)
    ]
    site_pc = Client(REMOTE_ADDR="198.51.100.7")
    statuses = [ask(site_pc, "login", m.phone).status_code for m in members]
    assert statuses == [302, 302, 302, 429]
    assert len(RecordingConsoleBackend.messages) == 3
    assert ask(Client(REMOTE_ADDR="198.51.100.8"), "login", members[3].phone).status_code == 302


def test_code_checks_are_limited_per_address_and_over_it_nothing_is_checked(city, settings):
    settings.LUNXUN_SMS_CHECK_RATE = "3/m"
    browser = Client(REMOTE_ADDR="198.51.100.9")
    ask(browser, "login", city.member_a.phone)
    code = last_code("138****0001")
    assert [enter(browser, "login", "000000").status_code for _ in range(3)] == [200] * 3
    response = enter(browser, "login", code)
    assert response.status_code == 429 and logged_in_as(browser) is None
    stored = SmsCode.objects.get(member=city.member_a)
    failures = stored.failures
    assert enter(browser, "login", "000000").status_code == 429
    stored.refresh_from_db()
    assert stored.failures == failures  # not charged either


# --- Audit ------------------------------------------------------------------------------------


def test_every_send_and_use_is_audit_logged_without_the_code(city):
    browser = Client(REMOTE_ADDR="198.51.100.10")
    ask(browser, "login", city.member_a.phone)
    code = last_code("138****0001")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    enter(browser, "login", wrong)
    enter(browser, "login", code)
    (sent,) = events("sms_code_sent")
    assert sent.additional_data["result"] == "ok"
    assert sent.additional_data["purpose"] == "login"
    assert sent.additional_data["phone"] == "138****0001"
    assert sent.remote_addr == "198.51.100.10"
    refused, used = events("sms_code_used")
    assert (refused.additional_data["result"], refused.additional_data["error"]) == (
        "refused",
        "wrong code",
    )
    assert used.additional_data["result"] == "ok" and used.actor == city.member_a.user
    for entry in LogEntry.objects.all():
        assert code not in str(entry.additional_data) and code not in str(entry.changes)
        assert city.member_a.phone not in str(entry.additional_data)


def test_a_failed_send_is_logged_as_failed_and_answered_the_same(city, settings):
    settings.LUNXUN_SMS_BACKEND = "tests.members.sms_outbox.BrokenBackend"
    response = ask(Client(), "login", city.member_a.phone)
    assert response.status_code == 302
    (sent,) = events("sms_code_sent")
    assert sent.additional_data["result"] == "failed"
    assert "ConnectionError" in sent.additional_data["error"]


def test_a_refused_send_to_a_deactivated_member_is_logged(city):
    member = city.member_a
    member.is_active = False
    member.save()
    ask(Client(), "login", member.phone)
    (refused,) = events("sms_code_sent")
    assert refused.additional_data["result"] == "refused"
    assert RecordingConsoleBackend.messages == []


# --- Where the login leads, and django-axes ---------------------------------------------------


@pytest.mark.parametrize(
    ("next_url", "lands_on"),
    [
        ("/rounds/", "/rounds/"),
        ("https://evil.example/steal", "/"),
        ("//evil.example/steal", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_the_login_goes_to_next_only_on_this_site(city, next_url, lands_on):
    browser = Client()
    page = browser.get(reverse(START["login"]), {"next": next_url})
    assert (f'value="{next_url}"' in page.content.decode()) == (next_url == lands_on)
    ask(browser, "login", city.member_a.phone, next=next_url)
    response = enter(browser, "login", last_code("138****0001"))
    assert response.status_code == 302 and response["Location"] == lands_on


def test_a_member_locked_out_by_wrong_passwords_still_logs_in_by_code(city, client):
    """django-axes locks password login after five wrong passwords (someone guessing); the code
    proves the registered phone, so the member gets in, and, as after any successful login
    (AXES_RESET_ON_SUCCESS), the count of wrong passwords starts again."""
    login_url = reverse("members:login")
    for _ in range(5):
        client.post(login_url, {"username": city.member_a.phone, "password": "wrong-password"})
    locked = client.post(
        login_url, {"username": city.member_a.phone, "password": factories.PASSWORD}
    )
    assert locked.status_code == 429
    assert f'href="{reverse(START["login"])}"' in locked.content.decode()  # the way in offered
    browser = Client()
    ask(browser, "login", city.member_a.phone)
    assert enter(browser, "login", last_code("138****0001")).status_code == 302
    assert logged_in_as(browser) == str(city.member_a.user.pk)
    assert not AccessAttempt.objects.filter(username=city.member_a.user.username).exists()


def test_the_pages_and_the_sms_speak_chinese(city):
    browser = Client()
    assert "短信验证码登录" in browser.get(reverse(START["login"])).content.decode()
    ask(browser, "login", city.member_a.phone)
    page = browser.get(reverse(CODE["login"])).content.decode()
    assert "如果该号码（138****0001）已登记" in page
    (message,) = RecordingConsoleBackend.messages
    assert message.text.startswith("【轮训】您的登录验证码是") and "5分钟内有效" in message.text

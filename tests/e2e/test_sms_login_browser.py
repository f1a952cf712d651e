"""On a 360 px phone: log in, reset a forgotten password and activate an account with a code sent
by SMS, the code read from what the console SMS backend printed; five wrong codes burn it."""

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.cache import cache
from playwright.sync_api import expect

from members.models import Member, SmsCode

from .. import factories
from ..members import sms_outbox
from ..members.sms_outbox import last_code

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "Xin-mi-ma-2026"


@pytest.fixture(autouse=True)
def _console_outbox(settings):
    settings.LUNXUN_SMS_BACKEND = sms_outbox.BACKEND
    sms_outbox.clear()
    cache.clear()
    yield
    cache.clear()


def logged_in_users(page) -> set[str]:
    """The accounts the browser's session cookie is logged in as (read from the database)."""
    keys = [c["value"] for c in page.context.cookies() if c["name"] == "sessionid"]
    return {
        s.get_decoded().get(SESSION_KEY)
        for s in Session.objects.filter(session_key__in=keys)
        if s.get_decoded().get(SESSION_KEY)
    }


def big_enough(locator):
    box = locator.bounding_box()
    assert box["height"] >= 44, box
    return box


def fits_the_phone(page):
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def ask_for_code(page, phone):
    page.locator("#id_phone").fill(phone)
    send = page.locator("button[name=send]")
    big_enough(send)
    fits_the_phone(page)
    send.click()
    expect(page.locator("[data-sms-sent]")).to_be_visible()


def test_member_logs_in_with_a_code_from_the_login_page(city, phone_page):
    page = phone_page
    page.goto("/login/?next=/rounds/")
    page.locator("[data-sms-login]").click()
    expect(page.locator("[data-sms-purpose=login]")).to_be_visible()
    ask_for_code(page, "138 0000 0001")
    expect(page.locator("[data-sms-sent]")).to_contain_text("138****0001")
    code = last_code("138****0001")
    page.locator("#id_code").fill(code)
    big_enough(page.locator("button[name=check]"))
    fits_the_phone(page)
    page.locator("button[name=check]").click()
    page.wait_for_url("**/rounds/")
    assert logged_in_users(page) == {str(city.member_a.user.pk)}


def test_member_resets_a_forgotten_password_by_sms(city, phone_page):
    page = phone_page
    page.goto("/login/")
    page.locator("a[href='/password/forgot/']").first.click()
    expect(page.locator("[data-sms-purpose=reset]")).to_be_visible()
    ask_for_code(page, "13800000001")
    page.locator("#id_code").fill(last_code("138****0001"))
    page.locator("#id_password1").fill(NEW_PASSWORD)
    page.locator("#id_password2").fill(NEW_PASSWORD)
    page.locator("button[name=check]").click()
    expect(page.locator(".message-success")).to_be_visible()
    assert logged_in_users(page) == {str(city.member_a.user.pk)}
    city.member_a.user.refresh_from_db()
    assert city.member_a.user.check_password(NEW_PASSWORD)

    # The new password works at the ordinary login, the old one no more.
    page.context.clear_cookies()
    page.goto("/login/")
    page.locator("#id_username").fill("13800000001")
    page.locator("#id_password").fill(NEW_PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert logged_in_users(page) == {str(city.member_a.user.pk)}


def test_newcomer_activates_the_account_by_sms(city, phone_page):
    newcomer = factories.member(city.branch_a, name="新人", phone="13700000001", password=None)
    page = phone_page
    page.goto("/activate/")
    page.locator("a[href='/activate/sms/']").first.click()
    expect(page.locator("[data-sms-purpose=activate]")).to_be_visible()
    ask_for_code(page, "13700000001")
    page.locator("#id_code").fill(last_code("137****0001"))
    page.locator("#id_password1").fill(NEW_PASSWORD)
    page.locator("#id_password2").fill(NEW_PASSWORD)
    page.locator("button[name=check]").click()
    expect(page.locator(".message-success")).to_be_visible()
    newcomer = Member.objects.select_related("user").get(pk=newcomer.pk)
    assert newcomer.activated_at is not None
    assert newcomer.user.check_password(NEW_PASSWORD)
    assert logged_in_users(page) == {str(newcomer.user.pk)}


def test_five_wrong_codes_burn_the_code_and_a_new_one_works(city, phone_page, settings):
    settings.LUNXUN_SMS_SEND_RATE_PHONE = "5/m"  # the new code is asked for at once
    page = phone_page
    page.goto("/login/sms/")
    ask_for_code(page, "13800000001")
    code = last_code("138****0001")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        page.locator("#id_code").fill(wrong)
        with page.expect_navigation():
            page.locator("button[name=check]").click()
    expect(page.locator("[data-sms-burnt]")).to_be_visible()
    assert page.locator("#id_code").count() == 0
    stored = SmsCode.objects.get(member=city.member_a)
    assert stored.failures == 5 and stored.revoked
    assert logged_in_users(page) == set()

    # Ask for a new code (the number is filled in already): it works.
    page.locator("[data-sms-burnt] ~ p a").click()
    expect(page.locator("#id_phone")).to_have_value("13800000001")
    page.locator("button[name=send]").click()
    expect(page.locator("[data-sms-sent]")).to_be_visible()
    new_code = last_code("138****0001")
    page.locator("#id_code").fill(new_code)
    page.locator("button[name=check]").click()
    page.wait_for_url("**/")
    assert logged_in_users(page) == {str(city.member_a.user.pk)}

"""Rate limits: logins per address, the public verification page per address, reminders per
user — counted in the cache, behind a trusted proxy by the address it names."""

import pytest
import time_machine
from auditlog.models import LogEntry
from axes.models import AccessAttempt
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils.translation import gettext

from certificates import services as certificate_services
from certificates.models import Certificate
from rounds.models import Reminder

from .. import factories
from ..certificates.rounds_setup import completed_round
from ..rounds import builders

LOGIN = reverse("members:login")
LOGIN_LIMITED = (
    "Too many log-in attempts from this network in a short time. "
    "Please wait a minute and try again."
)
REMIND_LIMITED = (
    "You have sent reminders too often in a short time. Nothing was sent this time; "
    "please try again later."
)


@pytest.fixture(autouse=True)
def _fresh_counts():
    cache.clear()
    with time_machine.travel(builders.aware(2026, 11, 12, 10, 0), tick=False):
        yield
    cache.clear()


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- Login -------------------------------------------------------------------------------------


def test_login_attempts_are_limited_per_address(city, settings):
    settings.LUNXUN_LOGIN_RATE = "3/m"
    browser = Client(REMOTE_ADDR="203.0.113.5")
    statuses = [
        browser.post(LOGIN, {"username": "sec_a", "password": "wrong"}).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    limited = browser.post(LOGIN, {"username": "sec_a", "password": factories.PASSWORD})
    assert limited.status_code == 429
    assert gettext(LOGIN_LIMITED) in messages_of(limited)
    assert 'name="username"' in limited.content.decode()
    assert "_auth_user_id" not in browser.session  # not logged in, even with the password
    # No password was checked over the limit: the account was charged three failures, not four.
    assert AccessAttempt.objects.get(username="sec_a").failures_since_start == 3
    assert LogEntry.objects.filter(additional_data__event="login_failed").count() == 3
    # Another address is not affected; the account is not locked.
    other = Client(REMOTE_ADDR="203.0.113.6")
    assert other.post(LOGIN, {"username": "sec_a", "password": factories.PASSWORD}).status_code == (
        302
    )


def test_viewing_the_login_page_is_not_counted(city, settings):
    settings.LUNXUN_LOGIN_RATE = "2/m"
    browser = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(5):
        assert browser.get(LOGIN).status_code == 200
    response = browser.post(LOGIN, {"username": "sec_a", "password": factories.PASSWORD})
    assert response.status_code == 302


def test_behind_a_proxy_each_client_address_counts_on_its_own(city, settings):
    settings.LUNXUN_LOGIN_RATE = "2/m"
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"

    def attempt(client_address):
        browser = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_REAL_IP=client_address)
        return browser.post(LOGIN, {"username": "sec_a", "password": "wrong"}).status_code

    assert [attempt("198.51.100.1") for _ in range(3)] == [200, 200, 429]
    assert attempt("198.51.100.2") == 200


def test_the_limit_resets_with_the_window(city, settings):
    settings.LUNXUN_LOGIN_RATE = "1/m"
    browser = Client(REMOTE_ADDR="203.0.113.8")
    data = {"username": "sec_b", "password": "wrong"}
    assert [browser.post(LOGIN, data).status_code for _ in range(2)] == [200, 429]
    with time_machine.travel(builders.aware(2026, 11, 12, 10, 2), tick=False):
        assert browser.post(LOGIN, data).status_code == 200


# --- The verification page -----------------------------------------------------------------------


@pytest.fixture
def certificate(city, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    training_round = completed_round([city.root], city.member_a)
    certificate_services.certificates_issue(training_round=training_round, render=False)
    return Certificate.objects.get(member=city.member_a)


def test_verification_is_limited_per_address(certificate, settings):
    settings.LUNXUN_VERIFY_RATE = "2/m"
    url = reverse("certificates:verify", args=[certificate.code])
    visitor = Client(REMOTE_ADDR="203.0.113.20")
    assert [visitor.get(url).status_code for _ in range(3)] == [200, 200, 429]
    assert Client(REMOTE_ADDR="203.0.113.21").get(url).status_code == 200


def test_verification_behind_a_proxy_counts_the_visitor_not_the_proxy(certificate, settings):
    settings.LUNXUN_VERIFY_RATE = "2/m"
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"
    url = reverse("certificates:verify", args=[certificate.code])

    def visit(address):
        return Client(REMOTE_ADDR="10.0.0.2", HTTP_X_REAL_IP=address).get(url).status_code

    assert [visit("198.51.100.30") for _ in range(3)] == [200, 200, 429]
    assert visit("198.51.100.31") == 200


def test_one_address_function_for_limits_and_the_log(certificate, settings):
    """The settings the scale profile is meant to run with: the trusted header named once, and
    django-ratelimit's "ip" key reading the address through core.audit.client_ip."""
    settings.LUNXUN_VERIFY_RATE = "1/m"
    settings.LUNXUN_RATELIMIT_IP_HEADER = "HTTP_X_REAL_IP"
    settings.RATELIMIT_IP_META_KEY = "core.ratelimits.client_address"
    url = reverse("certificates:verify", args=[certificate.code])

    def visit(address):
        return Client(REMOTE_ADDR="10.0.0.2", HTTP_X_REAL_IP=address).get(url).status_code

    assert [visit("198.51.100.40"), visit("198.51.100.40"), visit("198.51.100.41")] == [
        200,
        429,
        200,
    ]
    Client(REMOTE_ADDR="10.0.0.2", HTTP_X_REAL_IP="198.51.100.42").post(
        LOGIN, {"username": "sec_a", "password": factories.PASSWORD}
    )
    assert LogEntry.objects.get(additional_data__event="login").remote_addr == "198.51.100.42"


# --- Reminders ---------------------------------------------------------------------------------


@pytest.fixture
def reminding(city, client_for):
    city.round = builders.training_round([city.root])
    city.url = reverse("rounds:remind", args=[city.round.pk])
    return city


def test_reminders_are_limited_per_user_with_a_clear_message(reminding, client_for, settings):
    settings.LUNXUN_REMIND_RATE = "2/h"
    city = reminding
    secretary = client_for(city.secretary_a)
    for _ in range(2):
        response = secretary.post(city.url, {"org": city.branch_a.pk}, follow=True)
        assert gettext(REMIND_LIMITED) not in messages_of(response)
    assert LogEntry.objects.filter(additional_data__event="reminders_sent").count() == 2
    Reminder.objects.all().delete()  # so that the next click would remind again

    response = secretary.post(city.url, {"org": city.branch_a.pk, "next": "/rounds/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/rounds/"
    assert messages_of(response) == [gettext(REMIND_LIMITED)]
    assert not Reminder.objects.exists()
    assert LogEntry.objects.filter(additional_data__event="reminders_sent").count() == 2

    # Per user: another secretary is not held back by the first one's clicks.
    other = client_for(city.secretary_b).post(city.url, {"org": city.branch_b.pk}, follow=True)
    assert gettext(REMIND_LIMITED) not in messages_of(other)
    assert Reminder.objects.filter(member=city.member_b).exists()


def test_the_default_reminder_limit_allows_a_working_hour(reminding, client_for):
    secretary = client_for(reminding.secretary_a)
    for _ in range(10):
        response = secretary.post(reminding.url, {"org": reminding.branch_a.pk}, follow=True)
        assert gettext(REMIND_LIMITED) not in messages_of(response)
    response = secretary.post(reminding.url, {"org": reminding.branch_a.pk}, follow=True)
    assert messages_of(response) == [gettext(REMIND_LIMITED)]


def test_an_outsider_is_still_a_404_not_a_rate_limit(reminding, client_for, settings):
    settings.LUNXUN_REMIND_RATE = "1/h"
    client = client_for(reminding.secretary_b)
    for _ in range(3):
        assert client.post(reminding.url, {"org": reminding.branch_a.pk}).status_code == 404

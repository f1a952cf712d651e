"""Large-type mode (长辈模式): the switch, remembered on the device, and what every page does
with it."""

import pytest
from django.test import Client

from core.display import COOKIE

pytestmark = pytest.mark.django_db


def html_tag(response) -> str:
    body = response.content.decode()
    start = body.index("<html")
    return body[start : body.index(">", start) + 1]


def test_the_switch_turns_large_type_on_and_goes_back(client):
    response = client.post("/display/", {"mode": "large", "next": "/login/?next=/rounds/"})
    assert response.status_code == 302 and response["Location"] == "/login/?next=/rounds/"
    cookie = response.cookies[COOKIE]
    assert cookie.value == "large"
    assert cookie["max-age"] >= 300 * 24 * 3600  # remembered for long, not for a session
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert 'class="large-type"' in html_tag(client.get("/login/"))


def test_the_switch_turns_it_off_again(client):
    client.post("/display/", {"mode": "large", "next": "/"})
    client.post("/display/", {"mode": "standard", "next": "/"})
    assert "large-type" not in html_tag(client.get("/login/"))


def test_every_page_shows_the_switch_in_the_state_it_is_in(client, city):
    page = client.get("/login/").content.decode()
    assert 'name="mode" value="large"' in page and "长辈模式" in page
    client.post("/display/", {"mode": "large", "next": "/"})
    client.force_login(city.member_a.user)
    page = client.get("/rounds/").content.decode()
    assert 'name="mode" value="standard"' in page and "退出长辈模式" in page


def test_an_unknown_mode_changes_nothing(client):
    response = client.post("/display/", {"mode": "huge", "next": "/"})
    assert response.status_code == 302 and COOKIE not in response.cookies


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)", "/\\evil.example"]
)
def test_it_never_sends_anyone_off_the_site(client, target):
    response = client.post("/display/", {"mode": "large", "next": target})
    assert response["Location"] == "/"


def test_the_switch_is_a_post_with_a_csrf_token():
    csrf_client = Client(enforce_csrf_checks=True)
    assert csrf_client.get("/display/?mode=large").status_code == 405
    response = csrf_client.post("/display/", {"mode": "large", "next": "/"})
    assert response.status_code == 403 and COOKIE not in response.cookies


def test_the_choice_outlives_logging_out(client, city):
    client.post("/display/", {"mode": "large", "next": "/"})
    client.force_login(city.member_a.user)
    client.post("/logout/")
    assert 'class="large-type"' in html_tag(client.get("/login/"))


def test_pages_are_private_and_revalidated_so_no_browser_shows_an_old_copy(client, city):
    """WeChat's browser shows a kept copy after a switch that redirects to the same address."""
    for response in (client.get("/login/"), client.get("/no-such-page/")):
        assert "private" in response["Cache-Control"] and "no-cache" in response["Cache-Control"]
    client.force_login(city.member_a.user)
    response = client.get("/rounds/")
    assert "private" in response["Cache-Control"] and "no-cache" in response["Cache-Control"]
    # A view that says how it may be kept is left alone (the feed page: never kept at all).
    assert "no-store" in client.get("/calendar/feed/")["Cache-Control"]

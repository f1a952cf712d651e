"""A quiz submit authenticates by the token its page carries (issue 16's speed target, the
progress report's way): the token is issued to the login session that shows the page, is good
while that session lives, and the submit then loads neither session nor user. Without a good
token the member's own login decides, so nobody else's submit ever counts."""

import re

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quizzes.models import Attempt

from ..courses import builders as course_builders
from . import builders


@pytest.fixture
def quiz(city):
    return builders.quiz(course_builders.course(), size=4, question_count=3, pass_mark=2)


def _page(client, quiz):
    """Start an attempt and show its page: (attempt, the page's submit URL, its token)."""
    started = client.post(f"/quizzes/{quiz.pk}/start/")
    html = client.get(started["Location"]).content.decode()
    action = re.search(r'action="([^"]+)" novalidate class="quiz-form"', html).group(1)
    token = re.search(r'name="token" value="([^"]*)"', html).group(1)
    pk = int(re.search(r"/quizzes/attempts/(\d+)/", started["Location"]).group(1))
    return Attempt.objects.get(pk=pk), action, token


def _answers(attempt, *, right=True, token=""):
    chosen = (builders.right_answers if right else builders.wrong_answers)(attempt)
    post = {f"q{q}": [str(c) for c in ids] for q, ids in chosen.items()}
    post["token"] = token
    return post


def _submitted(attempt):
    return Attempt.objects.get(pk=attempt.pk).state == Attempt.State.SUBMITTED


def test_the_page_posts_to_the_submit_url_with_its_token(quiz, city, client_for):
    attempt, action, token = _page(client_for(city.member_a.user), quiz)
    assert action == f"/quizzes/attempts/{attempt.pk}/submit/"
    attempt.refresh_from_db()
    assert token == str(attempt.token) and attempt.token_session


def test_the_token_alone_answers_and_the_member_is_the_actor(quiz, city, client_for):
    attempt, action, token = _page(client_for(city.member_a.user), quiz)
    stranger = Client()  # no session cookie at all: the token is the credential
    response = stranger.post(action, _answers(attempt, token=token))
    assert response.status_code == 302
    assert response["Location"] == f"/quizzes/attempts/{attempt.pk}/result/"
    assert _submitted(attempt)
    entry = LogEntry.objects.get(
        additional_data__event="quiz_attempt_submitted", additional_data__result="ok"
    )
    assert entry.actor_id == city.member_a.user.pk


def test_a_token_submit_loads_no_session_and_no_user(quiz, city, client_for):
    client = client_for(city.member_a.user)
    attempt, action, token = _page(client, quiz)
    post = _answers(attempt, token=token)
    with CaptureQueriesContext(connection) as captured:
        assert client.post(action, post).status_code == 302
    statements = [q["sql"] for q in captured.captured_queries]
    # The session is asked about only inside the attempt's own query (EXISTS), never read.
    assert not [s for s in statements if re.match(r'SELECT [^()]* FROM "django_session"', s)]
    assert not [s for s in statements if re.match(r'SELECT [^()]* FROM "auth_user"', s)]
    # One query finds and checks the attempt, one reads its questions' options; one write.
    assert len([s for s in statements if s.startswith("SELECT")]) == 2
    assert _submitted(attempt)


def test_a_token_is_dead_once_its_session_ends(quiz, city, client_for):
    client = client_for(city.member_a.user)
    attempt, action, token = _page(client, quiz)
    client.logout()  # on a shared site computer, the next person finds the page
    response = Client().post(action, _answers(attempt, token=token))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not _submitted(attempt)


def test_a_forged_or_borrowed_token_does_not_answer(quiz, city, client_for):
    attempt_a, action_a, _token_a = _page(client_for(city.member_a.user), quiz)
    attempt_b, _action_b, token_b = _page(client_for(city.member_b.user), quiz)
    other = client_for(city.member_b.user)
    # Member B's own token names B's attempt, not A's: B's login does not own A's attempt.
    assert other.post(action_a, _answers(attempt_a, token=token_b)).status_code == 404
    assert other.post(action_a, _answers(attempt_a, token="not-a-uuid")).status_code == 404
    assert not _submitted(attempt_a) and not _submitted(attempt_b)


def test_an_inactive_member_token_does_not_answer(quiz, city, client_for):
    attempt, action, token = _page(client_for(city.member_a.user), quiz)
    city.member_a.is_active = False
    city.member_a.save(update_fields=["is_active"])
    response = Client().post(action, _answers(attempt, token=token))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not _submitted(attempt)


def test_a_page_shown_on_a_second_phone_leaves_the_first_to_its_login(quiz, city, client_for):
    first = client_for(city.member_a.user)
    attempt, action, old_token = _page(first, quiz)
    second = client_for(city.member_a.user)
    html = second.get(f"/quizzes/attempts/{attempt.pk}/").content.decode()
    new_token = re.search(r'name="token" value="([^"]*)"', html).group(1)
    assert new_token != old_token
    # The first phone's page still submits: its token is stale, but its login is the member's.
    assert first.post(action, _answers(attempt, token=old_token)).status_code == 302
    assert _submitted(attempt)


def test_a_second_token_submit_changes_nothing(quiz, city, client_for):
    attempt, action, token = _page(client_for(city.member_a.user), quiz)
    assert Client().post(action, _answers(attempt, right=False, token=token)).status_code == 302
    again = Client().post(action, _answers(attempt, right=True, token=token))
    assert again.status_code == 302
    assert again["Location"] == f"/quizzes/attempts/{attempt.pk}/result/"
    assert Attempt.objects.get(pk=attempt.pk).correct == 0
    assert (
        LogEntry.objects.filter(
            additional_data__event="quiz_attempt_submitted", additional_data__result="ok"
        ).count()
        == 1
    )


def test_refused_answers_show_the_page_again_with_the_reason(quiz, city, client_for):
    client = client_for(city.member_a.user)
    attempt, action, token = _page(client, quiz)
    post = _answers(attempt, token=token)
    first, *_rest = attempt.question_ids
    del post[f"q{first}"]
    response = client.post(action, post)
    html = response.content.decode()
    assert response.status_code == 200
    assert "请回答本题。" in html and "请答完所有题目再提交。" in html
    assert re.search(r'name="token" value="[^"]+"', html)
    assert not _submitted(attempt)
    refused = LogEntry.objects.get(additional_data__result="refused")
    assert refused.actor_id == city.member_a.user.pk


def test_a_token_submit_is_answered_on_the_lean_path(quiz, city, client_for):
    client = client_for(city.member_a.user)
    attempt, action, token = _page(client, quiz)
    response = client.post(action, _answers(attempt, token=token))
    assert response.status_code == 302 and _submitted(attempt)
    request = response.wsgi_request
    # SessionMiddleware and MessageMiddleware never ran; the user is the token's member.
    assert request.lean_path
    assert not hasattr(request, "session") and not hasattr(request, "_messages")
    assert request.user == city.member_a.user
    for header in ("X-Frame-Options", "X-Content-Type-Options", "Content-Security-Policy"):
        assert response.has_header(header), header
    assert "private" in response["Cache-Control"]


def test_a_token_submit_needs_no_csrf_token_since_the_token_is_the_credential(
    quiz, city, client_for
):
    attempt, action, token = _page(client_for(city.member_a.user), quiz)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(city.member_a.user, backend="members.backends.PhoneOrUsernameBackend")
    assert browser.post(action, _answers(attempt, token=token)).status_code == 302
    assert _submitted(attempt)


def test_without_a_good_token_the_login_decides_and_csrf_is_checked(quiz, city, client_for):
    attempt, action, _token = _page(client_for(city.member_a.user), quiz)
    # A page on another site can make the member's browser send the cookies, not the token:
    # the cookies would decide, so the whole stack's CSRF check refuses it.
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(city.member_a.user, backend="members.backends.PhoneOrUsernameBackend")
    response = browser.post(action, _answers(attempt, token=""))
    assert response.status_code == 403 and not response.wsgi_request.lean_path
    assert not _submitted(attempt)


def test_refused_answers_are_logged_once_and_said_in_the_members_language(quiz, city, client_for):
    client = client_for(city.member_a.user)
    attempt, action, token = _page(client, quiz)
    post = _answers(attempt, token=token)
    del post[f"q{attempt.question_ids[0]}"]
    client.cookies["django_language"] = "en"
    response = client.post(action, post)
    html = response.content.decode()
    assert response.status_code == 200 and "Content-Security-Policy" in response
    assert "Answer every question before you submit." in html
    assert not response.wsgi_request.lean_path  # the page is shown by the whole stack
    assert LogEntry.objects.filter(additional_data__result="refused").count() == 1
    assert not _submitted(attempt)


def test_refused_answers_from_a_browser_without_its_session_keep_the_pages_token(
    quiz, city, client_for
):
    """Refused answers sent with a good token but without the login session's cookie (a
    browser that lost only that cookie): the page is shown again with the reason and the token
    it had, which still vouches for the next submit."""
    attempt, action, token = _page(client_for(city.member_a.user), quiz)
    browser = Client()  # no session cookie
    post = _answers(attempt, token=token)
    del post[f"q{attempt.question_ids[0]}"]
    response = browser.post(action, post)
    html = response.content.decode()
    assert response.status_code == 200
    assert "请答完所有题目再提交。" in html
    assert f'name="token" value="{token}"' in html
    assert not _submitted(attempt)
    assert browser.post(action, _answers(attempt, token=token)).status_code == 302
    assert _submitted(attempt)

"""Scoped power for rounds: every rounds URL that names an object answers 404 to a viewer from
another subtree, and sends an anonymous visitor to log in. The list comes from the URL conf,
so a new URL without a scope check fails here."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from rounds.models import LeaveRequest

from . import builders

# Token URLs are public by design (the token is the credential) and tested on their own.
TOKEN_URLS = {"rounds:check_in", "rounds:ical_feed"}


def object_urls():
    found = []

    def walk(patterns, namespace=None):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and namespace == "rounds":
                converters = pattern.pattern.converters
                if any(name.endswith("pk") for name in converters):
                    found.append(f"rounds:{pattern.name}")

    walk(get_resolver().url_patterns)
    return sorted(set(found) - TOKEN_URLS)


@pytest.fixture
def other_county(city):
    """A round, session, sitting and leave request that belong to county B only."""
    training_round = builders.training_round([city.county_b])
    session = builders.session(training_round, city.branch_b)
    sitting = builders.sitting(session)
    leave = LeaveRequest.objects.create(member=city.member_b, round=training_round, reason="外出")
    return {
        "pk": training_round.pk,
        "round_pk": training_round.pk,
        "member_pk": city.member_b.pk,
        "session_pk": session.pk,
        "timestamp": int(session.event.start.timestamp()),
        "leave_pk": leave.pk,
        "sitting": sitting.pk,
    }


def kwargs_for(name, converters, ids):
    kwargs = {}
    for key in converters:
        if key == "pk" and name.split(":")[1].startswith(("sitting", "roll_call")):
            kwargs[key] = ids["sitting"]
        else:
            kwargs[key] = ids[key]
    return kwargs


def resolve(name):
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and pattern.namespace == "rounds":
            for inner in pattern.url_patterns:
                if isinstance(inner, URLResolver):
                    for deeper in inner.url_patterns:
                        if f"rounds:{deeper.name}" == name:
                            return deeper.pattern.converters
                elif f"rounds:{inner.name}" == name:
                    return inner.pattern.converters
    raise AssertionError(name)


def test_the_rounds_object_urls_are_all_checked():
    assert {
        "rounds:detail",
        "rounds:coverage",
        "rounds:coverage_export",
        "rounds:member_status",
        "rounds:leave_decide",
        "rounds:sitting",
        "rounds:sitting_screen",
        "rounds:roll_call",
        "rounds:sitting_open",
        "rounds:remind",
    } <= set(object_urls())


@pytest.mark.parametrize("name", object_urls())
def test_other_subtrees_get_404(city, other_county, client_for, name):
    url = reverse(name, kwargs=kwargs_for(name, resolve(name), other_county))
    for user in (city.secretary_a, city.operator_a, city.trainer_a, city.member_a.user):
        client = client_for(user)
        status = client.get(url).status_code
        assert status in (404, 405), (user, status)
        if status == 405:
            assert client.post(url).status_code == 404, user


@pytest.mark.parametrize("name", object_urls())
def test_anonymous_is_sent_to_log_in(city, other_county, client, name):
    url = reverse(name, kwargs=kwargs_for(name, resolve(name), other_county))
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("members:login"))


def test_own_subtree_is_visible(city, other_county, client_for):
    client = client_for(city.secretary_b)
    assert client.get(reverse("rounds:coverage", args=[other_county["pk"]])).status_code == 200
    assert client.get(reverse("rounds:sitting", args=[other_county["sitting"]])).status_code == 200
    url = reverse("rounds:member_status", args=[other_county["pk"], city.member_b.pk])
    assert client.get(url).status_code == 200
    member = client_for(city.member_b.user)
    assert member.get(reverse("rounds:detail", args=[other_county["pk"]])).status_code == 200

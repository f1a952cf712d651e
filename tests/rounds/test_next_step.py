"""What to do next: the member's "continue" button opens the first required lesson (in course
order) not yet covered, by the same rule as their status; none once the round is done."""

import pytest
import time_machine
from django.urls import reverse

from rounds import services
from rounds.participation import lesson_next

from ..courses import builders as course_builders
from . import builders


@pytest.fixture
def setup(city):
    parent = course_builders.course()
    lessons = [
        course_builders.lesson(parent, title=title) for title in ("第一课", "第二课", "第三课")
    ]
    # Required in another order than the course's: the course order wins.
    training_round = builders.training_round([city.root], [lessons[2], lessons[0], lessons[1]])
    return city, training_round, lessons


def next_button(client, url):
    page = client.get(url).content.decode()
    if "data-next-lesson" not in page:
        return None
    tag = page[: page.index("data-next-lesson")]
    return tag[tag.rindex('href="') + 6 :].split('"')[0]


def test_the_next_lesson_is_the_first_not_covered_in_course_order(setup, client):
    city, training_round, lessons = setup
    member = city.member_a
    assert lesson_next(training_round=training_round, member=member) == lessons[0]
    builders.complete_online(member, lessons[0])
    assert lesson_next(training_round=training_round, member=member) == lessons[1]
    builders.complete_online(member, lessons[2])  # out of order: the gap is still next
    assert lesson_next(training_round=training_round, member=member) == lessons[1]
    client.force_login(member.user)
    with time_machine.travel(builders.aware(2026, 11, 20, 10, 0), tick=False):
        assert next_button(client, "/") == lessons[1].url
        assert next_button(client, reverse("rounds:detail", args=[training_round.pk])) == (
            lessons[1].url
        )


def test_nothing_is_next_once_the_round_is_complete_or_exempt(setup, client):
    city, training_round, lessons = setup
    for lesson in lessons:
        builders.complete_online(city.member_a, lesson)
    assert lesson_next(training_round=training_round, member=city.member_a) is None
    services.exemption_grant(
        member=city.member_b, training_round=training_round, reason="长期卧床", user=city.trainer
    )
    with time_machine.travel(builders.aware(2026, 11, 20, 10, 0), tick=False):
        for member in (city.member_a, city.member_b):
            client.force_login(member.user)
            assert next_button(client, "/") is None
            assert next_button(client, reverse("rounds:detail", args=[training_round.pk])) is None

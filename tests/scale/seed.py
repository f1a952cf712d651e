"""The smallest world for the scale story, run by the story's fixture as
``manage.py shell -c "$(cat tests/scale/seed.py)"`` against the stack's own database.

A city > county > branch, a trainer over the city (Wagtail admin), the branch's secretary, one
member with a password, a course with one lesson that has no video yet, and a published, open
round over the city requiring that lesson online. Prints one line: SEED <json> with what the
story needs.
"""

import json
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from courses.models import LessonPage
from members.models import Role
from rounds import services as round_services
from rounds.models import Round
from tests import factories
from tests.courses import builders

city = factories.org("示范市委", code="CITY", kind="committee")
county = factories.org("城关区委", city, code="A", kind="committee")
branch = factories.org("幸福社区党支部", county, code="A-01")
member = factories.member(branch, name="王芳", phone="13800000001")
secretary = factories.staff("sec_a", Role.SECRETARY, branch)
trainer = factories.staff("trainer", Role.TRAINER, city)

course = builders.course("学习党章", slug="party-constitution")
lesson = LessonPage(title="第一课 党章总纲", slug="lesson-1", hours_override=Decimal("0.5"))
course.add_child(instance=lesson)
lesson.save_revision().publish()

today = timezone.localdate()
training_round = Round.objects.create(
    title="规模测试专题轮训",
    opens_on=today - timedelta(days=1),
    closes_on=today + timedelta(days=30),
    makeup_deadline=today + timedelta(days=60),
    state=Round.State.PUBLISHED,
    completion_rule=Round.Rule.ONLINE,
    hours=Decimal("4"),
)
training_round.scope_roots.set([city])
training_round.lessons.set([lesson])
round_services.round_calendar(training_round)

print(
    "SEED "
    + json.dumps(
        {
            "password": factories.PASSWORD,
            "trainer": "trainer",
            "secretary": "sec_a",
            "member": member.phone,
            "member_name": member.name,
            "branch": branch.pk,
            "lesson": lesson.pk,
            "lesson_url": lesson.url,
            "round": training_round.pk,
        }
    )
)

"""The home page's round summary: a template tag, so the courses app never imports rounds."""

from django import template

from members import access

from ..models import Participation, Round
from ..participation import lesson_next, status_line_of

register = template.Library()


@register.inclusion_tag("rounds/_home_rounds.html", takes_context=True)
def home_rounds(context):
    """The member's running rounds with their status; staff get their rounds' coverage links."""
    user = context["request"].user
    member = access.member_of(user)
    mine = []
    if member is not None:
        rounds = [r for r in Round.objects.for_member(member) if r.state == Round.State.PUBLISHED]
        rows = {
            p.round_id: p
            for p in Participation.objects.filter(member=member, round__in=[r.pk for r in rounds])
        }
        for training_round in rounds:
            row = rows.get(training_round.pk)
            mine.append(
                {
                    "round": training_round,
                    "row": row,
                    "status_line": status_line_of(
                        row, training_round, training_round.lessons.count()
                    ),
                }
            )
    staff = []
    if user.is_authenticated and access.has_role(user):
        staff = list(
            Round.objects.visible_to_roots(access.role_roots(user)).filter(
                state=Round.State.PUBLISHED
            )[:5]
        )
    # One next step, from the round that closes first and still asks for a lesson: the big
    # button of the home page (later rounds are not asked).
    next_step = None
    for item in sorted(mine, key=lambda item: item["round"].closes_on):
        lesson = lesson_next(training_round=item["round"], member=member, participation=item["row"])
        if lesson is not None:
            next_step = {**item, "next_lesson": lesson}
            break
    return {"mine": mine, "staff": staff, "next": next_step}

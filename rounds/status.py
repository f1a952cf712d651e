"""A member's round status in words: the same sentence for the member and their secretary."""

from django.utils import formats
from django.utils.translation import gettext as _

from .models import Participation

P = Participation.Status


def describe(
    *,
    status: str,
    method: str = "",
    lessons_done: int = 0,
    lessons_required: int = 0,
    note: str = "",
    makeup_deadline=None,
) -> str:
    """ "进行中：已完成 2/3 门必修课", "已请假，需在 1月31日 前补学" and so on."""
    figures = {"done": lessons_done or 0, "required": lessons_required or 0}
    if status == P.COMPLETED:
        way = Participation.Method(method).label if method else ""
        return _("Completed (%(way)s)") % {"way": way} if way else _("Completed")
    if status == P.EXEMPT:
        return _("Exempt: %(reason)s") % {"reason": note} if note else _("Exempt")
    if status == P.LEAVE:
        deadline = formats.date_format(makeup_deadline, "MONTH_DAY_FORMAT")
        return _(
            "On leave; make-up due by %(deadline)s (%(done)s of %(required)s lessons done)"
        ) % {"deadline": deadline, **figures}
    if status == P.IN_PROGRESS:
        return _("In progress: %(done)s of %(required)s required lessons done") % figures
    return _("Not started: %(required)s required lessons to complete") % figures


def describe_row(row: Participation | None, training_round, lessons_required=None) -> str:
    if row is None:
        return describe(
            status=P.NOT_STARTED,
            lessons_required=lessons_required or 0,
            makeup_deadline=training_round.makeup_deadline,
        )
    return describe(
        status=row.status,
        method=row.method,
        lessons_done=row.lessons_done,
        lessons_required=row.lessons_required or lessons_required or 0,
        note=row.note,
        makeup_deadline=training_round.makeup_deadline,
    )

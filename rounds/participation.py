"""The participation engine: each member's status in a round, from what they did, and in words.

What decides a status (lessons completed online, sessions attended, approved leave,
exemptions) is read for many members at once; ``participation_refresh`` writes the
``Participation`` rows that coverage counts. ``status_line`` says a status in one sentence, the
same for the member and their secretary.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import formats
from django.utils.translation import gettext as _

from courses.models import CoursePage, LessonPage, LessonProgress
from quizzes.models import Attempt, Quiz

from .counters import counters_recount_members
from .models import Attendance, Exemption, LeaveRequest, Participation, Round, Session

P = Participation.Status


# --- Status ------------------------------------------------------------------------------------


@dataclass
class Derived:
    status: str
    method: str = ""
    lessons_done: int = 0
    completed_at: datetime | None = None
    note: str = ""


@dataclass
class QuizGate:
    """The tests a "watched and passed" round asks for (Round.quiz_required): each required
    lesson's own test, and the tests on the round's courses as a whole, and who passed which."""

    lesson_quiz: dict = field(default_factory=dict)  # {lesson id: quiz id}
    course_quizzes: list = field(default_factory=list)  # [quiz id]
    titles: dict = field(default_factory=dict)  # {quiz id: title}
    passed: dict = field(default_factory=dict)  # {member id: {quiz id: first passed at}}

    def missing(self, member_id, lesson_ids) -> list:
        """Titles of the tests ``member_id`` has yet to pass: those of ``lesson_ids``, then the
        courses'."""
        passed = self.passed.get(member_id, {})
        wanted = [self.lesson_quiz[pk] for pk in lesson_ids if pk in self.lesson_quiz]
        wanted += self.course_quizzes
        return [self.titles[q] for q in wanted if q not in passed]


def _quiz_gate(training_round: Round, required, only) -> QuizGate | None:
    if not training_round.quiz_required or not required:
        return None
    gate = QuizGate()
    lesson_paths = LessonPage.objects.filter(pk__in=required).values_list("path", flat=True)
    steplen = CoursePage.steplen
    course_ids = CoursePage.objects.filter(
        path__in={path[:-steplen] for path in lesson_paths}
    ).values_list("pk", flat=True)
    for quiz_id, lesson_id, title in Quiz.objects.filter(lesson_id__in=required).values_list(
        "pk", "lesson_id", "title"
    ):
        gate.lesson_quiz[lesson_id] = quiz_id
        gate.titles[quiz_id] = title
    for quiz_id, title in (
        Quiz.objects.filter(course_id__in=list(course_ids), lesson__isnull=True)
        .order_by("pk")
        .values_list("pk", "title")
    ):
        gate.course_quizzes.append(quiz_id)
        gate.titles[quiz_id] = title
    for member_id, quiz_id, at in only(
        Attempt.objects.filter(quiz_id__in=list(gate.titles), passed=True).order_by("submitted_at")
    ).values_list("member_id", "quiz_id", "submitted_at"):
        gate.passed.setdefault(member_id, {}).setdefault(quiz_id, at)
    return gate


def _sources(training_round: Round, member_ids=None):
    """Everything that decides members' status in the round, in a handful of queries."""
    required = set(training_round.lessons.values_list("pk", flat=True))

    def only(qs, field="member_id"):
        return qs if member_ids is None else qs.filter(**{f"{field}__in": member_ids})

    online = {}
    for member_id, lesson_id, completed_at in only(
        LessonProgress.objects.filter(lesson_id__in=required, completed_at__isnull=False)
    ).values_list("member_id", "lesson_id", "completed_at"):
        # Completing a lesson is final, so a lesson completed before the round opened (in an
        # earlier round that also required it) counts; the round is dated from its opening.
        online.setdefault(member_id, {})[lesson_id] = max(completed_at, training_round.opens_at)
    started = set(
        only(
            LessonProgress.objects.filter(lesson_id__in=required, viewing_started_at__isnull=False)
        ).values_list("member_id", flat=True)
    )
    shown = {}
    for session_id, lesson_id in Session.lessons.through.objects.filter(
        session__round=training_round
    ).values_list("session_id", "lessonpage_id"):
        shown.setdefault(session_id, set()).add(lesson_id)
    attended = {}
    marked_leave = set()
    for member_id, status, session_id, start in only(
        Attendance.objects.filter(sitting__session__round=training_round)
    ).values_list("member_id", "status", "sitting__session_id", "sitting__start"):
        if status in Attendance.ATTENDED:
            attended.setdefault(member_id, []).append((session_id, start))
        elif status == Attendance.Status.LEAVE:
            marked_leave.add(member_id)
    on_leave = (
        set(
            only(
                LeaveRequest.objects.filter(round=training_round, state=LeaveRequest.State.APPROVED)
            ).values_list("member_id", flat=True)
        )
        | marked_leave
    )
    exempt = dict(
        only(Exemption.objects.filter(round=training_round, revoked_at__isnull=True)).values_list(
            "member_id", "reason"
        )
    )
    quizzes = _quiz_gate(training_round, required, only)
    return required, online, started, shown, attended, on_leave, exempt, quizzes


def _covered(training_round, member_id, required, online, shown, attended, quizzes=None) -> dict:
    """{lesson_id: (first covered at, "online" | "session")} for the required lessons the
    member has covered under the round's completion rule (and, in a "watched and passed" round,
    whose test they have passed: covered from then on)."""
    rule = training_round.completion_rule
    by_session = {}
    for session_id, start in sorted(attended.get(member_id, []), key=lambda x: x[1]):
        for lesson_id in shown.get(session_id, ()):
            by_session.setdefault(lesson_id, start)
    by_online = online.get(member_id, {})
    covered = {}
    for lesson_id in required:
        options = []
        if rule != Round.Rule.SESSION and lesson_id in by_online:
            options.append((by_online[lesson_id], "online"))
        if rule != Round.Rule.ONLINE and lesson_id in by_session:
            options.append((by_session[lesson_id], "session"))
        if options:
            covered[lesson_id] = min(options)
    if quizzes is not None:
        passed = quizzes.passed.get(member_id, {})
        for lesson_id, (at, way) in list(covered.items()):
            quiz_id = quizzes.lesson_quiz.get(lesson_id)
            if quiz_id is None:
                continue
            if quiz_id not in passed:
                del covered[lesson_id]
            else:
                covered[lesson_id] = (max(at, passed[quiz_id]), way)
    return covered


def _derive(
    training_round,
    member_id,
    required,
    online,
    started,
    shown,
    attended,
    on_leave,
    exempt,
    quizzes=None,
):
    rule = training_round.completion_rule
    covered = _covered(training_round, member_id, required, online, shown, attended, quizzes)
    done = len(covered)
    tests_missing = []
    if quizzes is not None:
        tests_missing = quizzes.missing(member_id, sorted(required))
    if required:
        complete = done == len(required) and not tests_missing
    else:
        complete = rule != Round.Rule.ONLINE and bool(attended.get(member_id))
        if complete:
            first = min(start for _s, start in attended[member_id])
            covered = {0: (first, "session")}
    if complete:
        ways = {way for _at, way in covered.values()}
        if member_id in on_leave and "online" in ways:
            method = Participation.Method.MAKEUP
        elif ways == {"online"}:
            method = Participation.Method.ONLINE
        elif ways == {"session"}:
            method = Participation.Method.SESSION
        else:
            method = Participation.Method.MIXED
        completed_at = max(at for at, _way in covered.values())
        if quizzes is not None:  # the courses' own tests count from when they were passed
            passed = quizzes.passed.get(member_id, {})
            completed_at = max([completed_at, *(passed[q] for q in quizzes.course_quizzes)])
        return Derived(P.COMPLETED, method, done, completed_at)
    if member_id in exempt:
        return Derived(P.EXEMPT, lessons_done=done, note=exempt[member_id][:200])
    if member_id in on_leave:
        return Derived(P.LEAVE, lessons_done=done)
    note = "、".join(tests_missing)[:200]
    if done or member_id in started or member_id in attended:
        return Derived(P.IN_PROGRESS, lessons_done=done, note=note)
    return Derived(P.NOT_STARTED, lessons_done=done)


def _lessons_not_covered(training_round: Round, member_ids, lessons, chunk=500) -> dict:
    """``lessons`` (pk, value) in course order, kept for each member when the member has not yet
    covered that lesson, by the same rule as their status."""
    ids = list(member_ids)
    missing = {}
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        required, online, _started, shown, attended, _leave, _exempt, quizzes = _sources(
            training_round, part
        )
        for member_id in part:
            covered = _covered(
                training_round, member_id, required, online, shown, attended, quizzes
            )
            missing[member_id] = [value for pk, value in lessons if pk not in covered]
    return missing


def lessons_missing(*, training_round: Round, member_ids, chunk=500) -> dict[int, list[str]]:
    """Titles of the required lessons each member has not yet covered, by the same rule as
    their status (reminders say what is left)."""
    titles = list(training_round.lessons.order_by("path").values_list("pk", "title"))
    return _lessons_not_covered(training_round, member_ids, titles, chunk)


def lesson_next(*, training_round: Round, member, participation=None):
    """The first required lesson (in course order) ``member`` has not yet covered: what the
    member's "continue" button opens. None while the round is not under way, or once the
    member is done with it (``participation``, their row in the round, completed or exempt).
    """
    if training_round.state != Round.State.PUBLISHED:
        return None
    if participation is not None and participation.status in (P.COMPLETED, P.EXEMPT):
        return None
    lessons = [(lesson.pk, lesson) for lesson in training_round.lessons.live().order_by("path")]
    if not lessons:
        return None
    (missing,) = _lessons_not_covered(training_round, [member.pk], lessons).values()
    return missing[0] if missing else None


def participation_refresh(*, training_round: Round, member_ids=None) -> int:
    """Bring ``Participation`` rows in line with the sources; returns rows written.

    With ``member_ids=None`` the whole round is recomputed (after its lessons or rule change).
    """
    if training_round.state == Round.State.DRAFT:
        return 0
    sources = _sources(training_round, member_ids)
    required, online, started, _shown, attended, on_leave, exempt, _quizzes = sources
    whole_round = member_ids is None
    if whole_round:  # everyone with any activity
        member_ids = set(online) | started | set(attended) | on_leave | set(exempt)
    derived = {m: _derive(training_round, m, *sources) for m in member_ids}
    required_count = len(required)
    existing = Participation.objects.filter(round=training_round)
    if not whole_round:
        existing = existing.filter(member_id__in=member_ids)
    before = dict(existing.values_list("member_id", "status"))
    existing_ids = set(before)
    if whole_round:
        stale = existing_ids - set(derived)
        for member_id in stale:
            derived[member_id] = Derived(P.NOT_STARTED)
    rows = [
        Participation(
            round=training_round,
            member_id=member_id,
            status=d.status,
            method=d.method,
            lessons_done=d.lessons_done,
            lessons_required=required_count,
            completed_at=d.completed_at,
            note=d.note,
        )
        for member_id, d in derived.items()
        if d.status != P.NOT_STARTED or member_id in existing_ids
    ]
    fields = ["status", "method", "lessons_done", "lessons_required", "completed_at", "note"]
    moved = [
        row.member_id for row in rows if before.get(row.member_id, P.NOT_STARTED) != row.status
    ]
    with transaction.atomic():
        for start in range(0, len(rows), 2000):
            Participation.objects.bulk_create(
                rows[start : start + 2000],
                update_conflicts=True,
                unique_fields=["round", "member"],
                update_fields=[*fields, "updated_at"],
            )
        # The coverage counters move with the statuses, in the same transaction.
        if moved:
            counters_recount_members(training_round=training_round, member_ids=moved)
    return len(rows)


def rounds_requiring(lesson_id):
    return Round.objects.published().filter(lessons=lesson_id)


def rounds_requiring_quiz(quiz: Quiz):
    """The published "watched and passed" rounds whose status a pass of ``quiz`` may change:
    those requiring its lesson, or (a test on a course) any lesson of its course."""
    if quiz.lesson_id is not None:
        lessons = [quiz.lesson_id]
    else:
        lessons = LessonPage.objects.filter(path__startswith=quiz.course.path).values("pk")
    return Round.objects.published().filter(quiz_required=True, lessons__in=lessons).distinct()


# --- In words ----------------------------------------------------------------------------------


def status_line(
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
        line = _("In progress: %(done)s of %(required)s required lessons done") % figures
        if note:  # a "watched and passed" round: the tests not yet passed
            line += _("; test not yet passed: %(tests)s") % {"tests": note}
        return line
    return _("Not started: %(required)s required lessons to complete") % figures


def status_line_of(row: Participation | None, training_round, lessons_required=None) -> str:
    if row is None:
        return status_line(
            status=P.NOT_STARTED,
            lessons_required=lessons_required or 0,
            makeup_deadline=training_round.makeup_deadline,
        )
    return status_line(
        status=row.status,
        method=row.method,
        lessons_done=row.lessons_done,
        lessons_required=row.lessons_required or lessons_required or 0,
        note=row.note,
        makeup_deadline=training_round.makeup_deadline,
    )

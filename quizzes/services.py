"""Taking a quiz: drawing an attempt, answering it once, and the status in words.

The rules (issue 16): one attempt at a time per member and quiz; each attempt is bound on the
server to the questions it drew and the order their options were shown in; it is answered once
(a second submit of the same attempt changes nothing); answers to questions it did not draw are
refused; a retake draws afresh, within the quiz's limit. The page never carries the answers: only
the result page, after answering, shows what was right and the explanations.
"""

import secrets
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import REFUSED, audit_event
from core.sessions import session_alive_elsewhere, with_live_session
from courses.models import CoursePage
from members.models import Member

from .models import Attempt, Choice, Question, Quiz

# Sent on commit with attempt=…, once an attempt is answered (rounds keeps participation current).
quiz_attempt_submitted = Signal()

_random = secrets.SystemRandom()


class QuizRefused(Exception):
    """Said to the member in words; nothing was changed."""


class AttemptTokenRejected(Exception):
    """A submit's token does not name an attempt its member's live session was shown: the
    member's own login decides instead (or, signed out, nobody may submit it)."""


@dataclass(frozen=True)
class QuizStatus:
    state: str  # "not_taken" | "open" | "passed" | "retake" | "failed"
    text: str
    attempts_used: int
    last: Attempt | None
    open: Attempt | None

    @property
    def may_start(self) -> bool:
        return self.state in ("not_taken", "retake")


def attempt_text(attempt: Attempt, *, retake_allowed: bool) -> str:
    values = {"correct": attempt.correct, "total": attempt.total, "needed": attempt.needed}
    if attempt.passed:
        return _("Test passed (%(correct)d/%(total)d)") % values
    if retake_allowed:
        return _(
            "Test not passed (%(correct)d/%(total)d, %(needed)d needed); you may retake it"
        ) % (values)
    return _("Test not passed (%(correct)d/%(total)d, %(needed)d needed); no retakes left") % (
        values
    )


def quiz_status(*, quiz: Quiz, member: Member) -> QuizStatus:
    """Where ``member`` stands with ``quiz``, in words (their own score: only they see it)."""
    attempts = list(quiz.attempts.filter(member=member).order_by("number"))
    open_attempt = next((a for a in attempts if a.state == Attempt.State.OPEN), None)
    done = [a for a in attempts if a.state == Attempt.State.SUBMITTED]
    last = done[-1] if done else None
    if any(a.passed for a in done):
        passed = next(a for a in reversed(done) if a.passed)
        return QuizStatus(
            "passed", attempt_text(passed, retake_allowed=False), len(attempts), passed, None
        )
    if open_attempt is not None:
        return QuizStatus("open", _("Test in progress"), len(attempts), last, open_attempt)
    if last is None:
        return QuizStatus("not_taken", _("Test not taken yet"), 0, None, None)
    retake = not quiz.max_attempts or len(attempts) < quiz.max_attempts
    return QuizStatus(
        "retake" if retake else "failed",
        attempt_text(last, retake_allowed=retake),
        len(attempts),
        last,
        None,
    )


def quizzes_for_lessons(*, lessons):
    """The tests on ``lessons`` and on their courses as a whole, in course order: what a group
    session that shows those lessons may give on paper."""
    lessons = list(lessons)
    courses = {lesson.path[: -CoursePage.steplen] for lesson in lessons}
    return Quiz.objects.filter(
        Q(lesson__in=lessons) | Q(lesson__isnull=True, course__path__in=courses)
    ).order_by("course__path", "lesson__path")


def _draw(quiz: Quiz) -> list:
    questions = list(Question.objects.filter(course_id=quiz.course_id).prefetch_related("choices"))
    questions = [q for q in questions if len(q.choices.all()) >= 2]
    if quiz.question_count and quiz.question_count < len(questions):
        questions = _random.sample(questions, quiz.question_count)
    else:
        _random.shuffle(questions)
    drawn = []
    for question in questions:
        ids = [choice.pk for choice in question.choices.all()]
        if question.kind != Question.Kind.TRUE_FALSE:  # 对 before 错, always
            _random.shuffle(ids)
        drawn.append({"question": question.pk, "choices": ids})
    return drawn


def attempt_start(
    *, quiz: Quiz, member: Member, on_paper=False, user=None, request=None
) -> Attempt:
    """The member's open attempt at ``quiz``, or a fresh draw when none is open.

    Refused (QuizRefused) when the quiz is passed already, no retake is left, or the bank is
    empty. Starts are serialised per member (a row lock on the member), so two taps start one
    attempt."""
    with transaction.atomic():
        Member.objects.select_for_update().filter(pk=member.pk).first()
        status = quiz_status(quiz=quiz, member=member)
        if status.open is not None:
            return status.open
        if status.state == "passed":
            raise QuizRefused(_("You have passed this test already."))
        if status.state == "failed":
            raise QuizRefused(_("No retakes are left for this test."))
        drawn = _draw(quiz)
        if not drawn:
            raise QuizRefused(_("This test has no questions yet."))
        total = len(drawn)
        try:
            with transaction.atomic():
                attempt = Attempt.objects.create(
                    quiz=quiz,
                    member=member,
                    number=status.attempts_used + 1,
                    drawn=drawn,
                    total=total,
                    needed=min(quiz.pass_mark, total),
                    on_paper=on_paper,
                    entered_by=user if on_paper else None,
                )
        except IntegrityError:
            return Attempt.objects.get(quiz=quiz, member=member, state=Attempt.State.OPEN)
        audit_event(
            event="quiz_attempt_started",
            obj=attempt,
            actor=user,
            request=request,
            quiz=quiz.pk,
            member=member.pk,
            number=attempt.number,
            questions=attempt.question_ids,
            on_paper=on_paper,
        )
    return attempt


def _check_answers(attempt: Attempt, answers: dict, kinds: dict) -> dict:
    """``answers`` {question id: [choice ids]} checked against what the attempt drew;
    ``kinds`` is each drawn question's kind."""
    drawn = {item["question"]: item["choices"] for item in attempt.drawn}
    undrawn = sorted(set(answers) - set(drawn))
    if undrawn:
        raise QuizRefused(_("Answers to questions this attempt did not draw are refused."))
    checked = {}
    for question_id, options in drawn.items():
        chosen = sorted(set(answers.get(question_id) or []))
        if not chosen:
            raise QuizRefused(_("Answer every question before you submit."))
        if not set(chosen) <= set(options):
            raise QuizRefused(_("An answer names an option this question does not have."))
        if kinds.get(question_id) != Question.Kind.MULTIPLE and len(chosen) != 1:
            raise QuizRefused(_("Choose one option for each single-choice question."))
        checked[str(question_id)] = chosen
    return checked


def attempt_token(*, attempt: Attempt, session_key: str) -> uuid.UUID:
    """The token the attempt's page carries for its submit, issued to the login session that
    shows the page: the page shown in another session (another phone) gets a fresh one, and
    the older page's submit is then decided by its member's own login (attempt_by_token)."""
    if not session_key:
        raise ValueError("a quiz token is bound to a login session")
    if attempt.token is None or attempt.token_session != session_key:
        attempt.token, attempt.token_session = uuid.uuid4(), session_key
        Attempt.objects.filter(pk=attempt.pk, state=Attempt.State.OPEN).update(
            token=attempt.token, token_session=session_key
        )
    return attempt.token


def attempt_by_token(*, attempt_id: int, token) -> Attempt:
    """The attempt a submit's token names, with its quiz and its member's user: one query that
    also checks the member and their account are active and the session the token was issued
    to is alive. Raises AttemptTokenRejected otherwise."""
    try:
        token = uuid.UUID(str(token))
    except ValueError:
        raise AttemptTokenRejected from None
    rows = Attempt.objects.select_related("quiz", "member__user").filter(
        pk=attempt_id, token=token, member__is_active=True, member__user__is_active=True
    )
    attempt = with_live_session(rows, "token_session", timezone.now()).order_by().first()
    if attempt is None or not session_alive_elsewhere(attempt.token_session):
        raise AttemptTokenRejected
    return attempt


def attempt_submit(
    *, attempt: Attempt, answers: dict, user=None, request=None
) -> tuple[Attempt, bool]:
    """Answer ``attempt`` once; returns (attempt, whether this call answered it).

    The answers are checked against what the attempt drew (its questions' kinds and right
    options in one query), then written by one conditional UPDATE that applies only while the
    attempt is still open: a second submit (a double tap, a page sent again, two at once)
    finds it answered and changes nothing. Refused (QuizRefused, audit-logged) when an answer
    is missing, names a question the attempt did not draw or an option its question lacks."""
    kinds, right = {}, {}
    for question_id, kind, choice_id, is_correct in Choice.objects.filter(
        question_id__in=attempt.question_ids
    ).values_list("question_id", "question__kind", "pk", "is_correct"):
        kinds[question_id] = kind
        right.setdefault(str(question_id), [])
        if is_correct:
            right[str(question_id)].append(choice_id)
    try:
        checked = _check_answers(attempt, answers, kinds)
    except QuizRefused as refusal:
        current = Attempt.objects.get(pk=attempt.pk)
        if current.state == Attempt.State.SUBMITTED:
            return current, False  # answered already: a second submit changes nothing
        # Logged outside any transaction of ours, so the refusal stays on record.
        audit_event(
            event="quiz_attempt_submitted",
            obj=attempt,
            actor=user,
            request=request,
            result=REFUSED,
            error=str(refusal),
        )
        raise
    with transaction.atomic():
        answered = _score(attempt, checked, right, user=user, request=request)
    if not answered:
        return Attempt.objects.select_related("member", "quiz").get(pk=attempt.pk), False
    return attempt, True


def _score(attempt: Attempt, checked: dict, right: dict, *, user, request) -> bool:
    """Score ``attempt`` and write it if it is still open; log it, and tell rounds once it
    commits. False when another submit answered it first (nothing written, ``attempt`` as it
    was)."""
    correct = sum(1 for qid, chosen in checked.items() if sorted(right.get(qid, [])) == chosen)
    values = {
        "answers": checked,
        "correct": correct,
        "passed": correct >= attempt.needed,
        "state": Attempt.State.SUBMITTED,
        "submitted_at": timezone.now(),
    }
    if user is not None and attempt.on_paper:
        values["entered_by"] = user
    written = Attempt.objects.filter(pk=attempt.pk, state=Attempt.State.OPEN).update(**values)
    if not written:
        return False
    for name, value in values.items():
        setattr(attempt, name, value)
    audit_event(
        event="quiz_attempt_submitted",
        obj=attempt,
        actor=user,
        request=request,
        quiz=attempt.quiz_id,
        member=attempt.member_id,
        number=attempt.number,
        correct=attempt.correct,
        total=attempt.total,
        passed=attempt.passed,
        on_paper=attempt.on_paper,
    )
    transaction.on_commit(lambda: quiz_attempt_submitted.send(sender=Attempt, attempt=attempt))
    return True


def attempt_review(attempt: Attempt) -> list:
    """The submitted attempt question by question, in the order shown: its options (chosen,
    correct), whether it was answered right, and the explanation."""
    questions = Question.objects.filter(pk__in=attempt.question_ids).prefetch_related("choices")
    by_id = {q.pk: q for q in questions}
    review = []
    for item in attempt.drawn:
        question = by_id.get(item["question"])
        if question is None:  # removed from the bank since
            continue
        choices = {c.pk: c for c in question.choices.all()}
        chosen = set(attempt.answers.get(str(question.pk), []))
        options = [
            {"text": choices[cid].text, "chosen": cid in chosen, "correct": choices[cid].is_correct}
            for cid in item["choices"]
            if cid in choices
        ]
        review.append(
            {
                "question": question,
                "options": options,
                "right": chosen == {cid for cid, c in choices.items() if c.is_correct},
            }
        )
    return review


# --- What a secretary sees: passed, not yet, not taken; never a score ----------------------------

RESULT_PASSED, RESULT_NOT_YET, RESULT_NOT_TAKEN = "passed", "not_yet", "not_taken"


def quiz_results(*, quiz: Quiz, node, members, children) -> dict:
    """``quiz`` at ``node``: the share of ``members`` (the learners of the node's subtree) who
    passed, the same for each of ``children`` (in tree order), and each member directly in the
    node with passed / not yet / not taken. Scores stay the member's own: none is returned."""
    passed = Attempt.objects.filter(quiz=quiz, passed=True).values("member_id")
    tried = Attempt.objects.filter(quiz=quiz).values("member_id")

    def figures(qs):
        total = qs.count()
        done = qs.filter(pk__in=passed).count()
        return {
            "members": total,
            "passed": done,
            "percent": round(done * 100 / total) if total else None,
        }

    passed_ids = set(members.filter(organization=node, pk__in=passed).values_list("pk", flat=True))
    tried_ids = set(members.filter(organization=node, pk__in=tried).values_list("pk", flat=True))
    people = []
    for member in members.filter(organization=node).order_by("name", "pk"):
        if member.pk in passed_ids:
            state = RESULT_PASSED
        elif member.pk in tried_ids:
            state = RESULT_NOT_YET
        else:
            state = RESULT_NOT_TAKEN
        people.append({"member": member, "state": state})
    return {
        "figures": figures(members),
        "children": [
            {
                "organization": child,
                **figures(members.filter(organization__path__startswith=child.path)),
            }
            for child in children
        ],
        "people": people,
    }

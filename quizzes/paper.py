"""The test on paper at a site (送学上门, members without a phone): a printed sheet per member,
answers entered afterwards by the site's operator.

Printing starts (or reuses) each member's attempt, so the sheet's questions and the order of its
options are bound on the server exactly like an attempt on a phone; the operator's entry goes
through the same answer-once service and is audit-logged with the operator as the actor.
"""

from dataclasses import dataclass

from django.template.loader import render_to_string

from .models import Attempt, Question, Quiz
from .services import QuizRefused, attempt_start

LETTERS = "ABCDEF"


@dataclass
class Sheet:
    attempt: Attempt
    questions: list  # [{"number", "text", "kind", "options": [(letter, text)]}]


def sheet_questions(attempt: Attempt) -> list:
    questions = {
        q.pk: q
        for q in Question.objects.filter(pk__in=attempt.question_ids).prefetch_related("choices")
    }
    rows = []
    for number, item in enumerate(attempt.drawn, start=1):
        question = questions.get(item["question"])
        if question is None:
            continue
        texts = {c.pk: c.text for c in question.choices.all()}
        options = [
            (LETTERS[i], texts[cid]) for i, cid in enumerate(item["choices"]) if cid in texts
        ]
        rows.append(
            {
                "number": number,
                "text": question.text,
                "kind": question.get_kind_display(),
                "options": options,
            }
        )
    return rows


def paper_sheets(*, quiz: Quiz, members, user, request=None) -> tuple[bytes, list]:
    """A PDF with one sheet per member of ``members`` who may still take ``quiz``; returns the
    PDF and the attempts it printed (members who passed already, or have no retake left, get
    none)."""
    sheets = []
    for member in members:
        try:
            attempt = attempt_start(
                quiz=quiz, member=member, on_paper=True, user=user, request=request
            )
        except QuizRefused:
            continue
        sheets.append(Sheet(attempt=attempt, questions=sheet_questions(attempt)))
    html = render_to_string("quizzes/paper_sheets.html", {"quiz": quiz, "sheets": sheets})
    from weasyprint import HTML  # heavy: WeasyPrint loads Pango and its fonts

    return HTML(string=html).write_pdf(), [sheet.attempt for sheet in sheets]

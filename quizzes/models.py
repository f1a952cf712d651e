"""Question banks, quizzes and attempts.

A course keeps a bank of questions (single choice, multiple choice, true/false), each with the
explanation a member reads after answering. A quiz sits on a lesson or on the course as a whole:
it draws N questions from the course's bank (or all of them), shuffles their options and sets a
pass mark. An attempt is bound on the server to the questions it drew and the order their options
were shown in; it is answered once. Scores belong to the member: other people see only passed,
not yet, or not taken.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalKey
from modelcluster.models import ClusterableModel
from wagtail.models import Orderable


class Question(ClusterableModel):
    class Kind(models.TextChoices):
        SINGLE = "single", _("Single choice")
        MULTIPLE = "multiple", _("Multiple choice")
        TRUE_FALSE = "true_false", _("True or false")

    course = models.ForeignKey(
        "courses.CoursePage",
        on_delete=models.CASCADE,
        related_name="questions",
        verbose_name=_("course"),
    )
    kind = models.CharField(
        _("question type"), max_length=20, choices=Kind.choices, default=Kind.SINGLE
    )
    text = models.TextField(_("question"))
    explanation = models.TextField(
        _("explanation"), blank=True, help_text=_("Shown to the member after answering.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["course", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["course", "text"], name="one_question_text_per_course")
        ]

    def __str__(self):
        return self.text[:60]

    def correct_ids(self) -> set:
        return {choice.pk for choice in self.choices.all() if choice.is_correct}


def check_choices(kind, choices) -> list:
    """What is wrong with ``choices`` [(text, is_correct)] for a question of ``kind``: a list of
    messages, empty when they are fine."""
    errors = []
    correct = sum(1 for _text, is_correct in choices if is_correct)
    if kind == Question.Kind.TRUE_FALSE:
        if len(choices) != 2:
            errors.append(_("A true-or-false question has exactly two options."))
    elif len(choices) < 2:
        errors.append(_("A question needs at least two options."))
    if kind == Question.Kind.MULTIPLE:
        if correct < 1:
            errors.append(_("Mark at least one option as correct."))
    elif correct != 1:
        errors.append(_("Mark exactly one option as correct."))
    texts = [text for text, _c in choices]
    if len(set(texts)) != len(texts):
        errors.append(_("Two options have the same text."))
    return errors


class Choice(Orderable):
    question = ParentalKey(Question, on_delete=models.CASCADE, related_name="choices")
    text = models.CharField(_("option"), max_length=300)
    is_correct = models.BooleanField(_("correct"), default=False)

    class Meta(Orderable.Meta):
        verbose_name = _("option")
        verbose_name_plural = _("options")

    def __str__(self):
        return self.text


class Quiz(models.Model):
    """A test on a lesson, or on a course when ``lesson`` is empty."""

    course = models.ForeignKey(
        "courses.CoursePage",
        on_delete=models.CASCADE,
        related_name="quizzes",
        verbose_name=_("course"),
        help_text=_("Questions are drawn from this course's question bank."),
    )
    lesson = models.ForeignKey(
        "courses.LessonPage",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="quizzes",
        verbose_name=_("lesson"),
        help_text=_("Leave empty for a test on the whole course."),
    )
    title = models.CharField(_("title"), max_length=100)
    question_count = models.PositiveSmallIntegerField(
        _("questions drawn"),
        default=0,
        help_text=_("How many questions each attempt draws from the bank; 0 for all of them."),
    )
    pass_mark = models.PositiveSmallIntegerField(
        _("pass mark"), default=1, help_text=_("Correct answers needed to pass.")
    )
    max_attempts = models.PositiveSmallIntegerField(
        _("attempts allowed"),
        default=0,
        help_text=_("0 for unlimited retakes; each retake draws afresh."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("quiz")
        verbose_name_plural = _("quizzes")
        ordering = ["course", "lesson", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["lesson"],
                condition=models.Q(lesson__isnull=False),
                name="one_quiz_per_lesson",
            ),
            models.UniqueConstraint(
                fields=["course"],
                condition=models.Q(lesson__isnull=True),
                name="one_quiz_per_course",
            ),
        ]

    def __str__(self):
        return self.title

    def clean(self):
        errors = {}
        if self.pass_mark < 1:
            errors["pass_mark"] = _("At least one correct answer is needed to pass.")
        elif self.question_count and self.pass_mark > self.question_count:
            errors["pass_mark"] = _("The pass mark cannot exceed the number of questions drawn.")
        if self.lesson_id and self.course_id:
            if self.lesson.get_parent().pk != self.course_id:
                errors["lesson"] = _("The lesson must belong to the course.")
        if errors:
            raise ValidationError(errors)


class Attempt(models.Model):
    """One try at a quiz by one member: the questions it drew, in the order shown, and the
    options of each in the order shown; the answers once submitted, and the result."""

    class State(models.TextChoices):
        OPEN = "open", _("In progress")
        SUBMITTED = "submitted", _("Submitted")

    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="attempts")
    member = models.ForeignKey(
        "members.Member", on_delete=models.CASCADE, related_name="quiz_attempts"
    )
    number = models.PositiveSmallIntegerField(_("attempt"))
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    # [{"question": id, "choices": [choice ids in the order shown]}, ...]
    drawn = models.JSONField(default=list)
    # {"<question id>": [chosen choice ids]}
    answers = models.JSONField(default=dict, blank=True)
    correct = models.PositiveSmallIntegerField(default=0)
    total = models.PositiveSmallIntegerField(default=0)
    needed = models.PositiveSmallIntegerField(default=0)
    passed = models.BooleanField(default=False)
    on_paper = models.BooleanField(default=False)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    started_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # The credential of a submit from the attempt's page: issued to the login session that shows
    # the page (quizzes.services.attempt_token), good while that session lives.
    token = models.UUIDField(null=True, blank=True, editable=False)
    token_session = models.CharField(max_length=40, blank=True, editable=False)

    class Meta:
        verbose_name = _("quiz attempt")
        verbose_name_plural = _("quiz attempts")
        ordering = ["quiz", "member", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["quiz", "member", "number"], name="attempt_numbers_unique"
            ),
            models.UniqueConstraint(
                fields=["quiz", "member"],
                condition=models.Q(state="open"),
                name="one_open_attempt_per_member",
            ),
        ]

    def __str__(self):
        return f"{self.member} · {self.quiz} · {self.number}"

    @property
    def question_ids(self) -> list:
        return [item["question"] for item in self.drawn]

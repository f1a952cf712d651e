"""Member pages (a quiz, an attempt, its result) and the trainers' 题库 import."""

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from core.audit import REFUSED, audit_event
from core.downloads import download_response, xlsx_response
from core.lean import FullStackNeeded, lean_path, on_lean_path
from core.middleware import session_free
from core.tabular import TableError
from members import access
from members.importing import ImportAlreadyApplied, ImportRejected
from members.models import Member, Organization, Role, SpreadsheetImport

from . import importing, paper, services
from .admin_forms import changeable_courses
from .forms import AttemptForm, QuestionImportForm
from .models import Attempt, Question, Quiz

ANSWER_KEY = re.compile(r"^q(\d+)$")


def _member_or_404(request):
    member = getattr(request.user, "member", None)
    if member is None or not member.is_active:
        raise Http404
    return member


def _quiz(pk):
    return get_object_or_404(
        Quiz.objects.select_related("course", "lesson").filter(course__live=True), pk=pk
    )


def _own_attempt(request, pk):
    member = _member_or_404(request)
    return get_object_or_404(
        Attempt.objects.select_related("quiz", "quiz__course", "quiz__lesson", "member"),
        pk=pk,
        member=member,
    )


@login_required
def quiz_detail(request, pk):
    member = _member_or_404(request)
    quiz = _quiz(pk)
    status = services.quiz_status(quiz=quiz, member=member)
    return render(request, "quizzes/quiz_detail.html", {"quiz": quiz, "status": status})


@login_required
@require_POST
def quiz_start(request, pk):
    member = _member_or_404(request)
    quiz = _quiz(pk)
    try:
        attempt = services.attempt_start(
            quiz=quiz, member=member, user=request.user, request=request
        )
    except services.QuizRefused as refusal:
        messages.error(request, str(refusal))
        return redirect("quizzes:detail", pk=quiz.pk)
    return redirect("quizzes:attempt", pk=attempt.pk)


def _answers_from(post) -> dict:
    answers = {}
    for key in post:
        match = ANSWER_KEY.match(key)
        if match:
            answers[int(match.group(1))] = [int(v) for v in post.getlist(key) if v.isdigit()]
    return answers


@login_required
def attempt_take(request, pk):
    """The attempt's page, and its submit when the page's token cannot vouch for it (a page
    shown in an older session of the same member): the member's own login decides."""
    attempt = _own_attempt(request, pk)
    if attempt.state == Attempt.State.SUBMITTED:
        return redirect("quizzes:result", pk=attempt.pk)
    if request.method == "POST":
        answered = _submit(request, attempt)
        if answered is not None:
            return answered
    return _attempt_page(request, attempt)


@lean_path
@session_free
@require_POST
def attempt_submit(request, pk):
    """A member's answers, authenticated by the token their attempt's page carries.

    Answered on the lean path (core/lean.py): no session, user or CSRF check, and the redirect
    to the result. The token in the form is what authorises the write, never a cookie, so a
    page on another site cannot forge it. Two cases go through the whole middleware stack
    instead (CSRF-checked there, since cookies then decide): a token that cannot vouch for the
    submit (the member's own login decides, as on the page itself) and refused answers (the
    page is shown again with the reason, which needs the session and the user; the refusal is
    logged once, on the lean pass, and handed over).
    """
    handoff = getattr(request, "lean_handoff", None)
    if handoff is not None:
        attempt, request.quiz_refusal = handoff
        request.user = attempt.member.user
        return _attempt_page(request, attempt)
    try:
        attempt = services.attempt_by_token(attempt_id=pk, token=request.POST.get("token", ""))
    except services.AttemptTokenRejected:
        if on_lean_path(request):
            raise FullStackNeeded from None  # nothing was written
        return attempt_take(request, pk)
    request.user = attempt.member.user  # this request is the token's member's
    answered = _submit(request, attempt)
    if answered is not None:
        return answered
    if on_lean_path(request):
        # Refused, and logged: the whole stack shows the page again, without a second try.
        raise FullStackNeeded((attempt, request.quiz_refusal))
    return _attempt_page(request, attempt)


def _submit(request, attempt):
    """Answer ``attempt`` from the posted form: the redirect to its result, or None with the
    refusal in request.quiz_refusal (nothing was changed)."""
    answers = _answers_from(request.POST)
    try:
        services.attempt_submit(
            attempt=attempt, answers=answers, user=request.user, request=request
        )
    except services.QuizRefused as refusal:
        request.quiz_refusal = str(refusal)
        return None
    return redirect("quizzes:result", pk=attempt.pk)


def _attempt_page(request, attempt):
    questions = {
        q.pk: q
        for q in Question.objects.filter(pk__in=attempt.question_ids).prefetch_related("choices")
    }
    posted = request.method == "POST"
    form = AttemptForm(request.POST if posted else None, attempt=attempt, questions=questions)
    if posted:
        form.is_valid()
        refusal = getattr(request, "quiz_refusal", "")
        if refusal and refusal not in form.non_field_errors():
            form.add_error(None, refusal)
    session_key = request.session.session_key
    if session_key:
        token = services.attempt_token(attempt=attempt, session_key=session_key)
    else:
        # Refused answers handed over from a token submit sent without the login session's
        # cookie: the token that came with them still vouches, so the page keeps it.
        token = attempt.token
    return render(
        request,
        "quizzes/attempt.html",
        {"attempt": attempt, "quiz": attempt.quiz, "form": form, "token": token},
    )


@login_required
def attempt_result(request, pk):
    attempt = _own_attempt(request, pk)
    if attempt.state != Attempt.State.SUBMITTED:
        return redirect("quizzes:attempt", pk=attempt.pk)
    status = services.quiz_status(quiz=attempt.quiz, member=attempt.member)
    return render(
        request,
        "quizzes/result.html",
        {
            "attempt": attempt,
            "quiz": attempt.quiz,
            "status": status,
            "text": services.attempt_text(attempt, retake_allowed=status.may_start),
            "review": services.attempt_review(attempt),
        },
    )


# --- Results for secretaries and trainers -------------------------------------------------------

RESULT_ROLES = access.ROLES_MANAGING_ROSTER
RESULT_WORDS = {
    services.RESULT_PASSED: gettext_lazy("Passed"),
    services.RESULT_NOT_YET: gettext_lazy("Not passed yet"),
    services.RESULT_NOT_TAKEN: gettext_lazy("Not taken"),
}


@login_required
def quiz_list(request):
    """The tests, for those who follow their members' results."""
    if not access.has_role(request.user, RESULT_ROLES):
        raise Http404
    quizzes = Quiz.objects.filter(course__live=True).select_related("course", "lesson")
    return render(request, "quizzes/quiz_list.html", {"quizzes": quizzes})


@login_required
def quiz_results(request, pk):
    """Passed / not yet / not taken per member, and the share passed per organisation, in tree
    order: never a score, never a ranking."""
    if not access.has_role(request.user, RESULT_ROLES):
        raise Http404
    quiz = _quiz(pk)
    if "org" in request.GET:
        node = access.get_organization_or_404(request.user, request.GET["org"], RESULT_ROLES)
    else:
        roots = access.role_roots(request.user, RESULT_ROLES)
        node = roots[0] if roots else Organization.get_first_root_node()
        if node is None:
            raise Http404
    members = Member.objects.active().in_subtree(node)
    results = services.quiz_results(
        quiz=quiz, node=node, members=members, children=node.get_children().order_by("path")
    )
    for person in results["people"]:
        person["words"] = RESULT_WORDS[person["state"]]
    crumbs = [
        o
        for o in node.ancestors_and_self()
        if access.can_see_organization(request.user, o, RESULT_ROLES)
    ]
    return render(
        request,
        "quizzes/quiz_results.html",
        {"quiz": quiz, "node": node, "crumbs": crumbs, **results},
    )


# --- On paper at a site ---------------------------------------------------------------------------

PAPER_ROLES = access.STAFF_ROLES
# One print run is a site's members, not a county's: above this, choose a smaller organisation.
PAPER_MAX_MEMBERS = 200


def _paper_node(request):
    if "org" in request.GET:
        return access.get_organization_or_404(request.user, request.GET["org"], PAPER_ROLES)
    roots = access.role_roots(request.user, PAPER_ROLES)
    node = roots[0] if roots else Organization.get_first_root_node()
    if node is None:
        raise Http404
    return node


@login_required
def quiz_paper(request, pk):
    """A site's members and the test on paper: print a sheet for each, then enter the answers."""
    if not access.has_role(request.user, PAPER_ROLES):
        raise Http404
    quiz = _quiz(pk)
    node = _paper_node(request)
    members = (
        (Member.objects.active().in_subtree(node).exclude(user=request.user))
        .select_related("organization")
        .order_by("organization__path", "name", "pk")
    )
    too_many = members.count() > PAPER_MAX_MEMBERS
    if too_many:
        messages.error(
            request,
            _("More than %(n)d members here: choose an organisation further down the tree.")
            % {"n": PAPER_MAX_MEMBERS},
        )
        return render(
            request,
            "quizzes/paper.html",
            {"quiz": quiz, "node": node, "rows": [], "too_many": True},
        )
    if request.method == "POST":
        pdf, _printed = paper.paper_sheets(
            quiz=quiz, members=list(members), user=request.user, request=request
        )
        return download_response(
            pdf,
            filename=f"{quiz.title}-{node.name}.pdf",
            content_type="application/pdf",
        )
    open_paper = {
        a.member_id: a
        for a in Attempt.objects.filter(
            quiz=quiz, member__in=members, state=Attempt.State.OPEN, on_paper=True
        )
    }
    rows = [
        {
            "member": member,
            "status": services.quiz_status(quiz=quiz, member=member),
            "sheet": open_paper.get(member.pk),
        }
        for member in members
    ]
    return render(request, "quizzes/paper.html", {"quiz": quiz, "node": node, "rows": rows})


@login_required
def paper_enter(request, pk):
    """The operator enters a printed sheet's answers: the same rules as on a phone."""
    attempt = get_object_or_404(
        Attempt.objects.select_related("quiz", "member__organization"), pk=pk, on_paper=True
    )
    if access.is_self(request.user, attempt.member) or not access.can_see_organization(
        request.user, attempt.member.organization, PAPER_ROLES
    ):
        raise Http404
    back = (
        reverse("quizzes:paper", args=[attempt.quiz_id]) + f"?org={attempt.member.organization_id}"
    )
    if attempt.state == Attempt.State.SUBMITTED:
        messages.info(request, _("This sheet's answers were entered already; nothing was changed."))
        return redirect(back)
    questions = {
        q.pk: q
        for q in Question.objects.filter(pk__in=attempt.question_ids).prefetch_related("choices")
    }
    form = AttemptForm(request.POST or None, attempt=attempt, questions=questions, lettered=True)
    if request.method == "POST":
        answers = _answers_from(request.POST)
        if form.is_valid() or set(answers) - set(attempt.question_ids):
            try:
                done, answered = services.attempt_submit(
                    attempt=attempt, answers=answers, user=request.user, request=request
                )
            except services.QuizRefused as refusal:
                form.add_error(None, str(refusal))
            else:
                if answered:
                    messages.success(
                        request,
                        _("Entered for %(name)s: %(result)s")
                        % {
                            "name": attempt.member.name,
                            "result": services.attempt_text(done, retake_allowed=False)
                            if done.passed
                            else _("not passed"),
                        },
                    )
                else:
                    messages.info(
                        request,
                        _("This sheet's answers were entered already; nothing was changed."),
                    )
                return redirect(back)
    return render(request, "quizzes/paper_enter.html", {"attempt": attempt, "form": form})


# --- The 题库 import (trainers) --------------------------------------------------------------


def _trainer_or_404(request):
    if not access.has_role(request.user, (Role.TRAINER,)):
        raise Http404


@login_required
def import_upload(request):
    _trainer_or_404(request)
    courses = changeable_courses(request.user)
    form = QuestionImportForm(request.POST or None, request.FILES or None, courses=courses)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            record = importing.questions_check(
                course=form.cleaned_data["course"],
                data=upload.read(),
                file_name=upload.name,
                user=request.user,
            )
        except TableError as error:
            form.add_error("file", str(error))
        else:
            return redirect("quizzes:import_detail", pk=record.pk)
    return render(request, "quizzes/import_upload.html", {"form": form})


@login_required
def import_template(request):
    _trainer_or_404(request)
    return xlsx_response(importing.questions_template(), "question-bank-template.xlsx")


def _own_import(request, pk):
    _trainer_or_404(request)
    qs = SpreadsheetImport.objects.filter(kind=SpreadsheetImport.Kind.QUESTIONS)
    if not request.user.is_superuser:
        qs = qs.filter(uploaded_by=request.user)
    return get_object_or_404(qs, pk=pk)


@login_required
def import_detail(request, pk):
    record = _own_import(request, pk)
    report = record.report
    errors = report.get("errors", [])
    return render(
        request,
        "members/import_detail.html",
        {
            "record": record,
            "counts": report.get("counts", {}),
            "errors": errors[:1000],
            "more_errors": max(0, len(errors) - 1000),
            "changes": report.get("changes", [])[:200],
            "upload_url": reverse("quizzes:import_upload"),
            "apply_url": reverse("quizzes:import_apply", args=[record.pk]),
        },
    )


@login_required
@require_POST
def import_apply(request, pk):
    record = _own_import(request, pk)
    try:
        report = importing.questions_apply(
            spreadsheet_import=record, user=request.user, request=request
        )
    except ImportAlreadyApplied:
        message = _("This file was already imported; nothing was changed again.")
        audit_event(
            event="question_import", obj=record, request=request, result=REFUSED, error=message
        )
        messages.info(request, message)
    except ImportRejected as rejected:
        record.report = rejected.report
        record.state = SpreadsheetImport.State.REJECTED
        record.save(update_fields=["report", "state"])
        message = _(
            "The data changed since the check and some rows are now invalid; nothing was "
            "imported. Correct the file and upload it again."
        )
        audit_event(
            event="question_import", obj=record, request=request, result=REFUSED, error=message
        )
        messages.error(request, message)
    else:
        messages.success(
            request,
            _("Imported: %(new)d new, %(changed)d changed, %(unchanged)d unchanged.")
            % report["counts"],
        )
    return redirect("quizzes:import_detail", pk=record.pk)

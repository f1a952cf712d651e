"""Member and secretary pages of a round: status, leave, coverage, sittings and check-in."""

import time
from datetime import datetime

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from core.audit import REFUSED, audit_event
from core.downloads import xlsx_response
from courses.models import LessonProgress
from courses.services import status_text
from members import access
from members.models import Organization, Role, path_prefix_q
from quizzes.services import quizzes_for_lessons

from .. import services
from ..calendar import upcoming_for_user
from ..coverage import MISSING, coverage_children, members_in_node, with_status
from ..exports import coverage_export
from ..forms import CoverageFilterForm, DecisionForm, ExemptionForm, LeaveForm
from ..models import (
    Attendance,
    Exemption,
    LeaveRequest,
    Participation,
    Round,
    Session,
    Sitting,
)
from ..participation import lesson_next, status_line, status_line_of

P = Participation.Status
PAGE_SIZE = 50
CHECKIN_SESSION_KEY = "lunxun_pending_checkin"


def _visible_rounds(user, roles=access.STAFF_ROLES):
    """Rounds whose scope meets the user's subtrees. A draft is still being prepared and asks
    nothing of anyone yet: only a trainer it reaches may open it, not secretaries or operators."""
    roots = access.role_roots(user, roles)
    rounds = Round.objects.visible_to_roots(roots)
    if roots is None:
        return rounds
    trainer_roots = access.role_roots(user, (Role.TRAINER,))
    if not trainer_roots:
        return rounds.published()
    drafts = Round.objects.visible_to_roots(trainer_roots).filter(state=Round.State.DRAFT)
    return rounds.filter(~Q(state=Round.State.DRAFT) | Q(pk__in=drafts.values("pk")))


def _staff_round_or_404(user, pk, roles=access.STAFF_ROLES) -> Round:
    """The round ``pk`` if its scope meets a subtree where ``user`` holds one of ``roles``."""
    try:
        return _visible_rounds(user, roles).prefetch_related("scope_roots").get(pk=pk)
    except (Round.DoesNotExist, ValueError):
        raise Http404 from None


def _member_round_or_404(member, pk) -> Round:
    training_round = Round.objects.published().filter(pk=pk).prefetch_related("scope_roots").first()
    if training_round is None or not training_round.includes(member):
        raise Http404
    return training_round


# --- A member's rounds -------------------------------------------------------------------------


@login_required
def round_list(request):
    member = access.member_of(request.user)
    mine = []
    if member is not None:
        rounds = Round.objects.for_member(member)
        rows = {
            p.round_id: p
            for p in Participation.objects.filter(member=member, round__in=[r.pk for r in rounds])
        }
        for training_round in rounds:
            mine.append(
                (
                    training_round,
                    status_line_of(
                        rows.get(training_round.pk),
                        training_round,
                        training_round.lessons.count(),
                    ),
                    rows.get(training_round.pk),
                )
            )
    staff_rounds = []
    if access.has_role(request.user):
        staff_rounds = list(_visible_rounds(request.user).exclude(state=Round.State.DRAFT)[:20])
    if member is None and not staff_rounds and not access.has_role(request.user):
        raise Http404
    return render(
        request,
        "rounds/round_list.html",
        {"mine": mine, "staff_rounds": staff_rounds, "has_member": member is not None},
    )


@login_required
def round_detail(request, pk):
    """The member's own page for a round: what is asked, what is done, what is missing, why."""
    member = access.member_of(request.user)
    if member is None:
        # Staff without a member record follow the round from its coverage page.
        return redirect("rounds:coverage", _staff_round_or_404(request.user, pk).pk)
    training_round = _member_round_or_404(member, pk)
    lessons = list(training_round.lessons.live().order_by("path"))
    progress = {
        p.lesson_id: p
        for p in LessonProgress.objects.filter(member=member, lesson__in=lessons).only(
            "lesson_id", "watched_seconds", "duration", "completed_at", "hours_earned"
        )
    }
    row = Participation.objects.filter(round=training_round, member=member).first()
    attended = (
        Attendance.objects.filter(member=member, sitting__session__round=training_round)
        .select_related("sitting__session__event")
        .prefetch_related("sitting__session__lessons")
        .order_by("sitting__start")
    )
    leave = (
        LeaveRequest.objects.filter(member=member, round=training_round)
        .select_related("session__event")
        .first()
    )
    sessions = Session.objects.filter(round=training_round).select_related("event", "host")
    leave_form = None
    if training_round.state == Round.State.PUBLISHED and (
        leave is None or leave.state not in LeaveRequest.ACTIVE
    ):
        leave_form = LeaveForm(sessions=sessions)
    return render(
        request,
        "rounds/round_detail.html",
        {
            "round": training_round,
            "participation": row,
            "status_line": status_line_of(row, training_round, len(lessons)),
            "lesson_rows": [
                (lesson, progress.get(lesson.pk), status_text(progress.get(lesson.pk)))
                for lesson in lessons
            ],
            "attended": attended,
            "leave": leave,
            "leave_form": leave_form,
            "upcoming": upcoming_for_user(request.user, days=60, limit=5),
            "next_lesson": lesson_next(
                training_round=training_round, member=member, participation=row
            ),
        },
    )


@login_required
@require_POST
def leave_create(request, pk):
    member = access.member_of(request.user)
    if member is None:
        raise Http404
    training_round = _member_round_or_404(member, pk)
    form = LeaveForm(request.POST, sessions=Session.objects.filter(round=training_round))
    if form.is_valid():
        try:
            services.leave_request(
                member=member,
                training_round=training_round,
                session=form.cleaned_data["session"],
                reason=form.cleaned_data["reason"],
                request=request,
            )
        except services.LeaveError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Your leave request was sent to your branch secretary."))
    else:
        messages.error(request, _("Say why you cannot attend."))
    return redirect("rounds:detail", pk)


@login_required
@require_POST
def leave_withdraw(request, pk):
    member = access.member_of(request.user)
    if member is None:
        raise Http404
    training_round = _member_round_or_404(member, pk)
    leave = get_object_or_404(
        LeaveRequest, member=member, round=training_round, state__in=LeaveRequest.ACTIVE
    )
    services.leave_withdraw(leave=leave, request=request)
    messages.success(request, _("Your leave request was withdrawn."))
    return redirect("rounds:detail", pk)


# --- Coverage ----------------------------------------------------------------------------------


def _coverage_node(request, training_round) -> Organization:
    org_id = request.GET.get("org")
    if org_id:
        return access.get_organization_or_404(request.user, org_id)
    roots = access.role_roots(request.user)
    if roots is None:
        roots = list(training_round.scope_roots.all())
        # The smallest tree covering the scope: the common root of the scope roots.
        return min(roots, key=lambda o: o.depth) if len(roots) == 1 else roots[0].get_root()
    return min(roots, key=lambda o: (o.depth, o.path))


def _member_list(training_round, node, form):
    members = members_in_node(
        training_round, node, domain=form.value("domain"), position=form.value("position")
    )
    members = (
        with_status(members, training_round, training_round.lessons.count())
        .select_related("organization")
        .order_by("organization__path", "name", "pk")
    )
    status = form.value("status") or "missing"
    if status == "missing":
        members = members.filter(Q(rp__status__isnull=True) | Q(rp__status__in=MISSING))
    elif status == P.NOT_STARTED:
        members = members.filter(Q(rp__status__isnull=True) | Q(rp__status=P.NOT_STARTED))
    elif status != "all":
        members = members.filter(rp__status=status)
    return members, status


class KnownCountPaginator(Paginator):
    def __init__(self, *args, count: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.known_count = count

    @property
    def count(self):
        return self.known_count


def _list_count(figures, status) -> int:
    """How many members the list shows for ``status``, from the node's figures."""
    return {
        "missing": figures.in_progress + figures.on_leave + figures.not_started,
        "all": figures.in_scope,
        P.COMPLETED: figures.completed,
        P.IN_PROGRESS: figures.in_progress,
        P.LEAVE: figures.on_leave,
        P.NOT_STARTED: figures.not_started,
        P.EXEMPT: figures.exempt,
    }[status]


def _breadcrumbs(user, node):
    roots = access.role_roots(user)
    crumbs = []
    for ancestor in node.ancestors_and_self():
        if roots is None or any(root.contains(ancestor) for root in roots):
            crumbs.append(ancestor)
    return crumbs


def _coverage_data(request, pk):
    """What the coverage page shows, for the page and for its export alike."""
    training_round = _staff_round_or_404(request.user, pk)
    node = _coverage_node(request, training_round)
    form = CoverageFilterForm(request.GET or None)
    coverage = coverage_children(
        training_round=training_round,
        node=node,
        domain=form.value("domain"),
        position=form.value("position"),
    )
    head, rows = coverage.head, coverage.rows
    if len(rows) == 1 and rows[0].direct:
        rows = []  # a leaf: the totals already say it all
    members, status = _member_list(training_round, node, form)
    return training_round, node, form, head, rows, members, status


@access.role_required()
def coverage(request, pk):
    training_round, node, form, head, rows, members, status = _coverage_data(request, pk)
    domain, position = form.value("domain"), form.value("position")
    # The grouped figures already say how many names the list holds: no second count.
    page = KnownCountPaginator(
        members, PAGE_SIZE, count=_list_count(head.figures, status)
    ).get_page(request.GET.get("page"))
    show_phone = access.phone_visibility(request.user)
    for member in page:
        member.show_phone = show_phone(member)
        member.status_line = status_line(
            status=member.round_status,
            method=member.round_method,
            lessons_done=member.round_done,
            lessons_required=member.round_required,
            note=member.round_note,
            makeup_deadline=training_round.makeup_deadline,
        )
    query = request.GET.copy()
    query.pop("page", None)
    if "org" not in query:
        query["org"] = node.pk
    bars = [row for row in rows if not row.direct and row.figures.counted]
    return render(
        request,
        "rounds/coverage.html",
        {
            "round": training_round,
            "node": node,
            "head": head,
            "rows": rows,
            "bars": bars,
            "form": form,
            "page": page,
            "status": status,
            "query": query.urlencode(),
            "crumbs": _breadcrumbs(request.user, node),
            "can_remind": access.has_role(request.user, access.ROLES_MANAGING_ROSTER),
            "filtered": bool(domain or position),
            "pending_leave": LeaveRequest.objects.filter(
                round=training_round,
                state=LeaveRequest.State.PENDING,
            )
            .filter(
                path_prefix_q(node.path, "member__organization__path"),
            )
            .count(),
        },
    )


@access.role_required()
def coverage_export_view(request, pk):
    training_round, node, form, head, rows, members, status = _coverage_data(request, pk)
    domain, position = form.value("domain"), form.value("position")
    content = coverage_export(
        training_round=training_round,
        head=head,
        rows=rows,
        members=members,
        user=request.user,
        request=request,
        filters={"domain": domain, "position": position, "status": status},
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return xlsx_response(content, f"coverage-{training_round.pk}-{node.code}-{stamp}.xlsx")


@access.role_required()
def member_status(request, pk, member_pk):
    """A secretary's view of one member in a round: status, lessons, attendance, exemption."""
    training_round = _staff_round_or_404(request.user, pk)
    member = access.get_member_or_404(request.user, member_pk)
    if not training_round.includes(member):
        raise Http404
    lessons = list(training_round.lessons.order_by("path"))
    progress = {
        p.lesson_id: p for p in LessonProgress.objects.filter(member=member, lesson__in=lessons)
    }
    row = Participation.objects.filter(round=training_round, member=member).first()
    return render(
        request,
        "rounds/member_status.html",
        {
            "round": training_round,
            "member": member,
            "phone": member.phone if access.can_see_phone(request.user, member) else None,
            "status_line": status_line_of(row, training_round, len(lessons)),
            "participation": row,
            "lesson_rows": [
                (lesson, progress.get(lesson.pk), status_text(progress.get(lesson.pk)))
                for lesson in lessons
            ],
            "attendance": Attendance.objects.filter(
                member=member, sitting__session__round=training_round
            ).select_related("sitting__session__event"),
            "leaves": LeaveRequest.objects.filter(member=member, round=training_round),
            "exemption": Exemption.objects.filter(
                member=member, round=training_round, revoked_at__isnull=True
            ).first(),
            "exemption_form": ExemptionForm(),
            "can_decide": access.can_see_member(request.user, member, access.ROLES_MANAGING_ROSTER),
            # Decisions about oneself go to the level above (see services.leave_decide).
            "is_self": member.user_id == request.user.pk,
        },
    )


@access.role_required(*access.ROLES_MANAGING_ROSTER)
@require_POST
def exemption_create(request, pk, member_pk):
    training_round = _staff_round_or_404(request.user, pk)
    member = access.get_member_or_404(request.user, member_pk, access.ROLES_MANAGING_ROSTER)
    if not training_round.includes(member):
        raise Http404
    form = ExemptionForm(request.POST)
    if form.is_valid():
        try:
            services.exemption_grant(
                member=member,
                training_round=training_round,
                reason=form.cleaned_data["reason"],
                user=request.user,
                request=request,
            )
            messages.success(request, _("%(name)s is exempt from this round.") % {"name": member})
        except services.LeaveError as error:
            audit_event(
                event="exemption_granted",
                obj=member,
                request=request,
                result=REFUSED,
                error=str(error),
                round=training_round.pk,
            )
            messages.error(request, str(error))
    else:
        messages.error(request, _("Say why this member is exempt."))
    return redirect("rounds:member_status", pk, member_pk)


@access.role_required(*access.ROLES_MANAGING_ROSTER)
@require_POST
def exemption_revoke(request, pk, member_pk):
    training_round = _staff_round_or_404(request.user, pk)
    member = access.get_member_or_404(request.user, member_pk, access.ROLES_MANAGING_ROSTER)
    exemption = get_object_or_404(
        Exemption, member=member, round=training_round, revoked_at__isnull=True
    )
    try:
        services.exemption_revoke(exemption=exemption, user=request.user, request=request)
    except services.LeaveError as error:
        audit_event(
            event="exemption_revoked",
            obj=exemption,
            request=request,
            result=REFUSED,
            error=str(error),
        )
        messages.error(request, str(error))
    else:
        messages.success(request, _("The exemption was withdrawn."))
    return redirect("rounds:member_status", pk, member_pk)


@access.role_required(*access.ROLES_MANAGING_ROSTER)
def leave_list(request, pk):
    training_round = _staff_round_or_404(request.user, pk, access.ROLES_MANAGING_ROSTER)
    requests = (
        LeaveRequest.objects.filter(
            round=training_round,
            member__in=access.visible_members(request.user, access.ROLES_MANAGING_ROSTER),
        )
        .select_related("member__organization", "session__event", "decided_by")
        .order_by("state", "-created_at")
    )
    page = Paginator(requests, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "rounds/leave_list.html",
        {"round": training_round, "page": page, "form": DecisionForm()},
    )


@access.role_required(*access.ROLES_MANAGING_ROSTER)
@require_POST
def leave_decide(request, pk, leave_pk):
    training_round = _staff_round_or_404(request.user, pk)
    leave = get_object_or_404(LeaveRequest, pk=leave_pk, round=training_round)
    if not access.can_see_member(request.user, leave.member, access.ROLES_MANAGING_ROSTER):
        raise Http404
    form = DecisionForm(request.POST)
    form.is_valid()
    approve = request.POST.get("decision") == "approve"
    try:
        services.leave_decide(
            leave=leave,
            approve=approve,
            user=request.user,
            note=form.cleaned_data.get("note", ""),
            request=request,
        )
    except services.LeaveError as error:
        audit_event(
            event="leave_approved" if approve else "leave_refused",
            obj=leave,
            request=request,
            result=REFUSED,
            error=str(error),
        )
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            (_("Leave approved for %(name)s.") if approve else _("Leave refused for %(name)s."))
            % {"name": leave.member.name},
        )
    return redirect("rounds:leave_list", pk)


# --- Sittings: QR screen, roll call, closing ---------------------------------------------------


def _session_open_to(user, session) -> bool:
    """The host's staff run its sittings; those of a draft round only a trainer may open."""
    if not access.can_see_organization(user, session.host):
        return False
    if session.round_id is None:  # group study outside any training
        return True
    return (
        session.round.state != Round.State.DRAFT
        or _visible_rounds(user).filter(pk=session.round_id).exists()
    )


def _sitting_or_404(user, pk) -> Sitting:
    sitting = (
        Sitting.objects.select_related("session__round", "session__event", "session__host")
        .filter(pk=pk)
        .first()
    )
    if sitting is None or not _session_open_to(user, sitting.session):
        raise Http404
    return sitting


@access.role_required()
def sitting_open(request, session_pk, timestamp):
    """The sitting of a session occurrence (from the calendar); created on first visit."""
    session = get_object_or_404(
        Session.objects.select_related("host", "event", "round"), pk=session_pk
    )
    if not _session_open_to(request.user, session):
        raise Http404
    try:
        start = datetime.fromtimestamp(int(timestamp), tz=timezone.get_default_timezone())
        sitting = services.sitting_for(session=session, start=start)
    except (ValueError, OverflowError, OSError, Sitting.DoesNotExist):
        raise Http404 from None
    return redirect("rounds:sitting", sitting.pk)


@access.role_required()
def sitting_detail(request, pk):
    sitting = _sitting_or_404(request.user, pk)
    counts = dict.fromkeys(Attendance.Status.values, 0) | {
        row["status"]: row["n"]
        for row in Attendance.objects.filter(sitting=sitting)
        .values("status")
        .annotate(n=Count("pk"))
    }
    return render(
        request,
        "rounds/sitting_detail.html",
        {
            "sitting": sitting,
            "session": sitting.session,
            "quizzes": quizzes_for_lessons(lessons=sitting.session.lessons.all()),
            "counts": counts,
            "expected": services.roll_call_members(sitting).count(),
            "accepts": sitting.accepts_check_in(),
        },
    )


@access.role_required()
def sitting_screen(request, pk):
    """The site PC's full-screen QR code; the page fetches a fresh code as each one expires."""
    sitting = _sitting_or_404(request.user, pk)
    return render(
        request,
        "rounds/sitting_screen.html",
        {"sitting": sitting, "code": _code_payload(request, sitting)},
    )


def _code_payload(request, sitting):
    code = services.qr_token(sitting=sitting)
    url = request.build_absolute_uri(reverse("rounds:check_in", args=[code.token]))
    qr = segno.make(url, error="m")
    return {
        "url": url,
        "svg": qr.svg_inline(scale=8, border=2, dark="#111", light="#fff"),
        "expires_in": max(0.5, (code.next_at - timezone.now()).total_seconds()),
        "rotate": settings.LUNXUN_QR_ROTATE_SECONDS,
        "checked_in": Attendance.objects.filter(
            sitting=sitting, status__in=Attendance.ATTENDED
        ).count(),
        "open": sitting.accepts_check_in(),
    }


@never_cache
@access.role_required()
def sitting_code(request, pk):
    sitting = _sitting_or_404(request.user, pk)
    return JsonResponse(_code_payload(request, sitting))


@access.role_required()
def roll_call(request, pk):
    sitting = _sitting_or_404(request.user, pk)
    members = list(services.roll_call_members(sitting))
    records = {a.member_id: a for a in Attendance.objects.filter(sitting=sitting)}
    marks = {}
    if request.method == "POST":
        marks = {
            member.pk: request.POST.get(f"m{member.pk}", "")
            for member in members
            if f"m{member.pk}" in request.POST
        }
        try:
            changed = services.roll_call_save(
                sitting=sitting,
                marks=marks,
                user=request.user,
                reason=request.POST.get("reason", ""),
                request=request,
            )
        except services.RollCallError as error:
            audit_event(
                event="attendance_corrected",
                obj=sitting,
                request=request,
                result=REFUSED,
                error=str(error),
                marks=len(marks),
            )
            messages.error(request, str(error))
        else:
            messages.success(request, _("Roll call saved: %(n)d records changed.") % {"n": changed})
            return redirect("rounds:roll_call", pk)
    # A refused save shows the operator's marks again, so the room's roll call is not lost.
    rows = [
        (
            member,
            records.get(member.pk),
            marks.get(member.pk, getattr(records.get(member.pk), "status", "")),
        )
        for member in members
    ]
    return render(
        request,
        "rounds/roll_call.html",
        {
            "sitting": sitting,
            "rows": rows,
            "statuses": Attendance.Status.choices,
        },
    )


@access.role_required()
@require_POST
def sitting_close(request, pk):
    sitting = _sitting_or_404(request.user, pk)
    services.sitting_close(sitting=sitting, user=request.user, request=request)
    messages.success(request, _("The session is closed. Later changes need a reason."))
    return redirect("rounds:sitting", pk)


# --- Check-in ----------------------------------------------------------------------------------


@never_cache
def check_in(request, token):
    """Where a scanned code leads. A member not yet logged in logs in and is then checked in,
    provided they scanned a genuine, current code a few minutes before."""
    try:
        sitting = services.qr_verify(token)
    except services.CheckInRefused as refusal:
        return _check_in_result(request, None, error=str(refusal), status=400)
    if not request.user.is_authenticated:
        request.session[CHECKIN_SESSION_KEY] = {"sitting": sitting.pk, "at": time.time()}
        return redirect_to_login(reverse("rounds:check_in_resume"))
    return _check_in_member(request, sitting)


@never_cache
@login_required
def check_in_resume(request):
    pending = request.session.pop(CHECKIN_SESSION_KEY, None)
    too_old = settings.LUNXUN_QR_LOGIN_MINUTES * 60
    if not pending or time.time() - pending.get("at", 0) > too_old:
        return _check_in_result(
            request,
            None,
            error=_("Too much time has passed since you scanned the code. Scan it again."),
            status=400,
        )
    sitting = (
        Sitting.objects.select_related("session__round", "session__event")
        .filter(pk=pending.get("sitting"))
        .first()
    )
    if sitting is None:
        raise Http404
    return _check_in_member(request, sitting)


def _check_in_member(request, sitting):
    member = access.member_of(request.user)
    if member is None:
        return _check_in_result(
            request,
            sitting,
            error=_("Only Party members check in; this account is not a member's."),
            status=403,
        )
    try:
        result = services.check_in(member=member, sitting=sitting, request=request)
    except services.CheckInRefused as refusal:
        return _check_in_result(request, sitting, error=str(refusal), status=400)
    return _check_in_result(request, sitting, attendance=result.attendance, created=result.created)


def _check_in_result(request, sitting, *, attendance=None, created=False, error=None, status=200):
    return render(
        request,
        "rounds/check_in.html",
        {
            "sitting": sitting,
            "attendance": attendance,
            "created": created,
            "error": error,
        },
        status=status,
    )

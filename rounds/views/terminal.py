"""Site terminals: the trainer's list (register, revoke), the terminal page for a site's TV,
its package and sync endpoints, its service worker, and a member's personal check-in codes."""

import json
from datetime import timedelta

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from core.audit import REFUSED, audit_event
from core.ratelimits import terminal_sync_limited
from members import access
from members.models import Role

from .. import services, terminals
from ..forms import TerminalForm
from ..models import Attendance, Round, Sitting, Terminal

MAX_RECORDS = 5000


def _terminals_for(user, roles=access.STAFF_ROLES):
    return Terminal.objects.visible_to_roots(access.role_roots(user, roles)).select_related(
        "host", "registered_by"
    )


def _terminal_or_404(user, pk, roles=access.STAFF_ROLES) -> Terminal:
    terminal = _terminals_for(user, roles).filter(pk=pk).first()
    if terminal is None:
        raise Http404
    return terminal


@access.role_required()
def terminal_list(request):
    """Trainers register and revoke the terminals of their subtree; the site's staff open them."""
    is_trainer = access.has_role(request.user, (Role.TRAINER,))
    form = TerminalForm(
        request.POST or None,
        organizations=access.visible_organizations(request.user, (Role.TRAINER,)),
    )
    if request.method == "POST":
        if not is_trainer:
            raise Http404
        if form.is_valid():
            terminal = terminals.terminal_register(
                name=form.cleaned_data["name"],
                host=form.cleaned_data["host"],
                user=request.user,
                request=request,
            )
            messages.success(
                request,
                _(
                    "Terminal “%(name)s” registered. Open it on the site's computer: the first "
                    "browser to open it becomes the terminal."
                )
                % {"name": terminal.name},
            )
            return redirect("rounds:terminals")
    return render(
        request,
        "rounds/terminal/list.html",
        {
            "terminals": _terminals_for(request.user),
            "form": form if is_trainer else None,
            "is_trainer": is_trainer,
        },
    )


@access.role_required(Role.TRAINER)
@require_POST
def terminal_revoke(request, pk):
    terminal = _terminal_or_404(request.user, pk, (Role.TRAINER,))
    terminals.terminal_revoke(terminal=terminal, user=request.user, request=request)
    messages.success(
        request,
        _("Terminal “%(name)s” revoked: what it sends from now on is refused.")
        % {"name": terminal.name},
    )
    return redirect("rounds:terminals")


@access.role_required()
def terminal_app(request, pk):
    """The terminal itself, for the site's TV: it works from what it downloaded, link or not."""
    terminal = _terminal_or_404(request.user, pk)
    return render(
        request,
        "rounds/terminal/app.html",
        {
            "terminal": terminal,
            "rungs": [
                ("360p", _("360p picture")),
                ("234p", _("234p picture (smaller)")),
                ("audio", _("Sound only (smallest)")),
            ],
            "strings": _terminal_strings(),
        },
    )


def _terminal_strings() -> dict:
    """What terminal.js says, in the user's language ({name} placeholders filled there)."""
    return {
        "waiting": _("Records waiting to be sent: {n}"),
        "nothing_waiting": _("Nothing waiting to be sent"),
        "space": _("Space used: {mb} MB"),
        "downloading": _("Downloading {done} of {total} files…"),
        "downloaded": _(
            "Downloaded: {sittings} sessions, {mb} MB of lessons. Ready to work offline."
        ),
        "download_failed": _(
            "The download stopped: the link is down or the server refused. "
            "Try again when the link works; nothing kept so far is lost."
        ),
        "claim_failed": _("This computer could not be set up: {why}"),
        "no_package": _(
            "Nothing downloaded yet: download the coming sessions while the link works."
        ),
        "freed": _("The space is freed. Records not yet sent are kept."),
        "start": _("Start"),
        "no_sittings": _("No group session at this site in the coming days."),
        "no_lesson": _("This session shows no lesson at the picture size downloaded."),
        "played": _("Played to the end"),
        "personal_ok": _("Checked in: {name}. Kept on this computer until it is sent."),
        "personal_again": _("{name} is already checked in."),
        "personal_bad": _("This is not a personal check-in code for this session."),
        "personal_unknown": _("This code is for a member not on this session's list."),
        "camera_failed": _("The camera cannot be opened: {why}"),
        "scanning": _("Hold the phone's code in front of the camera…"),
        "sent": _("Sent: {accepted} accepted, {refused} refused."),
        "login": _("Log in again on this computer to send the records; they are kept meanwhile."),
        "send_failed": _("Could not send now; the terminal tries again when the link is back."),
        "record_roll_call": _("Roll call: {name} — {status}"),
        "record_personal": _("Personal code: {name}"),
        "waiting_label": _("waiting to be sent"),
        "statuses": dict(Attendance.Status.choices),
    }


@never_cache
@access.role_required()
@require_POST
def terminal_claim(request, pk):
    """The signing secret, to the first browser that opens the terminal; then never again."""
    terminal = _terminal_or_404(request.user, pk)
    try:
        secret = terminals.terminal_claim(terminal=terminal, user=request.user, request=request)
    except terminals.TerminalError as error:
        return JsonResponse({"error": str(error)}, status=409)
    return JsonResponse({"secret": secret, "terminal": terminal.pk})


@never_cache
@access.role_required()
def terminal_package(request, pk):
    terminal = _terminal_or_404(request.user, pk)
    check_in_url = request.build_absolute_uri(reverse("rounds:check_in", args=["CODE"]))
    try:
        package = terminals.terminal_package(
            terminal=terminal,
            rung=request.GET.get("rung", "360p"),
            check_in_url=check_in_url.replace("CODE", "{code}"),
        )
    except terminals.TerminalError as error:
        return JsonResponse({"error": str(error)}, status=400)
    audit_event(
        event="terminal_package",
        obj=terminal,
        request=request,
        rung=package["rung"],
        sittings=len(package["sittings"]),
        media_bytes=package["media_bytes"],
    )
    return JsonResponse(package)


@never_cache
@access.role_required()
@require_POST
def terminal_sync(request, pk):
    """Records the terminal kept offline, as JSON {"records": [...]}; one answer each."""
    terminal = _terminal_or_404(request.user, pk)
    if terminal_sync_limited(request):
        audit_event(
            event="terminal_sync", obj=terminal, request=request, result=REFUSED, error="rate"
        )
        return JsonResponse(
            {"error": _("Too many sends in a short time. The terminal tries again shortly.")},
            status=429,
        )
    try:
        records = json.loads(request.body or b"{}").get("records")
    except (ValueError, AttributeError):
        records = None
    if not isinstance(records, list) or len(records) > MAX_RECORDS:
        return JsonResponse({"error": _("The terminal sent something unreadable.")}, status=400)
    results = terminals.terminal_sync(
        terminal=terminal, records=records, user=request.user, request=request
    )
    return JsonResponse({"results": results})


@access.role_required()
@require_GET
def terminal_service_worker(request):
    """The terminal's service worker, served under /site-terminals/ so its scope covers the
    terminal pages. For the site's staff only, like the pages it serves offline."""
    response = HttpResponse(
        render_to_string("rounds/terminal/sw.js", {}, request=request),
        content_type="text/javascript; charset=utf-8",
    )
    response["Cache-Control"] = "no-cache"
    return response


@login_required
def personal_codes(request):
    """A member's own check-in codes for the coming sittings they may attend: shown as QR codes
    the phone keeps (the page is kept in the phone's storage), for a site terminal to scan when
    the phone has no link."""
    member = access.member_of(request.user)
    if member is None:
        raise Http404
    now = timezone.now()
    candidates = (
        Sitting.objects.filter(
            end__gte=now - timedelta(hours=2),
            start__lte=now + timedelta(days=settings.LUNXUN_TERMINAL_DAYS_AHEAD),
            closed_at__isnull=True,
        )
        .exclude(session__round__state__in=[Round.State.DRAFT, Round.State.CLOSED])
        .select_related("session__event", "session__host", "session__round")
        .order_by("start")[:50]
    )
    codes = []
    for sitting in candidates:
        if not sitting.session.admits(member):
            continue
        code = services.personal_code(sitting=sitting, member=member)
        codes.append(
            {
                "sitting": sitting,
                "code": code,
                "svg": segno.make(code, error="m").svg_inline(
                    scale=6, border=2, dark="#111", light="#fff"
                ),
            }
        )
    return render(request, "rounds/terminal/personal_codes.html", {"codes": codes})

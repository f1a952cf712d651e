"""The secretary's "remind the missing" action, and a user's in-site notices."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core import ratelimits
from members import access
from members.models import Role

from ..models import Notice, Round
from ..reminders import reminders_send

REMINDING_ROLES = (Role.TRAINER, Role.SECRETARY)
NOTICES_PAGE_SIZE = 20


def _next_url(request, fallback):
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@access.role_required(*REMINDING_ROLES)
@require_POST
def remind(request, round_pk):
    roots = access.role_roots(request.user, REMINDING_ROLES)
    training_round = Round.objects.published().visible_to_roots(roots).filter(pk=round_pk).first()
    if training_round is None:
        raise Http404
    node = access.get_organization_or_404(request.user, request.POST.get("org"), REMINDING_ROLES)
    try:
        fallback = reverse("rounds:coverage", args=[training_round.pk]) + f"?org={node.pk}"
    except NoReverseMatch:
        fallback = "/"
    if ratelimits.remind_limited(request):
        # Each action reads a whole subtree's statuses; members are never reminded twice a
        # day anyway, so a burst of clicks only costs the server.
        messages.error(
            request,
            _(
                "You have sent reminders too often in a short time. Nothing was sent this time; "
                "please try again later."
            ),
        )
        return redirect(_next_url(request, fallback))
    result = reminders_send(
        training_round=training_round, node=node, user=request.user, request=request
    )
    if result.quiet and result.pending:
        messages.info(request, result.message())
    else:
        messages.success(request, result.message())
    return redirect(_next_url(request, fallback))


@login_required
def notice_list(request):
    notices = Notice.objects.filter(user=request.user).order_by("-created_at", "-pk")
    page = Paginator(notices, NOTICES_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "rounds/notices/list.html",
        {"page": page, "unread": notices.filter(read_at__isnull=True).exists()},
    )


@login_required
@require_POST
def notices_read(request):
    Notice.objects.filter(user=request.user, read_at__isnull=True).update(read_at=timezone.now())
    return redirect("rounds:notices")

"""The study-hours ledger pages: a member's own, and staff lists of their subtree."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.downloads import xlsx_response
from members import access
from members.models import Member, Organization, Role

from .. import ledger, records
from ..forms import RecordDecisionForm, StudyRecordForm

LEDGER_PAGE_SIZE = 50
LEDGER_ROLES = (Role.SECRETARY, Role.TRAINER, Role.OPERATOR)
FIRST_YEAR = 2000


def _year(request) -> int:
    """?year=YYYY when it is a sensible year; the current year otherwise."""
    this_year = timezone.localdate().year
    try:
        year = int(request.GET.get("year", ""))
    except ValueError:
        return this_year
    return year if FIRST_YEAR <= year <= this_year + 1 else this_year


def _year_links(year: int) -> dict:
    this_year = timezone.localdate().year
    return {
        "previous_year": year - 1 if year > FIRST_YEAR else None,
        "next_year": year + 1 if year < this_year else None,
        "this_year": this_year,
    }


def _member_page(request, member, *, year, staff_view):
    entries = ledger.ledger_entries(member=member, year=year)
    return render(
        request,
        "rounds/ledger/member.html",
        {
            "member": member,
            "year": year,
            "entries": entries,
            "summary": ledger.ledger_summary(member=member, entries=entries),
            "pending_records": member.study_records.pending().filter(studied_on__year=year),
            "can_record": staff_view and records.can_record_for(request.user, member),
            "staff_view": staff_view,
            "show_phone": staff_view and access.can_see_phone(request.user, member),
            **_year_links(year),
        },
    )


@login_required
def my_hours(request):
    member = Member.objects.filter(user=request.user).select_related("organization").first()
    if member is None:
        raise Http404
    return _member_page(request, member, year=_year(request), staff_view=False)


def _filters(request):
    """The list's filters, checked: the organisation must lie inside the user's scope."""
    organization = None
    if request.GET.get("org"):
        organization = access.get_organization_or_404(
            request.user, request.GET["org"], LEDGER_ROLES
        )
    return {
        "year": _year(request),
        "organization": organization,
        "q": request.GET.get("q", "").strip()[:50],
        "below": request.GET.get("below") == "1",
    }


def _ledger_scope(request, filters):
    """(members, roots): the members the list shows, party members only (people in training to
    join have no yearly requirement) and searched, and the subtrees they are listed under: the
    chosen organisation, or the user's roles (None: everywhere)."""
    if filters["organization"] is not None:
        roots = [filters["organization"]]  # checked inside the user's scope by _filters
    else:
        roots = access.role_roots(request.user, LEDGER_ROLES)
    members = Member.objects.active().party_members()
    return ledger.ledger_search(members, filters["q"]), roots


def _ledger_queryset(request, filters):
    members, roots = _ledger_scope(request, filters)
    if roots is not None:
        members = members.in_subtree(*roots)
    rows = ledger.ledger_for_members(members_qs=members, year=filters["year"])
    if filters["below"]:
        rows = ledger.below_requirement(rows)
    return rows


def _query_string(filters, **changes) -> str:
    query = QueryDict(mutable=True)
    values = {
        "year": filters["year"],
        "org": filters["organization"].pk if filters["organization"] else "",
        "q": filters["q"],
        "below": "1" if filters["below"] else "",
        **changes,
    }
    for key, value in values.items():
        if value not in ("", None):
            query[key] = value
    return query.urlencode()


@access.role_required(*LEDGER_ROLES)
def org_hours(request):
    filters = _filters(request)
    members, roots = _ledger_scope(request, filters)
    rows = ledger.LedgerList(
        members=members,
        roots=roots,
        year=filters["year"],
        below_only=filters["below"],
    )
    page = Paginator(rows, LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    for member in page.object_list:
        member.show_phone = access.can_see_phone(request.user, member)
    organization = filters["organization"]
    if organization is not None:
        children = organization.get_children()
    else:
        roots = access.role_roots(request.user, LEDGER_ROLES)
        children = (
            Organization.get_root_nodes() if roots is None else sorted(roots, key=lambda o: o.path)
        )
    return render(
        request,
        "rounds/ledger/org.html",
        {
            "page": page,
            "organization": organization,
            "children": children,
            "year": filters["year"],
            "q": filters["q"],
            "below": filters["below"],
            "query": _query_string(filters),
            "year_query": {
                "previous": _query_string(filters, year=filters["year"] - 1),
                "next": _query_string(filters, year=filters["year"] + 1),
            },
            "requirements": _requirements(),
            "pending_count": records.records_to_decide(request.user).count(),
            **_year_links(filters["year"]),
        },
    )


def _requirements():
    """(position label, hours) for the page's legend, from the settings."""
    return [
        (label, ledger.ledger_requirement(position=value))
        for value, label in Member.Position.choices
    ]


@access.role_required(*LEDGER_ROLES)
def org_member_hours(request, member_pk):
    member = access.get_member_or_404(request.user, member_pk, LEDGER_ROLES)
    return _member_page(request, member, year=_year(request), staff_view=True)


@access.role_required(*LEDGER_ROLES)
def org_hours_export(request):
    filters = _filters(request)
    rows = _ledger_queryset(request, filters)
    content = ledger.ledger_export(
        ledger_qs=rows,
        year=filters["year"],
        user=request.user,
        request=request,
        filters={
            "year": filters["year"],
            "org": filters["organization"].code if filters["organization"] else "",
            "q": filters["q"],
            "below": filters["below"],
        },
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return xlsx_response(content, f"study-hours-{filters['year']}-{stamp}.xlsx")


# --- Study the system did not see: recorded by a secretary, approved by another ---------------


@access.role_required(*records.RECORDING_ROLES)
def record_new(request, member_pk):
    """Record a 党校 class, 春训冬训 or a 送学上门 visit for a member in one's scope."""
    member = access.get_member_or_404(request.user, member_pk, records.RECORDING_ROLES)
    if not records.can_record_for(request.user, member):
        raise Http404
    form = StudyRecordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            _record, created = records.record_create(
                member=member, user=request.user, request=request, **data
            )
        except records.RecordRefused as refused:
            form.add_error(None, str(refused))
        else:
            if created:
                messages.success(
                    request,
                    _("Recorded for %(name)s: it counts once someone else approves it.")
                    % {"name": member.name},
                )
            else:
                messages.info(request, _("This was already recorded; nothing was added."))
            return redirect("rounds:ledger_member", member_pk=member.pk)
    return render(request, "rounds/ledger/record_form.html", {"member": member, "form": form})


@access.role_required(*records.RECORDING_ROLES)
def record_list(request):
    """Records to approve (not one's own, not recorded by oneself), and the latest ones."""
    return render(
        request,
        "rounds/ledger/records.html",
        {
            "to_decide": records.records_to_decide(request.user)[:200],
            "recent": records.records_visible(request.user)
            .exclude(state=records.StudyRecord.State.PENDING)
            .select_related("decided_by")
            .order_by("-decided_at", "-pk")[:50],
            "mine": records.records_visible(request.user)
            .pending()
            .filter(recorded_by=request.user)
            .order_by("-recorded_at")[:50],
            "decision_form": RecordDecisionForm(),
        },
    )


@access.role_required(*records.RECORDING_ROLES)
@require_POST
def record_decide(request, pk):
    record = get_object_or_404(
        records.records_visible(request.user).select_related("member__organization"), pk=pk
    )
    form = RecordDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose to approve or refuse."))
        return redirect("rounds:records")
    try:
        records.record_decide(
            record=record,
            approve=form.cleaned_data["decision"] == "approve",
            note=form.cleaned_data["note"],
            user=request.user,
            request=request,
        )
    except records.RecordRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, _("Decided: %(title)s") % {"title": record.title})
    return redirect("rounds:records")

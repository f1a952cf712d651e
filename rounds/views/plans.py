"""The five-year plan pages: the plans a user's subtree is in, and one plan seen from a node of
that subtree — each target year by year, this year's missing names, the quarterly rounds'
coverage — and its Excel export. Tree order, never a ranking."""

from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import audit_event
from core.downloads import xlsx_response
from core.tabular import ExportWorkbook
from members import access
from members.models import Role

from .. import plans

PLAN_ROLES = (Role.TRAINER, Role.SECRETARY, Role.OPERATOR)


@access.role_required(*PLAN_ROLES)
def plan_list(request):
    roots = access.role_roots(request.user, PLAN_ROLES)
    return render(
        request,
        "rounds/plans/list.html",
        {"plans": plans.plans_visible(roots).order_by("-first_year")},
    )


def _plan_and_node(request, pk):
    """The plan (its subtree meeting the user's) and the node to show: ``?org=`` inside both,
    else the highest node the user may see within the plan's subtree."""
    roots = access.role_roots(request.user, PLAN_ROLES)
    plan = get_object_or_404(plans.plans_visible(roots), pk=pk)
    top = plan.organization
    if request.GET.get("org"):
        node = access.get_organization_or_404(request.user, request.GET["org"], PLAN_ROLES)
        if not top.contains(node):
            raise Http404
        return plan, node
    if roots is None or any(root.contains(top) for root in roots):
        return plan, top
    inside = sorted((r for r in roots if top.contains(r)), key=lambda o: o.path)
    if not inside:
        raise Http404
    return plan, inside[0]


@access.role_required(*PLAN_ROLES)
def plan_detail(request, pk):
    plan, node = _plan_and_node(request, pk)
    figures = plans.target_figures(plan, node)
    phones = access.phone_visibility(request.user)
    for item in figures:
        for member in item.missing:
            member.shown_phone = member.phone if phones(member) else member.masked_phone
    ancestors = [
        o
        for o in node.ancestors_and_self()
        if plan.organization.contains(o)
        and access.can_see_organization(request.user, o, PLAN_ROLES)
    ]
    return render(
        request,
        "rounds/plans/detail.html",
        {
            "plan": plan,
            "node": node,
            "ancestors": ancestors,
            "children": node.get_children().order_by("path"),
            "figures": figures,
            "quarters": plans.quarterly_coverage(plan, node),
            "this_year": timezone.localdate().year,
            "missing_shown": plans.MISSING_SHOWN,
        },
    )


@access.role_required(*PLAN_ROLES)
def plan_export(request, pk):
    """The page as a workbook: every target's figures by year, and every missing name this year
    (all of them, not only those shown); audit-logged, phones as the viewer may see them."""
    plan, node = _plan_and_node(request, pk)
    figures = plans.target_figures(plan, node)
    workbook = ExportWorkbook()
    sheet = workbook.sheet(_("Targets"))
    sheet.append([plan.title, node.name])
    sheet.append(
        [_("Target"), _("Year"), _("In the target"), _("Met"), _("Share (%)"), _("Goal (%)")]
    )
    for item in figures:
        for figure in item.years:
            sheet.append(
                [
                    item.target.label,
                    figure.year,
                    figure.audience,
                    figure.met,
                    figure.percent,
                    item.target.goal_percent,
                ]
            )
    names = workbook.sheet(_("Still missing"))
    names.append([_("Target"), _("Name"), _("Mobile"), _("Organisation")])
    phones = access.phone_visibility(request.user)
    rows = 0
    for item in figures:
        if item.missing_qs is None:
            continue
        for member in item.missing_qs.iterator(chunk_size=2000):
            names.append(
                [
                    item.target.label,
                    member.name,
                    member.phone if phones(member) else member.masked_phone,
                    member.organization.name,
                ]
            )
            rows += 1
    audit_event(
        event="plan_export", obj=plan, actor=request.user, request=request, org=node.code, rows=rows
    )
    return xlsx_response(workbook.to_bytes(), f"plan-{plan.pk}-{node.code}.xlsx")

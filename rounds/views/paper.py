"""The paper sign-in sheet of a sitting (纸质签到表): print it, then enter its ticks.

Who may take roll call for a sitting may print its sheet and enter its ticks; the code of a
sheet whose sitting the user may not run is refused like a code that does not exist."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from core.audit import REFUSED, audit_event
from core.downloads import download_response
from members import access

from .. import paper, services
from ..forms import SheetCodeForm
from ..models import Attendance
from .rounds import _session_open_to, _sitting_or_404

EVENT = "paper_sign_in"


def _entry_url(sitting, code="") -> str:
    url = reverse("rounds:paper_entry", args=[sitting.pk])
    return f"{url}?{urlencode({'code': code})}" if code else url


@access.role_required()
def sign_in_sheet(request, pk):
    """The sitting's A4 sign-in sheet, as a PDF download."""
    sitting = _sitting_or_404(request.user, pk)
    code = paper.sheet_code_for(sitting=sitting)
    pdf = paper.sign_in_sheet_pdf(
        sitting=sitting, entry_url=request.build_absolute_uri(_entry_url(sitting, code))
    )
    audit_event(event="sign_in_sheet_printed", obj=sitting, request=request, code=code)
    start = timezone.localtime(sitting.start)
    return download_response(
        pdf,
        filename=f"{_('Sign-in sheet')}-{sitting.session.title}-{start:%Y%m%d-%H%M}.pdf",
        content_type="application/pdf",
    )


@access.role_required()
def paper_find(request):
    """Where the operator types the code of a sheet in hand, to enter its ticks."""
    form = SheetCodeForm(request.GET if "code" in request.GET else None)
    if form.is_bound and form.is_valid():
        sitting = form.cleaned_data["sitting"]
        if _session_open_to(request.user, sitting.session):
            return redirect(_entry_url(sitting, form.cleaned_data["code"]))
        # Not a sitting this user runs: said like a code that does not exist.
        form.add_error(
            "code",
            _("This is not the code of a sign-in sheet. Check it against the printed sheet."),
        )
    return render(request, "rounds/paper/find.html", {"form": form})


def _rows(sitting, ticked=None):
    """The screen's rows, in the sheet's order: (sheet row, record, ticked, locked)."""
    records = {a.member_id: a for a in Attendance.objects.filter(sitting=sitting)}
    rows = []
    for row in paper.sheet_rows(sitting=sitting):
        record = records.get(row.member.pk)
        there = record is not None and record.attended
        # Recorded there by check-in or roll call: shown ticked; the paper cannot undo it.
        locked = there and record.method != Attendance.Method.PAPER
        is_ticked = locked or (row.member.pk in ticked if ticked is not None else there)
        rows.append((row, record, is_ticked, locked))
    return rows


@access.role_required()
def paper_entry(request, pk):
    """从纸质签到表录入: tick the names as ticked on the sheet, in the sheet's order, and save
    them through roll call's rules. Arriving from the sitting, only the sitting's number is
    filled in: the letters come from the sheet in hand, so another sitting's sheet is refused."""
    sitting = _sitting_or_404(request.user, pk)
    ticked = None
    if request.method == "POST":
        form = SheetCodeForm(request.POST, sitting=sitting)
        ticked = {int(v) for v in request.POST.getlist("tick") if v.isdigit()}
        if form.is_valid():
            try:
                changed = paper.paper_ticks_save(
                    sitting=sitting,
                    code=form.cleaned_data["code"],
                    ticked=ticked,
                    user=request.user,
                    request=request,
                )
            except services.RollCallError as error:
                audit_event(
                    event=EVENT,
                    obj=sitting,
                    request=request,
                    result=REFUSED,
                    error=str(error),
                    ticks=len(ticked),
                )
                messages.error(request, str(error))
            else:
                if changed:
                    messages.success(
                        request,
                        _("Ticks from the paper sheet saved: %(n)d records changed.")
                        % {"n": changed},
                    )
                else:
                    messages.info(
                        request, _("These ticks were entered already; nothing was changed.")
                    )
                return redirect(_entry_url(sitting, form.cleaned_data["code"]))
        else:
            audit_event(
                event=EVENT,
                obj=sitting,
                request=request,
                result=REFUSED,
                error="; ".join(form.errors.get("code", [])),
                ticks=len(ticked),
            )
    else:
        form = SheetCodeForm(initial={"code": request.GET.get("code") or f"{sitting.pk}-"})
    rows = _rows(sitting, ticked)
    return render(
        request,
        "rounds/paper/entry.html",
        {
            "sitting": sitting,
            "session": sitting.session,
            "form": form,
            "rows": rows,
            "present": sum(1 for _row, _record, is_ticked, _locked in rows if is_ticked),
        },
    )

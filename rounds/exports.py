"""Coverage to .xlsx: exactly what the coverage page shows, all rows, audit-logged."""

from django.utils.translation import gettext as _

from core.audit import audit_event
from core.tabular import ExportWorkbook
from members import access

from .participation import status_line

FIGURE_COLUMNS = ("in_scope", "completed", "in_progress", "on_leave", "not_started", "exempt")


def _figure_headers():
    return [
        _("In scope"),
        _("Completed"),
        _("In progress"),
        _("On leave"),
        _("Not started"),
        _("Exempt"),
        _("Coverage"),
    ]


def _figure_cells(figures):
    data = figures.as_dict()
    percent = figures.percent
    return [*(data[name] for name in FIGURE_COLUMNS), f"{percent}%" if percent is not None else ""]


def coverage_export(
    *, training_round, head, rows, members, user, request=None, filters=None
) -> bytes:
    """Two sheets: the node and its children's figures, and the member list as filtered."""
    workbook = ExportWorkbook()
    sheet = workbook.sheet(_("Coverage"))
    sheet.append([training_round.title])
    closed = training_round.is_closed and head.snapshot is not None
    headers = [_("Organisation"), _("Code"), *_figure_headers()]
    if closed:
        headers += [_("Completed at close"), _("Coverage at close")]
    sheet.append(headers)

    def figure_row(row, label=None):
        cells = [label or row.organization.name, row.organization.code, *_figure_cells(row.figures)]
        if closed and row.snapshot is not None:
            snap = row.snapshot
            cells += [snap.completed, f"{snap.percent}%" if snap.percent is not None else ""]
        return cells

    sheet.append(figure_row(head, _("%(name)s (total)") % {"name": head.organization.name}))
    for row in rows:
        label = (
            _("%(name)s (members attached directly)") % {"name": row.organization.name}
            if row.direct
            else None
        )
        sheet.append(figure_row(row, label))

    names = workbook.sheet(_("Members"))
    names.append(
        [_("Name"), _("Mobile"), _("Organisation"), _("Category"), _("Progress in this round")]
    )
    show_phone = access.phone_visibility(user)
    full_phones = False
    count = 0
    for member in members.iterator(chunk_size=2000):
        shown = show_phone(member)
        full_phones = full_phones or shown
        phone = member.phone if shown else member.masked_phone
        names.append(
            [
                member.name,
                phone,
                member.organization.name,
                member.get_position_display(),
                status_line(
                    status=member.round_status,
                    method=member.round_method or "",
                    lessons_done=member.round_done or 0,
                    lessons_required=member.round_required or 0,
                    note=member.round_note or "",
                    makeup_deadline=training_round.makeup_deadline,
                ),
            ]
        )
        count += 1
    content = workbook.to_bytes()
    audit_event(
        event="coverage_export",
        obj=training_round,
        actor=user,
        request=request,
        organization=head.organization.code,
        rows=count,
        filters=filters or {},
        full_phones=full_phones,
    )
    return content

"""The paper sign-in sheet of a sitting (纸质签到表), for a site with no screen at all and members
without a smartphone, and the ticks entered from it afterwards.

The sheet lists the roll call's members in the roll call's order, with masked phones, a tick
column and a signature column, and carries a sheet code: the sitting's id and six letters
signed with the session's check-in key, printed large and as a QR code. The operator types the
code (or scans it) when entering the ticks, so a mistyped code, or the sheet of another
sitting, is refused before anything is saved. The ticks go through ``roll_call_save``: the
same rules as roll call (members present at another sitting at the same time are refused,
a closed sitting records the change as a correction), with the method "paper" and the reason
"paper sheet", audit-logged.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass

import segno
from django.conf import settings
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Member

from .models import Attendance, LeaveRequest, Sitting
from .services import roll_call_members, roll_call_save

# Letters an operator cannot confuse with a digit or with each other (no I, L, O).
CODE_LETTERS = "ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6  # 23**6: about 148 million codes per sitting id
_CODE = re.compile(rf"^(\d{{1,12}})-?([A-Z]{{{CODE_LENGTH}}})$")


class SheetCodeRefused(Exception):
    """A sheet code that does not belong to a sitting (or not to this one): the message says
    what to do, in the operator's language."""


def _letters(sitting: Sitting) -> str:
    key = f"{settings.SECRET_KEY}:{sitting.session.qr_key}".encode()
    digest = hmac.new(key, f"lunxun-paper-sheet:{sitting.pk}".encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big")
    letters = []
    for _i in range(CODE_LENGTH):
        number, index = divmod(number, len(CODE_LETTERS))
        letters.append(CODE_LETTERS[index])
    return "".join(letters)


def sheet_code_for(*, sitting: Sitting) -> str:
    """The code printed on ``sitting``'s sheet: “1234-KXMPRA”."""
    return f"{sitting.pk}-{_letters(sitting)}"


def _normalised(code: str) -> str:
    return re.sub(r"[\s\u3000]+", "", (code or "")).upper().replace("—", "-").replace("－", "-")


def sheet_code_read(*, code: str, sitting: Sitting | None = None) -> Sitting:
    """The sitting whose sheet carries ``code``; with ``sitting``, the code must be that one's.

    Spaces and lower case are forgiven; a wrong letter or digit is not."""
    match = _CODE.match(_normalised(code))
    if match is None:
        raise SheetCodeRefused(
            _(
                "A sheet code is a number, a dash and six letters, like 1234-KXMPRA. "
                "Type it as printed at the top of the sheet."
            )
        )
    found = (
        Sitting.objects.select_related("session__round", "session__event", "session__host")
        .filter(pk=int(match.group(1)))
        .first()
    )
    if found is None or not hmac.compare_digest(match.group(2), _letters(found)):
        raise SheetCodeRefused(
            _("This is not the code of a sign-in sheet. Check it against the printed sheet.")
        )
    if sitting is not None and found.pk != sitting.pk:
        # Not named: the user may not run that one.
        raise SheetCodeRefused(
            _(
                "This code belongs to the sheet of another group session: enter each "
                "sheet's ticks on its own session."
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class SheetRow:
    number: int
    member: Member
    phone: str  # masked
    on_leave: bool  # approved leave from this round's group learning


def sheet_rows(*, sitting: Sitting) -> list[SheetRow]:
    """The members on the sheet, numbered in the roll call's order; those with approved leave
    (for the round, or for this session) marked."""
    members = list(roll_call_members(sitting))
    on_leave = set()
    if sitting.session.round_id is not None:
        on_leave = set(
            LeaveRequest.objects.filter(
                round_id=sitting.session.round_id,
                state=LeaveRequest.State.APPROVED,
                member__in=[m.pk for m in members],
            )
            .filter(Q(session__isnull=True) | Q(session=sitting.session))
            .values_list("member_id", flat=True)
        )
    return [
        SheetRow(
            number=number,
            member=member,
            phone=member.masked_phone if member.phone else "",
            on_leave=member.pk in on_leave,
        )
        for number, member in enumerate(members, start=1)
    ]


def _css_string(text: str) -> str:
    """``text`` as a quoted CSS string, safe inside a <style> element (names and titles come
    from users: a quote, a backslash or "</style>" in them stays text)."""
    escaped = "".join(
        f"\\{ord(ch):X} " if ch in "\"\\<>&'" or ord(ch) < 0x20 else ch for ch in text
    )
    return f'"{escaped}"'


def _page_label() -> str:
    """“第 x 页，共 y 页” as a CSS content value, the numbers filled in by the page counters."""
    page, pages = "\x00PAGE\x00", "\x00PAGES\x00"
    quoted = _css_string(_("Page %(page)s of %(pages)s") % {"page": page, "pages": pages})
    return quoted.replace(_css_string(page)[1:-1], '" counter(page) "').replace(
        _css_string(pages)[1:-1], '" counter(pages) "'
    )


def sign_in_sheet_pdf(*, sitting: Sitting, entry_url: str) -> bytes:
    """The A4 sign-in sheet of ``sitting``; ``entry_url`` (the entry screen, code filled in)
    is what its QR code holds."""
    code = sheet_code_for(sitting=sitting)
    qr = segno.make(entry_url, error="m", mask=0)
    html = render_to_string(
        "rounds/paper/sign_in_sheet.html",
        {
            "sitting": sitting,
            "session": sitting.session,
            "code": code,
            "qr": qr.svg_data_uri(border=0, dark="#000"),
            "rows": sheet_rows(sitting=sitting),
            "page_label": _page_label(),
            "running_title": _css_string(
                f"{sitting.session.title} · {timezone.localtime(sitting.start):%Y-%m-%d %H:%M}"
            ),
            "running_code": _css_string(_("Sheet code %(code)s") % {"code": code}),
            "printed_at": timezone.now(),
        },
    )
    from weasyprint import HTML  # heavy: WeasyPrint loads Pango and its fonts

    return HTML(string=html).write_pdf()


def paper_marks(*, sitting: Sitting, ticked) -> dict:
    """The roll-call marks the ticks ``ticked`` (member ids) make: a ticked member not yet
    recorded as there becomes present; a member whose earlier paper tick is no longer ticked
    loses it (a tick entered on the wrong line). Check-ins and roll-call marks of those
    already there are left as they are, so entering the same sheet twice changes nothing."""
    ticked = {int(pk) for pk in ticked}
    records = {a.member_id: a for a in Attendance.objects.filter(sitting=sitting)}
    marks = {}
    for member_id in roll_call_members(sitting).values_list("pk", flat=True):
        record = records.get(member_id)
        if member_id in ticked:
            if record is None or not record.attended:
                marks[member_id] = Attendance.Status.PRESENT
        elif record is not None and record.attended and record.method == Attendance.Method.PAPER:
            marks[member_id] = ""
    return marks


def paper_ticks_save(*, sitting: Sitting, code: str, ticked, user, request=None) -> int:
    """Enter the ticks of ``sitting``'s paper sheet, whose code the operator typed as ``code``;
    returns how many records changed. Refuses (SheetCodeRefused) a code that is not this
    sitting's, and (RollCallError) what roll call refuses; then nothing is saved."""
    sheet_code_read(code=code, sitting=sitting)
    return roll_call_save(
        sitting=sitting,
        marks=paper_marks(sitting=sitting, ticked=ticked),
        user=user,
        reason=_("paper sheet"),
        method=Attendance.Method.PAPER,
        request=request,
    )

"""The yearly study-hours ledger (学时档案): what each member studied in a calendar year.

Three sources carry study hours: lessons completed online (``LessonProgress.hours_earned``,
dated when the lesson was completed), group sessions attended, present or late
(``Session.hours``, dated when the sitting started), and study the system did not see, recorded
by a secretary and approved (``StudyRecord``, rounds/records.py, dated when it took place).
A year is a calendar year in the deployment's time zone. The requirement depends on the
member's position and comes from ``settings.LUNXUN_YEARLY_HOURS``; positions not listed there
use the "member" figure.

One member's ledger is a short list read in Python; a list of members is one query that reads
each member's row of the year in the summary (``HoursSummary``, kept by rounds/hours.py in the
transaction of every write to the sources) and computes requirement and gap in the database, so
it can be ordered and paged over a whole city. The staff list pages it through ``LedgerList``,
which reads a page in name order from the members below the requirement, then those who meet
it, rather than sorting a city of members for every page. ``ledger_for_members_live`` sums the
sources instead: the recount the summary is checked against.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Case,
    DecimalField,
    F,
    FilteredRelation,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Round
from django.db.models.lookups import LessThan
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from wagtail.models import Page

from core.audit import audit_event
from core.tabular import ExportWorkbook
from courses.models import LessonProgress
from members import access
from members.models import Member, Organization

from .models import Attendance, HoursSummary, StudyRecord, day_start

HOURS = DecimalField(max_digits=8, decimal_places=1)
ZERO = Decimal("0")


@dataclass(frozen=True)
class LedgerEntry:
    date: datetime
    kind: str  # "lesson", "session" or "record" (study recorded by a secretary and approved)
    title: str
    detail: str
    hours: Decimal
    # When it began to count, where that is later than ``date``: a recorded study counts from
    # its approval, so a statement issued before then never gains it when rendered again.
    counted_at: datetime | None = None

    @property
    def counted_since(self) -> datetime:
        return self.counted_at or self.date

    @property
    def is_lesson(self):
        return self.kind == "lesson"


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """[start, end) of the calendar ``year`` in the deployment's time zone."""
    return day_start(date(year, 1, 1)), day_start(date(year + 1, 1, 1))


def ledger_requirement(*, position: str, status: str = Member.Status.FULL) -> Decimal:
    """The yearly hours a member in ``position`` must reach; none for people in training to
    join (入党积极分子, 发展对象), who are not members yet."""
    if status in Member.LEARNER_STATUSES:
        return ZERO
    table = settings.LUNXUN_YEARLY_HOURS
    return Decimal(str(table.get(position, table.get("member", 0))))


def _lesson_rows(member_ref, year):
    """Lessons completed in ``year`` (``None``: in any year)."""
    rows = LessonProgress.objects.filter(member=member_ref, completed_at__isnull=False)
    if year is None:
        return rows
    start, end = year_bounds(year)
    return rows.filter(completed_at__gte=start, completed_at__lt=end)


def _attendance_rows(member_ref, year):
    rows = Attendance.objects.filter(member=member_ref, status__in=Attendance.ATTENDED)
    if year is None:
        return rows
    start, end = year_bounds(year)
    return rows.filter(sitting__start__gte=start, sitting__start__lt=end)


def _record_rows(member_ref, year):
    rows = StudyRecord.objects.approved().filter(member=member_ref)
    return rows if year is None else rows.filter(studied_on__year=year)


def _course_titles(lessons) -> dict[str, str]:
    """{lesson path: its course's title}, in one query (a lesson's parent is its course)."""
    parent_paths = {lesson.path[: -lesson.steplen] for lesson in lessons}
    if not parent_paths:
        return {}
    titles = dict(Page.objects.filter(path__in=parent_paths).values_list("path", "title"))
    return {lesson.path: titles.get(lesson.path[: -lesson.steplen], "") for lesson in lessons}


def ledger_entries(*, member: Member, year: int) -> list[LedgerEntry]:
    """Every entry of ``member``'s ledger in ``year``, oldest first."""
    progress = list(
        _lesson_rows(member, year)
        .select_related("lesson")
        .only("completed_at", "hours_earned", "lesson__title", "lesson__path", "lesson__depth")
    )
    courses = _course_titles([p.lesson for p in progress])
    entries = [
        LedgerEntry(
            date=p.completed_at,
            kind="lesson",
            title=p.lesson.title,
            detail=courses.get(p.lesson.path, ""),
            hours=p.hours_earned,
        )
        for p in progress
    ]
    attendances = _attendance_rows(member, year).select_related(
        "sitting__session__event", "sitting__session__round"
    )
    entries += [
        LedgerEntry(
            date=a.sitting.start,
            kind="session",
            title=a.sitting.session.title,
            detail=(
                a.sitting.session.round.title
                if a.sitting.session.round_id
                else _("Group study outside a training")
            ),
            hours=a.sitting.session.hours,
        )
        for a in attendances
    ]
    entries += [
        LedgerEntry(
            date=day_start(r.studied_on),
            kind="record",
            title=r.title,
            detail=r.get_kind_display(),
            hours=r.hours,
            counted_at=r.decided_at,
        )
        for r in _record_rows(member, year)
    ]
    entries.sort(key=lambda e: (e.date, e.kind, e.title))
    return entries


def ledger_total(*, member: Member | None = None, year: int | None = None, entries=None) -> Decimal:
    """The hours of ``member`` in ``year`` (or the sum of ``entries`` already loaded)."""
    if entries is None:
        entries = ledger_entries(member=member, year=year)
    return sum((e.hours for e in entries), ZERO)


@dataclass(frozen=True)
class LedgerSummary:
    lessons: Decimal
    sessions: Decimal
    records: Decimal
    total: Decimal
    required: Decimal

    @property
    def gap(self) -> Decimal:
        return max(self.required - self.total, ZERO)

    @property
    def is_below(self) -> bool:
        return self.total < self.required

    @property
    def percent(self) -> int:
        if not self.required:
            return 100
        return min(100, int(self.total * 100 / self.required))


def ledger_summary(*, member: Member, entries) -> LedgerSummary:
    lessons = sum((e.hours for e in entries if e.kind == "lesson"), ZERO)
    sessions = sum((e.hours for e in entries if e.kind == "session"), ZERO)
    records = sum((e.hours for e in entries if e.kind == "record"), ZERO)
    return LedgerSummary(
        lessons=lessons,
        sessions=sessions,
        records=records,
        total=lessons + sessions + records,
        required=ledger_requirement(position=member.position, status=member.status),
    )


def _sum_subquery(rows, field):
    summed = rows.order_by().values("member").annotate(total=Sum(field)).values("total")
    # Rounded to the tenth the columns hold: on SQLite sums of decimals are floats, and
    # 31.999999 must not read as below 32.
    return Round(Coalesce(Subquery(summed, output_field=HOURS), Value(ZERO), output_field=HOURS), 1)


def _requirement_expression(output_field=HOURS):
    """The member's yearly requirement by position, from the settings, as ``output_field``."""
    table = settings.LUNXUN_YEARLY_HOURS
    figure = float if isinstance(output_field, FloatField) else lambda h: Decimal(str(h))
    whens = [
        When(position=position, then=Value(figure(hours)))
        for position, hours in table.items()
        if position != "member"
    ]
    default = Value(figure(table.get("member", 0)))
    return Case(*whens, default=default, output_field=output_field)


def _with_gap(annotated):
    """Add total, requirement, gap and ``is_below`` to ``hours_lessons/sessions/records``."""
    return (
        annotated.annotate(hours_required=_requirement_expression())
        .annotate(
            hours_total=Round(
                F("hours_lessons") + F("hours_sessions") + F("hours_records"),
                1,
                output_field=HOURS,
            )
        )
        .annotate(
            hours_gap=Greatest(
                F("hours_required") - F("hours_total"), Value(ZERO), output_field=HOURS
            )
        )
        .annotate(
            is_below=Case(
                When(hours_gap__gt=0, then=Value(1)), default=Value(0), output_field=IntegerField()
            )
        )
        .order_by("-is_below", "name", "pk")
    )


def _summed(column):
    """Every year's ``column`` of a member's summary rows (the hours before admission)."""
    rows = HoursSummary.objects.filter(member=OuterRef("pk")).order_by().values("member")
    summed = rows.annotate(total=Sum(column)).values("total")
    return Round(Coalesce(Subquery(summed, output_field=HOURS), Value(ZERO), output_field=HOURS), 1)


def ledger_for_members(*, members_qs, year: int | None):
    """``members_qs`` annotated with the year's hours (``year`` None: every year's, as for the
    hours 发展对象 need before admission), requirement and gap, all in SQL.

    ``hours_lessons``, ``hours_sessions``, ``hours_total``, ``hours_required``, ``hours_gap``
    (zero once the requirement is met) and ``is_below`` (1 below the requirement, else 0);
    ordered below-requirement first, then by name. One query, whatever the number of members:
    the hours are read from each member's row of the year in the summary (``HoursSummary``,
    rounds/hours.py), one join, never summed from the sources here.
    """
    if year is None:
        return _with_gap(
            members_qs.annotate(
                hours_lessons=_summed("lessons"),
                hours_sessions=_summed("sessions"),
                hours_records=_summed("records"),
            )
        )
    zero = Value(ZERO)
    return _with_gap(
        _with_year_total(members_qs, year).annotate(
            hours_lessons=Coalesce(F("year_hours__lessons"), zero, output_field=HOURS),
            hours_sessions=Coalesce(F("year_hours__sessions"), zero, output_field=HOURS),
            hours_records=Coalesce(F("year_hours__records"), zero, output_field=HOURS),
        )
    )


def _with_year_total(members_qs, year: int):
    """``members_qs`` joined to each member's summary row of ``year`` (``year_hours``), with
    ``year_total`` (0 without a row) to filter on: one join, whatever refers to it."""
    return members_qs.annotate(
        year_hours=FilteredRelation("hours_summaries", condition=Q(hours_summaries__year=year))
    ).alias(year_total=Coalesce(F("year_hours__total"), Value(0.0), output_field=FloatField()))


def _short_of_requirement():
    """Below the year's requirement, stated on the stored total (the summary keeps it the sum
    of its three sources): one comparison per member where ``is_below`` computes the gap.
    Compared as floats, which SQLite compares without a cast per row: totals are whole tenths
    and requirements the settings' figures, both exact in a float and its decimal alike."""
    return LessThan(F("year_total"), _requirement_expression(FloatField()))


def ledger_for_members_live(*, members_qs, year: int | None):
    """What ``ledger_for_members`` gives, summed live from the three sources instead of read
    from the summary: the recount the summary is checked against (tests, bench baseline).

    ``members_qs`` annotated with the year's hours (``year`` None: every year's, as for the
    hours 发展对象 need before admission), requirement and gap, all in SQL.

    ``hours_lessons``, ``hours_sessions``, ``hours_total``, ``hours_required``, ``hours_gap``
    (zero once the requirement is met) and ``is_below`` (1 below the requirement, else 0);
    ordered below-requirement first, then by name. One query, whatever the number of members.
    """
    lessons = _sum_subquery(_lesson_rows(OuterRef("pk"), year), "hours_earned")
    sessions = _sum_subquery(_attendance_rows(OuterRef("pk"), year), "sitting__session__hours")
    records = _sum_subquery(_record_rows(OuterRef("pk"), year), "hours")
    return _with_gap(
        members_qs.annotate(hours_lessons=lessons, hours_sessions=sessions, hours_records=records)
    )


# From this many members on, a list is read in name order from the members' name index, each
# row tested against the scope on the way (in_subtree(..., use_index=False)), instead of taking
# every member of the subtree from the path index and sorting them: at 300,000 members the sort
# alone is what a page costs. Below it the whole subtree is sorted, which stays cheap, while
# the name index would be walked past many members outside a small subtree.
NAME_ORDER_FROM = 20_000


class LedgerList:
    """The rows of a ledger list, below the requirement first and then by name (the order of
    ``ledger_for_members``), as a Paginator pages them: a count and slices.

    A slice is read from two lists, each in name order: the members below the requirement, then
    those who meet it; the second is read only where the slice runs past the end of the first,
    and the number of members below the requirement is counted only when a slice starts beyond
    its end. ``members`` are the members to list, ``roots`` the subtrees they are listed under
    (None: everywhere); a list of ``NAME_ORDER_FROM`` members or more states those subtrees
    without the path index.
    """

    def __init__(self, *, members, roots, year, below_only=False):
        self.members = members
        self.roots = roots
        self.year = year
        self.below_only = below_only

    @cached_property
    def _everywhere(self) -> bool:
        """Whether ``roots`` cover the whole tree (the city's trainer, at its only top node):
        the list then needs no condition on the members' organisations, which at city scale
        cost a join of every member to the organisation tree to keep them all."""
        if self.roots is None:
            return True
        tops = {root.pk for root in self.roots if root.depth == 1}
        return bool(tops) and not Organization.objects.filter(depth=1).exclude(pk__in=tops).exists()

    def _scoped(self, *, use_index=True):
        if self._everywhere:
            return self.members
        return self.members.in_subtree(*self.roots, use_index=use_index)

    @cached_property
    def _members_count(self):
        return self._scoped().count()

    def _rows(self, below):
        listed = self._below_count if self.below_only else self._members_count
        members = self._scoped(use_index=listed < NAME_ORDER_FROM)
        rows = ledger_for_members(members_qs=members, year=self.year)
        short = _short_of_requirement()
        rows = rows.filter(short) if below else rows.exclude(short)
        return rows.order_by("name", "pk").select_related("organization")

    @cached_property
    def _below_count(self):
        return _with_year_total(self._scoped(), self.year).filter(_short_of_requirement()).count()

    def count(self):
        return self._below_count if self.below_only else self._members_count

    def __getitem__(self, index):
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("a ledger list is read in slices")
        start, stop = index.start or 0, index.stop
        if stop is None or start < 0 or stop < start:
            raise ValueError("a ledger list is read in bounded slices from its start")
        if start == stop:
            return []
        rows = list(self._rows(True)[start:stop])
        if self.below_only or len(rows) == stop - start:
            return rows
        below = start + len(rows) if rows or start == 0 else self._below_count
        return rows + list(self._rows(False)[max(0, start - below) : stop - below])


def below_requirement(ledger_qs):
    """Only the rows of a ``ledger_for_members`` queryset that are below the requirement."""
    return ledger_qs.filter(is_below=1)


def ledger_search(members_qs, text: str):
    text = (text or "").strip()
    return members_qs.filter(name__contains=text) if text else members_qs


def ledger_export(*, ledger_qs, year: int, user, request=None, filters=None) -> bytes:
    """The rows of ``ledger_qs`` (all of them) as .xlsx; the export is audit-logged.

    Phone numbers are written in full only where the user may see them (access.can_see_phone).
    """
    workbook = ExportWorkbook()
    sheet = workbook.sheet(_("Study hours %(year)s") % {"year": year})
    sheet.append(
        [
            _("Name"),
            _("Mobile"),
            _("Organisation"),
            _("Category"),
            _("Online lessons (hours)"),
            _("Group sessions (hours)"),
            _("Other recorded study (hours)"),
            _("Total (hours)"),
            _("Required (hours)"),
            _("Still missing (hours)"),
            _("Requirement met"),
        ]
    )
    count = 0
    full_phones = 0
    rows = ledger_qs.select_related("organization").only(
        "name", "phone", "position", "user_id", "organization__name", "organization__path"
    )
    for member in rows.iterator(chunk_size=2000):
        shown = access.can_see_phone(user, member)
        full_phones += shown
        sheet.append(
            [
                member.name,
                member.phone if shown else member.masked_phone,
                member.organization.name,
                member.get_position_display(),
                member.hours_lessons,
                member.hours_sessions,
                member.hours_records,
                member.hours_total,
                member.hours_required,
                member.hours_gap,
                _("No") if member.is_below else _("Yes"),
            ]
        )
        count += 1
    content = workbook.to_bytes()
    audit_event(
        event="ledger_export",
        obj=user,
        actor=user,
        request=request,
        rows=count,
        year=year,
        filters=filters or {},
        full_phones=bool(full_phones),
    )
    return content

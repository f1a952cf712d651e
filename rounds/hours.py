"""The yearly study-hours summary (``HoursSummary``): each member's hours per calendar year and
source, kept up to date in the same transaction as every write to its sources, so the ledger's
lists (a city of 300,000 members) read one row per member instead of summing three tables.

How it stays right: a write that changes a source names the (member, year) pairs it touched
and ``hours_summary_refresh`` recounts exactly those from the sources, under a lock on their
summary rows, inside the writer's transaction. Recounting (not adding deltas) makes a refresh
idempotent and order-free; the row lock makes two writers for one member queue, and the second
recounts what the first committed. Who calls it:

- model saves and deletes of ``Attendance``, ``StudyRecord``, ``LessonProgress``, and a
  ``Session``'s hours or a ``Sitting``'s start changing: receivers in rounds/signals.py (Django
  sends these inside the transaction of the save or delete, cascades included);
- writes Django sends no model signal for: ``check_ins_record``'s bulk insert (offline terminal
  sync), ``progress_report``'s conditional UPDATE (it sends ``courses.services.
  lesson_hours_earned`` inside its transaction: courses cannot import rounds), the demo's bulk
  inserts (``hours_summary_rebuild``).

``hours_summary_check`` compares every row of a year with a full recount from the sources;
``manage.py ledger_summary`` runs it, repairs with ``repair=True`` (audit-logged), and builds
the summary for existing data (migration rounds.0012 does the same once).
"""

from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from threading import local

from django.db import transaction
from django.db.models import Max, Min, Sum
from django.utils import timezone

from core.audit import audit_event
from courses.models import LessonProgress

from .models import Attendance, HoursSummary, StudyRecord, day_start

CHUNK = 500
ZERO = Decimal("0")
TENTH = Decimal("0.1")
FIELDS = ("lessons", "sessions", "records", "total")


def _tenth(value) -> Decimal:
    """A sum as the columns hold it: on SQLite sums of decimals come back as floats."""
    return Decimal(str(value or 0)).quantize(TENTH, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Hours:
    lessons: Decimal = ZERO
    sessions: Decimal = ZERO
    records: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.lessons + self.sessions + self.records

    def as_tuple(self):
        return (self.lessons, self.sessions, self.records, self.total)


NONE = Hours()


def year_of(moment) -> int | None:
    """The calendar year of a date, or of a moment in the deployment's time zone."""
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return timezone.localtime(moment).year
    return moment.year


def _bounds(year):
    return day_start(date(year, 1, 1)), day_start(date(year + 1, 1, 1))


def hours_recount(*, year: int, member_ids=None) -> dict[int, Hours]:
    """{member id: Hours} of ``year`` counted from the sources (only members with any), for
    ``member_ids`` or everyone: three grouped sums, the rules of rounds/ledger.py."""
    start, end = _bounds(year)
    lessons = LessonProgress.objects.filter(
        completed_at__isnull=False, completed_at__gte=start, completed_at__lt=end
    )
    sessions = Attendance.objects.filter(
        status__in=Attendance.ATTENDED, sitting__start__gte=start, sitting__start__lt=end
    )
    records = StudyRecord.objects.approved().filter(
        studied_on__gte=date(year, 1, 1), studied_on__lt=date(year + 1, 1, 1)
    )
    if member_ids is not None:
        lessons = lessons.filter(member_id__in=member_ids)
        sessions = sessions.filter(member_id__in=member_ids)
        records = records.filter(member_id__in=member_ids)
    found: dict[int, dict] = defaultdict(dict)
    for name, rows, field in (
        ("lessons", lessons, "hours_earned"),
        ("sessions", sessions, "sitting__session__hours"),
        ("records", records, "hours"),
    ):
        summed = rows.order_by().values("member_id").annotate(h=Sum(field))
        for row in summed.values_list("member_id", "h"):
            found[row[0]][name] = _tenth(row[1])
    return {member_id: Hours(**parts) for member_id, parts in found.items()}


def _chunks(items, size=CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


_batch = local()


@contextmanager
def hours_summary_batch():
    """Within the block (inside the caller's transaction), refreshes only collect their pairs;
    one set-based refresh runs at its end: a roll call of 200 marks recounts once, not 200
    times. Nothing runs when the block raises (its transaction is rolled back)."""
    if getattr(_batch, "pairs", None) is not None:  # already batching: the outer block flushes
        yield
        return
    _batch.pairs = set()
    try:
        yield
        pairs = _batch.pairs
    finally:
        _batch.pairs = None
    hours_summary_refresh(pairs=pairs)


def hours_summary_refresh(*, pairs) -> int:
    """Recount the summary rows of the (member id, year) ``pairs`` from the sources, in the
    caller's transaction (or one of its own); returns how many rows changed (0 inside
    ``hours_summary_batch``, which recounts at its end)."""
    collecting = getattr(_batch, "pairs", None)
    if collecting is not None:
        collecting.update(pairs)
        return 0
    by_year = defaultdict(set)
    for member_id, year in pairs:
        if member_id is not None and year is not None:
            by_year[int(year)].add(int(member_id))
    changed = 0
    with transaction.atomic():
        for year in sorted(by_year):
            for ids in _chunks(sorted(by_year[year])):
                changed += _refresh(year, ids)
    return changed


def _refresh(year: int, member_ids: list[int]) -> int:
    # Make sure each row exists, then lock them (in member order, so writers never deadlock):
    # a second writer for the same member waits here and recounts what the first committed.
    HoursSummary.objects.bulk_create(
        [HoursSummary(member_id=m, year=year) for m in member_ids], ignore_conflicts=True
    )
    rows = list(
        HoursSummary.objects.select_for_update()
        .filter(year=year, member_id__in=member_ids)
        .order_by("member_id")
    )
    counted = hours_recount(year=year, member_ids=member_ids)
    changed = []
    for row in rows:
        hours = counted.get(row.member_id, NONE)
        if tuple(getattr(row, f) for f in FIELDS) != hours.as_tuple():
            row.lessons, row.sessions, row.records, row.total = hours.as_tuple()
            changed.append(row)
    HoursSummary.objects.bulk_update(changed, FIELDS, batch_size=CHUNK)
    return len(changed)


@dataclass(frozen=True)
class Drift:
    member_id: int
    stored: tuple  # (lessons, sessions, records, total) as the row holds them
    counted: tuple  # the same, recounted from the sources


def hours_summary_check(*, year: int) -> list[Drift]:
    """Every member whose summary row of ``year`` differs from a full recount (a missing row
    counts as no hours)."""
    counted = hours_recount(year=year)
    stored = {
        row[0]: row[1:]
        for row in HoursSummary.objects.filter(year=year).values_list("member_id", *FIELDS)
    }
    drift = []
    for member_id in sorted(set(counted) | set(stored)):
        have = stored.get(member_id, NONE.as_tuple())
        want = counted.get(member_id, NONE)
        if tuple(have) != want.as_tuple():
            drift.append(Drift(member_id, tuple(have), want.as_tuple()))
    return drift


def hours_summary_repair(*, year: int, user=None) -> list[Drift]:
    """Recount the rows of ``year`` that drifted from the sources; audit-logged when any did.
    Returns what was found (and repaired)."""
    drift = hours_summary_check(year=year)
    if drift:
        with transaction.atomic():
            hours_summary_refresh(pairs=[(d.member_id, year) for d in drift])
            audit_event(
                event="ledger_summary_repaired",
                obj=HoursSummary.objects.filter(year=year).order_by("pk").first(),
                actor=user,
                year=year,
                member_ids=[d.member_id for d in drift][:1000],
                rows=len(drift),
            )
    return drift


def source_years() -> list[int]:
    """Every year any source has hours in (for building the summary of existing data)."""
    bounds = [
        LessonProgress.objects.filter(completed_at__isnull=False).aggregate(
            a=Min("completed_at"), b=Max("completed_at")
        ),
        Attendance.objects.filter(status__in=Attendance.ATTENDED).aggregate(
            a=Min("sitting__start"), b=Max("sitting__start")
        ),
        StudyRecord.objects.approved().aggregate(a=Min("studied_on"), b=Max("studied_on")),
    ]
    years = set()
    for bound in bounds:
        if bound["a"] is not None:
            years.update(range(year_of(bound["a"]), year_of(bound["b"]) + 1))
    return sorted(years)


def hours_summary_rebuild(*, years=None) -> int:
    """Build (or rebuild) the summary of ``years`` (default: every year with hours) from the
    sources, for data written without it (bulk inserts, existing databases). Returns the rows
    written."""
    written = 0
    for year in years or source_years():
        counted = hours_recount(year=year)
        with transaction.atomic():
            HoursSummary.objects.filter(year=year).delete()
            rows = [
                HoursSummary(
                    member_id=member_id,
                    year=year,
                    lessons=hours.lessons,
                    sessions=hours.sessions,
                    records=hours.records,
                    total=hours.total,
                )
                for member_id, hours in counted.items()
            ]
            HoursSummary.objects.bulk_create(rows, batch_size=2000)
        written += len(rows)
    return written

"""Build the yearly hours summary (rounds.HoursSummary) from the data already there: the same
three sums as rounds/hours.py, on the historical models. ``manage.py ledger_summary --all
--repair`` checks and repairs it afterwards."""

from collections import defaultdict
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal

from django.db import migrations
from django.db.models import Max, Min, Sum
from django.utils import timezone


def _start(year):
    return timezone.make_aware(datetime.combine(date(year, 1, 1), time.min))


def _years(*bounds):
    years = set()
    for low, high in bounds:
        if low is not None:
            years.update(range(_year(low), _year(high) + 1))
    return sorted(years)


def _year(value):
    return timezone.localtime(value).year if isinstance(value, datetime) else value.year


def build(apps, schema_editor):
    LessonProgress = apps.get_model("courses", "LessonProgress")
    Attendance = apps.get_model("rounds", "Attendance")
    StudyRecord = apps.get_model("rounds", "StudyRecord")
    HoursSummary = apps.get_model("rounds", "HoursSummary")
    lessons = LessonProgress.objects.filter(completed_at__isnull=False)
    sessions = Attendance.objects.filter(status__in=("present", "late"))
    records = StudyRecord.objects.filter(state="approved")
    years = _years(
        tuple(lessons.aggregate(a=Min("completed_at"), b=Max("completed_at")).values()),
        tuple(sessions.aggregate(a=Min("sitting__start"), b=Max("sitting__start")).values()),
        tuple(records.aggregate(a=Min("studied_on"), b=Max("studied_on")).values()),
    )
    tenth = Decimal("0.1")
    for year in years:
        start, end = _start(year), _start(year + 1)
        found = defaultdict(lambda: [Decimal("0")] * 3)
        for index, rows, field in (
            (0, lessons.filter(completed_at__gte=start, completed_at__lt=end), "hours_earned"),
            (
                1,
                sessions.filter(sitting__start__gte=start, sitting__start__lt=end),
                "sitting__session__hours",
            ),
            (2, records.filter(studied_on__year=year), "hours"),
        ):
            summed = rows.order_by().values("member_id").annotate(h=Sum(field))
            for member_id, hours in summed.values_list("member_id", "h"):
                found[member_id][index] = Decimal(str(hours or 0)).quantize(
                    tenth, rounding=ROUND_HALF_UP
                )
        HoursSummary.objects.bulk_create(
            [
                HoursSummary(
                    member_id=member_id,
                    year=year,
                    lessons=parts[0],
                    sessions=parts[1],
                    records=parts[2],
                    total=sum(parts),
                )
                for member_id, parts in found.items()
            ],
            batch_size=2000,
            ignore_conflicts=True,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0010_live_streams"),
        ("rounds", "0011_hours_summary"),
    ]

    operations = [migrations.RunPython(build, migrations.RunPython.noop)]

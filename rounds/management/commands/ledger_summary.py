"""Check the yearly hours summary against a full recount from its sources, and repair it."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from core.planner import planner_statistics_refresh
from rounds.hours import hours_summary_check, hours_summary_repair, source_years

SHOWN = 20


def _figures(figures) -> str:
    """lessons / sessions / records = total."""
    lessons, sessions, records, total = (f"{value:g}" for value in figures)
    return f"{lessons} / {sessions} / {records} = {total}"


class Command(BaseCommand):
    help = (
        "Compare the yearly study-hours summary with a recount from lessons, attendance and "
        "approved study records; with --repair, rewrite the rows that differ (audit-logged). "
        "Exits with 1 while drift remains. --all --repair also builds the summary of data "
        "written before it existed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--year", type=int, action="append", help="a year (repeatable)")
        parser.add_argument("--all", action="store_true", help="every year with study hours")
        parser.add_argument("--repair", action="store_true", help="rewrite what drifted")

    def handle(self, *args, year=None, all=False, repair=False, **options):
        if all:
            years = sorted(set(source_years()) | set(year or []))
        else:
            years = year or [timezone.localdate().year]
        if any(y < 1900 or y > 9999 for y in years):
            raise CommandError(_("Give a year such as 2026."))
        remaining = repaired = 0
        for each in years:
            if repair:
                drift = hours_summary_repair(year=each)
                left = hours_summary_check(year=each) if drift else []
            else:
                drift = left = hours_summary_check(year=each)
            for found in drift[:SHOWN]:
                self.stdout.write(
                    _("%(year)s member %(member)s: summary %(stored)s, sources %(counted)s")
                    % {
                        "year": each,
                        "member": found.member_id,
                        "stored": _figures(found.stored),
                        "counted": _figures(found.counted),
                    }
                )
            if repair and drift:
                message = _("%(year)s: %(n)d rows drifted; repaired.")
            elif drift:
                message = _("%(year)s: %(n)d rows drifted (run with --repair).")
            else:
                message = _("%(year)s: the summary matches its sources.")
            self.stdout.write(message % {"year": each, "n": len(drift)})
            remaining += len(left)
            repaired += len(drift) if repair else 0
        if repaired:
            planner_statistics_refresh()  # a rebuild is a bulk load (core/planner.py)
        if remaining:
            raise SystemExit(1)

"""Run the daily reminder job now, or make sure it is scheduled (``--schedule``)."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from rounds.reminders import reminders_daily
from rounds.tasks import reminders_daily_ensure_scheduled, reminders_daily_pending


class Command(BaseCommand):
    help = (
        "Close rounds past their closing date, send automatic reminders before deadlines and "
        "the secretaries' digests. With --schedule, only make sure the daily task is queued."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--schedule",
            action="store_true",
            help="queue the daily task (if it is not queued already) instead of running now",
        )

    def handle(self, *args, schedule=False, **options):
        if schedule:
            result = reminders_daily_ensure_scheduled()
            if result is not None:
                run_after = timezone.localtime(result.task.run_after)
                self.stdout.write(f"Daily reminders scheduled for {run_after:%Y-%m-%d %H:%M}.")
            elif reminders_daily_pending():
                self.stdout.write("Daily reminders are already scheduled.")
            else:
                self.stdout.write("The task backend cannot defer work: nothing was scheduled.")
            return
        summary = reminders_daily()
        if summary["quiet"]:
            self.stdout.write("Quiet hours: no reminders or digests were sent.")
        self.stdout.write(
            f"rounds closed {summary['closed']}, members reminded {summary['reminded']} "
            f"(in {summary['rounds']} rounds), already reminded today {summary['already']}, "
            f"emails {summary['emails']}, text messages {summary['sms']}, "
            f"digests {summary['digests']}"
        )

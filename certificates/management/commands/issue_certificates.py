import time

from django.core.management.base import BaseCommand, CommandError

from certificates import services
from certificates.models import Certificate
from rounds.models import Round


class Command(BaseCommand):
    help = (
        "Issue a round's completion certificates to every member who completed it and has none "
        "yet (issuing again issues only what is new), then render their PDFs — here, "
        "synchronously, with progress; the admin and a closed round do the same in the "
        "background."
    )

    def add_arguments(self, parser):
        parser.add_argument("round_id", type=int)
        parser.add_argument(
            "--no-render", action="store_true", help="issue only; leave the PDFs to the worker"
        )

    def handle(self, *args, round_id, no_render=False, **options):
        training_round = Round.objects.filter(pk=round_id).first()
        if training_round is None:
            raise CommandError(f"No round with id {round_id}.")
        if training_round.state == Round.State.DRAFT:
            raise CommandError(f"Round {round_id} is a draft: it has no certificates.")
        self.stdout.write(f"{training_round.title} (round {round_id}, {training_round.state})")
        started = time.monotonic()
        result = services.certificates_issue(
            training_round=training_round,
            render=False,
            progress=lambda count: self.stdout.write(f"  issued {count}"),
        )
        if result.count:
            self.stdout.write(f"Issued {result.count}: {result.first} … {result.last}")
        else:
            self.stdout.write("Nothing new to issue.")
        if no_render:
            return
        certificates = Certificate.objects.filter(round=training_round, kind="completion")
        started_rendering = time.monotonic()

        def progress(done, total):
            if done % max(1, min(500, total // 10)) == 0 or done == total:
                elapsed = time.monotonic() - started_rendering
                rate = done / elapsed if elapsed else 0
                self.stdout.write(f"  rendered {done}/{total} ({rate:.1f}/s)")

        rendered = services.certificates_render(certificates=certificates, progress=progress)
        self.stdout.write(
            f"Rendered {rendered} PDF(s); done in {time.monotonic() - started:.1f} s."
        )

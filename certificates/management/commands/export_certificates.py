from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from certificates import services
from members.models import Organization
from rounds.models import Round


class Command(BaseCommand):
    help = (
        "Write the ZIP a secretary downloads for a round: one PDF per member "
        "(<number>-<name>.pdf) and one merged PDF for printing, for the whole round or for an "
        "organisation's subtree (--org CODE). Missing PDFs are rendered first."
    )

    def add_arguments(self, parser):
        parser.add_argument("round_id", type=int)
        parser.add_argument("--org", help="organisation code (default: the whole round)")
        parser.add_argument("-o", "--output", required=True, help="the ZIP file to write")

    def handle(self, *args, round_id, org=None, output, **options):
        training_round = Round.objects.filter(pk=round_id).first()
        if training_round is None:
            raise CommandError(f"No round with id {round_id}.")
        organization = None
        if org:
            organization = Organization.objects.filter(code=org).first()
            if organization is None:
                raise CommandError(f"No organisation with code {org!r}.")
        certificates = services.round_certificates(
            training_round=training_round, organization=organization
        )
        if not certificates.exists():
            raise CommandError("No valid certificates for this round here: nothing to export.")
        target = Path(output)
        partial = target.with_name(target.name + ".part")
        try:
            with partial.open("wb") as handle:
                count = services.certificates_zip_write(
                    training_round=training_round,
                    organization=organization,
                    target=handle,
                    progress=lambda done, total: self.stdout.write(f"  rendered {done}/{total}"),
                )
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        self.stdout.write(f"Wrote {count} certificate(s) to {target}.")

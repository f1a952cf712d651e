from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core import backup

from .backup import counts_line, media_line


class Command(BaseCommand):
    help = (
        "Restore a backup made by the backup command into this instance. The database must be "
        "empty (no tables): a restore never writes over existing data. Everything in the "
        "archive is checked before anything is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("archive", help="the .tar file the backup command wrote")
        parser.add_argument(
            "--force",
            action="store_true",
            help=(
                "replace media files of the same names already in the storages; it never "
                "allows restoring into a database that is not empty"
            ),
        )

    def handle(self, *args, archive, force=False, **options):
        try:
            result = backup.backup_restore(archive=archive, force=force, log=self.stdout.write)
        except backup.BackupError as error:
            raise CommandError(str(error)) from None
        created = timezone.localtime(datetime.fromisoformat(result.created_at))
        self.stdout.write(
            self.style.SUCCESS(
                _("Restored the backup made at %(created)s.")
                % {"created": created.strftime("%Y-%m-%d %H:%M:%S")}
            )
        )
        self.stdout.write(
            _("Database (%(vendor)s): %(counts)s.")
            % {"vendor": result.vendor, "counts": counts_line(result.counts)}
        )
        self.stdout.write(media_line(result.media_files, result.media_bytes))
        for warning in result.warnings:
            self.stdout.write(self.style.WARNING(warning))
        if result.unapplied:
            self.stdout.write(
                self.style.WARNING(
                    ngettext(
                        "This code has %(count)d migration the backup had not applied: "
                        "run “manage.py migrate” next.",
                        "This code has %(count)d migrations the backup had not applied: "
                        "run “manage.py migrate” next.",
                        len(result.unapplied),
                    )
                    % {"count": len(result.unapplied)}
                )
            )

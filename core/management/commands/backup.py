from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core import backup
from core.signals import backup_created


def counts_line(counts):
    """'Party members: 12; lesson progress: 30; …' from the manifest's counts."""
    names = {
        model._meta.label_lower: model._meta.verbose_name_plural for model in backup.key_models()
    }
    return "; ".join(f"{names.get(label, label)}: {count}" for label, count in counts.items())


def media_line(files, size):
    return ngettext(
        "Media: %(count)d file, %(size)s.", "Media: %(count)d files, %(size)s.", files
    ) % {"count": files, "size": filesizeformat(size)}


class Command(BaseCommand):
    help = (
        "Back up the database (SQLite: online backup API; PostgreSQL: pg_dump) and every file "
        "of the default and video storages into one tar file."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "-o",
            "--output",
            required=True,
            help="the .tar file to write, or a directory to write a time-stamped file in",
        )

    def handle(self, *args, output, **options):
        try:
            result = backup.backup_create(output=output)
        except backup.BackupError as error:
            raise CommandError(str(error)) from None
        # A copy of every member's data left the database: the domain apps put that on record
        # (members.signals writes the audit record on the organisation tree's root).
        backup_created.send(sender=self.__class__, result=result)
        self.stdout.write(
            self.style.SUCCESS(_("Backup written to %(path)s.") % {"path": result.path})
        )
        self.stdout.write(
            _("Database (%(vendor)s): %(counts)s.")
            % {"vendor": result.vendor, "counts": counts_line(result.counts)}
        )
        self.stdout.write(media_line(result.media_files, result.media_bytes))

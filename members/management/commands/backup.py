from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from members import backup
from members.audit import audit_event
from members.models import Organization


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
        root = Organization.get_first_root_node()
        if root is not None:
            # A copy of every member's data left the database: that is on record.
            audit_event(
                event="backup_created",
                obj=root,
                path=str(result.path),
                vendor=result.vendor,
                counts=result.counts,
                media_files=result.media_files,
            )
        self.stdout.write(
            self.style.SUCCESS(_("Backup written to %(path)s.") % {"path": result.path})
        )
        self.stdout.write(
            _("Database (%(vendor)s): %(counts)s.")
            % {"vendor": result.vendor, "counts": counts_line(result.counts)}
        )
        self.stdout.write(media_line(result.media_files, result.media_bytes))

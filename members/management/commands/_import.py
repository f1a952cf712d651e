"""Shared body of import_orgs and import_roster: same checks as the web, non-zero exit on errors."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.tabular import TableError
from members import importing


class ImportCommand(BaseCommand):
    check_import = None
    apply_import = None

    def add_arguments(self, parser):
        parser.add_argument("file", help=".xlsx or .csv file")
        parser.add_argument(
            "--dry-run", action="store_true", help="check every row and report; change nothing"
        )

    def handle(self, *args, file, dry_run=False, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            record = type(self).check_import(data=path.read_bytes(), file_name=path.name)
        except TableError as error:
            raise CommandError(str(error)) from None
        report = record.report
        self.print_report(report)
        if report["errors"]:
            raise CommandError(
                f"{report['counts']['errors']} rows have errors; nothing was imported."
            )
        if dry_run:
            self.stdout.write("Dry run: nothing was changed.")
            return
        try:
            report = type(self).apply_import(spreadsheet_import=record)
        except importing.ImportRejected as rejected:
            self.print_report(rejected.report)
            raise CommandError(
                "The data changed during the import; nothing was imported."
            ) from None
        self.stdout.write(self.style.SUCCESS("Imported."))

    def print_report(self, report):
        counts = report["counts"]
        self.stdout.write(
            f"new {counts['new']}, changed {counts['changed']}, unchanged {counts['unchanged']}, "
            f"rows with errors {counts['errors']}"
        )
        for error in report["errors"]:
            self.stdout.write(
                f"  row {error['row']} [{error['column']}] {error['value']!r}: {error['message']}"
            )
        missing = report.get("missing") or []
        if missing:
            self.stdout.write(
                f"{len(missing)} active members of these organisations are not in the file "
                "(not changed; mark them inactive on the import page if they left):"
            )
            for member in missing:
                self.stdout.write(f"  {member['organization']} {member['name']} {member['phone']}")

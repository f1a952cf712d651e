from django.core.management.base import BaseCommand, CommandError

from core.planner import planner_statistics_refresh
from members.models import Organization
from rounds.counters import counters_check, counters_repair
from rounds.models import Round


class Command(BaseCommand):
    help = (
        "Check a round's coverage counters against a full live recount; with --repair rebuild "
        "them (audit-logged). Exits 1 when drift is found and not repaired."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--round", type=int, dest="round_id", help="the round's id")
        which.add_argument("--all", action="store_true", help="every round")
        parser.add_argument("--repair", action="store_true", help="rebuild rows that drifted")

    def handle(self, *args, round_id=None, repair=False, **options):
        if options["all"]:
            rounds = list(Round.objects.order_by("pk"))
        else:
            rounds = list(Round.objects.filter(pk=round_id))
            if not rounds:
                raise CommandError(f"No round with id {round_id}.")
        unrepaired = repaired = 0
        for training_round in rounds:
            drift = counters_check(training_round=training_round)
            label = f"round {training_round.pk} ({training_round.title})"
            if not drift:
                self.stdout.write(f"{label}: counters match the live count.")
                continue
            codes = dict(
                Organization.objects.filter(pk__in={row[0] for row in drift}).values_list(
                    "pk", "code"
                )
            )
            self.stdout.write(f"{label}: {len(drift)} counter rows differ from the live count:")
            for organization_id, position, stored, live, kind in drift[:50]:
                self.stdout.write(
                    f"  {codes.get(organization_id, organization_id)} "
                    f"[{position or 'all positions'}, {kind}]: stored "
                    f"{stored.as_dict() if stored else '-'}, live {live.as_dict() if live else '-'}"
                )
            if len(drift) > 50:
                self.stdout.write(f"  … and {len(drift) - 50} more")
            if repair:
                counters_repair(training_round=training_round, drift=drift)
                self.stdout.write(f"{label}: repaired.")
                repaired += 1
            else:
                unrepaired += 1
        if repaired:
            planner_statistics_refresh()  # a rebuild is a bulk load (core/planner.py)
        if unrepaired:
            self.stderr.write(
                f"{unrepaired} round(s) with drift; run again with --repair to rebuild them."
            )
            raise SystemExit(1)

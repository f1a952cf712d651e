import json

from django.core.management.base import BaseCommand, CommandError

from members.models import Organization
from rounds.coverage import coverage_tree
from rounds.models import Round

COLUMNS = (
    ("in_scope", "应参"),
    ("completed", "已完成"),
    ("in_progress", "进行中"),
    ("on_leave", "请假"),
    ("not_started", "未开始"),
    ("exempt", "免参"),
)


class Command(BaseCommand):
    help = (
        "Print a round's coverage for an organisation and its subtree (the coverage page's "
        "figures), as an indented table or as JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("round_id", type=int)
        parser.add_argument("--org", help="organisation code (default: the round's scope)")
        parser.add_argument("--depth", type=int, default=None, help="levels below --org to show")
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--domain", default="", help="only organisations of this domain")
        parser.add_argument("--position", default="", help="only members of this position")

    def handle(self, *args, round_id, org=None, depth=None, **options):
        training_round = Round.objects.filter(pk=round_id).first()
        if training_round is None:
            raise CommandError(f"No round with id {round_id}.")
        if org:
            node = Organization.objects.filter(code=org).first()
            if node is None:
                raise CommandError(f"No organisation with code {org!r}.")
            nodes = [node]
        else:
            nodes = list(training_round.scope_roots.order_by("path"))
        trees = [
            coverage_tree(
                training_round=training_round,
                node=node,
                depth=depth,
                domain=options["domain"],
                position=options["position"],
            )
            for node in nodes
        ]
        if options["json"]:
            payload = {
                "round": {
                    "id": training_round.pk,
                    "title": training_round.title,
                    "kind": training_round.kind,
                },
                "state": training_round.state,
                "organizations": [self._as_dict(tree) for tree in trees],
            }
            self.stdout.write(_json_dumps(payload))
            return
        self.stdout.write(
            f"{training_round.title} ({training_round.get_kind_display()}, "
            f"{training_round.get_state_display()})"
        )
        header = "  ".join(label for _k, label in COLUMNS) + "  覆盖率"
        self.stdout.write(f"{'组织':<30}{header}")
        for tree in trees:
            self._print(tree, 0)

    def _as_dict(self, row):
        figures = row.figures
        return {
            "code": row.organization.code,
            "name": row.organization.name,
            **figures.as_dict(),
            "coverage": figures.percent,
            "children": [self._as_dict(child) for child in row.children],
        }

    def _print(self, row, level):
        figures = row.figures.as_dict()
        percent = row.figures.percent
        label = f"{'  ' * level}{row.organization.name} ({row.organization.code})"
        cells = "  ".join(f"{figures[key]:>{len(title) * 2}}" for key, title in COLUMNS)
        coverage = f"{percent:.1f}%" if percent is not None else "—"
        self.stdout.write(f"{label:<30}{cells}  {coverage:>6}")
        for child in row.children:
            self._print(child, level + 1)


def _json_dumps(payload):
    return json.dumps(payload, ensure_ascii=False, indent=2)

"""Coverage (覆盖率): who in scope is done, per node of the organisation tree.

A node's figures are read from the round's coverage counters (``rounds.counters``), kept in the
same transaction as every write that moves them, so transfers and new members show at once: one
row per organisation (and per position) with the figures of the members who count directly
there, and one with its whole subtree's. A node's table is a read of its own subtree row and its
children's, whatever the number of members or organisations.

The live count (members in scope joined to their ``Participation`` row in the round; a missing
row means not started) remains the oracle the counters are checked against
(``coverage_children_live``), and answers the one filter counters cannot: the organisation
domain, which is the domain of the member's OWN organisation even for those counted where they
are posted.
"""

from dataclasses import dataclass, field

from django.db.models import Count, FilteredRelation, Q, Value
from django.db.models.functions import Coalesce, Substr

from members.models import Member, Organization, path_prefix_q

from .models import CoverageCounter, CoverageRollup, CoverageSnapshot, Participation, Round

P = Participation.Status
COUNTED = ("completed", "in_progress", "on_leave", "exempt")
FIELDS = ("in_scope", *COUNTED)
STATUS_OF = {
    "completed": P.COMPLETED,
    "in_progress": P.IN_PROGRESS,
    "on_leave": P.LEAVE,
    "exempt": P.EXEMPT,
}
# What a secretary is chasing: everybody in scope who is neither done nor exempt.
MISSING = (P.NOT_STARTED, P.IN_PROGRESS, P.LEAVE)


@dataclass
class Figures:
    in_scope: int = 0
    completed: int = 0
    in_progress: int = 0
    on_leave: int = 0
    exempt: int = 0

    @property
    def not_started(self):
        return self.in_scope - self.completed - self.in_progress - self.on_leave - self.exempt

    @property
    def counted(self):
        """The denominator: in scope, less the exempt."""
        return self.in_scope - self.exempt

    @property
    def coverage(self):
        """Completed / (in scope − exempt), or None when nobody counts."""
        return self.completed / self.counted if self.counted else None

    @property
    def percent(self):
        value = self.coverage
        return None if value is None else round(value * 100, 1)

    def add(self, other: "Figures"):
        for name in ("in_scope", *COUNTED):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self):
        data = {name: getattr(self, name) for name in ("in_scope", *COUNTED)}
        data["not_started"] = self.not_started
        return data

    @classmethod
    def from_snapshot(cls, snapshot: CoverageSnapshot):
        return cls(**{name: getattr(snapshot, name) for name in ("in_scope", *COUNTED)})


@dataclass
class Row:
    organization: Organization | None
    figures: Figures
    snapshot: Figures | None = None
    direct: bool = False  # members attached to the node itself rather than a child
    children: list = field(default_factory=list)

    @property
    def corrected(self):
        """True when live figures differ from the frozen snapshot."""
        return self.snapshot is not None and self.snapshot.as_dict() != self.figures.as_dict()


def members_in_node(training_round: Round, node: Organization, *, domain="", position=""):
    """Members the round counts within ``node``'s subtree (at home or posted there),
    optionally filtered by their own organisation's domain and their own position."""
    return _filtered(training_round.members_at(node), domain=domain, position=position)


def _filtered(members, *, domain="", position=""):
    """The coverage page's filters: the member's own organisation's domain and position."""
    if domain:
        members = members.filter(organization__domain=domain)
    if position:
        members = members.filter(position=position)
    return members


def participation(training_round: Round) -> FilteredRelation:
    """Members' ``Participation`` row in ``training_round`` (none: not started), as ``rp``."""
    return FilteredRelation("participations", condition=Q(participations__round=training_round))


def with_status(members, training_round: Round, lessons_required: int = 0):
    """Annotate each member with their round status: ``round_status`` (``not_started`` when
    there is no row), ``round_method``, ``round_done``, ``round_required``, ``round_note``."""
    return members.alias(rp=participation(training_round)).annotate(
        round_status=Coalesce("rp__status", Value(P.NOT_STARTED)),
        round_method=Coalesce("rp__method", Value("")),
        round_done=Coalesce("rp__lessons_done", Value(0)),
        round_required=Coalesce("rp__lessons_required", Value(lessons_required)),
        round_note=Coalesce("rp__note", Value("")),
    )


def _posted(training_round: Round, node: Organization, *, domain="", position=""):
    """{member id: the path they count at} for those in scope within ``node`` only through
    a posting, with their filters applied: few, so read and counted in Python."""
    placed = training_round.posted_members_in_scope(node)
    if placed and (domain or position):
        kept = _filtered(
            Member.objects.filter(pk__in=list(placed)), domain=domain, position=position
        )
        placed = {pk: placed[pk] for pk in kept.values_list("pk", flat=True)}
    return placed


def _add_posted(by_key: dict, training_round: Round, placed: dict, key_of) -> None:
    """Add the posted members ``placed`` ({id: path}) to ``by_key`` under ``key_of(path)``."""
    if not placed:
        return
    statuses = dict(
        Participation.objects.filter(round=training_round, member_id__in=list(placed)).values_list(
            "member_id", "status"
        )
    )
    for member_id, path in placed.items():
        figures = by_key.setdefault(key_of(path), Figures())
        figures.in_scope += 1
        for name, status in STATUS_OF.items():
            if statuses.get(member_id) == status:
                setattr(figures, name, getattr(figures, name) + 1)


def _home_in_node(training_round, node, *, domain="", position=""):
    members = training_round.home_members_in_scope().filter(
        path_prefix_q(node.path, "organization__path")
    )
    return _filtered(members, domain=domain, position=position)


def _aggregates():
    return {
        "in_scope": Count("pk"),
        **{name: Count("pk", filter=Q(rp__status=status)) for name, status in STATUS_OF.items()},
    }


def figures_of(members, training_round: Round) -> Figures:
    """The figures of ``members`` (already limited to the round's scope) in one query."""
    return Figures(**members.alias(rp=participation(training_round)).aggregate(**_aggregates()))


def _grouped(members, training_round, key, key_expr=None):
    qs = members.alias(rp=participation(training_round))
    if key_expr is not None:
        qs = qs.annotate(**{key: key_expr})
    return qs.values(key).annotate(**_aggregates()).order_by()


@dataclass(frozen=True, slots=True)
class NodeCoverage:
    """A node's figures (``head``) and one row per child that has members in scope."""

    head: Row
    rows: list[Row]


def _counters(training_round: Round, node: Organization, position=""):
    """The round's counter rows within ``node``'s subtree, for one position ("": all)."""
    return CoverageCounter.objects.filter(
        path_prefix_q(node.path, "organization__path"),
        round=training_round,
        position=position or CoverageCounter.ALL_POSITIONS,
    )


def _figures(row) -> Figures:
    """Figures from a values() dict or a counter row."""
    if isinstance(row, dict):
        return Figures(**{k: row[k] or 0 for k in FIELDS})
    return Figures(**{k: getattr(row, k) for k in FIELDS})


def coverage_children(
    *, training_round: Round, node: Organization, domain="", position=""
) -> NodeCoverage:
    """The node's figures and one row per child that has members in scope.

    Two queries, whatever the size of the tree: the subtree rows of the node and of its
    children (``CoverageRollup``, by parent), and the node's own counter row (the members
    attached to it directly). Filtered by domain: counted live (``coverage_children_live``).
    """
    if domain:
        return coverage_children_live(
            training_round=training_round, node=node, domain=domain, position=position
        )
    position = position or CoverageCounter.ALL_POSITIONS
    rows = [
        Row(rollup.organization, _figures(rollup))
        for rollup in CoverageRollup.objects.filter(
            round=training_round, parent=node, position=position
        )
        .select_related("organization")
        .order_by("organization__path")
    ]
    # The node's subtree total and its direct row in one statement; each side reads its
    # table's unique index (an OR of the two conditions would read the round's every row).
    mine = [
        table.objects.filter(round=training_round, organization=node, position=position)
        .annotate(kind=Value(kind))
        .values(*FIELDS, "kind")
        for kind, table in (("subtree", CoverageRollup), ("direct", CoverageCounter))
    ]
    total = Figures()
    for row in mine[0].union(mine[1], all=True):
        if row["kind"] == "subtree":
            total = _figures(row)
        else:
            rows.insert(0, Row(node, _figures(row), direct=True))
    head = Row(node, total)
    if training_round.is_closed and not domain and position == CoverageCounter.ALL_POSITIONS:
        _attach_snapshots(training_round, [head, *rows])
    return NodeCoverage(head=head, rows=rows)


def coverage_children_live(
    *, training_round: Round, node: Organization, domain="", position=""
) -> NodeCoverage:
    """``coverage_children`` counted live from the roster: the members in scope joined to
    their participation, one GROUP BY on the child-level path prefix (the counters' oracle)."""
    members = _home_in_node(training_round, node, domain=domain, position=position)
    width = (node.depth + 1) * Organization.steplen
    grouped = _grouped(members, training_round, "prefix", Substr("organization__path", 1, width))
    by_prefix = {
        row["prefix"]: Figures(**{k: row[k] for k in ("in_scope", *COUNTED)}) for row in grouped
    }
    placed = _posted(training_round, node, domain=domain, position=position)
    _add_posted(by_prefix, training_round, placed, lambda path: path[:width])
    return _node_coverage(training_round, node, by_prefix, domain=domain, position=position)


def _node_coverage(training_round, node, by_prefix, *, domain, position) -> NodeCoverage:
    total = Figures()
    for figures in by_prefix.values():
        total.add(figures)
    rows = []
    if by_prefix:
        children = Organization.objects.filter(
            path__in=list(by_prefix), depth=node.depth + 1
        ).order_by("path")
        for child in children:
            rows.append(Row(child, by_prefix[child.path]))
        if node.path in by_prefix:
            rows.insert(0, Row(node, by_prefix[node.path], direct=True))
    head = Row(node, total)
    if training_round.is_closed and not domain and not position:
        _attach_snapshots(training_round, [head, *rows])
    return NodeCoverage(head=head, rows=rows)


def _attach_snapshots(training_round, rows):
    wanted = [row.organization.pk for row in rows if not row.direct]
    snapshots = {
        s.organization_id: Figures.from_snapshot(s)
        for s in CoverageSnapshot.objects.filter(round=training_round, organization_id__in=wanted)
    }
    for row in rows:
        if not row.direct:
            row.snapshot = snapshots.get(row.organization.pk, Figures())


def coverage_by_organization(*, training_round: Round) -> dict[int, dict]:
    """Figures for every node that has members in scope below it, for the quarter-end snapshot:
    the round's subtree rows, as they are."""
    return {
        row["organization_id"]: _figures(row).as_dict()
        for row in CoverageRollup.objects.filter(
            round=training_round, position=CoverageCounter.ALL_POSITIONS
        ).values("organization_id", *FIELDS)
    }


def coverage_tree(
    *, training_round: Round, node: Organization, depth: int | None = None, domain="", position=""
) -> Row:
    """The node and its descendants (down to ``depth`` levels) as nested rows: for the command.
    From the counter rows; filtered by domain, counted live."""
    if domain:
        members = _home_in_node(training_round, node, domain=domain, position=position)
        by_org = {
            row["organization__path"]: Figures(**{k: row[k] for k in ("in_scope", *COUNTED)})
            for row in _grouped(members, training_round, "organization__path")
        }
        placed = _posted(training_round, node, domain=domain, position=position)
        _add_posted(by_org, training_round, placed, str)
    else:
        by_org = {
            row["organization__path"]: _figures(row)
            for row in _counters(training_round, node, position).values(
                "organization__path", *("in_scope", *COUNTED)
            )
        }
    steplen = Organization.steplen
    limit = None if depth is None else len(node.path) + depth * steplen
    by_path: dict[str, Figures] = {}
    for path, figures in by_org.items():
        for end in range(len(node.path), len(path) + 1, steplen):
            if limit is None or end <= limit:
                by_path.setdefault(path[:end], Figures()).add(figures)
    organizations = {
        o.path: o for o in Organization.objects.filter(path__in=list(by_path)).order_by("path")
    }
    rows = {path: Row(org, by_path[path]) for path, org in organizations.items()}
    head = rows.get(node.path, Row(node, Figures()))
    for path, row in rows.items():
        if path != node.path:
            parent = rows.get(path[:-steplen])
            if parent is not None:
                parent.children.append(row)
    return head

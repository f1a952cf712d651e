"""Coverage counters: each round's figures per organisation, kept as rows.

Two kinds of row, both per round, organisation and position ("" = all positions together):

- ``CoverageCounter``: the figures of the members who count DIRECTLY at one organisation (at
  home, or at the organisation they are posted to);
- ``CoverageRollup``: the sum of the counter rows of the organisation's whole subtree, with the
  organisation's parent beside it, so any node's coverage is a read of its own row and its
  children's (``rounds.coverage``), whatever the number of members or organisations.

How they stay right: every write that can move a member's figure recounts, in the same
transaction, the DIRECT rows of the organisations it touches — a recount of a few dozen members,
not a delta, so a rule about who is in scope lives in one place (``Round``'s scope methods) —
and adds the difference between the new and the stored direct rows to the subtree rows of
those organisations and every ancestor:

- a status change (``participation_refresh``): the member's own organisation and their postings';
- a member saved (moved, deactivated, position, status, categories) or deleted: their old and new
  organisation and their postings'; a roster import or an organisation moved in the tree sends
  ``members.importing.roster_changed`` with the organisations it touched (or None: all);
- a posting created, changed or deleted: its old and new organisation, the member's own, and the
  member's other postings';
- an organisation's domain changed: the rounds that filter by domain, in full; an organisation
  moved in the tree: every round, in full (one with members or postings cannot be deleted);
- a round's scope (its roots, statuses, positions, domains, categories, dates) changed: the round
  in full. Closing a round refreshes every participation, which recounts as above.

A recount first locks the organisation rows it recounts AND their ancestors (``FOR NO KEY
UPDATE``: inserting a member there still works), in path order, so the root comes first, then
reads: under READ COMMITTED a second writer in the same tree waits at the root, and its read sees
the first one's commit; no two writers can hold each other's rows, so they cannot deadlock.
Writers therefore take turns city-wide, for the few milliseconds a recount lasts; a status
change is a recount of one organisation. SQLite has one writer at a time anyway. A full recount
(a round's scope changed, more than ``WHOLE_ROUND_OVER`` organisations) rebuilds both kinds of
row from the roster.

``counters_check`` compares a round's rows of both kinds with a full live recount (the oracle);
``manage.py coverage_counters`` reports drift and repairs it.
"""

import logging
from collections import defaultdict

from django.db import transaction
from django.db.models import Q

from core.audit import audit_event
from members.models import Member, Organization, Posting

from .coverage import FIELDS, STATUS_OF, Figures, _aggregates, _figures, participation
from .models import CoverageCounter, CoverageRollup, Participation, Round

logger = logging.getLogger(__name__)

ALL = CoverageCounter.ALL_POSITIONS
# Beyond this many organisations a recount reads the whole round (one GROUP BY) instead.
WHOLE_ROUND_OVER = 500
# The fields of a round that decide who is in scope (besides its roots).
ROUND_SCOPE_FIELDS = (
    "statuses",
    "positions",
    "new_in_position_months",
    "domains",
    "categories",
    "opens_on",
    "closes_on",
)
# The fields of a member that decide whether, and where, they count.
MEMBER_SCOPE_FIELDS = (
    "organization_id",
    "status",
    "position",
    "position_since",
    "activity_organization_id",
    "is_retired",
    "limited_mobility",
    "is_active",
)


# --- The live count (the oracle) ---------------------------------------------------------------


def _posted_placements(training_round, roots, member_ids=None, organization_ids=None):
    """{member id: organisation id} for those in scope only through a posting, counted at the
    organisation they are posted to (the first by path), as ``Round.posted_members_in_scope``.
    ``organization_ids``: only those counted at one of these."""
    postings = training_round.postings_in_scope(roots)
    if organization_ids is not None:
        candidates = set(
            postings.filter(organization_id__in=organization_ids).values_list(
                "member_id", flat=True
            )
        )
        if not candidates:
            return {}
        postings = postings.filter(member_id__in=candidates)
    elif member_ids is not None:
        postings = postings.filter(member_id__in=member_ids)
    placed = {}
    for member_id, organization_id in postings.values_list("member_id", "organization_id").order_by(
        "organization__path"
    ):
        placed.setdefault(member_id, organization_id)
    if not placed:
        return {}
    ids = list(placed)
    at_home = set()
    for start in range(0, len(ids), 500):
        at_home.update(
            Member.objects.filter(
                training_round._home_q(roots), pk__in=ids[start : start + 500]
            ).values_list("pk", flat=True)
        )
    placed = {m: o for m, o in placed.items() if m not in at_home}
    if organization_ids is not None:
        wanted = set(organization_ids)
        placed = {m: o for m, o in placed.items() if o in wanted}
    return placed


def counters_live(*, training_round: Round, organization_ids=None) -> dict:
    """{(organisation id, position): Figures} counted live from the roster and participation:
    what the rows must hold (``position=""``: all positions). ``organization_ids``: only
    these organisations' rows."""
    roots = list(training_round.scope_roots.all())
    if not roots:
        return {}
    members = training_round.home_members_in_scope()
    if organization_ids is not None:
        members = members.filter(organization_id__in=list(organization_ids))
    grouped = (
        members.alias(rp=participation(training_round))
        .values("organization_id", "position")
        .annotate(**_aggregates())
        .order_by()
    )
    result: dict = defaultdict(Figures)
    for row in grouped:
        figures = Figures(**{k: row[k] for k in FIELDS})
        result[(row["organization_id"], row["position"])].add(figures)
        result[(row["organization_id"], ALL)].add(figures)
    placed = _posted_placements(
        training_round,
        roots,
        organization_ids=None if organization_ids is None else list(organization_ids),
    )
    if placed:
        ids = list(placed)
        statuses, positions = {}, {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            statuses.update(
                Participation.objects.filter(round=training_round, member_id__in=chunk).values_list(
                    "member_id", "status"
                )
            )
            positions.update(Member.objects.filter(pk__in=chunk).values_list("pk", "position"))
        for member_id, organization_id in placed.items():
            one = Figures(in_scope=1)
            for name, status in STATUS_OF.items():
                if statuses.get(member_id) == status:
                    setattr(one, name, 1)
            result[(organization_id, positions[member_id])].add(one)
            result[(organization_id, ALL)].add(one)
    return dict(result)


def _stored(model, training_round, organization_ids=None) -> dict:
    """{(organisation id, position): Figures} as ``model``'s rows of the round hold them."""
    rows = model.objects.filter(round=training_round)
    if organization_ids is not None:
        rows = rows.filter(organization_id__in=list(organization_ids))
    return {
        (r["organization_id"], r["position"]): _figures(r)
        for r in rows.values("organization_id", "position", *FIELDS)
    }


def counters_stored(*, training_round: Round, organization_ids=None) -> dict:
    """{(organisation id, position): Figures} as the direct rows hold them."""
    return _stored(CoverageCounter, training_round, organization_ids)


def _subtract(a: Figures | None, b: Figures | None) -> Figures:
    """``a`` − ``b`` field by field (None counts as zero)."""
    out = Figures()
    for name in FIELDS:
        setattr(out, name, (getattr(a, name) if a else 0) - (getattr(b, name) if b else 0))
    return out


def _ancestry(organization_ids) -> dict:
    """{organisation id: (path, parent id)} for ``organization_ids`` that exist and every
    organisation above them."""
    organization_ids = set(organization_ids)
    steplen = Organization.steplen
    if len(organization_ids) > WHOLE_ROUND_OVER:  # a round's worth: read the tree once
        every = dict(Organization.objects.values_list("pk", "path"))
        paths = {every[pk] for pk in organization_ids if pk in every}
        above = {path[:end] for path in paths for end in range(steplen, len(path) + 1, steplen)}
        ids = {path: pk for pk, path in every.items() if path in above}
        return {pk: (path, ids.get(path[:-steplen])) for path, pk in ids.items()}
    paths = set()
    for chunk in _chunks(organization_ids):
        paths.update(Organization.objects.filter(pk__in=chunk).values_list("path", flat=True))
    above = {path[:end] for path in paths for end in range(steplen, len(path) + 1, steplen)}
    ids = {}
    for chunk in _chunks(sorted(above)):
        ids.update(Organization.objects.filter(path__in=chunk).values_list("path", "pk"))
    return {pk: (path, ids.get(path[:-steplen])) for path, pk in ids.items()}


def _chunks(items, size=500):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _roll_up(direct: dict, ancestry: dict) -> dict:
    """{(organisation id, position): Figures} summed over subtrees: each direct row added to its
    organisation's subtree total and every ancestor's (``ancestry`` from ``_ancestry``)."""
    by_path = {path: pk for pk, (path, _parent) in ancestry.items()}
    steplen = Organization.steplen
    totals: dict = defaultdict(Figures)
    for (organization_id, position), figures in direct.items():
        if organization_id not in ancestry:
            continue
        path = ancestry[organization_id][0]
        for end in range(steplen, len(path) + 1, steplen):
            totals[(by_path[path[:end]], position)].add(figures)
    return dict(totals)


def _subtree_totals(direct: dict, ancestry: dict | None = None) -> dict:
    """``direct`` rows rolled up (``_roll_up``), keeping the totals with anybody in scope: what
    the subtree rows must hold."""
    if ancestry is None:
        ancestry = _ancestry({key[0] for key in direct})
    return {key: f for key, f in _roll_up(direct, ancestry).items() if f.in_scope}


def _differences(stored: dict, live: dict, kind: str) -> list[tuple]:
    drift = []
    for key in sorted(set(stored) | set(live), key=lambda k: (k[0], k[1])):
        have, want = stored.get(key), live.get(key)
        if (have.as_dict() if have else None) != (want.as_dict() if want else None):
            drift.append((*key, have, want, kind))
    return drift


DIRECT, SUBTREE = "direct", "subtree"


def counters_check(*, training_round: Round) -> list[tuple]:
    """The drift: [(organisation id, position, stored Figures or None, live Figures or None,
    ``DIRECT`` or ``SUBTREE``)] for every row of either kind that differs from a full live
    recount; empty when the rows are right."""
    live = counters_live(training_round=training_round)
    drift = _differences(counters_stored(training_round=training_round), live, DIRECT)
    stored_totals = _stored(CoverageRollup, training_round)
    return drift + _differences(stored_totals, _subtree_totals(live), SUBTREE)


# --- Keeping them -------------------------------------------------------------------------------


def _lock(organization_ids=None) -> None:
    """Lock the organisation rows about to be recounted (all of them: None), in path order."""
    rows = Organization.objects.select_for_update(no_key=True).order_by("path")
    if organization_ids is not None:
        rows = rows.filter(pk__in=sorted(organization_ids))
    list(rows.values_list("pk", flat=True))


def _store(training_round, organization_ids, figures: dict) -> None:
    rows = CoverageCounter.objects.filter(round=training_round)
    if organization_ids is not None:
        rows = rows.filter(organization_id__in=list(organization_ids))
    rows.delete()
    CoverageCounter.objects.bulk_create(
        [
            CoverageCounter(
                round=training_round,
                organization_id=organization_id,
                position=position,
                **{k: getattr(f, k) for k in FIELDS},
            )
            for (organization_id, position), f in figures.items()
            if f.in_scope
        ],
        batch_size=2000,
    )


def _rollups_rebuild(training_round, direct: dict) -> None:
    """Replace the round's subtree rows with ``direct`` rolled up."""
    ancestry = _ancestry({key[0] for key in direct})
    CoverageRollup.objects.filter(round=training_round).delete()
    CoverageRollup.objects.bulk_create(
        [
            CoverageRollup(
                round=training_round,
                organization_id=organization_id,
                parent_id=ancestry[organization_id][1],
                position=position,
                **{k: getattr(f, k) for k in FIELDS},
            )
            for (organization_id, position), f in _subtree_totals(direct, ancestry).items()
        ],
        batch_size=2000,
    )


def _rollups_add(training_round, changes: dict, ancestry: dict) -> None:
    """Add ``changes`` ({(organisation id, position): Figures}, differences of direct rows) to
    the subtree rows of those organisations and their ancestors; rows left with nobody in scope
    go. The caller holds the locks of every organisation in ``ancestry``."""
    totals = {key: f for key, f in _roll_up(changes, ancestry).items() if any(f.as_dict().values())}
    if not totals:
        return
    rows = {
        (row.organization_id, row.position): row
        for chunk in _chunks({key[0] for key in totals})
        for row in CoverageRollup.objects.filter(round=training_round, organization_id__in=chunk)
    }
    changed, created, gone = [], [], []
    for (organization_id, position), delta in totals.items():
        row = rows.get((organization_id, position))
        if row is None:
            row = CoverageRollup(
                round=training_round,
                organization_id=organization_id,
                parent_id=ancestry[organization_id][1],
                position=position,
            )
        values = {k: getattr(row, k) + getattr(delta, k) for k in FIELDS}
        if min(values.values()) < 0:
            # Only rows that were already wrong can go below zero: rebuild from the direct rows.
            logger.warning("coverage subtree rows of round %s drifted; rebuilt", training_round.pk)
            _rollups_rebuild(training_round, counters_stored(training_round=training_round))
            return
        for name, value in values.items():
            setattr(row, name, value)
        if not row.in_scope:
            if row.pk:
                gone.append(row.pk)
        elif row.pk:
            changed.append(row)
        else:
            created.append(row)
    if gone:
        CoverageRollup.objects.filter(pk__in=gone).delete()
    CoverageRollup.objects.bulk_update(changed, FIELDS, batch_size=1000)
    CoverageRollup.objects.bulk_create(created, batch_size=1000)


def counters_recount(*, training_round: Round, organization_ids=None) -> None:
    """Recount ``training_round``'s rows of ``organization_ids`` (None: the whole round) from
    the roster, and the subtree rows above them, in the caller's transaction (or one of its
    own)."""
    if organization_ids is not None:
        organization_ids = set(organization_ids) - {None}
        if not organization_ids:
            return
        if len(organization_ids) > WHOLE_ROUND_OVER:
            organization_ids = None
    with transaction.atomic():
        if organization_ids is None:
            _lock()
            figures = counters_live(training_round=training_round)
            _store(training_round, None, figures)
            _rollups_rebuild(training_round, figures)
            return
        ancestry = _ancestry(organization_ids)
        _lock(ancestry)
        before = counters_stored(training_round=training_round, organization_ids=organization_ids)
        figures = counters_live(training_round=training_round, organization_ids=organization_ids)
        _store(training_round, organization_ids, figures)
        changes = {
            key: _subtract(figures.get(key), before.get(key)) for key in set(before) | set(figures)
        }
        _rollups_add(training_round, changes, ancestry)


def counters_repair(*, training_round: Round, user=None, drift=None) -> int:
    """Rebuild a round's rows of both kinds from a full recount; audit-logged. Returns the rows
    that were wrong (``drift``: as ``counters_check`` found them, else checked here)."""
    with transaction.atomic():
        if drift is None:
            drift = counters_check(training_round=training_round)
        counters_recount(training_round=training_round)
        audit_event(
            event="coverage_counters_repaired",
            obj=training_round,
            actor=user,
            rows=len(drift),
            organizations=sorted({row[0] for row in drift})[:100],
        )
    return len(drift)


def organizations_of_members(member_ids) -> set:
    """The organisations where ``member_ids`` may count: their own and their postings'."""
    member_ids = list(member_ids)
    found = set()
    for start in range(0, len(member_ids), 500):
        chunk = member_ids[start : start + 500]
        found.update(Member.objects.filter(pk__in=chunk).values_list("organization_id", flat=True))
        found.update(
            Posting.objects.filter(member_id__in=chunk).values_list("organization_id", flat=True)
        )
    return found


def organizations_touching(organization_ids) -> set:
    """``organization_ids`` and every organisation where members based or posted there may
    count instead (their postings elsewhere)."""
    organization_ids = set(organization_ids)
    members = Member.objects.filter(
        Q(organization_id__in=organization_ids) | Q(postings__organization_id__in=organization_ids)
    )
    others = Posting.objects.filter(member__in=members).values_list("organization_id", flat=True)
    return organization_ids | set(others)


def rounds_covering(organization_ids):
    """Rounds whose scope holds any of ``organization_ids`` (the only ones with rows there)."""
    paths = Organization.objects.filter(pk__in=list(organization_ids)).values_list(
        "path", flat=True
    )
    steplen = Organization.steplen
    above = {path[:end] for path in paths for end in range(steplen, len(path) + 1, steplen)}
    if not above:
        return Round.objects.none()
    return Round.objects.filter(scope_roots__path__in=above).distinct().order_by("pk")


def counters_recount_organizations(*, organization_ids, rounds=None) -> None:
    """Recount ``organization_ids`` in every round whose scope holds one of them."""
    organization_ids = set(organization_ids) - {None}
    if not organization_ids:
        return
    if rounds is None:
        rounds = rounds_covering(organization_ids)
    for training_round in rounds:
        counters_recount(training_round=training_round, organization_ids=organization_ids)


def counters_recount_members(*, member_ids, training_round: Round | None = None, also=()):
    """Recount where ``member_ids`` count (their own organisation and postings, plus ``also``:
    where they counted before the write), in ``training_round`` or every round covering it."""
    if training_round is not None and len(member_ids) > WHOLE_ROUND_OVER * 10:
        counters_recount(training_round=training_round)  # a round's worth: read it whole
        return
    organization_ids = organizations_of_members(member_ids) | set(also)
    if training_round is not None:
        counters_recount(training_round=training_round, organization_ids=organization_ids)
    else:
        counters_recount_organizations(organization_ids=organization_ids)


def counters_rebuild_all(*, subtree=True) -> int:
    """Every round's rows from a full recount (a new installation of the counters).
    ``subtree=False``: the direct rows only (for a migration run before the subtree rows'
    table exists)."""
    count = 0
    for training_round in Round.objects.order_by("pk"):
        if subtree:
            counters_recount(training_round=training_round)
        else:
            with transaction.atomic():
                _lock()
                _store(training_round, None, counters_live(training_round=training_round))
        count += 1
    return count


def rollups_rebuild_all() -> int:
    """Every round's subtree rows from its stored counter rows (a new installation of them)."""
    count = 0
    for training_round in Round.objects.order_by("pk"):
        with transaction.atomic():
            _lock()
            _rollups_rebuild(training_round, counters_stored(training_round=training_round))
        count += 1
    return count

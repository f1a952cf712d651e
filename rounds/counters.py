"""Coverage counters: each round's figures per organisation, kept as rows.

A ``CoverageCounter`` row holds the figures of the members who count DIRECTLY at one
organisation in one round (at home, or at the organisation they are posted to), once per
position of theirs and once for all positions together (``position=""``). A node's coverage is
then one small GROUP BY over its subtree's rows (``rounds.coverage``), whatever the number of
members: no ancestor row is ever written, so writers in different branches never wait on the
city's row.

How they stay right: every write that can move a member's figure recounts, in the same
transaction, the DIRECT rows of the organisations it touches — a recount of a few dozen members,
not a delta, so a rule about who is in scope lives in one place (``Round``'s scope methods):

- a status change (``participation_refresh``): the member's own organisation and their postings';
- a member saved (moved, deactivated, position, status, categories) or deleted: their old and new
  organisation and their postings'; a roster import or an organisation moved in the tree sends
  ``members.importing.roster_changed`` with the organisations it touched (or None: all);
- a posting created, changed or deleted: its old and new organisation, the member's own, and the
  member's other postings';
- an organisation's domain changed: the rounds that filter by domain, in full;
- a round's scope (its roots, statuses, positions, domains, categories, dates) changed: the round
  in full. Closing a round refreshes every participation, which recounts as above.

A recount first locks the organisation rows it recounts (``FOR NO KEY UPDATE``: inserting a
member there still works), in primary-key order, then reads: under READ COMMITTED a second
writer of the same organisation waits, and its read sees the first one's commit. SQLite has one
writer at a time anyway.

``counters_check`` compares a round's rows with a full live recount (the oracle);
``manage.py coverage_counters`` reports drift and repairs it.
"""

from collections import defaultdict

from django.db import transaction
from django.db.models import Q

from core.audit import audit_event
from members.models import Member, Organization, Posting

from .coverage import COUNTED, STATUS_OF, Figures, _aggregates, participation
from .models import CoverageCounter, Participation, Round

ALL = CoverageCounter.ALL_POSITIONS
FIELDS = ("in_scope", *COUNTED)
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


def counters_stored(*, training_round: Round, organization_ids=None) -> dict:
    """{(organisation id, position): Figures} as the rows hold them."""
    rows = CoverageCounter.objects.filter(round=training_round)
    if organization_ids is not None:
        rows = rows.filter(organization_id__in=list(organization_ids))
    return {
        (r["organization_id"], r["position"]): Figures(**{k: r[k] for k in FIELDS})
        for r in rows.values("organization_id", "position", *FIELDS)
    }


def counters_check(*, training_round: Round) -> list[tuple]:
    """The drift: [(organisation id, position, stored Figures or None, live Figures or None)]
    for every row that differs from a full live recount; empty when the rows are right."""
    stored = counters_stored(training_round=training_round)
    live = counters_live(training_round=training_round)
    drift = []
    for key in sorted(set(stored) | set(live), key=lambda k: (k[0], k[1])):
        have, want = stored.get(key), live.get(key)
        if (have.as_dict() if have else None) != (want.as_dict() if want else None):
            drift.append((*key, have, want))
    return drift


# --- Keeping them -------------------------------------------------------------------------------


def _lock(organization_ids=None) -> None:
    """Lock the organisation rows about to be recounted (all of them: None), in key order."""
    rows = Organization.objects.select_for_update(no_key=True).order_by("pk")
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


def counters_recount(*, training_round: Round, organization_ids=None) -> None:
    """Recount ``training_round``'s rows of ``organization_ids`` (None: the whole round) from
    the roster, in the caller's transaction (or one of its own)."""
    if organization_ids is not None:
        organization_ids = set(organization_ids) - {None}
        if not organization_ids:
            return
        if len(organization_ids) > WHOLE_ROUND_OVER:
            organization_ids = None
    with transaction.atomic():
        _lock(organization_ids)
        figures = counters_live(training_round=training_round, organization_ids=organization_ids)
        _store(training_round, organization_ids, figures)


def counters_repair(*, training_round: Round, user=None, drift=None) -> int:
    """Rebuild a round's rows from a full recount; audit-logged. Returns the rows that were
    wrong (``drift``: as ``counters_check`` found them, else checked here)."""
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


def counters_rebuild_all() -> int:
    """Every round's rows from a full recount (a new installation of the counters)."""
    count = 0
    for training_round in Round.objects.order_by("pk"):
        counters_recount(training_round=training_round)
        count += 1
    return count

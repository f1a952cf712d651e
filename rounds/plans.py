"""The five-year plan's figures (五年规划): for a subtree, each target's figure per year, the
names still missing this year, and the quarter-by-quarter coverage of the rotation rounds.

Nothing is stored: each figure is counted from the roster, the ledger's yearly hours summary
(rounds/hours.py) and the trainings, one or two queries per target and year whatever the size
of the subtree. The audience is today's
roster (who is a secretary, who is a 发展对象 now); the ledger and the trainings say what each
did in each year. Organisations are never ranked: a subtree sees its own figures, and its
children in tree order.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cached_property

from django.db.models import Min, Q
from django.utils import timezone

from members.models import Member, Organization, path_prefix_q

from .coverage import Figures, coverage_children
from .ledger import ledger_for_members
from .models import CoverageSnapshot, Participation, PlanTarget, Round, StudyPlan, add_months

T = PlanTarget
MISSING_SHOWN = 100


@dataclass(frozen=True)
class YearFigure:
    year: int
    audience: int
    met: int
    goal_percent: int

    @property
    def percent(self) -> float | None:
        return round(self.met * 100 / self.audience, 1) if self.audience else None

    @property
    def reached(self) -> bool:
        return self.percent is not None and self.percent >= self.goal_percent


@dataclass
class TargetFigures:
    target: PlanTarget
    years: list[YearFigure]
    # This year's missing people, not yet read: the page shows the first MISSING_SHOWN,
    # the export all of them.
    missing_qs: object = None

    @property
    def missing_count(self) -> int:
        last = self.current
        return last.audience - last.met if last else 0

    @cached_property
    def missing(self) -> list:
        if self.missing_qs is None:
            return []
        return list(self.missing_qs[:MISSING_SHOWN])

    @property
    def current(self) -> YearFigure | None:
        return self.years[-1] if self.years else None

    def chart(self, width=320, height=140):
        """Bars for an SVG drawn on the server: one per year, the goal as a line."""
        count = max(len(self.years), 1)
        slot = width / count
        top, bottom = 14, height - 22
        span = bottom - top
        bars = []
        for index, figure in enumerate(self.years):
            value = figure.percent or 0
            bar_height = span * value / 100
            bars.append(
                {
                    "x": round(index * slot + slot * 0.2, 1),
                    "y": round(bottom - bar_height, 1),
                    "width": round(slot * 0.6, 1),
                    "height": round(bar_height, 1),
                    "label_x": round(index * slot + slot / 2, 1),
                    "value_y": round(bottom - bar_height - 3, 1),
                    "year": figure.year,
                    "text": "—" if figure.percent is None else f"{figure.percent:g}%",
                    "reached": figure.reached,
                }
            )
        goal_y = round(bottom - span * self.target.goal_percent / 100, 1)
        return {
            "width": width,
            "height": height,
            "bars": bars,
            "goal_y": goal_y,
            "axis_y": bottom,
            "year_y": height - 6,
        }


def audience(target: PlanTarget, node: Organization):
    """Who a target counts within ``node``'s subtree: today's roster."""
    members = Member.objects.filter(is_active=True).filter(
        path_prefix_q(node.path, "organization__path")
    )
    if target.audience == T.Audience.CANDIDATES:
        return members.filter(status=Member.Status.CANDIDATE)
    members = members.filter(status__in=Member.PARTY_STATUSES)
    if target.audience in (T.Audience.SECRETARIES, T.Audience.VILLAGE_SECRETARIES):
        members = members.filter(
            position__in=[Member.Position.SECRETARY, Member.Position.DEPUTY_SECRETARY]
        )
    if target.audience == T.Audience.VILLAGE_SECRETARIES:
        members = members.filter(
            organization__domain__in=[Organization.Domain.RURAL, Organization.Domain.COMMUNITY]
        )
    if target.audience == T.Audience.PARTY_WORKERS:
        members = members.filter(position=Member.Position.PARTY_WORKER)
    return members


def _completed_training(kind: str, year: int):
    """Members who completed a training of ``kind`` that opened in ``year``."""
    return Participation.objects.filter(
        status=Participation.Status.COMPLETED, round__kind=kind, round__opens_on__year=year
    ).values("member_id")


def _new_in_position(target, members, year):
    """(audience, met ids) for "trained within N months of taking up the position": those who
    took it up in ``year``; met when a training of the kind was completed in time."""
    people = list(members.filter(position_since__year=year).values_list("pk", "position_since"))
    first_done = dict(
        Participation.objects.filter(
            member_id__in=[pk for pk, _since in people],
            status=Participation.Status.COMPLETED,
            round__kind=target.training_kind,
            completed_at__isnull=False,
        )
        .values("member_id")
        .annotate(first=Min("completed_at"))
        .values_list("member_id", "first")
    )
    months = int(target.number or 0)
    met = set()
    for pk, since in people:
        done = first_done.get(pk)
        if done is not None and timezone.localdate(done) <= add_months(since, months):
            met.add(pk)
    return [pk for pk, _since in people], met


def year_figure(target: PlanTarget, node: Organization, year: int | None):
    """(YearFigure, missing members queryset) of ``target`` within ``node`` in ``year``."""
    members = audience(target, node)
    shown_year = year or timezone.localdate().year
    if target.kind == T.Kind.NEW_IN_POSITION:
        people, met = _new_in_position(target, members, year)
        figure = YearFigure(shown_year, len(people), len(met), target.goal_percent)
        return figure, members.filter(pk__in=set(people) - met)
    if target.kind == T.Kind.TRAINED:
        done = members.filter(pk__in=_completed_training(target.training_kind, year))
    elif year is not None and Decimal(target.number or 0) > 0:
        # The year's row in the hours summary: one join, no sums (rounds/hours.py).
        done = members.filter(
            hours_summaries__year=year, hours_summaries__total__gte=Decimal(target.number)
        )
    else:
        hours = Decimal(target.number or 0)
        done = ledger_for_members(members_qs=members, year=year).filter(hours_total__gte=hours)
    figure = YearFigure(shown_year, members.count(), done.count(), target.goal_percent)
    return figure, members.exclude(pk__in=done.values("pk"))


def plan_years(plan: StudyPlan, today: date | None = None) -> list[int]:
    """The plan's years up to this one: nothing is shown for a year not yet begun."""
    today = today or timezone.localdate()
    return [year for year in plan.years if year <= today.year]


def target_figures(plan: StudyPlan, node: Organization):
    """Each target's figure per year (this year last), and this year's missing people."""
    years = plan_years(plan)
    results = []
    for target in plan.targets.all():
        figures, missing = [], None
        for year in [None] if target.kind == T.Kind.HOURS_BEFORE_ADMISSION else years:
            figure, missing = year_figure(target, node, year)
            figures.append(figure)
        if missing is not None:
            missing = missing.select_related("organization").order_by("organization__path", "name")
        results.append(TargetFigures(target=target, years=figures, missing_qs=missing))
    return results


@dataclass(frozen=True)
class QuarterFigure:
    round: Round
    figures: Figures
    frozen: bool  # from the snapshot taken at close


def quarterly_coverage(plan: StudyPlan, node: Organization) -> list[QuarterFigure]:
    """The rotation rounds of the plan's years that reach ``node``, each with its figures at
    ``node``: frozen at close for closed rounds, live for the others."""
    years = plan_years(plan)
    if not years:
        return []
    rounds = list(
        Round.objects.published()
        .filter(kind=Round.Kind.QUARTERLY, opens_on__year__gte=years[0])
        .filter(opens_on__year__lte=years[-1])
        .visible_to_roots([node])
        .order_by("opens_on")
    )
    snapshots = {
        s.round_id: Figures.from_snapshot(s)
        for s in CoverageSnapshot.objects.filter(
            round__in=[r for r in rounds if r.is_closed], organization=node
        )
    }
    found = []
    for training_round in rounds:
        if training_round.is_closed:
            figures = snapshots.get(training_round.pk, Figures())
            found.append(QuarterFigure(training_round, figures, frozen=True))
        else:
            head = coverage_children(training_round=training_round, node=node).head
            found.append(QuarterFigure(training_round, head.figures, frozen=False))
    return found


def plans_visible(roots):
    """Plans whose subtree meets the subtrees of ``roots`` (None: all): set at a root, below
    it, or above it."""
    plans = StudyPlan.objects.select_related("organization")
    if roots is None:
        return plans
    condition = Q(pk__in=[])
    for root in roots:
        condition |= path_prefix_q(root.path, "organization__path")
        condition |= Q(organization__path__in=root.ancestor_paths())
    return plans.filter(condition)

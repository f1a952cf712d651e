"""make demo's rounds: what the issue asks the demo to show, built through the services."""

from django.core.management import call_command
from django.utils import timezone

from members.models import Organization
from rounds.coverage import coverage_children
from rounds.models import CoverageSnapshot, Participation, Round, Session

P = Participation.Status


def test_demo_rounds(db, django_capture_on_commit_callbacks):
    """One test, because seeding the demo transcodes its clips: the checks below are separate
    helpers so a failure names what is missing."""
    with django_capture_on_commit_callbacks(execute=True):  # as after the demo's commit
        call_command("seed_demo")
    current = Round.objects.get(state=Round.State.PUBLISHED)
    previous = Round.objects.get(state=Round.State.CLOSED)
    check_round_under_way(current)
    check_closed_round(previous)
    # Closing it issued its certificates, one per member who completed it.
    from certificates.models import Certificate

    completed = Participation.objects.filter(round=previous, status=P.COMPLETED).count()
    issued = Certificate.objects.filter(round=previous).count()
    assert 0 < issued and issued in (completed, completed - 1)  # less the late correction
    template = Certificate.objects.filter(round=previous).first().template
    assert template.seal is not None and "示范市委组织部" in template.issuer_lines
    count = Participation.objects.count()
    call_command("seed_demo")
    assert Round.objects.count() == 4
    assert Participation.objects.count() == count


def check_round_under_way(current):
    statuses = set(Participation.objects.filter(round=current).values_list("status", flat=True))
    assert {P.COMPLETED, P.IN_PROGRESS, P.LEAVE, P.EXEMPT} <= statuses
    methods = set(
        Participation.objects.filter(round=current, status=P.COMPLETED).values_list(
            "method", flat=True
        )
    )
    assert {Participation.Method.ONLINE, Participation.Method.SESSION} <= methods
    city = Organization.objects.get(code="C01")
    head = coverage_children(training_round=current, node=city).head
    assert head.figures.not_started > 0  # some missing
    branches = Organization.objects.filter(kind="branch")
    full = [
        b
        for b in branches
        if coverage_children(training_round=current, node=b).head.figures.coverage == 1
    ]
    assert full, "one branch at 100 %"
    today = timezone.localdate()
    assert current.opens_on <= today <= current.closes_on
    upcoming = Session.objects.filter(round=current, event__start__gt=timezone.now())
    assert upcoming.exists() and upcoming.first().event.rule is not None


def check_closed_round(previous):
    city = Organization.objects.get(code="C01")
    snapshot = CoverageSnapshot.objects.get(round=previous, organization=city)
    assert snapshot.in_scope == 330 and 0 < snapshot.completed < 330
    head = coverage_children(training_round=previous, node=city).head
    assert head.figures.completed == snapshot.completed + 1
    assert head.corrected

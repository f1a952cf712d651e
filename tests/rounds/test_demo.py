"""make demo's rounds: what the issue asks the demo to show, built through the services."""

from django.core.management import call_command
from django.utils import timezone

from members.models import Member, Organization
from rounds.coverage import coverage_children
from rounds.models import (
    Attendance,
    CoverageSnapshot,
    Participation,
    Round,
    Session,
    StudyRecord,
)

P = Participation.Status


def test_demo_rounds(db, django_capture_on_commit_callbacks):
    """One test, because seeding the demo transcodes its clips: the checks below are separate
    helpers so a failure names what is missing."""
    with django_capture_on_commit_callbacks(execute=True):  # as after the demo's commit
        call_command("seed_demo")
    current = Round.objects.get(state=Round.State.PUBLISHED, kind=Round.Kind.QUARTERLY)
    previous = Round.objects.get(state=Round.State.CLOSED)
    check_round_under_way(current)
    check_closed_round(previous)
    check_categories_and_every_study(current)
    # Closing it issued its certificates, one per member who completed it.
    from certificates.models import Certificate

    completed = Participation.objects.filter(round=previous, status=P.COMPLETED).count()
    issued = Certificate.objects.filter(round=previous).count()
    assert 0 < issued and issued in (completed, completed - 1)  # less the late correction
    template = Certificate.objects.filter(round=previous).first().template
    assert template.seal is not None and "示范市委组织部" in template.issuer_lines
    count = Participation.objects.count()
    rounds = Round.objects.count()
    call_command("seed_demo")
    assert Round.objects.count() == rounds
    assert Participation.objects.count() == count


def check_categories_and_every_study(current):
    """A 书记专题培训 under way, 发展对象 in training, group study outside a round, a mobile
    member ticked at another site, approved and pending recorded study."""
    secretaries = Round.objects.get(kind=Round.Kind.SECRETARY)
    in_scope = secretaries.members_in_scope()
    assert in_scope.exists()
    assert set(in_scope.values_list("position", flat=True)) <= {"secretary", "deputy_secretary"}
    assert Participation.objects.filter(round=secretaries, status=P.COMPLETED).exists()
    candidates = Round.objects.get(kind=Round.Kind.CANDIDATE)
    assert set(candidates.members_in_scope().values_list("status", flat=True)) == {"candidate"}
    assert not current.members_in_scope().filter(status__in=["candidate", "activist"]).exists()
    group_study = Session.objects.get(round__isnull=True)
    assert Attendance.objects.filter(sitting__session=group_study, status="present").exists()
    mobile = Member.objects.get(activity_organization__isnull=False)
    ticked = Attendance.objects.get(member=mobile, sitting__session__round=current)
    assert ticked.sitting.session.host == mobile.activity_organization
    assert not mobile.activity_organization.contains(mobile.organization)
    states = set(StudyRecord.objects.values_list("state", flat=True))
    assert states == {StudyRecord.State.APPROVED, StudyRecord.State.PENDING}


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

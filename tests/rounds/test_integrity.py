"""Rules that keep the records honest: one place at a time, no decisions about oneself, and a
draft round that nobody but its trainers can open."""

import threading

import pytest
import time_machine
from auditlog.models import LogEntry
from django.db import connection
from django.urls import reverse
from django.utils import translation

from members import services as member_services
from members.models import Role
from rounds import services
from rounds.models import Attendance, Exemption, LeaveRequest, Round

from .. import factories
from . import builders

aware = builders.aware
PLACE = "城关区党群服务中心"


def _token(sitting, at):
    return services.qr_token(sitting=sitting, now=at).token


# --- One member, one place at a time ------------------------------------------------------------


@pytest.fixture
def two_places(city):
    """Branch A's sitting at 9:00–11:00, and the county's own at 9:30–11:30 across town."""
    training_round = builders.training_round([city.root])
    here = builders.sitting(builders.session(training_round, city.branch_a))
    there = builders.sitting(
        builders.session(
            training_round,
            city.county_a,
            title="区委集中学习",
            location=PLACE,
            start=aware(2026, 11, 12, 9, 30),
        )
    )
    return city, training_round, here, there


def test_qr_check_in_at_an_overlapping_sitting_elsewhere_is_refused(two_places, client_for):
    city, _round, here, there = two_places
    client = client_for(city.member_a.user)
    at_nine = aware(2026, 11, 12, 9, 5)
    with time_machine.travel(at_nine, tick=False):
        assert (
            client.get(reverse("rounds:check_in", args=[_token(here, at_nine)])).status_code == 200
        )
    relayed = aware(2026, 11, 12, 9, 35)
    with time_machine.travel(relayed, tick=False):
        # A photo of the second code, relayed to her phone (logged in afresh half an hour on).
        client = client_for(city.member_a.user)
        response = client.get(reverse("rounds:check_in", args=[_token(there, relayed)]))
    assert response.status_code == 400
    # The message names where the member is already recorded.
    assert "11月集中学习" in response.content.decode()
    assert list(Attendance.objects.values_list("sitting", flat=True)) == [here.pk]
    with translation.override("en"), pytest.raises(services.CheckInRefused) as refusal:
        services.check_in(member=city.member_a, sitting=there, now=relayed)
    assert "already checked in" in str(refusal.value) and "幸福社区党支部" in str(refusal.value)


def test_absence_elsewhere_or_a_sitting_that_starts_as_the_other_ends_is_no_overlap(city):
    training_round = builders.training_round([city.root])
    morning = builders.sitting(builders.session(training_round, city.branch_a))  # 9:00–11:00
    late_morning = builders.sitting(
        builders.session(training_round, city.root, start=aware(2026, 11, 12, 11, 0))
    )
    overlapping = builders.sitting(
        builders.session(training_round, city.county_a, start=aware(2026, 11, 12, 10, 0))
    )
    services.roll_call_save(
        sitting=overlapping, marks={city.member_a.pk: "absent"}, user=city.trainer
    )
    services.check_in(member=city.member_a, sitting=morning, now=aware(2026, 11, 12, 9, 0))
    services.check_in(member=city.member_a, sitting=late_morning, now=aware(2026, 11, 12, 11, 0))
    assert (
        Attendance.objects.filter(member=city.member_a, status__in=Attendance.ATTENDED).count() == 2
    )


def test_roll_call_refuses_to_mark_present_someone_present_elsewhere_and_keeps_the_marks(
    two_places, client_for
):
    city, _round, here, there = two_places
    services.check_in(member=city.member_a, sitting=there, now=aware(2026, 11, 12, 9, 35))
    neighbour = factories.member(city.branch_a, name="赵敏")
    operator = client_for(city.operator_a)
    url = reverse("rounds:roll_call", args=[here.pk])
    response = operator.post(url, {f"m{city.member_a.pk}": "present", f"m{neighbour.pk}": "late"})
    assert response.status_code == 200
    page = response.content.decode()
    assert PLACE in page and "王芳" in page
    # Nothing was saved, and the operator's marks are still on the form.
    assert not Attendance.objects.filter(sitting=here).exists()
    assert f'name="m{neighbour.pk}" value="late" checked' in page
    refused = LogEntry.objects.get(
        additional_data__event="attendance_corrected", additional_data__result="refused"
    )
    assert refused.actor == city.operator_a
    # Marking her absent here is the truth, and is saved.
    operator.post(url, {f"m{city.member_a.pk}": "absent", f"m{neighbour.pk}": "late"})
    assert dict(Attendance.objects.filter(sitting=here).values_list("member", "status")) == {
        city.member_a.pk: "absent",
        neighbour.pk: "late",
    }
    # A QR check-in cannot turn that absence into presence while she is recorded across town.
    with pytest.raises(services.CheckInRefused):
        services.check_in(member=city.member_a, sitting=here, now=aware(2026, 11, 12, 9, 40))
    assert Attendance.objects.get(sitting=here, member=city.member_a).status == "absent"


@pytest.mark.django_db(transaction=True)
def test_two_check_ins_at_once_in_two_places_let_exactly_one_through(city, monkeypatch):
    """Both requests check for an overlap before either writes: the member's row lock makes
    the second wait for the first and then see it."""
    training_round = builders.training_round([city.root])
    here = builders.sitting(builders.session(training_round, city.branch_a))
    there = builders.sitting(
        builders.session(training_round, city.county_a, start=aware(2026, 11, 12, 9, 30))
    )
    # Hold each check-in between its overlap check and its write until the other has checked
    # too (or for a second, when the other is queued behind a lock and cannot get there).
    both_checked = threading.Barrier(2, timeout=1)
    checked = services.attended_elsewhere

    def check_then_wait(**kwargs):
        found = checked(**kwargs)
        try:
            both_checked.wait()
        except threading.BrokenBarrierError:
            pass
        return found

    monkeypatch.setattr(services, "attended_elsewhere", check_then_wait)
    outcomes = []

    def scan(sitting):
        try:
            services.check_in(member=city.member_a, sitting=sitting, now=aware(2026, 11, 12, 9, 40))
            outcomes.append("checked in")
        except services.CheckInRefused:
            outcomes.append("refused")
        except Exception as error:  # reported below
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=scan, args=(s,)) for s in (here, there)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["checked in", "refused"]
    assert Attendance.objects.filter(member=city.member_a).count() == 1


# --- Decisions about oneself go to the level above ----------------------------------------------


@pytest.fixture
def own_secretary(city):
    """Branch A's secretary is a member of branch A herself; county A has a secretary above her."""
    secretary = factories.member(city.branch_a, name="刘书记", position="secretary")
    member_services.role_assign(
        user=secretary.user, role=Role.SECRETARY, organization=city.branch_a
    )
    above = factories.staff("sec_county_a", Role.SECRETARY, city.county_a)
    training_round = builders.training_round([city.root])
    return city, training_round, secretary, above


def test_a_secretary_cannot_decide_her_own_leave_but_the_level_above_can(own_secretary, client_for):
    city, training_round, secretary, above = own_secretary
    leave = services.leave_request(
        member=secretary, training_round=training_round, reason="住院治疗"
    )
    decide = reverse("rounds:leave_decide", args=[training_round.pk, leave.pk])
    herself = client_for(secretary.user)
    listing = herself.get(reverse("rounds:leave_list", args=[training_round.pk])).content.decode()
    assert f'data-leave="{leave.pk}"' in listing and decide not in listing
    for decision in ("approve", "refuse"):
        assert herself.post(decide, {"decision": decision}).status_code == 302
        leave.refresh_from_db()
        assert leave.state == LeaveRequest.State.PENDING
    refused = LogEntry.objects.filter(additional_data__result="refused")
    assert refused.filter(additional_data__event="leave_approved").exists()
    with translation.override("en"), pytest.raises(services.LeaveError) as error:
        services.leave_decide(leave=leave, approve=True, user=secretary.user)
    assert "level above" in str(error.value)
    # She still decides her members' requests.
    other = services.leave_request(
        member=city.member_a, training_round=training_round, reason="外出务工"
    )
    herself.post(
        reverse("rounds:leave_decide", args=[training_round.pk, other.pk]), {"decision": "approve"}
    )
    other.refresh_from_db()
    assert other.state == LeaveRequest.State.APPROVED
    # The county's secretary, whose scope covers her, decides hers.
    client_for(above).post(decide, {"decision": "approve"})
    leave.refresh_from_db()
    assert (leave.state, leave.decided_by) == (LeaveRequest.State.APPROVED, above)


def test_a_secretary_cannot_exempt_herself_or_withdraw_her_exemption(own_secretary, client_for):
    city, training_round, secretary, above = own_secretary
    herself = client_for(secretary.user)
    grant = reverse("rounds:exemption_create", args=[training_round.pk, secretary.pk])
    revoke = reverse("rounds:exemption_revoke", args=[training_round.pk, secretary.pk])
    page = herself.get(
        reverse("rounds:member_status", args=[training_round.pk, secretary.pk])
    ).content.decode()
    assert grant not in page
    assert herself.post(grant, {"reason": "身体原因"}).status_code == 302
    assert not Exemption.objects.filter(member=secretary).exists()
    assert LogEntry.objects.filter(
        additional_data__event="exemption_granted", additional_data__result="refused"
    ).exists()
    with translation.override("en"), pytest.raises(services.LeaveError) as error:
        services.exemption_grant(
            member=secretary, training_round=training_round, reason="x", user=secretary.user
        )
    assert "level above" in str(error.value)
    # She exempts her members; the county exempts her.
    herself.post(
        reverse("rounds:exemption_create", args=[training_round.pk, city.member_a.pk]),
        {"reason": "长期病休"},
    )
    assert Exemption.objects.filter(member=city.member_a).exists()
    client_for(above).post(grant, {"reason": "长期病休"})
    exemption = Exemption.objects.get(member=secretary)
    assert exemption.granted_by == above
    herself.post(revoke)
    exemption.refresh_from_db()
    assert exemption.revoked_at is None
    client_for(above).post(revoke)
    exemption.refresh_from_db()
    assert exemption.revoked_by == above


# --- A draft round is its trainers' alone -------------------------------------------------------


@pytest.fixture
def draft(city):
    training_round = builders.training_round([city.root], state=Round.State.DRAFT)
    session = builders.session(training_round, city.branch_a)
    sitting = builders.sitting(session)
    leave = LeaveRequest.objects.create(member=city.member_a, round=training_round, reason="x")
    Exemption.objects.create(
        member=city.member_a, round=training_round, reason="x", granted_by=city.trainer
    )
    return city, training_round, session, sitting, leave


def _draft_urls(training_round, session, sitting, leave, member):
    pk = training_round.pk
    return [
        ("GET", reverse("rounds:detail", args=[pk]), {}),
        ("POST", reverse("rounds:leave_create", args=[pk]), {"reason": "x"}),
        ("POST", reverse("rounds:leave_withdraw", args=[pk]), {}),
        ("GET", reverse("rounds:coverage", args=[pk]), {}),
        ("GET", reverse("rounds:coverage_export", args=[pk]), {}),
        ("GET", reverse("rounds:member_status", args=[pk, member.pk]), {}),
        ("POST", reverse("rounds:exemption_create", args=[pk, member.pk]), {"reason": "x"}),
        ("POST", reverse("rounds:exemption_revoke", args=[pk, member.pk]), {}),
        ("GET", reverse("rounds:leave_list", args=[pk]), {}),
        ("POST", reverse("rounds:leave_decide", args=[pk, leave.pk]), {"decision": "approve"}),
        ("POST", reverse("rounds:remind", args=[pk]), {"org": member.organization.pk}),
        ("GET", reverse("certificates:round_zip", args=[pk]), {}),
        (
            "GET",
            reverse("rounds:sitting_open", args=[session.pk, int(sitting.start.timestamp())]),
            {},
        ),
        ("GET", reverse("rounds:sitting", args=[sitting.pk]), {}),
        ("GET", reverse("rounds:sitting_screen", args=[sitting.pk]), {}),
        ("GET", reverse("rounds:sitting_code", args=[sitting.pk]), {}),
        ("GET", reverse("rounds:roll_call", args=[sitting.pk]), {}),
        ("POST", reverse("rounds:roll_call", args=[sitting.pk]), {f"m{member.pk}": "present"}),
        ("POST", reverse("rounds:sitting_close", args=[sitting.pk]), {}),
    ]


@pytest.mark.parametrize("who", ["secretary_a", "operator_a", "member_a", "secretary_b"])
def test_a_draft_round_is_404_by_url_to_everyone_but_its_trainers(draft, client_for, who):
    city, training_round, session, sitting, leave = draft
    user = getattr(city, who)
    client = client_for(getattr(user, "user", user))
    for method, url, data in _draft_urls(training_round, session, sitting, leave, city.member_a):
        response = client.post(url, data) if method == "POST" else client.get(url)
        assert response.status_code == 404, (method, url)
    leave.refresh_from_db()
    assert leave.state == LeaveRequest.State.PENDING
    assert Exemption.objects.get(member=city.member_a).revoked_at is None
    assert not Attendance.objects.exists() and sitting.closed_at is None


def test_the_round_trainers_open_the_draft_and_others_once_it_is_published(draft, client_for):
    city, training_round, session, sitting, _leave = draft
    readable = [
        reverse("rounds:coverage", args=[training_round.pk]),
        reverse("rounds:coverage_export", args=[training_round.pk]),
        reverse("rounds:member_status", args=[training_round.pk, city.member_a.pk]),
        reverse("rounds:leave_list", args=[training_round.pk]),
        reverse("rounds:sitting", args=[sitting.pk]),
        reverse("rounds:roll_call", args=[sitting.pk]),
    ]
    for trainer in (city.trainer, city.trainer_a):
        for url in readable:
            assert client_for(trainer).get(url).status_code == 200, url
    # A trainer whose subtree the round does not reach has no more than a secretary.
    narrow = builders.training_round([city.county_b], state=Round.State.DRAFT)
    assert (
        client_for(city.trainer_a).get(reverse("rounds:coverage", args=[narrow.pk])).status_code
        == 404
    )
    Round.objects.filter(pk=training_round.pk).update(state=Round.State.PUBLISHED)
    for url in readable:
        assert client_for(city.secretary_a).get(url).status_code == 200, url
    member_page = reverse("rounds:detail", args=[training_round.pk])
    assert client_for(city.member_a.user).get(member_page).status_code == 200
    timestamp = int(sitting.start.timestamp())
    opened = client_for(city.operator_a).get(
        reverse("rounds:sitting_open", args=[session.pk, timestamp])
    )
    assert opened.status_code == 302

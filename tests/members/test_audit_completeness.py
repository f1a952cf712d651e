"""Every auditable action leaves a record: when, who, what, on which object, the result and the
source address — driven over HTTP as people do it, bulk operations included."""

from datetime import date, timedelta

import pytest
import time_machine
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from certificates.models import Certificate
from members.models import Member, RoleAssignment, SpreadsheetImport
from rounds import services as round_services
from rounds.models import Attendance, Exemption, LeaveRequest, Reminder, Round
from rounds.reminders import reminders_due

from .. import factories
from ..certificates.rounds_setup import completed_round
from ..rounds import builders
from .spreadsheets import xlsx

ADDR = "198.51.100.23"
NOW = builders.aware(2026, 11, 12, 9, 5)  # five minutes into the group session
BACKEND = "members.backends.PhoneOrUsernameBackend"


@pytest.fixture(autouse=True)
def _fresh(settings, tmp_path):
    """Rate-limit counters of other tests forgotten; stored files in a fresh folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()
    with time_machine.travel(NOW, tick=False):
        yield
    cache.clear()


def at(user, addr=ADDR, **headers) -> Client:
    """A browser of ``user`` (None: logged out) at ``addr``."""
    client = Client(REMOTE_ADDR=addr, **headers)
    if user is not None:
        client.force_login(user, backend=BACKEND)
    return client


def records(event, **filters):
    return list(
        LogEntry.objects.filter(additional_data__event=event, **filters).order_by("timestamp", "pk")
    )


def only(event, **filters) -> LogEntry:
    (entry,) = records(event, **filters)
    return entry


def check(entry, *, actor, obj, result="ok", addr=ADDR):
    """The six things every record says."""
    assert entry.timestamp == NOW
    assert entry.actor == actor
    assert entry.content_type == ContentType.objects.get_for_model(obj)
    assert entry.object_pk == str(obj.pk)
    assert entry.object_repr == str(obj)
    assert entry.additional_data["event"]
    assert entry.additional_data["result"] == result
    assert entry.remote_addr == addr
    return entry.additional_data


@pytest.fixture
def world(city):
    city.round = builders.training_round([city.root])
    city.session = builders.session(city.round, city.branch_a)
    city.sitting = builders.sitting(city.session)
    return city


# --- Attendance ----------------------------------------------------------------------------------


def test_roll_call_is_one_record_listing_every_change(world, client_for):
    newcomer = factories.member(world.branch_a, name="赵敏")
    url = reverse("rounds:roll_call", args=[world.sitting.pk])
    response = at(world.operator_a).post(
        url, {f"m{world.member_a.pk}": "present", f"m{newcomer.pk}": "absent"}
    )
    assert response.status_code == 302
    data = check(only("roll_call"), actor=world.operator_a, obj=world.sitting)
    assert sorted(c["member"] for c in data["changes"]) == sorted([world.member_a.pk, newcomer.pk])
    # And each attendance row's own change record, from the same request.
    rows = records("attendance_created")
    assert len(rows) == 2
    for row in rows:
        check(row, actor=world.operator_a, obj=Attendance.objects.get(pk=row.object_pk))


def test_changes_after_closing_need_a_reason_and_a_refusal_is_recorded(world):
    operator = at(world.operator_a)
    operator.post(reverse("rounds:sitting_close", args=[world.sitting.pk]))
    world.sitting.refresh_from_db()
    check(only("sitting_closed"), actor=world.operator_a, obj=world.sitting)
    url = reverse("rounds:roll_call", args=[world.sitting.pk])

    operator.post(url, {f"m{world.member_a.pk}": "late"})
    assert not Attendance.objects.exists()
    refused = check(
        only("attendance_corrected", additional_data__result="refused"),
        actor=world.operator_a,
        obj=world.sitting,
        result="refused",
    )
    assert refused["error"]

    operator.post(url, {f"m{world.member_a.pk}": "late", "reason": "补录：当天签到失败"})
    done = check(
        only("attendance_corrected", additional_data__result="ok"),
        actor=world.operator_a,
        obj=world.sitting,
    )
    assert done["reason"] == "补录：当天签到失败"
    assert done["changes"] == [{"member": world.member_a.pk, "before": "", "after": "late"}]


def test_qr_check_in_is_recorded_with_the_members_phone_address(world):
    token = round_services.qr_token(sitting=world.sitting).token
    phone = at(world.member_a.user, addr="203.0.113.50")
    assert phone.get(reverse("rounds:check_in", args=[token])).status_code == 200
    attendance = Attendance.objects.get(member=world.member_a)
    check(only("check_in"), actor=world.member_a.user, obj=attendance, addr="203.0.113.50")


# --- Leave -------------------------------------------------------------------------------------


def test_leave_decision_and_a_refused_second_decision_are_recorded(world):
    at(world.member_a.user).post(
        reverse("rounds:leave_create", args=[world.round.pk]),
        {"session": world.session.pk, "reason": "外出务工"},
    )
    leave = LeaveRequest.objects.get()
    check(only("leave_requested"), actor=world.member_a.user, obj=leave)
    decide = reverse("rounds:leave_decide", args=[world.round.pk, leave.pk])
    secretary = at(world.secretary_a)
    secretary.post(decide, {"decision": "approve", "note": "请按时补学"})
    leave.refresh_from_db()
    approved = check(only("leave_approved"), actor=world.secretary_a, obj=leave)
    assert approved["note"] == "请按时补学"
    secretary.post(decide, {"decision": "refuse"})
    refused = check(only("leave_refused"), actor=world.secretary_a, obj=leave, result="refused")
    assert refused["error"]
    assert LeaveRequest.objects.get().state == LeaveRequest.State.APPROVED


def test_an_exemption_and_a_refused_second_one_are_recorded(world):
    url = reverse("rounds:exemption_create", args=[world.round.pk, world.member_a.pk])
    secretary = at(world.secretary_a)
    secretary.post(url, {"reason": "长期外出"})
    exemption = Exemption.objects.get(member=world.member_a)
    check(
        only("exemption_granted", additional_data__result="ok"),
        actor=world.secretary_a,
        obj=exemption,
    )
    secretary.post(url, {"reason": "再免一次"})
    refused = check(
        only("exemption_granted", additional_data__result="refused"),
        actor=world.secretary_a,
        obj=world.member_a,
        result="refused",
    )
    assert refused["round"] == world.round.pk and refused["error"]


# --- Certificates --------------------------------------------------------------------------------


def test_bulk_issue_revoke_and_a_refused_revoke_are_recorded(city):
    training_round = completed_round([city.root], city.member_a, city.member_b)
    trainer = at(city.trainer)
    trainer.post(reverse("issued_certificates:issue"), {"round": training_round.pk})
    check(only("certificates_issue_requested"), actor=city.trainer, obj=training_round)
    issued = check(only("certificates_issued"), actor=city.trainer, obj=training_round)
    certificates = Certificate.objects.filter(round=training_round)
    assert sorted(issued["certificate_ids"]) == sorted(c.pk for c in certificates)
    assert issued["count"] == 2

    certificate = certificates.get(member=city.member_a)
    revoke = reverse("issued_certificates:revoke", args=[certificate.pk])
    trainer.post(revoke, {"reason": "信息有误"})
    certificate.refresh_from_db()
    revoked = check(only("certificate_revoked"), actor=city.trainer, obj=certificate)
    assert revoked["reason"] == "信息有误"
    check(only("certificate_updated"), actor=city.trainer, obj=certificate)

    trainer.post(revoke, {"reason": "再撤一次"})
    check(
        only("certificate_revoked", additional_data__result="refused"),
        actor=city.trainer,
        obj=certificate,
        result="refused",
    )
    trainer.post(reverse("issued_certificates:reissue", args=[certificate.pk]))
    check(only("certificate_reissued"), actor=city.trainer, obj=certificate, result="refused")


# --- Imports -----------------------------------------------------------------------------------


def upload(client, rows):
    data = xlsx([["姓名", "手机号码", "党组织编码"], *rows])
    client.post(
        reverse("members:import_upload", args=["roster"]),
        {"file": SimpleUploadedFile("roster.xlsx", data)},
    )
    return SpreadsheetImport.objects.latest("pk")


def test_an_import_lists_the_members_it_wrote_and_refusals_are_recorded(city):
    secretary = at(city.secretary_a)
    record = upload(
        secretary, [["新人甲", "13700009001", "A-01"], ["王芳芳", "13800000001", "A-01"]]
    )
    apply_url = reverse("members:import_apply", args=[record.pk])
    secretary.post(apply_url)
    record.refresh_from_db()
    data = check(only("roster_import"), actor=city.secretary_a, obj=record)
    new = Member.objects.get(phone="13700009001")
    assert sorted(data["member_ids"]) == sorted([new.pk, city.member_a.pk])
    assert (data["new"], data["changed"]) == (1, 1)

    secretary.post(apply_url)  # a second click
    check(
        only("roster_import", additional_data__result="refused"),
        actor=city.secretary_a,
        obj=record,
        result="refused",
    )

    # A file whose rows became invalid since its check imports nothing, and says so.
    stale = upload(secretary, [["新人乙", "13700009002", "A-01"]])
    Member.objects.filter(pk=city.member_b.pk).update(phone="13700009002")
    secretary.post(reverse("members:import_apply", args=[stale.pk]))
    stale.refresh_from_db()
    assert stale.state == SpreadsheetImport.State.REJECTED
    rejected = check(
        only("roster_import", object_pk=str(stale.pk)),
        actor=city.secretary_a,
        obj=stale,
        result="refused",
    )
    assert rejected["errors"] == 1


# --- Exports -----------------------------------------------------------------------------------


def test_every_export_is_recorded(world):
    trainer = at(world.trainer)
    assert trainer.get(reverse("members:roster_export")).status_code == 200
    check(only("roster_export"), actor=world.trainer, obj=world.trainer)
    response = trainer.get(reverse("rounds:coverage_export", args=[world.round.pk]))
    assert response.status_code == 200
    check(only("coverage_export"), actor=world.trainer, obj=world.round)
    assert trainer.get(reverse("rounds:ledger_org_export"), {"year": 2026}).status_code == 200
    check(only("ledger_export"), actor=world.trainer, obj=world.trainer)


def test_a_certificate_zip_is_recorded(city):
    from certificates import services as certificate_services

    training_round = completed_round([city.root], city.member_a)
    certificate_services.certificates_issue(training_round=training_round, render=False)
    secretary = at(city.secretary_a)
    response = secretary.get(reverse("certificates:round_zip", args=[training_round.pk]))
    assert response.status_code == 200
    b"".join(response.streaming_content)
    data = check(only("certificates_exported"), actor=city.secretary_a, obj=training_round)
    assert data["count"] == 1


# --- Roles -------------------------------------------------------------------------------------


def test_granting_and_revoking_a_role_is_recorded_with_its_admin_access(city):
    trainer = at(city.trainer_a)
    response = trainer.post(
        reverse("org_roles:add"),
        {"login": "13800000001", "role": "trainer", "organization": "A-01"},
    )
    assert response.status_code == 302
    assignment = RoleAssignment.objects.get(user=city.member_a.user)
    check(
        only("roleassignment_created", actor=city.trainer_a), actor=city.trainer_a, obj=assignment
    )
    # Being a trainer means Wagtail admin access: the account's groups changed, recorded too.
    user = city.member_a.user
    added = only("user_updated", object_pk=str(user.pk))
    check(added, actor=city.trainer_a, obj=user)
    assert added.changes["groups"]["operation"] == "add"

    trainer.post(reverse("org_roles:delete", args=[assignment.pk]))
    assert not RoleAssignment.objects.filter(user=city.member_a.user).exists()
    check(only("roleassignment_deleted"), actor=city.trainer_a, obj=assignment)
    removed = records("user_updated", object_pk=str(user.pk))[-1]
    assert removed.changes["groups"]["operation"] == "delete"
    assert removed.actor == city.trainer_a and removed.remote_addr == ADDR


def test_a_secretary_role_records_no_admin_access_change(city):
    at(city.trainer_a).post(
        reverse("org_roles:add"),
        {"login": "13800000001", "role": "secretary", "organization": "A-01"},
    )
    assert records("roleassignment_created", actor=city.trainer_a)
    assert not records("user_updated", object_pk=str(city.member_a.user.pk))


def test_making_someone_a_superuser_is_recorded(city):
    root = get_user_model().objects.create_superuser("root", password=factories.PASSWORD)
    admin = at(root)
    url = reverse("wagtailusers_users:edit", args=[city.trainer_a.pk])
    form = admin.get(url).context["form"]
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name not in ("groups", "is_superuser", "password")
    }
    data.update(
        {
            "email": "trainer_a@example.cn",
            "first_name": "区",
            "last_name": "培训员",
            "is_active": "on",
            "is_superuser": "on",
            "groups": [g.pk for g in city.trainer_a.groups.all()],
            "password1": "",
            "password2": "",
        }
    )
    response = admin.post(url, data)
    assert response.status_code == 302, response.context["form"].errors
    city.trainer_a.refresh_from_db()
    assert city.trainer_a.is_superuser
    entry = only("user_updated", actor=root)
    check(entry, actor=root, obj=city.trainer_a)
    assert entry.changes["is_superuser"] == ["False", "True"]


# --- Bulk actions on members -------------------------------------------------------------------


def test_reminders_list_who_was_reminded_manual_and_automatic(world):
    halfway = factories.member(world.branch_a, name="孙丽")
    with time_machine.travel(builders.aware(2026, 11, 12, 10, 0), tick=False):
        at(world.secretary_a).post(
            reverse("rounds:remind", args=[world.round.pk]), {"org": world.branch_a.pk}
        )
        entry = only("reminders_sent")
        assert entry.timestamp == builders.aware(2026, 11, 12, 10, 0)
        assert (entry.actor, entry.remote_addr) == (world.secretary_a, ADDR)
        assert entry.object_pk == str(world.round.pk)
        assert entry.additional_data["result"] == "ok"
    assert sorted(entry.additional_data["member_ids"]) == sorted([world.member_a.pk, halfway.pk])
    assert set(Reminder.objects.values_list("member_id", flat=True)) == {
        world.member_a.pk,
        halfway.pk,
    }

    # The automatic run three days before the deadline: the system is the actor.
    with time_machine.travel(builders.aware(2026, 12, 29, 10, 0), tick=False):
        reminders_due()
    automatic = records("reminders_sent", additional_data__automatic=True)
    assert len(automatic) == 1
    assert automatic[0].actor is None and automatic[0].remote_addr is None
    assert set(automatic[0].additional_data["member_ids"]) == {
        world.member_a.pk,
        halfway.pk,
        world.member_b.pk,
    }


def test_a_reminder_at_night_is_recorded_as_scheduled_or_refused(world, settings):
    night = builders.aware(2026, 11, 12, 22, 30)
    remind = reverse("rounds:remind", args=[world.round.pk])
    with time_machine.travel(night, tick=False):
        # The immediate task backend cannot run it later: nothing happens, and the record says so.
        at(world.secretary_a).post(remind, {"org": world.branch_a.pk})
        settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
        at(world.secretary_a).post(remind, {"org": world.branch_a.pk})
    refused, scheduled = records("reminders_scheduled")
    assert refused.additional_data["result"] == "refused" and refused.additional_data["error"]
    assert scheduled.additional_data["result"] == "scheduled"
    for entry in (refused, scheduled):
        assert (entry.actor, entry.remote_addr, entry.timestamp) == (world.secretary_a, ADDR, night)


def test_deactivating_members_and_issuing_codes_list_the_members(city):
    extra = factories.member(city.branch_a, name="周杰", password=None)
    newcomer = factories.member(city.branch_a, name="吴昊", password=None)
    secretary = at(city.secretary_a)
    secretary.post(
        reverse("members:activation_slips"), {"member": [city.member_a.pk, extra.pk, newcomer.pk]}
    )
    codes = check(
        only("activation_codes_issued"), actor=city.secretary_a, obj=city.member_a.organization
    )
    assert sorted(codes["member_ids"]) == sorted([newcomer.pk, extra.pk])
    # member_a's account is in use: no slip, and the record says who was refused.
    assert codes["refused_member_ids"] == [city.member_a.pk]

    # The branch-B member is outside the secretary's subtree: not deactivated, not listed.
    secretary.post(
        reverse("members:deactivate"), {"member": [city.member_a.pk, extra.pk, city.member_b.pk]}
    )
    data = check(only("members_deactivated"), actor=city.secretary_a, obj=city.secretary_a)
    assert sorted(data["member_ids"]) == sorted([city.member_a.pk, extra.pk])
    assert Member.objects.get(pk=city.member_b.pk).is_active


def test_password_resets_refusals_activations_and_changes_are_recorded(city):
    secretary = at(city.secretary_a)
    url = reverse("members:member_password_reset", args=[city.member_a.pk])
    response = secretary.post(url, {"confirm": "on"})
    ((_member, code),) = response.context["issued"]
    data = check(
        only("password_reset", additional_data__result="ok"),
        actor=city.secretary_a,
        obj=city.member_a,
    )
    assert data["code"] and data["sessions_ended"] == 0
    check(only("password_reset_notified"), actor=city.secretary_a, obj=city.member_a)
    # Outside her subtree: a 404 for her, a record for the log.
    secretary.post(
        reverse("members:member_password_reset", args=[city.member_b.pk]), {"confirm": "on"}
    )
    refused = check(
        only("password_reset", additional_data__result="refused"),
        actor=city.secretary_a,
        obj=city.member_b,
        result="refused",
    )
    assert refused["error"]
    # The member sets a new password with the slip, then changes it.
    member = at(None)
    new = "Xin-mi-ma-2026"
    member.post(
        reverse("members:activate"),
        {"phone": city.member_a.phone, "code": code, "password1": new, "password2": new},
    )
    check(only("password_set"), actor=city.member_a.user, obj=city.member_a)
    member.post(
        reverse("members:password_change"),
        {"old_password": new, "new_password1": "Noch-mal-2026", "new_password2": "Noch-mal-2026"},
    )
    check(only("password_changed"), actor=city.member_a.user, obj=city.member_a.user)


def test_closing_a_round_is_recorded_from_the_request_to_the_frozen_figures(world):
    url = reverse("training_rounds:close", args=[world.round.pk])
    assert at(world.trainer).post(url).status_code == 302
    world.round.refresh_from_db()
    assert world.round.state == Round.State.CLOSED
    check(only("round_close_requested"), actor=world.trainer, obj=world.round)
    closed = check(only("round_closed"), actor=world.trainer, obj=world.round)
    assert closed["nodes"] >= 1


# --- Logins and the source address -------------------------------------------------------------


def test_login_records_the_address_the_trusted_proxy_names(city, settings):
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"
    browser = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_REAL_IP="203.0.113.77")
    login = reverse("members:login")
    browser.post(login, {"username": "sec_a", "password": factories.PASSWORD})
    check(only("login"), actor=city.secretary_a, obj=city.secretary_a, addr="203.0.113.77")
    # Model changes in a request carry it as well (the audit middleware).
    at(city.trainer_a, addr="10.0.0.2", HTTP_X_REAL_IP="203.0.113.78").post(
        reverse("org_roles:add"),
        {"login": "13800000001", "role": "secretary", "organization": "A-01"},
    )
    assert only("roleassignment_created", actor=city.trainer_a).remote_addr == "203.0.113.78"


def test_without_a_trusted_proxy_forwarded_headers_are_not_believed(city, settings):
    settings.RATELIMIT_IP_META_KEY = None
    browser = Client(REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="1.2.3.4")
    browser.post(reverse("members:login"), {"username": "sec_a", "password": "wrong"})
    check(
        only("login_failed"), actor=None, obj=city.secretary_a, result="failed", addr="192.0.2.10"
    )
    at(
        city.trainer_a, addr="192.0.2.11", HTTP_X_FORWARDED_FOR="1.2.3.4", HTTP_X_FORWARDED_PORT="4"
    ).post(
        reverse("org_roles:add"),
        {"login": "13800000001", "role": "secretary", "organization": "A-01"},
    )
    entry = only("roleassignment_created", actor=city.trainer_a)
    assert (entry.remote_addr, entry.remote_port) == ("192.0.2.11", None)


def test_a_nonsense_trusted_header_falls_back_to_the_connection(city, settings):
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"
    Client(REMOTE_ADDR="192.0.2.12", HTTP_X_REAL_IP="not-an-address").post(
        reverse("members:login"), {"username": "sec_a", "password": factories.PASSWORD}
    )
    assert only("login").remote_addr == "192.0.2.12"


def test_records_outside_a_request_have_no_address_and_name_the_system(world):
    with time_machine.travel(NOW + timedelta(days=60), tick=False):
        round_services.rounds_close_due(today=date(2027, 1, 2))
    entry = only("round_closed")
    assert (entry.actor, entry.remote_addr) == (None, None)
    assert entry.additional_data["result"] == "ok"

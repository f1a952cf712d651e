"""Reminders: the secretary's one action, the automatic run, limits, quiet hours, digests."""

import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from auditlog.models import LogEntry
from django.core.management import call_command
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from core.sms import BaseSmsBackend, ConsoleBackend, SmsMessage, get_sms_backend
from members import services as member_services
from members.models import Role
from rounds import services
from rounds.models import Notice, Reminder, Round
from rounds.reminders import (
    digest_send,
    is_quiet_time,
    quiet_time_end,
    reminders_due,
    reminders_send,
)
from rounds.tasks import reminders_daily_ensure_scheduled, reminders_daily_task
from tests import factories

from . import builders

SHANGHAI = ZoneInfo("Asia/Shanghai")
DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
DAILY = "rounds.tasks.reminders_daily_task"
SEND = "rounds.tasks.reminders_send_deferred_task"


def at(*args):
    return datetime(*args, tzinfo=SHANGHAI)


class RecordingBackend(BaseSmsBackend):
    """A deployment's own SMS backend, as the setting names it."""

    sent: list[SmsMessage] = []

    def send_messages(self, messages):
        RecordingBackend.sent.extend(messages)
        return len(messages)


@pytest.fixture(autouse=True)
def _recording_sms(settings):
    settings.LUNXUN_SMS_BACKEND = "tests.rounds.test_reminders.RecordingBackend"
    RecordingBackend.sent = []


def with_email(member, address):
    member.user.email = address
    member.user.save(update_fields=["email"])
    return member


@pytest.fixture
def q4(city):
    """Round Q4 over the city, closing 31 December; branch A's members in every state."""
    training_round = builders.training_round([city.root])
    first, second = training_round.lessons.order_by("path")
    c = city
    c.round = training_round
    c.first, c.second = first, second
    with_email(c.member_a, "wangfang@example.cn")  # not started
    c.halfway = with_email(factories.member(c.branch_a, name="孙丽"), "sunli@example.cn")
    builders.complete_online(c.halfway, first)
    c.done = with_email(factories.member(c.branch_a, name="张伟"), "zhangwei@example.cn")
    builders.complete_online(c.done, first)
    builders.complete_online(c.done, second)
    c.exempt = with_email(factories.member(c.branch_a, name="赵敏"), "zhaomin@example.cn")
    services.exemption_grant(
        member=c.exempt, training_round=training_round, reason="长期病假", user=c.trainer
    )
    c.no_email = factories.member(c.branch_a, name="周杰")
    with_email(c.member_b, "liqiang@example.cn")
    return c


def reminded(training_round=None, day=None):
    rows = Reminder.objects.all()
    if training_round is not None:
        rows = rows.filter(round=training_round)
    if day is not None:
        rows = rows.filter(sent_on=day)
    return set(rows.values_list("member__name", flat=True))


def run_ready_tasks(limit=10):
    """What the database worker does with each task that is due: claim, run, record.

    Returns the paths of our tasks that ran (Wagtail queues its own, which run too).
    """
    ran = []
    for _attempt in range(limit):
        row = DBTaskResult.objects.ready().first()
        if row is None:
            break
        row.claim("test-worker")
        result = row.task_result
        row.set_successful(row.task.call(*result.args, **result.kwargs))
        ran.append(row.task_path)
    return [path for path in ran if path.startswith("rounds.")]


# --- The secretary's action --------------------------------------------------------------------


def test_secretary_reminds_only_members_of_their_subtree_who_are_not_done(q4, mailoutbox, settings):
    settings.LUNXUN_SITE_URL = "https://lunxun.example.cn"
    with time_machine.travel(at(2026, 12, 29, 10, 0), tick=False):
        result = reminders_send(training_round=q4.round, node=q4.branch_a, user=q4.secretary_a)
    assert reminded() == {"王芳", "孙丽", "周杰"}
    assert (result.reminded, result.already, result.quiet) == (3, 0, False)
    assert sorted(m.to[0] for m in mailoutbox) == ["sunli@example.cn", "wangfang@example.cn"]
    sunli = next(m for m in mailoutbox if m.to == ["sunli@example.cn"])
    # What is missing, by name, and the deadline.
    assert "第二课" in sunli.body and "第一课" not in sunli.body.split("\n\n")[0]
    assert "12月31日" in sunli.body and "2026年第四季度专题轮训" in sunli.body
    assert "https://lunxun.example.cn/" in sunli.body
    assert Notice.objects.filter(user=q4.halfway.user, round=q4.round).count() == 1
    assert not Notice.objects.filter(user__in=[q4.done.user, q4.exempt.user]).exists()
    assert {m.phone for m in RecordingBackend.sent} == {
        q4.member_a.phone,
        q4.halfway.phone,
        q4.no_email.phone,
    }
    assert (result.notices, result.emails, result.sms) == (3, 2, 3)


def test_second_click_the_same_day_sends_nothing_and_the_next_day_sends_again(q4, mailoutbox):
    with time_machine.travel(at(2026, 12, 29, 10, 0), tick=False):
        reminders_send(training_round=q4.round, node=q4.branch_a, user=q4.secretary_a)
        again = reminders_send(training_round=q4.round, node=q4.branch_a, user=q4.secretary_a)
    assert (again.reminded, again.already) == (0, 3)
    assert len(mailoutbox) == 2 and len(RecordingBackend.sent) == 3
    with time_machine.travel(at(2026, 12, 29, 20, 59), tick=False):
        # A trainer higher up: the limit is per member and day, whoever asks.
        later = reminders_send(training_round=q4.round, node=q4.root, user=q4.trainer)
    assert (later.reminded, later.already) == (1, 3)  # only 李强 in branch B is new
    with time_machine.travel(at(2026, 12, 30, 9, 0), tick=False):
        next_day = reminders_send(training_round=q4.round, node=q4.branch_a, user=q4.secretary_a)
    assert (next_day.reminded, next_day.already) == (3, 0)
    assert reminded(day=date(2026, 12, 30)) == {"王芳", "孙丽", "周杰"}
    assert len(mailoutbox) == 2 + 1 + 2


def test_one_reminder_a_day_whatever_the_round(q4):
    other = builders.training_round([q4.branch_a], title="党史专题", closes_on=date(2026, 12, 30))
    with time_machine.travel(at(2026, 12, 29, 10, 0), tick=False):
        first = reminders_send(training_round=other, node=q4.branch_a, user=q4.secretary_a)
        result = reminders_send(training_round=q4.round, node=q4.branch_a, user=q4.secretary_a)
    assert first.reminded == 5  # the whole branch: nobody has started "other"
    assert (result.reminded, result.already) == (0, 3)
    assert reminded(q4.round) == set()


def test_member_on_leave_is_reminded_of_the_make_up_deadline(q4, mailoutbox):
    leave = services.leave_request(member=q4.member_a, training_round=q4.round, reason="出差")
    services.leave_decide(leave=leave, approve=True, user=q4.secretary_a)
    with time_machine.travel(at(2027, 1, 5, 10, 0), tick=False):
        services.rounds_close_due()
        q4.round.refresh_from_db()
        assert q4.round.state == Round.State.CLOSED
        result = reminders_send(training_round=q4.round, node=q4.branch_a, user=q4.secretary_a)
    # After the round closed, only the make-up is still due.
    assert reminded() == {"王芳"} and result.reminded == 1
    assert "1月31日" in mailoutbox[0].body
    assert "1月31日" in RecordingBackend.sent[0].text


def test_member_without_email_gets_a_notice_and_a_text_but_no_email(q4, mailoutbox):
    with time_machine.travel(at(2026, 12, 29, 10, 0), tick=False):
        reminders_send(training_round=q4.round, node=q4.branch_a, user=q4.secretary_a)
    row = Reminder.objects.get(member=q4.no_email)
    assert row.channels == ["notice", "sms"]
    assert Reminder.objects.get(member=q4.member_a).channels == ["notice", "email", "sms"]
    assert Notice.objects.filter(user=q4.no_email.user).count() == 1
    assert q4.no_email.phone in {m.phone for m in RecordingBackend.sent}
    assert len(mailoutbox) == 2 and all(m.to[0] for m in mailoutbox)


def test_text_message_is_short_and_names_only_the_member(q4, settings):
    settings.LUNXUN_SITE_URL = "https://lunxun.example.cn"
    with time_machine.travel(at(2026, 12, 29, 10, 0), tick=False):
        reminders_send(training_round=q4.round, node=q4.branch_a, user=q4.secretary_a)
    text = next(m.text for m in RecordingBackend.sent if m.phone == q4.halfway.phone)
    assert "孙丽" in text and "12月31日" in text and "https://lunxun.example.cn" in text
    assert "第二课" not in text and q4.halfway.phone not in text
    assert "王芳" not in text
    # A provider sends its approved template filled with these, never the free text.
    message = next(m for m in RecordingBackend.sent if m.phone == q4.halfway.phone)
    assert message.purpose == "reminder"
    assert message.params["name"] == "孙丽" and "12月31日" in message.params["deadline"]
    assert set(message.params) == {"name", "round", "deadline"}


# --- Quiet hours -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment, quiet",
    [((20, 59), False), ((21, 0), True), ((23, 30), True), ((7, 59), True), ((8, 0), False)],
)
def test_quiet_hours_are_local_time(moment, quiet):
    assert is_quiet_time(at(2026, 12, 29, *moment)) is quiet


def test_quiet_hours_end_at_eight_the_same_or_the_next_morning():
    assert quiet_time_end(at(2026, 12, 31, 22, 30)) == at(2027, 1, 1, 8, 0)
    assert quiet_time_end(at(2027, 1, 1, 6, 15)) == at(2027, 1, 1, 8, 0)
    assert quiet_time_end(at(2027, 1, 1, 12, 0)) == at(2027, 1, 1, 12, 0)


def test_at_night_nothing_is_sent_and_the_action_runs_at_eight(q4, settings, mailoutbox):
    settings.TASKS = DB_TASKS
    with time_machine.travel(at(2026, 12, 29, 22, 30), tick=False):
        result = reminders_send(training_round=q4.round, node=q4.branch_a, user=q4.secretary_a)
        assert run_ready_tasks() == []  # not before eight
    assert (result.quiet, result.pending, result.reminded) == (True, 3, 0)
    assert result.scheduled_for == at(2026, 12, 30, 8, 0)
    assert "08:00" in result.message()
    assert not Reminder.objects.exists() and not mailoutbox and not RecordingBackend.sent
    task = DBTaskResult.objects.get(status="READY", task_path=SEND)
    assert task.run_after == at(2026, 12, 30, 8, 0)
    with time_machine.travel(at(2026, 12, 30, 8, 0), tick=False):
        assert run_ready_tasks() == [SEND]
    assert reminded(day=date(2026, 12, 30)) == {"王芳", "孙丽", "周杰"}
    assert len(mailoutbox) == 2
    sent = LogEntry.objects.get(additional_data__event="reminders_sent")
    assert sent.actor == q4.secretary_a and sent.additional_data["reminded"] == 3


def test_scheduled_action_is_dropped_when_the_secretary_lost_the_role(q4, settings):
    settings.TASKS = DB_TASKS
    with time_machine.travel(at(2026, 12, 29, 23, 0), tick=False):
        reminders_send(training_round=q4.round, node=q4.branch_a, user=q4.secretary_a)
    q4.secretary_a.role_assignments.all().delete()
    with time_machine.travel(at(2026, 12, 30, 8, 0), tick=False):
        assert run_ready_tasks() == [SEND]
    assert not Reminder.objects.exists()


def test_at_night_without_a_deferring_task_backend_nothing_is_scheduled(q4):
    # The unit-test profile runs tasks immediately: it cannot hold work until the morning.
    with time_machine.travel(at(2026, 12, 29, 22, 30), tick=False):
        result = reminders_send(training_round=q4.round, node=q4.branch_a, user=q4.secretary_a)
    assert result.quiet and result.scheduled_for is None
    assert result.resume_at == at(2026, 12, 30, 8, 0)
    assert "08:00" in result.message()
    assert not Reminder.objects.exists() and not RecordingBackend.sent


# --- The automatic run -------------------------------------------------------------------------


@pytest.fixture
def rounds(q4):
    c = q4
    c.far = builders.training_round([c.root], title="远期轮训", closes_on=date(2027, 1, 15))
    c.draft = builders.training_round(
        [c.root], title="草稿轮训", closes_on=date(2026, 12, 30), state=Round.State.DRAFT
    )
    c.closed = builders.training_round(
        [c.branch_b],
        title="三季度轮训",
        opens_on=date(2026, 9, 1),
        closes_on=date(2026, 12, 20),
        makeup_deadline=date(2027, 1, 1),
    )
    c.on_leave = factories.member(c.branch_b, name="钱勇")
    leave = services.leave_request(member=c.on_leave, training_round=c.closed, reason="外出务工")
    services.leave_decide(leave=leave, approve=True, user=c.secretary_b)
    services.round_close(training_round=c.closed)
    # Working away: exempt from Q4, but owes the make-up of the round he took leave from.
    services.exemption_grant(
        member=c.on_leave, training_round=c.round, reason="外出务工", user=c.trainer
    )
    return c


def test_automatic_run_reminds_only_for_rounds_near_their_deadline(rounds, mailoutbox):
    with time_machine.travel(at(2026, 12, 29, 9, 0), tick=False):
        result = reminders_due()
    # Q4 closes in two days: everyone not done; the closed round: only the make-up owed.
    assert reminded(rounds.round) == {"王芳", "孙丽", "周杰", "李强"}
    assert reminded(rounds.closed) == {"钱勇"}
    assert reminded(rounds.far) == set() and reminded(rounds.draft) == set()
    assert Reminder.objects.filter(sent_by__isnull=True).count() == 5
    # 李强 has not started the closed round either: too late for that, so not even counted.
    assert (result.rounds, result.reminded, result.already) == (2, 5, 0)


def test_member_in_two_rounds_hears_of_the_nearest_deadline_first(q4):
    other = builders.training_round([q4.branch_a], title="党史专题", closes_on=date(2026, 12, 30))
    with time_machine.travel(at(2026, 12, 29, 9, 0), tick=False):
        reminders_due()
    assert reminded(other) == {"王芳", "孙丽", "周杰", "张伟", "赵敏"}
    assert reminded(q4.round) == {"李强"}
    with time_machine.travel(at(2026, 12, 30, 9, 0), tick=False):
        reminders_due()
    assert reminded(q4.round, date(2026, 12, 30)) == {"王芳", "孙丽", "周杰"}
    assert reminded(other, date(2026, 12, 30)) == set()


def test_automatic_run_skips_rounds_outside_the_window(rounds):
    with time_machine.travel(at(2026, 12, 27, 9, 0), tick=False):  # Q4 closes in four days
        result = reminders_due()
    assert result.reminded == 0 and not Reminder.objects.exists()


def test_automatic_reminder_goes_once_per_deadline_not_every_day(rounds):
    with time_machine.travel(at(2026, 12, 29, 9, 0), tick=False):
        reminders_due()
        again = reminders_due()
    assert again.reminded == 0
    with time_machine.travel(at(2026, 12, 30, 9, 0), tick=False):
        next_day = reminders_due()
    assert next_day.reminded == 0
    assert Reminder.objects.count() == 5


def test_automatic_run_does_nothing_in_quiet_hours(rounds):
    with time_machine.travel(at(2026, 12, 29, 21, 30), tick=False):
        result = reminders_due()
    assert result.quiet and not Reminder.objects.exists()


def test_leave_members_of_an_open_round_wait_for_their_make_up_window(q4):
    leave = services.leave_request(member=q4.member_a, training_round=q4.round, reason="出差")
    services.leave_decide(leave=leave, approve=True, user=q4.secretary_a)
    with time_machine.travel(at(2026, 12, 29, 9, 0), tick=False):
        reminders_due()
    assert "王芳" not in reminded()
    with time_machine.travel(at(2027, 1, 29, 9, 0), tick=False):
        services.rounds_close_due()
        reminders_due()
    assert reminded(day=date(2027, 1, 29)) == {"王芳"}


# --- SMS backends ------------------------------------------------------------------------------


def test_console_backend_writes_masked_numbers(capsys, settings, q4):
    settings.LUNXUN_SMS_BACKEND = "core.sms.ConsoleBackend"
    assert isinstance(get_sms_backend(), ConsoleBackend)
    with time_machine.travel(at(2026, 12, 29, 10, 0), tick=False):
        reminders_send(training_round=q4.round, node=q4.branch_a, user=q4.secretary_a)
    out = capsys.readouterr().out
    assert out.count("SMS to ") == 3
    assert "138****0001" in out and "13800000001" not in out
    assert "王芳" in out


def test_configured_backend_path_is_honoured(settings):
    settings.LUNXUN_SMS_BACKEND = "tests.rounds.test_reminders.RecordingBackend"
    backend = get_sms_backend()
    assert isinstance(backend, RecordingBackend)
    assert backend.send_messages([SmsMessage(phone="13800000009", text="hi")]) == 1
    assert RecordingBackend.sent == [SmsMessage(phone="13800000009", text="hi")]


# --- Digest ------------------------------------------------------------------------------------


def test_digest_lists_a_secretarys_missing_members_with_masked_phones(q4, mailoutbox):
    with_email(q4.member_a, "")  # not needed for the digest
    q4.secretary_a.email = "sec_a@example.cn"
    q4.secretary_a.save()
    with time_machine.travel(at(2026, 12, 29, 9, 0), tick=False):
        sent = digest_send()
        again = digest_send()
    assert sent == 2 and again == 0  # sec_a and sec_b (notice only: no address)
    (email,) = mailoutbox
    assert email.to == ["sec_a@example.cn"]
    assert "3" in email.body.splitlines()[0]
    for name in ("王芳", "孙丽", "周杰"):
        assert name in email.body
    assert "张伟" not in email.body and "赵敏" not in email.body and "李强" not in email.body
    assert "138****0001" in email.body and "13800000001" not in email.body
    notice_b = Notice.objects.get(user=q4.secretary_b)
    assert "李强" in notice_b.body and "王芳" not in notice_b.body
    assert notice_b.url.endswith(f"?org={q4.branch_b.pk}") or notice_b.url == "/"


def test_no_digest_far_from_the_deadline(q4, mailoutbox):
    with time_machine.travel(at(2026, 12, 20, 9, 0), tick=False):
        assert digest_send() == 0
    assert not Notice.objects.exists()


# --- The daily task ----------------------------------------------------------------------------


def test_daily_task_runs_the_job_and_books_itself_once_for_tomorrow(rounds, settings):
    settings.TASKS = DB_TASKS
    with time_machine.travel(at(2026, 12, 28, 20, 0), tick=False):
        assert reminders_daily_ensure_scheduled() is not None
        assert reminders_daily_ensure_scheduled() is None
        out = io.StringIO()
        call_command("send_reminders", "--schedule", stdout=out)
        assert "already scheduled" in out.getvalue()
    (first,) = DBTaskResult.objects.filter(status="READY", task_path=DAILY)
    assert first.run_after == at(2026, 12, 29, 9, 0)
    assert reminders_daily_task.module_path == DAILY
    with time_machine.travel(at(2026, 12, 29, 9, 0), tick=False):
        assert run_ready_tasks() == [DAILY]
        assert run_ready_tasks() == []
    assert Reminder.objects.count() == 5
    (pending,) = DBTaskResult.objects.filter(status="READY", task_path=DAILY)
    assert pending.run_after == at(2026, 12, 30, 9, 0)
    assert DBTaskResult.objects.filter(status="SUCCESSFUL", task_path=DAILY).count() == 1
    with time_machine.travel(at(2027, 1, 1, 9, 30), tick=False):
        # The worker was down for two days: one catch-up run, then one booking again.
        assert run_ready_tasks() == [DAILY]
    (pending,) = DBTaskResult.objects.filter(status="READY", task_path=DAILY)
    assert pending.run_after == at(2027, 1, 2, 9, 0)
    rounds.round.refresh_from_db()
    assert rounds.round.state == Round.State.CLOSED  # the daily job also closes rounds


def test_send_reminders_command_runs_the_daily_job_now(rounds):
    with time_machine.travel(at(2026, 12, 29, 9, 0), tick=False):
        out = io.StringIO()
        call_command("send_reminders", stdout=out)
    assert "members reminded 5 (in 2 rounds)" in out.getvalue()
    assert Reminder.objects.count() == 5
    assert Notice.objects.filter(user=rounds.secretary_a).exists()


def test_send_reminders_schedule_without_a_deferring_backend_says_so():
    out = io.StringIO()
    call_command("send_reminders", "--schedule", stdout=out)
    assert "cannot defer" in out.getvalue()


def test_send_reminders_command_in_quiet_hours_sends_nothing(rounds):
    with time_machine.travel(at(2026, 12, 29, 23, 0), tick=False):
        out = io.StringIO()
        call_command("send_reminders", stdout=out)
    assert "Quiet hours" in out.getvalue()
    assert not Reminder.objects.exists() and not Notice.objects.exists()


def test_daily_task_under_the_immediate_backend_does_not_loop(rounds):
    with time_machine.travel(at(2026, 12, 29, 9, 0), tick=False):
        result = reminders_daily_task.enqueue()
    assert result.status == "SUCCESSFUL"
    assert result.return_value["reminded"] == 5


# --- Views -------------------------------------------------------------------------------------


def remind_url(q4):
    return reverse("rounds:remind", args=[q4.round.pk])


def test_remind_view_reminds_and_reports_counts(q4, client_for, mailoutbox):
    with time_machine.travel(at(2026, 12, 29, 10, 0), tick=False):
        client = client_for(q4.secretary_a)
        response = client.post(
            remind_url(q4), {"org": q4.branch_a.pk, "next": "/rounds/"}, follow=False
        )
        assert response.status_code == 302 and response["Location"] == "/rounds/"
        response = client.post(remind_url(q4), {"org": q4.branch_a.pk}, follow=True)
    texts = [str(m) for m in response.context["messages"]]
    assert any("3" in text for text in texts)
    assert reminded() == {"王芳", "孙丽", "周杰"}
    entries = LogEntry.objects.filter(additional_data__event="reminders_sent").order_by("pk")
    assert [e.additional_data["reminded"] for e in entries] == [3, 0]
    assert [e.additional_data["already"] for e in entries] == [0, 3]
    assert entries[0].actor == q4.secretary_a
    assert entries[0].additional_data["organization"] == q4.branch_a.pk


def test_remind_view_refuses_an_external_next(q4, client_for):
    with time_machine.travel(at(2026, 12, 29, 10, 0), tick=False):
        response = client_for(q4.secretary_a).post(
            remind_url(q4), {"org": q4.branch_a.pk, "next": "https://evil.example/"}
        )
    assert response.status_code == 302 and "evil" not in response["Location"]


def test_secretary_of_branch_b_cannot_remind_branch_a(q4, client_for):
    with time_machine.travel(at(2026, 12, 29, 10, 0), tick=False):
        client = client_for(q4.secretary_b)
        assert client.post(remind_url(q4), {"org": q4.branch_a.pk}).status_code == 404
        assert client.post(remind_url(q4), {"org": q4.root.pk}).status_code == 404
        assert client.post(remind_url(q4), {}).status_code == 404
    assert not Reminder.objects.exists()


def test_round_outside_the_secretarys_tree_is_404(q4, client_for):
    theirs = builders.training_round([q4.county_a], title="城关区专题")
    with time_machine.travel(at(2026, 12, 29, 10, 0), tick=False):
        client = client_for(q4.secretary_b)
        response = client.post(reverse("rounds:remind", args=[theirs.pk]), {"org": q4.branch_b.pk})
        # The same secretary, their own round: allowed.
        own = client.post(remind_url(q4), {"org": q4.branch_b.pk})
    assert own.status_code == 302 and reminded() == {"李强"}
    assert response.status_code == 404


def test_operator_and_member_cannot_remind(q4, client_for):
    with time_machine.travel(at(2026, 12, 29, 10, 0), tick=False):
        for user in (q4.operator_a, q4.member_a.user):
            response = client_for(user).post(remind_url(q4), {"org": q4.branch_a.pk})
            assert response.status_code == 404
    assert not Reminder.objects.exists()


def test_remind_needs_post(q4, client_for):
    response = client_for(q4.secretary_a).get(remind_url(q4), {"org": q4.branch_a.pk})
    assert response.status_code == 405
    assert not Reminder.objects.exists()


def test_draft_round_cannot_be_reminded(q4, client_for):
    draft = builders.training_round([q4.root], title="草稿", state=Round.State.DRAFT)
    response = client_for(q4.trainer).post(
        reverse("rounds:remind", args=[draft.pk]), {"org": q4.branch_a.pk}
    )
    assert response.status_code == 404


def test_remind_view_at_night_says_when_it_will_go_out(q4, client_for, settings):
    settings.TASKS = DB_TASKS
    with time_machine.travel(at(2026, 12, 29, 22, 30), tick=False):
        response = client_for(q4.secretary_a).post(
            remind_url(q4), {"org": q4.branch_a.pk}, follow=True
        )
    (message,) = [str(m) for m in response.context["messages"]]
    assert "08:00" in message and "3" in message
    assert not Reminder.objects.exists()
    assert DBTaskResult.objects.filter(status="READY", task_path=SEND).count() == 1
    entry = LogEntry.objects.get(additional_data__event="reminders_scheduled")
    assert entry.additional_data["pending"] == 3


# --- Notices -----------------------------------------------------------------------------------


def test_member_reads_their_notices_newest_first_and_marks_them_read(q4, client_for):
    user = q4.member_a.user
    with time_machine.travel(at(2026, 12, 28, 10, 0), tick=False):
        Notice.objects.create(user=user, title="较早的通知")
    with time_machine.travel(at(2026, 12, 29, 10, 0), tick=False):
        Notice.objects.create(user=user, title="最新的通知", url="/rounds/")
    Notice.objects.create(user=q4.member_b.user, title="别人的通知")
    client = client_for(user)
    response = client.get(reverse("rounds:notices"))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("最新的通知") < html.index("较早的通知")
    assert "别人的通知" not in html
    assert client.post(reverse("rounds:notices_read")).status_code == 302
    assert not Notice.objects.filter(user=user, read_at__isnull=True).exists()
    assert Notice.objects.filter(user=q4.member_b.user, read_at__isnull=True).exists()


def test_notices_need_login(client):
    response = client.get(reverse("rounds:notices"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_unread_notice_count_tag(q4):
    user = q4.member_a.user
    Notice.objects.create(user=user, title="一")
    Notice.objects.create(user=user, title="二")
    Notice.objects.create(user=user, title="三", read_at=at(2026, 12, 1, 9, 0))
    request = RequestFactory().get("/")
    request.user = user
    template = Template(
        "{% load rounds_tags %}{% unread_notice_count as n %}[{{ n }}]{% unread_notice_count %}"
    )
    assert template.render(Context({"request": request})) == "[2]2"


def test_secretary_role_is_required_at_the_node_not_only_somewhere(q4, client_for):
    # A secretary of branch B who is also an operator of branch A still cannot remind A.
    member_services.role_assign(user=q4.secretary_b, role=Role.OPERATOR, organization=q4.branch_a)
    with time_machine.travel(at(2026, 12, 29, 10, 0), tick=False):
        response = client_for(q4.secretary_b).post(remind_url(q4), {"org": q4.branch_a.pk})
    assert response.status_code == 404

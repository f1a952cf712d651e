"""Site terminals: registering and revoking, the package a terminal downloads, and the records it
kept offline, synced with one answer each (rounds/terminals.py)."""

import base64
import hashlib
import hmac
import json
import uuid
from datetime import timedelta

import pytest
import time_machine
from auditlog.models import LogEntry
from django.urls import reverse

from rounds import services, terminals
from rounds.models import Attendance, Participation, Terminal, TerminalRecord

from .. import factories
from . import builders

NOW = builders.aware(2026, 11, 12, 9, 5)


@pytest.fixture
def site(city, settings, tmp_path):
    """A round over the city, a session at branch A (its two lessons' 360p files on disk), a
    sitting now, and a terminal registered for branch A and claimed."""
    settings.MEDIA_ROOT = tmp_path
    training_round = builders.training_round([city.root])
    session = builders.session(training_round, city.branch_a)
    for n, lesson in enumerate(training_round.lessons.order_by("pk")):
        video = lesson.video
        video.output_prefix = f"videos/hls/v{n}"
        video.save(update_fields=["output_prefix"])
        rung = tmp_path / video.output_prefix / "360p"
        rung.mkdir(parents=True)
        (rung / "index.m3u8").write_text(
            "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nseg_000.ts\n#EXTINF:4.0,\n"
            "seg_001.ts\n#EXT-X-ENDLIST\n"
        )
        (rung / "seg_000.ts").write_bytes(b"\x47" * 1880)
        (rung / "seg_001.ts").write_bytes(b"\x47" * 940)
    sitting = builders.sitting(session)
    terminal = terminals.terminal_register(
        name="幸福社区活动室", host=city.branch_a, user=city.trainer
    )
    terminals.terminal_claim(terminal=terminal, user=city.operator_a)
    terminal.refresh_from_db()
    return city, training_round, sitting, terminal


def record(terminal, sitting_id, *, secret=None, at=NOW, **fields):
    """A record as terminal.js makes it: a fresh UUID, the time in ms, signed."""
    data = {
        "uuid": str(uuid.uuid4()),
        "sitting": sitting_id,
        "at": int(at.timestamp() * 1000),
        **fields,
    }
    data["sig"] = terminals.record_sign(secret=secret or terminal.secret, record=data)
    return data


def roll_call(terminal, sitting, member, status="present", **kwargs):
    return record(terminal, sitting.pk, kind="roll_call", member=member.pk, status=status, **kwargs)


def personal(terminal, sitting, member, **kwargs):
    code = services.personal_code(sitting=sitting, member=member)
    return record(terminal, sitting.pk, kind="personal_code", code=code, **kwargs)


def sync(client, terminal, records):
    return client.post(
        reverse("rounds:terminal_sync", args=[terminal.pk]),
        data=json.dumps({"records": records}),
        content_type="application/json",
    )


def reasons(response):
    assert response.status_code == 200, response.content
    return [(r["result"], r["reason"]) for r in response.json()["results"]]


# --- Registering, claiming, revoking ---------------------------------------------------------


def test_trainer_registers_and_revokes_a_terminal_and_both_are_audited(city, client_for):
    client = client_for(city.trainer_a)
    response = client.post(
        reverse("rounds:terminals"), {"name": "红旗村活动室", "host": city.branch_a.pk}
    )
    assert response.status_code == 302
    terminal = Terminal.objects.get(name="红旗村活动室")
    assert terminal.host == city.branch_a and terminal.registered_by == city.trainer_a
    assert client.post(reverse("rounds:terminal_revoke", args=[terminal.pk])).status_code == 302
    terminal.refresh_from_db()
    assert terminal.is_revoked
    events = set(
        LogEntry.objects.filter(object_pk=str(terminal.pk)).values_list(
            "additional_data__event", flat=True
        )
    )
    assert {"terminal_registered", "terminal_revoked"} <= events


def test_trainer_cannot_register_a_terminal_outside_her_subtree(city, client_for):
    client = client_for(city.trainer_a)
    response = client.post(reverse("rounds:terminals"), {"name": "外县", "host": city.branch_b.pk})
    assert response.status_code == 200 and "host" in response.context["form"].errors
    assert not Terminal.objects.exists()


def test_operator_opens_a_terminal_but_cannot_register_or_revoke(site, client_for):
    city, _round, _sitting, terminal = site
    client = client_for(city.operator_a)
    assert client.get(reverse("rounds:terminal", args=[terminal.pk])).status_code == 200
    response = client.post(reverse("rounds:terminals"), {"name": "x", "host": city.branch_a.pk})
    assert response.status_code == 404
    assert client.post(reverse("rounds:terminal_revoke", args=[terminal.pk])).status_code == 404
    assert Terminal.objects.count() == 1 and not Terminal.objects.get().is_revoked


def test_the_secret_is_handed_out_once(city, client_for):
    terminal = terminals.terminal_register(name="站点", host=city.branch_a, user=city.trainer)
    client = client_for(city.operator_a)
    url = reverse("rounds:terminal_claim", args=[terminal.pk])
    first = client.post(url)
    assert first.status_code == 200 and first.json()["secret"] == terminal.secret
    second = client.post(url)
    assert second.status_code == 409 and "secret" not in second.json()


def test_staff_of_another_site_do_not_see_the_terminal(site, client_for):
    city, _round, _sitting, terminal = site
    client = client_for(city.secretary_b)
    for name in ("rounds:terminal", "rounds:terminal_package"):
        assert client.get(reverse(name, args=[terminal.pk])).status_code == 404
    assert sync(client, terminal, []).status_code == 404


# --- The package ---------------------------------------------------------------------------------


def test_package_carries_the_sitting_key_whose_codes_the_server_accepts(site, client_for):
    city, _round, sitting, terminal = site
    other = builders.session(_round, city.branch_b, title="红旗村集中学习")
    builders.sitting(other)
    with time_machine.travel(NOW, tick=False):
        response = client_for(city.operator_a).get(
            reverse("rounds:terminal_package", args=[terminal.pk]), {"rung": "360p"}
        )
    package = response.json()
    assert [s["id"] for s in package["sittings"]] == [sitting.pk]  # not branch B's
    entry = package["sittings"][0]
    assert [m["name"] for m in entry["roster"]] == ["王芳"]
    assert entry["roster"][0]["phone"] != city.member_a.phone  # masked
    # The code the terminal makes offline, as terminal.js makes it, is one qr_verify accepts.
    window = int(NOW.timestamp()) // package["rotate"]
    key = base64.urlsafe_b64decode(entry["key"])
    mac = hmac.new(key, f"lunxun-checkin:{sitting.pk}:{window}".encode(), hashlib.sha256)
    token = f"{sitting.pk}.{window}.{base64.urlsafe_b64encode(mac.digest()[:15]).decode()}"
    assert token == services.qr_token(sitting=sitting, now=NOW).token
    assert services.qr_verify(token, now=NOW) == sitting
    # Each lesson at the rung: its playlist and every segment, with their sizes.
    assert len(package["lessons"]) == 2
    lesson = package["lessons"][0]
    assert [f["url"].rsplit("/", 1)[1] for f in lesson["files"]] == [
        "index.m3u8",
        "seg_000.ts",
        "seg_001.ts",
    ]
    assert lesson["bytes"] == sum(f["bytes"] for f in lesson["files"])
    assert package["media_bytes"] == 2 * lesson["bytes"]
    assert package["check_in_url"].endswith("/check-in/{code}/")


def test_package_refuses_an_unknown_rung_and_a_revoked_terminal(site, client_for):
    city, _round, _sitting, terminal = site
    client = client_for(city.operator_a)
    url = reverse("rounds:terminal_package", args=[terminal.pk])
    assert client.get(url, {"rung": "1080p"}).status_code == 400
    terminals.terminal_revoke(terminal=terminal, user=city.trainer)
    assert client.get(url, {"rung": "360p"}).status_code == 400


# --- Sync -----------------------------------------------------------------------------------------


def test_offline_records_count_and_a_replayed_sync_changes_nothing(site, client_for):
    city, _round, sitting, terminal = site
    other = factories.member(city.branch_a, name="赵敏")
    records = [personal(terminal, sitting, city.member_a), roll_call(terminal, sitting, other)]
    client = client_for(city.operator_a)
    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        first = sync(client, terminal, records)
        assert reasons(first) == [("accepted", "accepted"), ("accepted", "accepted")]
        attendance = Attendance.objects.get(sitting=sitting, member=city.member_a)
        assert attendance.method == Attendance.Method.PERSONAL_CODE
        assert attendance.recorded_at == NOW and attendance.recorded_by == city.operator_a
        assert Attendance.objects.get(sitting=sitting, member=other).method == "roll_call"
        before = (Attendance.objects.count(), TerminalRecord.objects.count())
        again = sync(client, terminal, records)
    assert [r["replayed"] for r in again.json()["results"]] == [True, True]
    assert reasons(again) == reasons(first)
    assert (Attendance.objects.count(), TerminalRecord.objects.count()) == before == (2, 2)
    audits = LogEntry.objects.filter(additional_data__event="terminal_sync")
    assert [a.additional_data["accepted"] for a in audits.order_by("pk")] == [2, 0]


def test_presence_recorded_offline_credits_the_lessons_shown(site, client_for):
    """Group viewing credit: the round's rule, as for any sitting (here: either way)."""
    city, training_round, sitting, terminal = site
    assert not Participation.objects.filter(member=city.member_a, status="completed").exists()
    scanned = factories.member(city.branch_a, name="赵敏")
    with time_machine.travel(NOW, tick=False):
        sync(
            client_for(city.operator_a),
            terminal,
            [roll_call(terminal, sitting, city.member_a), personal(terminal, sitting, scanned)],
        )
    for member in (city.member_a, scanned):
        participation = Participation.objects.get(member=member, round=training_round)
        assert participation.status == Participation.Status.COMPLETED
        assert participation.method == Participation.Method.SESSION


def test_tampered_record_is_refused_and_not_kept(site, client_for):
    city, _round, sitting, terminal = site
    changed = roll_call(terminal, sitting, city.member_a, status="absent")
    changed["status"] = "present"  # altered after signing
    forged = roll_call(terminal, sitting, city.member_a, secret="not-the-terminal-secret")
    with time_machine.travel(NOW, tick=False):
        response = sync(client_for(city.operator_a), terminal, [changed, forged])
    assert reasons(response) == [("refused", "tampered"), ("refused", "tampered")]
    assert "篡改" in response.json()["results"][0]["message"]
    assert not Attendance.objects.exists() and not TerminalRecord.objects.exists()


def test_revoked_terminal_records_are_refused(site, client_for):
    city, _round, sitting, terminal = site
    terminals.terminal_revoke(terminal=terminal, user=city.trainer)
    with time_machine.travel(NOW, tick=False):
        response = sync(
            client_for(city.operator_a), terminal, [roll_call(terminal, sitting, city.member_a)]
        )
    assert reasons(response) == [("refused", "revoked")]
    assert not Attendance.objects.exists()


def test_sitting_outside_the_terminal_site_is_out_of_scope(site, client_for):
    city, training_round, _sitting, terminal = site
    elsewhere = builders.sitting(builders.session(training_round, city.branch_b))
    with time_machine.travel(NOW, tick=False):
        records = [
            roll_call(terminal, elsewhere, city.member_b),
            personal(terminal, elsewhere, city.member_b),
        ]
        response = sync(client_for(city.operator_a), terminal, records)
    assert reasons(response) == [("refused", "out_of_scope")] * 2
    assert not Attendance.objects.exists()
    assert set(TerminalRecord.objects.values_list("reason", flat=True)) == {"out_of_scope"}
    # Sent again, a refused record keeps its answer and its reason.
    with time_machine.travel(NOW, tick=False):
        again = sync(client_for(city.operator_a), terminal, records)
    assert reasons(again) == reasons(response)
    assert all(r["replayed"] and "超出范围" in r["message"] for r in again.json()["results"])


def test_unknown_sitting_is_refused(site, client_for):
    city, _round, _sitting, terminal = site
    data = record(terminal, 987654, kind="roll_call", member=city.member_a.pk, status="present")
    with time_machine.travel(NOW, tick=False):
        response = sync(client_for(city.operator_a), terminal, [data])
    assert reasons(response) == [("refused", "unknown_sitting")]


def test_records_sent_after_the_window_are_too_late(site, client_for, settings):
    city, _round, sitting, terminal = site
    settings.LUNXUN_TERMINAL_SYNC_DAYS = 7
    client = client_for(city.operator_a)
    late = sitting.end + timedelta(days=7, minutes=1)
    with time_machine.travel(late, tick=False):
        response = sync(client, terminal, [roll_call(terminal, sitting, city.member_a)])
    assert reasons(response) == [("refused", "too_late")]
    with time_machine.travel(sitting.end + timedelta(days=6), tick=False):
        response = sync(client, terminal, [roll_call(terminal, sitting, city.member_a)])
    assert reasons(response) == [("accepted", "accepted")]


def test_personal_code_forged_or_of_another_sitting_is_refused(site, client_for):
    city, training_round, sitting, terminal = site
    later = builders.sitting(
        builders.session(training_round, city.branch_a, start=builders.aware(2026, 11, 19, 9, 0))
    )
    of_later = services.personal_code(sitting=later, member=city.member_a)
    genuine = services.personal_code(sitting=sitting, member=city.member_a)
    forged = genuine.rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAAAAAA"
    records = [
        record(terminal, sitting.pk, kind="personal_code", code=of_later),
        record(terminal, sitting.pk, kind="personal_code", code=forged),
    ]
    with time_machine.travel(NOW, tick=False):
        response = sync(client_for(city.operator_a), terminal, records)
    assert reasons(response) == [("refused", "bad_code")] * 2
    assert not Attendance.objects.exists()


def test_roll_call_of_someone_the_sitting_does_not_list_is_refused(site, client_for):
    city, _round, sitting, terminal = site
    with time_machine.travel(NOW, tick=False):
        response = sync(
            client_for(city.operator_a),
            terminal,
            [
                roll_call(terminal, sitting, city.member_b),
                roll_call(terminal, sitting, city.member_a),
            ],
        )
    assert reasons(response) == [("refused", "not_expected"), ("accepted", "accepted")]
    assert list(Attendance.objects.values_list("member", flat=True)) == [city.member_a.pk]


def test_malformed_sync_gets_a_clear_answer(site, client_for):
    city, _round, _sitting, terminal = site
    client = client_for(city.operator_a)
    url = reverse("rounds:terminal_sync", args=[terminal.pk])
    response = client.post(url, data="not json", content_type="application/json")
    assert response.status_code == 400 and "error" in response.json()
    response = sync(client, terminal, [{"uuid": "x"}])
    assert reasons(response) == [("refused", "malformed")]


def test_sync_is_rate_limited(site, client_for, settings):
    city, _round, _sitting, terminal = site
    settings.LUNXUN_TERMINAL_SYNC_RATE = "2/m"
    client = client_for(city.operator_a)
    codes = [sync(client, terminal, []).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


# --- The member's personal code -------------------------------------------------------------------


def test_member_page_shows_a_personal_code_the_server_accepts(site, client_for):
    city, _round, sitting, _terminal = site
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        response = client_for(city.member_a.user).get(reverse("rounds:personal_codes"))
    code = services.personal_code(sitting=sitting, member=city.member_a)
    assert response.status_code == 200 and code in response.content.decode()
    assert services.personal_code_verify(code=code, sitting=sitting) == city.member_a.pk
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        other = client_for(city.member_b.user).get(reverse("rounds:personal_codes"))
    assert code not in other.content.decode()


def test_a_personal_code_counts_at_the_time_the_terminal_read_it(site, client_for, settings):
    """Late by the terminal's clock, not by when the link came back; a member recorded at
    another sitting at the same time is refused as check-in refuses it."""
    city, training_round, sitting, terminal = site
    settings.LUNXUN_LATE_MINUTES = 15
    elsewhere = builders.sitting(builders.session(training_round, city.branch_b, title="别处"))
    other = factories.member(city.branch_a, name="赵敏")
    latecomer = factories.member(city.branch_a, name="钱七")
    Attendance.objects.create(sitting=elsewhere, member=other, status="present", method="qr")
    records = [
        personal(terminal, sitting, city.member_a, at=sitting.start + timedelta(minutes=5)),
        personal(terminal, sitting, other),
        personal(terminal, sitting, latecomer, at=sitting.start + timedelta(minutes=40)),
    ]
    with time_machine.travel(sitting.end + timedelta(days=1), tick=False):
        response = sync(client_for(city.operator_a), terminal, records)
    assert reasons(response) == [
        ("accepted", "accepted"),
        ("refused", "check_in"),
        ("accepted", "accepted"),
    ]
    assert "“别处”" in response.json()["results"][1]["message"]  # where she is recorded
    on_time = Attendance.objects.get(sitting=sitting, member=city.member_a)
    assert on_time.status == Attendance.Status.PRESENT
    attendance = Attendance.objects.get(sitting=sitting, member=latecomer)
    assert attendance.status == Attendance.Status.LATE
    assert attendance.recorded_at == sitting.start + timedelta(minutes=40)
    assert not Attendance.objects.filter(sitting=sitting, member=other).exists()
    audit = LogEntry.objects.get(additional_data__event="check_in", object_pk=str(attendance.pk))
    assert audit.actor == city.operator_a


def test_members_and_staff_find_their_way_to_codes_and_terminals(site, client_for):
    city, training_round, _sitting, _terminal = site
    page = client_for(city.member_a.user).get(reverse("rounds:detail", args=[training_round.pk]))
    assert reverse("rounds:personal_codes") in page.content.decode()
    home = client_for(city.operator_a).get(reverse("rounds:list")).content.decode()
    assert reverse("rounds:terminals") in home

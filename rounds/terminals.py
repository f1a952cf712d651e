"""Site terminals (站点终端): a remote-education site's PC that runs group sessions with the
link down, and what it sends when the link comes back.

* A trainer registers a terminal for a site (``terminal_register``) and may revoke it
  (``terminal_revoke``); the first browser that opens it claims its signing secret, once
  (``terminal_claim``).
* ``terminal_package`` is what the terminal downloads ahead of time: the coming sittings of
  its site, each with the key its rotating check-in codes are made with
  (``services.sitting_checkin_key``: the very codes ``qr_verify`` accepts), the roster, and
  the lessons each sitting shows at the rung the site chose (their HLS files, to keep in
  Cache Storage).
* ``terminal_sync`` receives what the terminal recorded offline (personal codes it scanned,
  roll-call marks), each record signed by the terminal (HMAC-SHA256 with its secret over
  ``record_message``) and named by a UUID the terminal made: one answer per record, stored,
  so sending it again changes nothing. A record is refused when the terminal is revoked, its
  signature does not match (tampered), its sitting is unknown, outside the terminal's site
  (out of scope), or ended more than LUNXUN_TERMINAL_SYNC_DAYS days before (too late); then
  the ordinary rules decide (``services.check_in`` for a personal code,
  ``services.roll_call_save`` for roll call), so credit for the lessons shown follows the
  round's completion rule as for any sitting.
"""

import base64
import hashlib
import hmac
import uuid as uuid_module
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import audit_event
from courses.video import AUDIO_NAME, PLAYLIST_NAME
from members.models import Member, Organization

from . import services
from .models import Attendance, Round, Session, Sitting, Terminal, TerminalRecord, day_start

RUNGS = ("360p", "234p", AUDIO_NAME)

ACCEPTED = TerminalRecord.Result.ACCEPTED
REFUSED = TerminalRecord.Result.REFUSED


class TerminalError(Exception):
    """A terminal action that cannot be done; the message says why."""


# --- Registering, claiming, revoking -------------------------------------------------------------


def terminal_register(*, name: str, host: Organization, user, request=None) -> Terminal:
    """Register a site PC as a terminal of ``host``; the first browser to open it claims it."""
    name = (name or "").strip()
    if not name:
        raise TerminalError(_("Give the terminal a name, e.g. the site and the room."))
    terminal = Terminal.objects.create(name=name[:80], host=host, registered_by=user)
    audit_event(event="terminal_registered", obj=terminal, actor=user, request=request)
    return terminal


def terminal_claim(*, terminal: Terminal, user, request=None) -> str:
    """The terminal's signing secret, handed out once: to the first browser that opens it.

    A second browser gets nothing; a trainer registers a new terminal for it instead."""
    with transaction.atomic():
        terminal = Terminal.objects.select_for_update().get(pk=terminal.pk)
        if terminal.is_revoked:
            raise TerminalError(_("This terminal has been revoked."))
        if terminal.claimed_at is not None:
            raise TerminalError(
                _(
                    "This terminal is already set up on another browser. Ask a trainer to "
                    "register a new terminal for this computer."
                )
            )
        terminal.claimed_at = timezone.now()
        terminal.save(update_fields=["claimed_at"])
    audit_event(event="terminal_claimed", obj=terminal, actor=user, request=request)
    return terminal.secret


def terminal_revoke(*, terminal: Terminal, user, request=None) -> Terminal:
    """Revoke a terminal (lost, stolen, replaced): its records are refused from now on."""
    if terminal.revoked_at is None:
        terminal.revoked_at = timezone.now()
        terminal.revoked_by = user
        terminal.save(update_fields=["revoked_at", "revoked_by"])
        audit_event(event="terminal_revoked", obj=terminal, actor=user, request=request)
    return terminal


# --- The package ---------------------------------------------------------------------------------


def terminal_sittings(*, terminal: Terminal, now=None) -> list[Sitting]:
    """The sittings of the terminal's site from today to LUNXUN_TERMINAL_DAYS_AHEAD days on:
    sessions hosted at its organisation or below, of rounds under way or group study."""
    now = now or timezone.now()
    start = day_start(timezone.localtime(now).date())
    end = start + timedelta(days=settings.LUNXUN_TERMINAL_DAYS_AHEAD + 1)
    sessions = (
        Session.objects.filter(host__path__startswith=terminal.host.path)
        .exclude(round__state__in=[Round.State.DRAFT, Round.State.CLOSED])
        .select_related("event", "host", "round")
    )
    sittings = []
    for session in sessions:
        for occurrence in session.event.get_occurrences(start, end):
            if occurrence.cancelled:
                continue
            try:
                sitting = services.sitting_for(session=session, start=occurrence.start)
            except Sitting.DoesNotExist:
                continue
            sitting.session = session
            sittings.append(sitting)
    return sorted(sittings, key=lambda s: (s.start, s.pk))


def _rung_files(video, rung: str) -> list[str]:
    """The storage names of one rung of a ready video: its playlist and every file it names."""
    if not video or not video.is_ready or not video.output_prefix:
        return []
    store = storages["video"]
    playlist = f"{video.output_prefix}/{rung}/{PLAYLIST_NAME}"
    if not store.exists(playlist):
        return []
    with store.open(playlist, "rb") as handle:
        lines = handle.read().decode("utf-8", "replace").splitlines()
    names = [playlist]
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#") and "/" not in line and ".." not in line:
            names.append(f"{video.output_prefix}/{rung}/{line}")
        elif line.startswith("#EXT-X-MAP:") and 'URI="' in line:
            uri = line.split('URI="', 1)[1].split('"', 1)[0]
            if "/" not in uri and ".." not in uri:
                names.append(f"{video.output_prefix}/{rung}/{uri}")
    return names


def terminal_package(*, terminal: Terminal, rung: str, check_in_url: str, now=None) -> dict:
    """What the terminal keeps to run its coming sittings offline: for each sitting its
    check-in key and roster, and the lessons it shows at ``rung`` (file URLs and sizes).
    ``check_in_url``: the absolute check-in address a code is appended to."""
    if rung not in RUNGS:
        raise TerminalError(_("Choose the 360p or the 234p picture, or sound only."))
    if terminal.is_revoked:
        raise TerminalError(_("This terminal has been revoked."))
    store = storages["video"]
    lessons = {}
    sittings = []
    for sitting in terminal_sittings(terminal=terminal, now=now):
        session = sitting.session
        shown = list(session.lessons.select_related("video").order_by("path"))
        for lesson in shown:
            if lesson.pk in lessons:
                continue
            names = _rung_files(lesson.video, rung)
            files = [{"url": store.url(name), "bytes": store.size(name)} for name in names]
            lessons[lesson.pk] = {
                "id": lesson.pk,
                "title": lesson.title,
                "playlist": files[0]["url"] if files else "",
                "files": files,
                "bytes": sum(f["bytes"] for f in files),
            }
        roster = services.roll_call_members(sitting)
        sittings.append(
            {
                "id": sitting.pk,
                "title": session.title,
                "start": sitting.start.isoformat(),
                "end": sitting.end.isoformat(),
                "host": session.host.name,
                "location": session.location,
                "key": base64.urlsafe_b64encode(services.sitting_checkin_key(sitting)).decode(),
                "lessons": [lesson.pk for lesson in shown],
                "roster": [
                    {
                        "id": member.pk,
                        "name": member.name,
                        "phone": member.masked_phone,
                        "organization": member.organization.name,
                    }
                    for member in roster
                ],
            }
        )
    return {
        "terminal": {"id": terminal.pk, "name": terminal.name, "host": terminal.host.name},
        "generated_at": timezone.now().isoformat(),
        "rung": rung,
        "rotate": settings.LUNXUN_QR_ROTATE_SECONDS,
        "late_minutes": settings.LUNXUN_LATE_MINUTES,
        "check_in_url": check_in_url,
        "sittings": sittings,
        "lessons": list(lessons.values()),
        "media_bytes": sum(lesson["bytes"] for lesson in lessons.values()),
    }


# --- Records and their signatures ---------------------------------------------------------------


def record_message(record: dict) -> str:
    """The text a terminal signs for a record (static/js/terminal.js builds the same)."""
    return "|".join(
        str(record.get(field, "") if record.get(field) is not None else "")
        for field in ("uuid", "kind", "sitting", "member", "code", "status", "at")
    )


def record_sign(*, secret: str, record: dict) -> str:
    """HMAC-SHA256 of ``record_message`` with the terminal's secret, in hex (what the terminal
    does with WebCrypto; tests and the benchmark sign with this)."""
    message = f"lunxun-terminal-v1|{record_message(record)}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


REASONS = {
    "accepted": lambda: _("Accepted"),
    "replayed": lambda: _("Already received"),
    "malformed": lambda: _("Refused: the record is incomplete"),
    "revoked": lambda: _("Refused: this terminal has been revoked"),
    "tampered": lambda: _("Refused: tampered (the terminal's signature does not match)"),
    "unknown_sitting": lambda: _("Refused: unknown sitting"),
    "out_of_scope": lambda: _("Refused: out of scope (the sitting is not at this terminal's site)"),
    "too_late": lambda: (
        _("Refused: too late (more than %(days)d days after the sitting ended)")
        % {"days": settings.LUNXUN_TERMINAL_SYNC_DAYS}
    ),
    "bad_code": lambda: _("Refused: the personal code is not genuine or is for another sitting"),
    "not_expected": lambda: _("Refused: not among the members of this sitting"),
}


def reason_text(reason: str, detail: str = "") -> str:
    """The operator's words for a record's answer."""
    if reason in REASONS:
        return REASONS[reason]()
    return _("Refused: %(why)s") % {"why": detail or reason}


@dataclass(slots=True)
class _Record:
    data: dict
    uuid: uuid_module.UUID | None = None
    at: datetime | None = None
    sitting: Sitting | None = None
    member_id: int | None = None
    result: str = ""
    reason: str = ""
    detail: str = ""
    stored: bool = False


def _parse(data) -> _Record:
    record = _Record(data=data if isinstance(data, dict) else {})
    try:
        record.uuid = uuid_module.UUID(str(record.data["uuid"]))
        record.at = datetime.fromtimestamp(int(record.data["at"]) / 1000, tz=UTC)
        int(record.data["sitting"])
        if record.data.get("kind") not in TerminalRecord.Kind.values:
            raise ValueError
        if not isinstance(record.data.get("sig"), str):
            raise ValueError
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        record.result, record.reason = REFUSED, "malformed"
    return record


def _refuse(record: _Record, reason: str, detail: str = "") -> None:
    record.result, record.reason, record.detail = REFUSED, reason, detail


def terminal_sync(*, terminal: Terminal, records: list, user, request=None, now=None) -> list:
    """Take what ``terminal`` recorded offline; one answer per record, in order:
    {"uuid", "result": accepted|refused, "reason", "message"}. A record already received gets
    its stored answer again and changes nothing."""
    now = now or timezone.now()
    parsed = [_parse(data) for data in records]
    terminal = Terminal.objects.select_related("host").get(pk=terminal.pk)
    for record in parsed:
        if record.result:
            continue
        if terminal.is_revoked:
            _refuse(record, "revoked")
            continue
        expected = record_sign(secret=terminal.secret, record=record.data)
        if not hmac.compare_digest(expected, record.data["sig"]):
            _refuse(record, "tampered")
    # Already received: the stored answer, nothing done again.
    uuids = [r.uuid for r in parsed if not r.result]
    stored = {
        row.uuid: row for row in TerminalRecord.objects.filter(terminal=terminal, uuid__in=uuids)
    }
    fresh = []
    for record in parsed:
        if record.result:
            continue
        row = stored.get(record.uuid)
        if row is not None:
            record.result, record.reason, record.stored = row.result, row.reason, True
            record.detail = row.payload.get("detail", "")
            continue
        fresh.append(record)
    sittings = Sitting.objects.select_related("session__host", "session__round", "session__event")
    sittings = sittings.in_bulk({int(r.data["sitting"]) for r in fresh})
    limit = timedelta(days=settings.LUNXUN_TERMINAL_SYNC_DAYS)
    for record in fresh:
        sitting = sittings.get(int(record.data["sitting"]))
        if sitting is None:
            _refuse(record, "unknown_sitting")
        elif not terminal.host.contains(sitting.session.host):
            _refuse(record, "out_of_scope")
        elif now > sitting.end + limit:
            _refuse(record, "too_late")
        record.sitting = sitting
    _apply_personal_codes(terminal, [r for r in fresh if not r.result], user, request)
    _apply_roll_call(terminal, [r for r in fresh if not r.result], user, request)
    _store(terminal, fresh, now)
    counts = Counter(r.reason for r in parsed)
    audit_event(
        event="terminal_sync",
        obj=terminal,
        actor=user,
        request=request,
        records=len(parsed),
        accepted=sum(1 for r in parsed if r.result == ACCEPTED and not r.stored),
        replayed=sum(1 for r in parsed if r.stored),
        reasons=dict(counts),
    )
    return [
        {
            "uuid": str(record.uuid) if record.uuid else str(record.data.get("uuid", "")),
            "result": record.result,
            "reason": record.reason,
            "replayed": record.stored,
            "message": reason_text(record.reason, record.detail)
            if record.result == REFUSED
            else reason_text("replayed" if record.stored else "accepted"),
        }
        for record in parsed
    ]


def _apply_personal_codes(terminal, records, user, request) -> None:
    """Personal codes through ``services.check_ins_record``, one call per sitting: the check-in
    rules, at the moment the terminal read each code."""
    by_sitting = {}
    for record in records:
        if record.data["kind"] != TerminalRecord.Kind.PERSONAL_CODE:
            continue
        record.member_id = services.personal_code_verify(
            code=record.data.get("code", ""), sitting=record.sitting
        )
        if record.member_id is None:
            _refuse(record, "bad_code")
            continue
        by_sitting.setdefault(record.sitting.pk, []).append(record)
    for group in by_sitting.values():
        sitting = group[0].sitting
        members = Member.objects.select_related("organization", "user").in_bulk(
            {r.member_id for r in group}
        )
        arrivals = {}
        for record in sorted(group, key=lambda r: r.at):  # the first reading counts
            member = members.get(record.member_id)
            if member is None:
                _refuse(record, "bad_code")
            elif member not in arrivals:
                arrivals[member] = record.at
        answers = services.check_ins_record(
            sitting=sitting, arrivals=arrivals, user=user, request=request
        )
        for record in group:
            if record.result:
                continue
            refusal = answers.get(record.member_id, "")
            if refusal:
                _refuse(record, "check_in", refusal)
            else:
                record.result, record.reason = ACCEPTED, "accepted"


def _apply_roll_call(terminal, records, user, request) -> None:
    """Roll-call marks through ``roll_call_save``, one call per sitting: the members it does
    not list, or who are recorded at another sitting at the same time, are refused one by one
    and the rest saved together."""
    by_sitting = {}
    for record in records:
        if record.data["kind"] != TerminalRecord.Kind.ROLL_CALL:
            continue
        try:
            record.member_id = int(record.data.get("member"))
        except (TypeError, ValueError):
            _refuse(record, "malformed")
            continue
        if record.data.get("status", "") not in (*Attendance.Status.values, ""):
            _refuse(record, "malformed")
            continue
        by_sitting.setdefault(record.sitting.pk, []).append(record)
    for group in by_sitting.values():
        sitting = group[0].sitting
        listed = set(
            services.roll_call_members(sitting)
            .filter(pk__in=[r.member_id for r in group])
            .values_list("pk", flat=True)
        )
        marks = {}
        for record in sorted(group, key=lambda r: r.at):  # the last mark of a member wins
            if record.member_id not in listed:
                _refuse(record, "not_expected")
            else:
                marks[record.member_id] = record
        arriving = [m for m, r in marks.items() if r.data["status"] in Attendance.ATTENDED]
        elsewhere = services.attended_elsewhere(sitting=sitting, member_ids=arriving)
        for member_id, attendance in elsewhere.items():
            _refuse(
                marks.pop(member_id),
                "elsewhere",
                _("already recorded at %(where)s")
                % {"where": services.attendance_place(attendance)},
            )
        for record in group:
            if not record.result and record.member_id not in marks:
                record.result, record.reason = ACCEPTED, "accepted"  # superseded by a later mark
        if not marks:
            continue
        try:
            services.roll_call_save(
                sitting=sitting,
                marks={m: r.data["status"] for m, r in marks.items()},
                user=user,
                reason=_("Recorded offline at site terminal “%(name)s”") % {"name": terminal.name},
                request=request,
            )
        except services.RollCallError as error:
            for record in marks.values():
                _refuse(record, "roll_call", str(error))
            continue
        for record in marks.values():
            record.result, record.reason = ACCEPTED, "accepted"


def _store(terminal, records, now) -> None:
    """Keep the answers of the records whose signature held, so a replay gets them again (the
    same record in two syncs at once: the first one's answer holds)."""
    TerminalRecord.objects.bulk_create(
        [
            TerminalRecord(
                terminal=terminal,
                uuid=record.uuid,
                kind=record.data["kind"],
                sitting=record.sitting,
                member_id=record.member_id if record.result == ACCEPTED else None,
                status=str(record.data.get("status", ""))[:20],
                recorded_at=record.at,
                received_at=now,
                result=record.result,
                reason=record.reason,
                payload={
                    "member": str(record.data.get("member", ""))[:20],
                    "code": str(record.data.get("code", ""))[:200],
                    "detail": record.detail,
                },
            )
            for record in records
        ],
        ignore_conflicts=True,
        batch_size=500,
    )

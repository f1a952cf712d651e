"""Writes that span models: video processing, lesson progress."""

import logging
import math
import re
import secrets
import shutil
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.audit import audit_event
from core.sessions import session_alive_elsewhere, with_live_session
from members.models import Member

from . import captions as captions_format
from . import live, progress_sql, progress_state, segments
from .models import LessonPage, LessonProgress, LessonVideo, LiveStream
from .tasks import live_expire_task, live_recording_process_task, video_process_task
from .video import (
    DEFAULT_MAX_SECONDS,
    MASTER_NAME,
    TranscodeError,
    VideoRejected,
    probe,
    transcode,
    validate_upload,
)

log = logging.getLogger(__name__)

# Sent when a member starts a lesson for the first time and when they complete it, after the
# change is saved, with ``member_id`` and ``lesson_id``. Higher apps (rounds) keep their derived
# status current from it; the hot path of progress reports sends nothing else.
lesson_progress_changed = Signal()
# Sent by ``progress_report`` when a report completes a lesson (study hours earned), INSIDE the
# transaction of its UPDATE, with ``progress``: a queryset update sends no post_save, and
# rounds keeps each member's yearly hours summary in the same transaction (rounds/hours.py).
lesson_hours_earned = Signal()


# --- Video -------------------------------------------------------------------------------------


def video_schedule(*, video: LessonVideo) -> None:
    """Mark ``video`` for processing and enqueue the transcode once the transaction commits."""
    LessonVideo.objects.filter(pk=video.pk).update(
        state=LessonVideo.State.UPLOADED, progress=0, failure_reason="", processing_started_at=None
    )
    video.state = LessonVideo.State.UPLOADED
    transaction.on_commit(lambda: video_process_task.enqueue(video.pk))


def video_create_from_path(*, path, title=None, user=None) -> LessonVideo:
    """A video from a file on disk, through the same checks and pipeline as an upload.

    Raises VideoRejected with the reason when the file is not an acceptable video.
    """
    path = Path(path)
    result = validate_upload(str(path), path.name, path.stat().st_size)
    with path.open("rb") as handle, transaction.atomic():
        video = LessonVideo(
            title=title or path.stem,
            type="video",
            duration=result.duration,
            width=result.width,
            height=result.height,
            source_codec=result.video_codec,
            uploaded_by_user=user,
        )
        video.file.save(path.name, File(handle), save=False)
        video.save()
        video_schedule(video=video)
    return video


def _local_source(video, workdir: Path) -> Path:
    """A local path for the source: the file itself on disk storage, else a copy."""
    try:
        return Path(video.file.path)
    except NotImplementedError:
        target = workdir / ("source" + Path(video.file.name).suffix)
        with video.file.open("rb") as source, target.open("wb") as copy:
            shutil.copyfileobj(source, copy, 1024 * 1024)
        return target


# What object storage should answer with for the pipeline's outputs. Guessing from the name
# is not safe: on Debian, /etc/mime.types maps ".ts" to a Qt Linguist text type.
OUTPUT_CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt; charset=utf-8",
}


def _store_tree(local_dir: Path, prefix: str) -> None:
    for path in sorted(local_dir.rglob("*")):
        if path.is_file():
            name = f"{prefix}/{path.relative_to(local_dir).as_posix()}"
            with path.open("rb") as handle:
                output = File(handle)
                # Object storage (django-storages) sends it as the Content-Type.
                output.content_type = OUTPUT_CONTENT_TYPES.get(path.suffix)
                saved = storages["video"].save(name, output)
            if saved != name:
                raise TranscodeError(f"storage renamed {name} to {saved}")


def _store_text(name: str, text: str) -> None:
    output = ContentFile(text.encode("utf-8"))
    output.content_type = OUTPUT_CONTENT_TYPES.get(Path(name).suffix)
    saved = storages["video"].save(name, output)
    if saved != name:
        raise TranscodeError(f"storage renamed {name} to {saved}")


def _publish_captions(*, prefix: str, captions: str, duration: float) -> tuple[str, str]:
    """The master playlist to play and the stored WebVTT for a video whose outputs are under
    ``prefix``. With captions: a new folder with the WebVTT and its subtitle playlist, and a
    new master playlist (ffmpeg's, plus the subtitle rendition) beside ffmpeg's, which stays
    as it was. New names each time: the video store may be cached for good (a CDN)."""
    original = f"{prefix}/{MASTER_NAME}"
    if not captions:
        return original, ""
    storage = storages["video"]
    with storage.open(original, "rb") as handle:
        master = handle.read().decode("utf-8")
    token = uuid.uuid4().hex[:12]
    folder = f"subs-{token}"
    _store_text(f"{prefix}/{folder}/{captions_format.VTT_NAME}", captions)
    _store_text(
        f"{prefix}/{folder}/{captions_format.PLAYLIST_NAME}",
        captions_format.subtitle_playlist(duration),
    )
    linked = f"{prefix}/master-{token}.m3u8"
    _store_text(
        linked,
        captions_format.master_with_subtitles(master, f"{folder}/{captions_format.PLAYLIST_NAME}"),
    )
    return linked, f"{prefix}/{folder}/{captions_format.VTT_NAME}"


def _drop_captions_outputs(*, prefix: str, master: str, vtt: str) -> None:
    """Delete what _publish_captions wrote for captions no longer used."""
    storage = storages["video"]
    if master and master != f"{prefix}/{MASTER_NAME}" and master.startswith(f"{prefix}/"):
        storage.delete(master)
    if vtt and vtt.startswith(f"{prefix}/subs-"):
        _delete_tree(vtt.rsplit("/", 1)[0])


def video_captions_set(*, video: LessonVideo, captions: str, user=None, note="") -> LessonVideo:
    """Give ``video`` these captions (WebVTT checked by courses.captions.read), or none with
    ``captions=""``. A ready video's master playlist is rewritten at once, without
    transcoding again; one still being processed gets them when its processing ends."""
    with transaction.atomic():
        video = LessonVideo.objects.select_for_update().get(pk=video.pk)
        old_master, old_vtt = video.master_playlist, video.captions_vtt
        video.captions = captions
        fields = ["captions"]
        published = video.is_ready and video.output_prefix
        if published:
            video.master_playlist, video.captions_vtt = _publish_captions(
                prefix=video.output_prefix, captions=captions, duration=video.duration or 0
            )
            fields += ["master_playlist", "captions_vtt"]
        video.save(update_fields=fields)
        audit_event(
            event="video_captions_set" if captions else "video_captions_removed",
            obj=video,
            actor=user,
            note=note,
        )
        if published:
            prefix = video.output_prefix
            transaction.on_commit(
                lambda: _drop_captions_outputs(prefix=prefix, master=old_master, vtt=old_vtt)
            )
    return video


def _delete_tree(prefix: str) -> None:
    if not prefix:
        return
    storage = storages["video"]
    directories, files = storage.listdir(prefix)
    for name in files:
        storage.delete(f"{prefix}/{name}")
    for directory in directories:
        _delete_tree(f"{prefix}/{directory}")


def video_process(*, video_id: int) -> LessonVideo:
    """Probe, transcode and store one video. Runs in the worker, never in a request.

    On any failure the video is marked failed with the reason and can be processed again;
    a worker that dies leaves it 'transcoding', which turns retryable once it is stale.
    """
    claimed = LessonVideo.objects.filter(pk=video_id).update(
        state=LessonVideo.State.PROBING,
        progress=0,
        failure_reason="",
        processing_started_at=timezone.now(),
    )
    if not claimed:
        raise LessonVideo.DoesNotExist(video_id)
    video = LessonVideo.objects.get(pk=video_id)
    LessonVideo.objects.filter(pk=video_id).update(attempts=video.attempts + 1)
    old_prefix = video.output_prefix
    last = {"percent": 0, "at": 0.0}

    def report(fraction):
        percent = max(0, min(99, int(fraction * 100)))
        now = time.monotonic()
        if percent > last["percent"] and now - last["at"] >= 1:
            last.update(percent=percent, at=now)
            LessonVideo.objects.filter(pk=video_id).update(progress=percent)

    try:
        with tempfile.TemporaryDirectory(prefix="lunxun-video-") as work:
            work = Path(work)
            source = _local_source(video, work)
            result_probe = probe(str(source))
            LessonVideo.objects.filter(pk=video_id).update(
                state=LessonVideo.State.TRANSCODING,
                duration=result_probe.duration,
                width=result_probe.width,
                height=result_probe.height,
                source_codec=result_probe.video_codec,
            )
            out = work / "out"
            out.mkdir()
            result = transcode(str(source), str(out), probe=result_probe, on_progress=report)
            prefix = f"videos/hls/{uuid.uuid4().hex}"
            _store_tree(out, prefix)
        # Captions given or changed while it was processed: published under the row's lock,
        # so a change from the admin (video_captions_set) is never lost between the two.
        with transaction.atomic():
            captions = (
                LessonVideo.objects.select_for_update()
                .values_list("captions", flat=True)
                .get(pk=video_id)
            )
            master, captions_vtt = _publish_captions(
                prefix=prefix, captions=captions, duration=result.duration
            )
            _mark_ready(video_id, prefix, result, master, captions_vtt)
        live_progress_settle(video=LessonVideo.objects.get(pk=video_id))
    except (VideoRejected, TranscodeError, OSError) as error:
        log.warning("video %s failed: %s", video_id, error)
        LessonVideo.objects.filter(pk=video_id).update(
            state=LessonVideo.State.FAILED, failure_reason=str(error)[-2000:]
        )
        return LessonVideo.objects.get(pk=video_id)
    if old_prefix and old_prefix != prefix:
        _delete_tree(old_prefix)
    return LessonVideo.objects.get(pk=video_id)


def _mark_ready(video_id, prefix, result, master, captions_vtt) -> None:
    LessonVideo.objects.filter(pk=video_id).update(
        state=LessonVideo.State.READY,
        progress=100,
        output_prefix=prefix,
        master_playlist=master,
        captions_vtt=captions_vtt,
        audio_playlist=f"{prefix}/{result.audio_playlist}",
        mp4_fallback=f"{prefix}/{result.mp4_fallback}",
        poster=f"{prefix}/{result.poster}",
        renditions=[
            {"name": rung.name, "height": rung.height, "bitrate": rung.video_bitrate}
            for rung in result.rungs
        ],
        processed_at=timezone.now(),
    )


# --- Progress ----------------------------------------------------------------------------------


class ViewingRejected(Exception):
    """A report that counts nothing: its viewing no longer earns."""


class ViewingSuperseded(ViewingRejected):
    """The member started another viewing, of this or any lesson; this one stops counting.

    Also what an unknown or forged viewing token gets: it reveals nothing more.
    """


class ViewingEnded(ViewingRejected):
    """The viewing is still the member's latest, but its login session has ended (logout,
    expiry, deletion) or the member or their account has been deactivated."""


class LessonNotPlayable(Exception):
    pass


def progress_start(*, member, lesson: LessonPage, session_key: str) -> LessonProgress:
    """Begin a viewing of ``lesson`` by ``member``, bound to the login session ``session_key``.

    One viewing at a time per member: this one supersedes the member's open viewing, whichever
    lesson it is of, and the old player's reports count nothing from now on. The member's watch
    clock carries over: the new viewing earns from now, or from where the old one's credit
    reached if that is later, so opening viewings never grants time twice.
    """
    video = lesson.video
    if video is None or video.state != LessonVideo.State.READY or not video.duration:
        raise LessonNotPlayable(_("This lesson's video is not ready yet."))
    return _open_viewing(
        member=member, lesson=lesson, session_key=session_key, duration=float(video.duration)
    )


def _open_viewing(*, member, lesson, session_key, duration: float) -> LessonProgress:
    """Open a viewing (or a reading) of ``lesson``: see progress_start."""
    if not session_key:
        raise ValueError("a viewing is bound to a login session")
    with transaction.atomic():
        # Starts by one member queue on the member's row (on PostgreSQL; SQLite's IMMEDIATE
        # transaction holds the database's write lock already). Locking the open viewing's row
        # waits for a report of it that is being written, and makes later ones miss.
        Member.objects.select_for_update().only("pk").get(pk=member.pk)
        open_viewings = list(
            LessonProgress.objects.select_for_update()
            .filter(member=member, viewing__isnull=False)
            .only("pk", "viewing_started_at", "credited_until")
        )
        LessonProgress.objects.filter(pk__in=[row.pk for row in open_viewings]).update(viewing=None)
        # Read after the locks: no report of the old viewing is credited past this moment.
        now = timezone.now()
        clock = max([now, *(row.watch_clock for row in open_viewings if row.watch_clock)])
        progress, created = LessonProgress.objects.get_or_create(
            member=member, lesson=lesson, defaults={"duration": duration}
        )
        progress.viewing = uuid.uuid4()
        progress.viewing_session = session_key
        progress.viewing_started_at = clock
        progress.credited_until = None
        progress.duration = duration
        progress.save(
            update_fields=[
                "viewing",
                "viewing_session",
                "viewing_started_at",
                "credited_until",
                "duration",
                "updated_at",
            ]
        )
    if created:
        transaction.on_commit(
            lambda: lesson_progress_changed.send(
                sender=LessonProgress, member_id=member.pk, lesson_id=lesson.pk
            )
        )
    return progress


def progress_report(
    *, progress_id: int, viewing, segments, position, request=None, state=""
) -> LessonProgress:
    """Credit a viewing's played segments: the hottest write in the system.

    The viewing token, issued by progress_start to the member's own session, is the
    credential. A report counts nothing, and raises ViewingRejected, when its viewing has been
    superseded (or never existed), when the session that started it has ended, or when the
    member or their account is no longer active. Only seconds inside the lesson count, and
    never more new seconds than the member's watch clock allows: the time since credit was
    last granted, at the permitted speed. Reports carry the viewing's whole segment list, so
    repeated or reordered reports are harmless. The report that completes the lesson is
    audit-logged (``lesson_completed``, from ``request``'s address) with its write.

    ``state``: the signed row the answer to the viewing's last report (or its start) carried
    (courses/progress_state.py). While it is the row as it stands, the report is one prepared
    statement: the conditional UPDATE, which also checks the session and the account. Without
    it, or when it is stale, two (courses/progress_sql.py), without holding a lock in between:
    one SELECT that also checks the session and the account, and one conditional UPDATE that
    applies only if the row is still as it was read (same viewing, same updated_at). A
    concurrent change makes it read again, and persistent contention falls back to a lock.
    """
    try:
        viewing = uuid.UUID(str(viewing))
    except ValueError:
        raise ViewingSuperseded from None
    known = progress_state.read(state, progress_id=progress_id, viewing=viewing)
    if known is not None and _credit_known(known, segments, position, request):
        return known
    for _attempt in range(3):
        now = timezone.now()
        progress = progress_sql.earning_row(progress_id=progress_id, viewing=viewing, now=now)
        if progress is None or not _session_alive(progress):
            raise _rejection(progress_id, viewing)
        read_at = progress.updated_at
        fields = _credit_report(progress, segments, position, now)
        if _write_credit(progress, fields, viewing=viewing, read_at=read_at, request=request):
            return progress
    # Still contended (several reports of one viewing at once): take the row lock.
    with transaction.atomic():
        now = timezone.now()
        progress = _earning(progress_id, viewing, now).select_for_update(of=("self",)).first()
        if progress is None or not _session_alive(progress):
            raise _rejection(progress_id, viewing)
        fields = _credit_report(progress, segments, position, now)
        LessonProgress.objects.filter(pk=progress.pk).update(
            **{name: getattr(progress, name) for name in fields}
        )
        if "completed_at" in fields:
            _report_completed(progress, request)
    return progress


def _credit_known(progress: LessonProgress, segments, position, request) -> bool:
    """Credit a report against the row its signed state says it is, in one conditional
    UPDATE that also asks whether the viewing may still earn; False when it wrote nothing
    (the row changed since, the session ended, the member or account was deactivated): the
    report then takes the path that reads the row."""
    if not progress_sql.sessions_asked_in_sql():
        return False  # the token holds no session key to ask elsewhere (progress_state.py)
    now = timezone.now()
    read_at = progress.updated_at
    fields = _credit_report(progress, segments, position, now)
    return _write_credit(
        progress, fields, viewing=progress.viewing, read_at=read_at, request=request, live_at=now
    )


def _write_credit(progress, fields, *, viewing, read_at, request, live_at=None) -> bool:
    """Write a report's credit (progress_sql.credit_write); the write that completes the lesson
    goes in one transaction with its audit entry and the hours signal. False when it wrote
    nothing (the row changed since it was read or signed, or may no longer earn)."""
    write = {
        "progress": progress,
        "fields": fields,
        "viewing": viewing,
        "read_at": read_at,
        "live_at": live_at,
    }
    if "completed_at" not in fields:
        return progress_sql.credit_write(**write)
    with transaction.atomic():
        if progress_sql.credit_write(**write):
            _report_completed(progress, request)
            return True
    return False


def _earning(progress_id, viewing, now):
    """The progress row of ``viewing`` if the viewing may still earn: the member and their
    account active and, where sessions live in the database, its session alive, all checked
    in the one query."""
    rows = LessonProgress.objects.filter(
        pk=progress_id, viewing=viewing, member__is_active=True, member__user__is_active=True
    )
    return with_live_session(rows, "viewing_session", now)


def _session_alive(progress: LessonProgress) -> bool:
    """Whether the viewing's session still exists, for engines _earning cannot ask in SQL."""
    return session_alive_elsewhere(progress.viewing_session)


def _rejection(progress_id, viewing) -> ViewingRejected:
    """Why a report found nothing to credit (only rejected reports pay for this query)."""
    if LessonProgress.objects.filter(pk=progress_id, viewing=viewing).exists():
        return ViewingEnded()
    return ViewingSuperseded()


def _record_completion(progress: LessonProgress, request) -> None:
    """The report that completed a lesson: audit-logged in its transaction (the member is the
    actor: the report is theirs by its token), and announced to rounds once it commits."""
    member = Member.objects.select_related("user").get(pk=progress.member_id)
    progress.member = member  # the log entry names it
    audit_event(
        event="lesson_completed",
        obj=progress,
        actor=member.user,
        request=request,
        member=member.pk,
        lesson=progress.lesson_id,
        watched=progress.watched_seconds,
        hours=str(progress.hours_earned),
    )
    _announce_completion(progress, ["completed_at"])


def _report_completed(progress: LessonProgress, request) -> None:
    """A report's write completed the lesson. It wrote with a queryset update, which sends no
    post_save, so the yearly study-hours summary (rounds) is told here, in the same
    transaction; saves (reading, a live lecture settled) reach it through post_save."""
    lesson_hours_earned.send(sender=LessonProgress, progress=progress)
    _record_completion(progress, request)


def _announce_completion(progress: LessonProgress, fields) -> None:
    if "completed_at" in fields:
        transaction.on_commit(
            lambda: lesson_progress_changed.send(
                sender=LessonProgress, member_id=progress.member_id, lesson_id=progress.lesson_id
            )
        )


def _credit_report(progress: LessonProgress, reported, position, now) -> list[str]:
    """Apply one report to ``progress`` in memory; return the fields that need writing.

    The member's watch clock bounds the credit: each new second credited moves it on by a
    second (at the permitted speed), and it never passes ``now``. There is no tolerance on
    top: a player starts counting only after its viewing began, so honest reports always fit.
    """
    claimed = segments.clean(reported, progress.duration)
    speed = settings.LUNXUN_MAX_PLAYBACK_SPEED
    clock = progress.watch_clock
    budget = max(0.0, (now - clock).total_seconds()) * speed
    before = segments.total(progress.segments)
    credited = segments.credit(progress.segments, claimed, budget)
    added = segments.total(credited) - before
    fields = ["segments", "watched_seconds", "furthest", "last_position", "updated_at"]
    if added > 0:
        # Rounded up to the microsecond the column keeps: the clock never falls behind credit.
        progress.credited_until = clock + timedelta(microseconds=math.ceil(added / speed * 1e6))
        fields.append("credited_until")
    progress.segments = credited
    progress.watched_seconds = round(segments.total(credited), 3)
    progress.furthest = max([progress.furthest, *(end for _s, end in credited)])
    try:
        progress.last_position = min(max(0.0, float(position)), progress.duration)
    except (TypeError, ValueError):
        pass
    # Completion is judged by the seconds watched, never by how far the playhead went.
    threshold = settings.LUNXUN_COMPLETION_THRESHOLD * progress.duration
    if progress.completed_at is None and progress.watched_seconds + 1e-6 >= threshold:
        progress.completed_at = now
        progress.hours_earned = (
            LessonPage.objects.select_related("video").get(pk=progress.lesson_id).hours
        )
        fields += ["completed_at", "hours_earned"]
    progress.updated_at = now
    return fields


# --- Reading lessons (读原著学原文) ------------------------------------------------------------


class ReadingRefused(Exception):
    """Said to the member in words: why "I have read it" does not count (yet)."""


def reading_start(*, member, lesson: LessonPage, session_key: str) -> LessonProgress:
    """Begin reading ``lesson``: a viewing like a video's (one at a time per member, the watch
    clock carried over), which the member may close as read once the reading time has passed.
    Asked again from the same login session while that reading is open, nothing restarts."""
    if not lesson.is_reading:
        raise LessonNotPlayable(_("This lesson is not one to read."))
    current = LessonProgress.objects.filter(
        member=member, lesson=lesson, viewing__isnull=False, viewing_session=session_key
    ).first()
    if current is not None or _already_read(member, lesson):
        return current or LessonProgress.objects.get(member=member, lesson=lesson)
    return _open_viewing(
        member=member, lesson=lesson, session_key=session_key, duration=float(lesson.duration)
    )


def _already_read(member, lesson) -> bool:
    return LessonProgress.objects.filter(
        member=member, lesson=lesson, completed_at__isnull=False
    ).exists()


def reading_ready_at(progress: LessonProgress):
    """When the open reading may be said to be done: its start (on the watch clock) plus the
    reading time."""
    return progress.viewing_started_at + timedelta(seconds=progress.duration)


def reading_done(*, member, lesson: LessonPage, session_key: str, now=None) -> LessonProgress:
    """The member says they have read ``lesson``. It counts when this login session's reading
    of it is still the member's open viewing and has been open for the reading time; then the
    whole reading time is credited (moving the watch clock on by as much) and the lesson is
    complete. Said twice, nothing changes."""
    if not lesson.is_reading:
        raise LessonNotPlayable(_("This lesson is not one to read."))
    with transaction.atomic():
        Member.objects.select_for_update().only("pk").get(pk=member.pk)
        progress = (
            LessonProgress.objects.select_for_update().filter(member=member, lesson=lesson).first()
        )
        if progress is not None and progress.completed_at is not None:
            return progress
        if progress is None or progress.viewing is None or progress.viewing_session != session_key:
            raise ReadingRefused(
                _(
                    "Open the lesson and start reading here first: another lesson was opened "
                    "since, or the reading was started on another device."
                )
            )
        now = now or timezone.now()
        ready = reading_ready_at(progress)
        if now < ready:
            minutes = math.ceil((ready - now).total_seconds() / 60)
            raise ReadingRefused(
                ngettext(
                    "Keep reading: this lesson can be marked as read in %(n)d more minute.",
                    "Keep reading: this lesson can be marked as read in %(n)d more minutes.",
                    minutes,
                )
                % {"n": minutes}
            )
        progress.segments = [[0.0, progress.duration]]
        progress.watched_seconds = progress.duration
        progress.furthest = progress.duration
        progress.last_position = progress.duration
        progress.credited_until = ready
        progress.completed_at = now
        progress.hours_earned = lesson.hours
        progress.viewing = None
        progress.updated_at = now
        fields = [
            "segments",
            "watched_seconds",
            "furthest",
            "last_position",
            "credited_until",
            "completed_at",
            "hours_earned",
            "viewing",
            "updated_at",
        ]
        progress.save(update_fields=fields)
        _record_completion(progress, None)
    return progress


def reading_status_text(lesson: LessonPage, progress: LessonProgress | None) -> str:
    """The rule and the member's state for a reading lesson, in words."""
    if progress is not None and progress.completed_at:
        return _("Read: %(hours)s study hours earned.") % {"hours": progress.hours_earned}
    return ngettext(
        "Read the text below. After it has been open for %(n)d minute, press “I have read "
        "it” to complete this lesson.",
        "Read the text below. After it has been open for %(n)d minutes, press “I have read "
        "it” to complete this lesson.",
        lesson.reading_minutes,
    ) % {"n": lesson.reading_minutes}


def status_text(progress: LessonProgress | None) -> str:
    """The member's own status for a lesson, in words."""
    threshold = round(settings.LUNXUN_COMPLETION_THRESHOLD * 100)
    if progress is None or not progress.watched_seconds:
        return _("Not started. Watch at least %(threshold)d%% to complete this lesson.") % {
            "threshold": threshold
        }
    if progress.completed_at:
        return _("Completed: %(hours)s study hours earned.") % {"hours": progress.hours_earned}
    return _("Watched %(percent)d%%; %(threshold)d%% is needed to complete this lesson.") % {
        "percent": progress.percent,
        "threshold": threshold,
    }


# --- Live lectures (直播课堂) ------------------------------------------------------------------

# While a lecture is live its length is not known: a live viewing's progress row spans this
# much (the longest video accepted), so nothing completes before the recording is ready; then
# live_progress_settle measures what was watched against the recording.
LIVE_TIMELINE_SECONDS = float(DEFAULT_MAX_SECONDS)
# How long the worker waits for nginx to close the recording after the push is cut.
RECORDING_SETTLE_SECONDS = 10


class LiveKeyRefused(Exception):
    """A push nginx must refuse; str(e) says why (for the log and the audit trail)."""


class LiveNotWatchable(Exception):
    """Said to the member: the lecture is not live now."""


def live_stream_create(*, lesson: LessonPage, user=None) -> LiveStream:
    """A live lecture that will count as ``lesson``, with a fresh stream key."""
    stream = LiveStream.objects.create(lesson=lesson)
    audit_event(event="live_stream_created", obj=stream, actor=user, lesson_id=lesson.pk)
    return stream


def live_stream_set_lesson(*, stream: LiveStream, lesson: LessonPage, user=None) -> LiveStream:
    """Change which lesson a lecture counts as: only before it has started."""
    if stream.lesson_id == lesson.pk:
        return stream
    if stream.state != LiveStream.State.SCHEDULED:
        raise LiveNotWatchable(
            _("The lecture has already started: the lesson it counts as can no longer change.")
        )
    old = stream.lesson_id
    stream.lesson = lesson
    stream.save(update_fields=["lesson"])
    audit_event(event="live_stream_lesson_changed", obj=stream, actor=user, old=old, new=lesson.pk)
    return stream


def live_key_regenerate(*, stream: LiveStream, user=None) -> LiveStream:
    """A new stream key for ``stream``; the old one is refused from now on (a push already
    running with it goes on until it drops)."""
    with transaction.atomic():
        stream = LiveStream.objects.select_for_update().get(pk=stream.pk)
        stream.key = secrets.token_urlsafe(18)
        stream.save(update_fields=["key"])
        audit_event(event="live_key_regenerated", obj=stream, actor=user)
    return stream


def live_publish_begin(*, key: str, now=None) -> LiveStream:
    """nginx asks whether a push with ``key`` may go on air (on_publish).

    Accepted only for a lecture's current key while the lecture has not ended: a wrong key, a
    key replaced by a new one and a key reused after its lecture ended are refused (raise
    LiveKeyRefused). An accepted push opens a new push interval; the first one starts the
    lecture, a later one resumes it after an interruption."""
    now = now or timezone.now()
    stream = LiveStream.objects.filter(key=str(key or "")).first()
    if stream is None:
        raise LiveKeyRefused("unknown stream key")
    if stream.state in LiveStream.ENDED:  # ended for good: no lock needed to say no
        # Logged outside any transaction of ours, so the refusal stays on record.
        audit_event(event="live_publish_refused", obj=stream, result="refused", error="ended")
        raise LiveKeyRefused("the lecture of this stream key has ended")
    with transaction.atomic():
        stream = LiveStream.objects.select_for_update().filter(key=str(key or "")).first()
        if stream is None or stream.state in LiveStream.ENDED:  # changed meanwhile
            raise LiveKeyRefused("the stream key changed or its lecture ended")
        pushes = [list(p) for p in stream.pushes]
        if pushes and pushes[-1][1] is None:  # a push nginx never said was done
            pushes[-1][1] = now.isoformat()
        pushes.append([now.isoformat(), None])
        stream.pushes = pushes
        resumed = stream.started_at is not None
        stream.started_at = stream.started_at or now
        stream.state = LiveStream.State.LIVE
        stream.on_air_key = stream.key
        stream.save(update_fields=["pushes", "started_at", "state", "on_air_key"])
        audit_event(event="live_resumed" if resumed else "live_started", obj=stream)
    return stream


def live_publish_end(*, name: str, now=None) -> LiveStream | None:
    """nginx says the push of stream ``name`` has gone (on_publish_done; nginx names it by
    the key it was published with, or by the public name): the open push closes; a lecture
    still on air is interrupted (its viewers see "signal lost") until the push resumes, the
    trainer ends it, or the grace period passes."""
    now = now or timezone.now()
    name = str(name or "")
    if not name:
        return None
    match = re.fullmatch(r"lecture-([0-9]+)", name)
    found = Q(on_air_key=name) if match is None else Q(pk=int(match.group(1)))
    with transaction.atomic():
        stream = LiveStream.objects.select_for_update().filter(found).first()
        if stream is None:
            return None
        pushes = [list(p) for p in stream.pushes]
        if pushes and pushes[-1][1] is None:
            pushes[-1][1] = now.isoformat()
        stream.pushes = pushes
        stream.on_air_key = ""
        fields = ["pushes", "on_air_key"]
        if stream.state == LiveStream.State.LIVE:
            stream.state = LiveStream.State.INTERRUPTED
            fields.append("state")
            audit_event(event="live_interrupted", obj=stream)
        stream.save(update_fields=fields)
    _schedule_expiry(stream, now)
    return stream


def _schedule_expiry(stream, now) -> None:
    backend = live_expire_task.get_backend()
    if stream.state != LiveStream.State.INTERRUPTED or not backend.supports_defer:
        return  # live_expire also runs whenever the lecture's status is asked
    run_after = now + timedelta(minutes=settings.LUNXUN_LIVE_GRACE_MINUTES, seconds=5)
    transaction.on_commit(lambda: live_expire_task.using(run_after=run_after).enqueue(stream.pk))


def live_expire(*, stream_id: int, now=None) -> LiveStream | None:
    """End a lecture whose push has been gone longer than the grace period."""
    now = now or timezone.now()
    stream = LiveStream.objects.filter(pk=stream_id).first()
    if stream is None or stream.state != LiveStream.State.INTERRUPTED or not stream.pushes:
        return stream
    last_end = stream.pushes[-1][1]
    if last_end is None:
        return stream
    gone = now - datetime.fromisoformat(last_end)
    if gone < timedelta(minutes=settings.LUNXUN_LIVE_GRACE_MINUTES):
        return stream
    return live_end(stream=stream, now=now)


def live_end(*, stream: LiveStream, user=None, now=None) -> LiveStream:
    """The trainer ends the lecture (or the grace period did): the key stops working, a push
    still running is cut, and the recording goes to the worker to become the lesson's video."""
    now = now or timezone.now()
    with transaction.atomic():
        stream = LiveStream.objects.select_for_update().get(pk=stream.pk)
        if stream.state in LiveStream.ENDED:
            return stream
        pushes = [list(p) for p in stream.pushes]
        if pushes and pushes[-1][1] is None:
            pushes[-1][1] = now.isoformat()
        stream.pushes = pushes
        stream.state = LiveStream.State.PROCESSING
        stream.ended_at = now
        stream.save(update_fields=["pushes", "state", "ended_at"])
        audit_event(
            event="live_ended",
            obj=stream,
            actor=user,
            by="trainer" if user is not None else "grace period",
            pushed_seconds=round(stream.pushed_seconds(now), 1),
        )
        name, pk = stream.name, stream.pk
        transaction.on_commit(lambda: live.drop_publisher(name))
        transaction.on_commit(lambda: live_recording_process_task.enqueue(pk))
    return stream


def _settled_recording(path: Path) -> bool:
    """Wait until nginx has finished the recording (its size stops changing)."""
    deadline = time.monotonic() + RECORDING_SETTLE_SECONDS
    last = -1
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.is_file() else -1
        if size > 0 and size == last:
            return True
        last = size
        time.sleep(0.5)
    return path.is_file() and path.stat().st_size > 0


def live_recording_process(*, stream_id: int) -> LiveStream:
    """Runs on the worker: the lecture's recording goes through the same checks and pipeline
    as an upload (video_create_from_path) and becomes its lesson's video."""
    stream = LiveStream.objects.select_related("lesson").get(pk=stream_id)
    if stream.recording_id is not None:
        return stream
    path = live.recording_path(stream.name)
    if not _settled_recording(path):
        LiveStream.objects.filter(pk=stream_id).update(
            failure_reason="no recording was written for this lecture"
        )
        return LiveStream.objects.get(pk=stream_id)
    # The recording keeps its name (one per lecture, appended to when a push resumes): the
    # pipeline stores a copy, so the live server's file can be moved aside.
    kept = path.with_name(f"{stream.name}-{uuid.uuid4().hex[:8]}.flv")
    path.rename(kept)
    try:
        video = video_create_from_path(path=kept, title=stream.lesson.title)
    except VideoRejected as error:
        LiveStream.objects.filter(pk=stream_id).update(failure_reason=str(error))
        return LiveStream.objects.get(pk=stream_id)
    with transaction.atomic():
        LiveStream.objects.filter(pk=stream_id).update(recording=video)
        LessonPage.objects.filter(pk=stream.lesson_id).update(video=video)
        audit_event(event="live_recording_saved", obj=stream, video_id=video.pk)
    kept.unlink(missing_ok=True)
    video.refresh_from_db()
    if video.is_ready:  # processed already (a worker as fast as this one, or in-process tasks)
        live_progress_settle(video=video)
    return LiveStream.objects.get(pk=stream_id)


def live_progress_settle(*, video: LessonVideo) -> None:
    """The recording of a live lecture is ready: what members watched live counts toward it.
    Their live seconds (on the same timeline as the recording) are measured against the
    recording's length, and those past the completion threshold complete the lesson."""
    streams = list(LiveStream.objects.filter(recording=video))
    if not streams:
        return
    duration = float(video.duration or 0)
    lesson_ids = {stream.lesson_id for stream in streams}
    LiveStream.objects.filter(pk__in=[s.pk for s in streams]).update(state=LiveStream.State.REPLAY)
    for stream in streams:
        audit_event(event="live_replay_ready", obj=stream, video_id=video.pk)
    now = timezone.now()
    threshold = settings.LUNXUN_COMPLETION_THRESHOLD * duration
    for lesson_id in lesson_ids:
        lesson = LessonPage.objects.select_related("video").get(pk=lesson_id)
        with transaction.atomic():
            rows = LessonProgress.objects.select_for_update().filter(lesson_id=lesson_id)
            for progress in rows:
                credited = segments.clean(progress.segments, duration)
                progress.segments = credited
                progress.duration = duration
                progress.watched_seconds = round(segments.total(credited), 3)
                progress.furthest = min(progress.furthest, duration)
                progress.last_position = min(progress.last_position, duration)
                fields = ["segments", "duration", "watched_seconds", "furthest", "last_position"]
                if progress.completed_at is None and progress.watched_seconds + 1e-6 >= threshold:
                    progress.completed_at = now
                    progress.hours_earned = lesson.hours
                    fields += ["completed_at", "hours_earned"]
                    _announce_completion(progress, fields)
                progress.save(update_fields=[*fields, "updated_at"])


def live_viewing_start(*, member, stream: LiveStream, session_key: str) -> LessonProgress:
    """Begin watching a lecture live: a viewing of its lesson like any other (one at a time per
    member, the watch clock carried over, nothing credited for time before it began)."""
    if not stream.is_watchable:
        raise LiveNotWatchable(_("This lecture is not live now."))
    progress = LessonProgress.objects.filter(member=member, lesson_id=stream.lesson_id).first()
    duration = max(LIVE_TIMELINE_SECONDS, progress.duration if progress else 0)
    return _open_viewing(
        member=member, lesson=stream.lesson, session_key=session_key, duration=duration
    )


def live_progress_report(*, stream: LiveStream, progress_id, viewing, played, position):
    """A live player's report: the moments it played (program date-times, seconds since the
    epoch) become seconds of the lecture's timeline, then the ordinary rules apply
    (progress_report: the viewing token, one viewing at a time, the watch clock)."""
    if not LessonProgress.objects.filter(pk=progress_id, lesson_id=stream.lesson_id).exists():
        raise ViewingSuperseded
    timeline = stream.timeline_segments(played)
    try:
        position = float(position)
    except (TypeError, ValueError):
        position = 0.0
    at = stream.timeline_segments([[position - 0.001, position]])
    return progress_report(
        progress_id=progress_id,
        viewing=viewing,
        segments=timeline,
        position=at[-1][1] if at else 0,
    )


def live_status_text(progress: LessonProgress | None) -> str:
    """A member's own count while a lecture is live, in words."""
    minutes = int((progress.watched_seconds if progress else 0) // 60)
    return ngettext(
        "Watched live: %(n)d minute so far. It counts toward this lesson.",
        "Watched live: %(n)d minutes so far. They count toward this lesson.",
        minutes,
    ) % {"n": minutes}

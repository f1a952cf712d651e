"""Issuing, numbering, revoking, re-issuing, rendering and exporting certificates.

Numbers come from a ``NumberSequence`` row locked for the length of the transaction that
creates the certificates (``select_for_update`` on PostgreSQL; on SQLite the IMMEDIATE
transaction holds the database's write lock from its first statement), so however many issue
at once, numbers have no gaps and no duplicates. Who still needs a certificate is read after
the lock is taken, so two issuers never issue to the same member.

The series is what the number pattern makes of everything except the sequence: with the
default ``{year}-Q{quarter}-{seq:06d}`` every round of a quarter shares ``2026-Q3-#``, so
their numbers stay unique; a pattern with ``{round}`` numbers each round on its own.
"""

import dataclasses
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core import downloads
from core.audit import audit_event
from members.models import Member, path_prefix_q
from rounds.ledger import ledger_entries, ledger_total
from rounds.models import Participation, Round

from .default_template import ensure_default_templates
from .models import (
    Certificate,
    CertificateTemplate,
    NumberSequence,
    RoundTemplate,
    TemplateSnapshot,
)
from .tasks import certificates_render_task

logger = logging.getLogger(__name__)

Kind = CertificateTemplate.Kind
State = Certificate.State

DEFAULT_CERTIFICATE_NUMBER = "{year}-Q{quarter}-{seq:06d}"
DEFAULT_STATEMENT_NUMBER = "{year}-XS-{seq:06d}"
ISSUE_CHUNK = 2000  # certificates created per transaction (and per audit record)
RENDER_CHUNK = 200  # certificates loaded from the database at a time while rendering
IN_PROCESS_RENDER = 20  # up to this many are rendered in this process, not in a worker
TENTH = Decimal("0.1")


class CertificateError(ValidationError):
    """The certificate is not in a state that allows this (e.g. revoking a revoked one)."""


# --- Numbering ---------------------------------------------------------------------------------


class _SequenceSlot:
    """Stands for ``{seq}`` when the pattern is turned into the name of its series."""

    def __format__(self, spec):
        return "#"


@dataclass(frozen=True)
class Numbering:
    pattern: str
    values: dict
    series: str

    def number(self, sequence: int) -> str:
        return self.pattern.format(seq=sequence, **self.values)


def _numbering(pattern: str, values: dict) -> Numbering:
    try:
        series = pattern.format(seq=_SequenceSlot(), **values)
        sample = pattern.format(seq=1, **values)
    except (KeyError, IndexError, ValueError) as error:
        raise ImproperlyConfigured(
            f"Certificate number pattern {pattern!r} is not valid: {error!r}. "
            f"Placeholders: {', '.join(['seq', *values])}."
        ) from error
    if "#" not in series or series == sample:
        raise ImproperlyConfigured(f"Certificate number pattern {pattern!r} has no {{seq}}.")
    max_length = NumberSequence._meta.get_field("key").max_length
    if len(series) > max_length:
        series = "h:" + hashlib.sha256(series.encode()).hexdigest()[: max_length - 2]
    return Numbering(pattern=pattern, values=values, series=series)


def numbering_for_round(training_round: Round) -> Numbering:
    pattern = getattr(settings, "LUNXUN_CERTIFICATE_NUMBER", DEFAULT_CERTIFICATE_NUMBER)
    return _numbering(
        pattern,
        {
            "year": training_round.year,
            "quarter": training_round.quarter,
            "round": training_round.pk,
        },
    )


def numbering_for_statements(year: int) -> Numbering:
    pattern = getattr(settings, "LUNXUN_STATEMENT_NUMBER", DEFAULT_STATEMENT_NUMBER)
    return _numbering(pattern, {"year": year})


def _numbering_of(certificate: Certificate) -> Numbering:
    if certificate.kind == Kind.COMPLETION:
        return numbering_for_round(certificate.round)
    return numbering_for_statements(certificate.year)


def _lock_sequence(series: str) -> NumberSequence:
    """The series' counter, locked until the surrounding transaction ends."""
    NumberSequence.objects.get_or_create(key=series)
    return NumberSequence.objects.select_for_update().get(key=series)


def _take_numbers(sequence: NumberSequence, count: int) -> int:
    """Reserve ``count`` numbers of a locked series; returns the first."""
    first = sequence.last + 1
    sequence.last += count
    sequence.save(update_fields=["last"])
    return first


# --- Templates and URLs -------------------------------------------------------------------------


def default_template(kind: str) -> CertificateTemplate:
    """The default template of ``kind``, created on first need."""
    template = CertificateTemplate.objects.filter(kind=kind, is_default=True).first()
    if template is None:
        try:
            with transaction.atomic():
                ensure_default_templates()
        except IntegrityError:
            pass  # created at the same moment by another issuer
        template = (
            CertificateTemplate.objects.filter(kind=kind, is_default=True).first()
            or CertificateTemplate.objects.filter(kind=kind).order_by("pk").first()
        )
    if template is None:
        raise ImproperlyConfigured(f"No certificate template of kind {kind!r}.")
    return template


def round_template(training_round: Round) -> CertificateTemplate:
    """The completion certificate template ``training_round`` names, or the default one."""
    chosen = RoundTemplate.objects.filter(round=training_round).select_related("template").first()
    return chosen.template if chosen is not None else default_template(Kind.COMPLETION)


def round_template_set(*, training_round: Round, template: CertificateTemplate | None):
    """Name ``template`` as the one ``training_round``'s certificates are issued with
    (``None``: the default). Certificates issued already keep what they were issued with."""
    if template is None:
        RoundTemplate.objects.filter(round=training_round).delete()
    else:
        RoundTemplate.objects.update_or_create(
            round=training_round, defaults={"template": template}
        )


def _picture_key(image) -> list:
    return [image.pk, image.file.name, image.file_hash] if image is not None else []


def _copy_picture(field, image, snapshot) -> None:
    """Copy ``image``'s file into the snapshot's ``field``: a later replacement of the picture
    in the admin does not reach certificates already issued."""
    if image is None:
        return
    try:
        with image.file.open("rb") as source:
            data = source.read()
    except OSError as error:
        logger.warning("Certificate picture %s cannot be copied: %s", image.file.name, error)
        return
    extension = os.path.splitext(image.file.name)[1].lower() or ".png"
    digest = hashlib.sha256(data).hexdigest()
    getattr(snapshot, field).save(f"{digest}{extension}", ContentFile(data), save=False)


def template_snapshot(*, template: CertificateTemplate) -> TemplateSnapshot:
    """What ``template`` prints now, kept for the certificates issued with it: the same row
    for every certificate issued while the template (and its pictures) stay as they are."""
    template = CertificateTemplate.objects.select_related("seal", "signature").get(pk=template.pk)
    text = [template.kind, template.title, template.body, template.issuer_lines, template.border]
    key = [template.pk, *text, _picture_key(template.seal), _picture_key(template.signature)]
    fingerprint = hashlib.sha256(json.dumps(key, ensure_ascii=False).encode()).hexdigest()
    snapshot = TemplateSnapshot.objects.filter(fingerprint=fingerprint).first()
    if snapshot is not None:
        return snapshot
    snapshot = TemplateSnapshot(
        template=template,
        fingerprint=fingerprint,
        kind=template.kind,
        title=template.title,
        body=template.body,
        issuer_lines=template.issuer_lines,
        border=template.border,
        seal_image=template.seal,
        signature_image=template.signature,
    )
    _copy_picture("seal", template.seal, snapshot)
    _copy_picture("signature", template.signature, snapshot)
    try:
        with transaction.atomic():
            snapshot.save()
    except IntegrityError:  # made at the same moment by another issuer
        for file in snapshot.printed_pictures():
            if file:
                file.storage.delete(file.name)
        snapshot = TemplateSnapshot.objects.get(fingerprint=fingerprint)
    return snapshot


def verify_url(certificate: Certificate) -> str:
    """The public verification address printed as the QR code."""
    path = reverse("certificates:verify", args=[certificate.code])
    return settings.LUNXUN_SITE_URL.rstrip("/") + path


# --- Issuing -----------------------------------------------------------------------------------


def _pending_participations(training_round: Round):
    """Members who completed ``training_round`` and have no certificate for it yet.

    A revoked certificate counts: issuing again does not undo a revocation.
    """
    has_certificate = Certificate.objects.filter(
        round=training_round, kind=Kind.COMPLETION, member=OuterRef("member")
    )
    return (
        Participation.objects.filter(round=training_round, status=Participation.Status.COMPLETED)
        .filter(~Exists(has_certificate))
        .order_by("member__organization__path", "member__name", "member_id")
    )


def certificates_pending_count(*, training_round: Round) -> int:
    return _pending_participations(training_round).count()


@dataclass
class IssueResult:
    count: int = 0
    first: str = ""
    last: str = ""
    ids: list = None

    def __post_init__(self):
        if self.ids is None:
            self.ids = []


def _issue_chunk(*, training_round, numbering, snapshot, user, request, today, render) -> list:
    with transaction.atomic():
        sequence = _lock_sequence(numbering.series)
        rows = list(
            _pending_participations(training_round).select_related("member__organization")[
                :ISSUE_CHUNK
            ]
        )
        if not rows:
            return []
        first = _take_numbers(sequence, len(rows))
        certificates = []
        for offset, row in enumerate(rows):
            member = row.member
            certificates.append(
                Certificate(
                    kind=Kind.COMPLETION,
                    round=training_round,
                    year=training_round.year,
                    member=member,
                    template_id=snapshot.template_id,
                    snapshot=snapshot,
                    series=numbering.series,
                    sequence=first + offset,
                    number=numbering.number(first + offset),
                    name=member.name,
                    organization_name=member.organization.name,
                    round_title=training_round.title,
                    opens_on=training_round.opens_on,
                    closes_on=training_round.closes_on,
                    hours=training_round.hours,
                    issued_on=today,
                    issued_by=user,
                )
            )
        created = Certificate.objects.bulk_create(certificates)
        ids = [c.pk for c in created]
        if not all(ids):  # a backend that returns no primary keys from bulk_create
            ids = list(
                Certificate.objects.filter(
                    series=numbering.series,
                    sequence__gte=first,
                    sequence__lt=first + len(rows),
                ).values_list("pk", flat=True)
            )
        audit_event(
            event="certificates_issued",
            obj=training_round,
            actor=user,
            request=request,
            count=len(created),
            first=created[0].number,
            last=created[-1].number,
            certificate_ids=ids,
        )
        if render:
            transaction.on_commit(lambda: _enqueue_render(ids))
    return created


def _enqueue_render(ids):
    certificates_render_task.enqueue(ids)


def certificates_issue(
    *, training_round: Round, user=None, request=None, render=True, progress=None
) -> IssueResult:
    """Issue a completion certificate to every member who completed ``training_round`` and has
    none yet; issuing again issues only what is new. Each chunk is one transaction holding the
    series' lock. PDFs are rendered afterwards by a background task (``render=False``: not).
    The certificates print the round's template (``round_template``) as it is now, and keep
    that whatever later happens to the template."""
    training_round = Round.objects.get(pk=training_round.pk)
    if training_round.state == Round.State.DRAFT:
        raise CertificateError(_("A draft round has no certificates."))
    numbering = numbering_for_round(training_round)
    snapshot = template_snapshot(template=round_template(training_round))
    today = timezone.localdate()
    result = IssueResult()
    while True:
        created = _issue_chunk(
            training_round=training_round,
            numbering=numbering,
            snapshot=snapshot,
            user=user,
            request=request,
            today=today,
            render=render,
        )
        if not created:
            break
        result.count += len(created)
        result.first = result.first or created[0].number
        result.last = created[-1].number
        result.ids += [c.pk for c in created]
        if progress:
            progress(result.count)
        if len(created) < ISSUE_CHUNK:
            break
    return result


# --- Study-hours statements --------------------------------------------------------------------


def statement_years(*, today=None) -> list[int]:
    """Years a member may ask a statement for: this one and the four before it."""
    year = (today or timezone.localdate()).year
    return list(range(year, year - 5, -1))


def statement_issue(*, member: Member, year: int, user=None, request=None) -> Certificate:
    """``member``'s study-hours statement (学时证明) for ``year``: one valid per member-year.

    Asked again with nothing changed, the existing statement is returned; after new hours
    (or a corrected name) a new one with a new number supersedes it.
    """
    today = timezone.localdate()
    if year > today.year:
        raise CertificateError(_("A statement cannot be issued for a future year."))
    member = Member.objects.select_related("organization").get(pk=member.pk)
    total = ledger_total(entries=ledger_entries(member=member, year=year)).quantize(TENTH)
    numbering = numbering_for_statements(year)
    snapshot = template_snapshot(template=default_template(Kind.HOURS))
    with transaction.atomic():
        sequence = _lock_sequence(numbering.series)
        current = (
            Certificate.objects.select_for_update()
            .filter(kind=Kind.HOURS, member=member, year=year, state=State.VALID)
            .first()
        )
        if (
            current is not None
            and current.hours == total
            and current.name == member.name
            and current.organization_name == member.organization.name
        ):
            return current
        if current is not None:
            current.state = State.SUPERSEDED
            current.save(update_fields=["state"])
        number = _take_numbers(sequence, 1)
        statement = Certificate.objects.create(
            kind=Kind.HOURS,
            year=year,
            member=member,
            template_id=snapshot.template_id,
            snapshot=snapshot,
            series=numbering.series,
            sequence=number,
            number=numbering.number(number),
            name=member.name,
            organization_name=member.organization.name,
            opens_on=date(year, 1, 1),
            closes_on=min(date(year, 12, 31), today),
            hours=total,
            issued_on=today,
            issued_by=user,
            supersedes=current,
        )
        audit_event(
            event="statement_issued",
            obj=statement,
            actor=user,
            request=request,
            number=statement.number,
            year=year,
            hours=str(total),
            supersedes=current.number if current else "",
        )
    return statement


# --- Revoking and re-issuing -------------------------------------------------------------------


def certificate_revoke(*, certificate: Certificate, reason: str, user, request=None):
    """Revoke a valid certificate; its verification page says so from now on."""
    reason = (reason or "").strip()
    if not reason:
        raise CertificateError(_("Give a reason for the revocation."))
    with transaction.atomic():
        certificate = Certificate.objects.select_for_update().get(pk=certificate.pk)
        if certificate.state != State.VALID:
            raise CertificateError(_("Only a valid certificate can be revoked."))
        certificate.state = State.REVOKED
        certificate.revoked_at = timezone.now()
        certificate.revoked_by = user
        certificate.revoke_reason = reason[:200]
        certificate.save(update_fields=["state", "revoked_at", "revoked_by", "revoke_reason"])
        audit_event(
            event="certificate_revoked",
            obj=certificate,
            actor=user,
            request=request,
            number=certificate.number,
            reason=certificate.revoke_reason,
        )
    return certificate


def certificate_reissue(*, certificate: Certificate, user, request=None) -> Certificate:
    """A corrected copy (the member's current name and organisation) with a new number and
    code, printed as the old one was (its template as issued); the old one stays on record as
    superseded, linked to its successor."""
    numbering = _numbering_of(certificate)
    with transaction.atomic():
        sequence = _lock_sequence(numbering.series)
        old = (
            Certificate.objects.select_for_update()
            .select_related("member__organization")
            .get(pk=certificate.pk)
        )
        if old.state != State.VALID:
            raise CertificateError(_("Only a valid certificate can be re-issued."))
        old.state = State.SUPERSEDED
        old.save(update_fields=["state"])
        number = _take_numbers(sequence, 1)
        member = old.member
        new = Certificate.objects.create(
            kind=old.kind,
            round=old.round,
            year=old.year,
            member=member,
            template_id=old.template_id,
            snapshot_id=old.snapshot_id,
            series=numbering.series,
            sequence=number,
            number=numbering.number(number),
            name=member.name,
            organization_name=member.organization.name,
            round_title=old.round_title,
            opens_on=old.opens_on,
            closes_on=old.closes_on,
            hours=old.hours,
            issued_on=timezone.localdate(),
            issued_by=user,
            supersedes=old,
        )
        audit_event(
            event="certificate_reissued",
            obj=new,
            actor=user,
            request=request,
            number=new.number,
            supersedes=old.number,
            old_name=old.name,
            name=new.name,
        )
        transaction.on_commit(lambda: _enqueue_render([new.pk]))
    return new


# --- Rendering and storage ---------------------------------------------------------------------


def certificate_content(certificate: Certificate):
    """What the PDF prints: the facts copied at issue and, for a study-hours statement, the
    ledger entries it counted (those counting before it was issued, so they add up to its total
    even when it is rendered after new hours came in)."""
    from .render import content_for  # heavy: certificates.render loads WeasyPrint

    content = content_for(certificate, verify_url(certificate))
    if certificate.kind != Kind.HOURS:
        return content
    issued_at = certificate.issued_at or timezone.now()
    entries = tuple(
        (timezone.localdate(entry.date), entry.title, entry.hours)
        for entry in ledger_entries(member=certificate.member, year=certificate.year)
        if entry.counted_since <= issued_at
    )
    return dataclasses.replace(content, entries=entries)


def _needs_pdf():
    return Q(pdf="") | Q(pdf__isnull=True) | Q(pdf_rendered_at__isnull=True)


def _store_pdf(certificate: Certificate, data: bytes) -> str:
    """Save ``data`` as the certificate's PDF; returns the storage name.

    The file name carries a random part: the embedded demo serves MEDIA_ROOT, and a name made
    of the number alone could be guessed. Downloads go through the checked view anyway.
    """
    field = Certificate._meta.get_field("pdf")
    name = field.generate_filename(certificate, f"{certificate.number}-{secrets.token_hex(8)}.pdf")
    stored = field.storage.save(name, ContentFile(data))
    now = timezone.now()
    Certificate.objects.filter(pk=certificate.pk).update(pdf=stored, pdf_rendered_at=now)
    certificate.pdf.name = stored
    certificate.pdf_rendered_at = now
    return stored


def _loaded(ids):
    """Certificates by chunks of ids, with what rendering reads."""
    for start in range(0, len(ids), RENDER_CHUNK):
        chunk = ids[start : start + RENDER_CHUNK]
        rows = Certificate.objects.filter(pk__in=chunk).select_related("round", "member")
        by_pk = {c.pk: c for c in rows}
        for pk in chunk:
            if pk in by_pk:
                yield by_pk[pk]


def certificates_render(*, certificates, progress=None) -> int:
    """Render and store the PDF of every certificate in ``certificates`` that has none yet.

    Certificates are read a chunk at a time and rendered by ``render.iter_rendered``, which
    keeps a long run's memory bounded; returns how many were rendered.
    """
    from .render import iter_rendered  # heavy: certificates.render loads WeasyPrint

    pending = certificates.filter(_needs_pdf()).order_by("snapshot_id", "series", "sequence")
    rows = list(pending.values_list("pk", "snapshot_id"))
    total = len(rows)
    done = 0
    by_snapshot = {}
    for pk, snapshot_id in rows:
        by_snapshot.setdefault(snapshot_id, []).append(pk)
    for snapshot_id, ids in by_snapshot.items():
        snapshot = TemplateSnapshot.objects.get(pk=snapshot_id)
        waiting = {}

        def contents(ids=ids, waiting=waiting):
            for certificate in _loaded(ids):
                waiting[certificate.number] = certificate
                yield certificate_content(certificate)

        # A few are quicker here than in a fresh worker process; long runs recycle workers.
        small = {"recycle_after": 0} if len(ids) <= IN_PROCESS_RENDER else {}
        for content, data in iter_rendered(contents(), snapshot, **small):
            _store_pdf(waiting.pop(content.number), data)
            done += 1
            if progress:
                progress(done, total)
    return done


def certificate_pdf(*, certificate: Certificate):
    """The certificate's stored PDF (a FieldFile), rendered and stored first if need be."""
    if certificate.needs_rendering:
        from .render import render_one  # heavy: certificates.render loads WeasyPrint

        data = render_one(certificate_content(certificate), certificate.snapshot)
        _store_pdf(certificate, data)
    return certificate.pdf


def pdf_filename(certificate: Certificate) -> str:
    """``<number>-<name>.pdf``: what a download and a ZIP entry are called."""
    return _safe_filename(f"{certificate.number}-{certificate.name}") + ".pdf"


def _safe_filename(text: str) -> str:
    """A name for a file inside a ZIP or on disk: no path, quote, space, control or
    direction-changing characters (core.downloads names the download itself)."""
    return re.sub(r'[\\/:*?"<>|\s]+', "", downloads.without_invisible(text)) or "certificate"


# --- Bulk export -------------------------------------------------------------------------------


def round_certificates(*, training_round: Round, organization=None):
    """The valid completion certificates of ``training_round`` for members of
    ``organization``'s subtree (all of them for ``None``), in number order."""
    certificates = Certificate.objects.valid().filter(round=training_round, kind=Kind.COMPLETION)
    if organization is not None:
        certificates = certificates.filter(
            path_prefix_q(organization.path, "member__organization__path")
        )
    return certificates.order_by("series", "sequence")


def merged_filename(suffix="") -> str:
    return _("All certificates for printing%(suffix)s.pdf") % {"suffix": suffix}


def certificates_zip_write(
    *, training_round: Round, organization=None, user=None, request=None, target, progress=None
) -> int:
    """Write to the file object ``target`` a ZIP of the round's certificates in
    ``organization``'s subtree: one PDF per member (``<number>-<name>.pdf``) and one merged,
    print-ready PDF. Missing PDFs are rendered and stored first. Audit-logged; returns how many
    certificates it holds."""
    from .render import render_merged  # heavy: certificates.render loads WeasyPrint

    certificates = round_certificates(training_round=training_round, organization=organization)
    certificates_render(certificates=certificates, progress=progress)
    ids = list(certificates.values_list("pk", flat=True))
    by_snapshot = {}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as bundle:
        for certificate in _loaded(ids):
            by_snapshot.setdefault(certificate.snapshot_id, []).append(certificate.pk)
            with (
                certificate.pdf.open("rb") as source,
                bundle.open(pdf_filename(certificate), "w", force_zip64=True) as entry,
            ):
                shutil.copyfileobj(source, entry, 1024 * 1024)
        for index, (snapshot_id, snapshot_ids) in enumerate(sorted(by_snapshot.items())):
            snapshot = TemplateSnapshot.objects.get(pk=snapshot_id)
            contents = [certificate_content(c) for c in _loaded(snapshot_ids)]
            suffix = f" ({index + 1})" if len(by_snapshot) > 1 else ""
            bundle.writestr(merged_filename(suffix), render_merged(contents, snapshot))
    audit_event(
        event="certificates_exported",
        obj=training_round,
        actor=user,
        request=request,
        count=len(ids),
        organization=organization.code if organization else "",
    )
    return len(ids)


def zip_filename(*, training_round: Round, organization=None) -> str:
    parts = [training_round.title]
    if organization is not None:
        parts.append(organization.name)
    return _safe_filename("-".join(parts)) + ".zip"

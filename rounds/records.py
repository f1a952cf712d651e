"""Study the system did not see (学时全口径): entries a secretary records and another approves.

A 党校 class, 春训冬训, a 送学上门 visit to a member who cannot come or use a phone: a secretary
or trainer whose scope covers the member records it (what, when, how many 学时, an optional
note — never a photo or a document); someone else whose scope covers the member approves or
refuses it; approved, it counts in the member's yearly ledger. Nobody records or decides study
of their own, nobody approves what they recorded, every step is audit-logged, and a second
click of the same form records nothing twice.
"""

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import audit_event
from members import access
from members.models import Member, subtree_q

from .models import StudyRecord

RECORDING_ROLES = access.ROLES_MANAGING_ROSTER


class RecordRefused(Exception):
    """Said to the user in words; nothing was changed."""


def can_record_for(user, member) -> bool:
    return not access.is_self(user, member) and access.can_see_organization(
        user, member.organization, RECORDING_ROLES
    )


def record_create(
    *, member: Member, kind, title, studied_on, hours, user, form_token, note="", request=None
) -> tuple[StudyRecord, bool]:
    """Record a study for ``member``, waiting for approval; returns (record, created).

    The same form sent twice (its ``form_token``) returns the first record, unchanged."""
    if not can_record_for(user, member):
        raise RecordRefused(
            _("You cannot record study for yourself or for someone outside your responsibility.")
        )
    if studied_on > timezone.localdate():
        raise RecordRefused(_("A study cannot be recorded before it has taken place."))
    # The same form sent twice, or the same study entered again (a page gone back to): the
    # first record stands. A refused record may be entered again, corrected.
    existing = (
        StudyRecord.objects.filter(
            Q(form_token=form_token)
            | Q(
                member=member,
                kind=kind,
                title=title.strip(),
                studied_on=studied_on,
                hours=hours,
                state__in=(StudyRecord.State.PENDING, StudyRecord.State.APPROVED),
            )
        )
        .order_by("pk")
        .first()
    )
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            record = StudyRecord.objects.create(
                member=member,
                kind=kind,
                title=title.strip(),
                studied_on=studied_on,
                hours=hours,
                note=(note or "").strip()[:300],
                recorded_by=user,
                form_token=form_token,
            )
    except IntegrityError:  # the same form, sent twice at once
        return StudyRecord.objects.get(form_token=form_token), False
    audit_event(
        event="study_record_created",
        obj=record,
        actor=user,
        request=request,
        member=member.pk,
        hours=str(hours),
        kind=kind,
    )
    return record, True


def record_decide(*, record: StudyRecord, approve: bool, user, note="", request=None):
    """Approve (it counts from now on) or refuse a pending record. Not one's own study, not
    what one recorded oneself: that is someone else's to check."""
    if access.is_self(user, record.member):
        raise RecordRefused(_("You cannot approve study of your own: the level above you does."))
    if record.recorded_by_id == user.pk:
        raise RecordRefused(
            _(
                "You recorded this study: someone else whose responsibility covers the member "
                "approves it."
            )
        )
    if not access.can_see_organization(user, record.member.organization, RECORDING_ROLES):
        raise RecordRefused(_("This member is outside your responsibility."))
    note = (note or "").strip()[:200]
    if not approve and not note:
        raise RecordRefused(_("Say why the record is refused, so the secretary can correct it."))
    with transaction.atomic():
        record = StudyRecord.objects.select_for_update().get(pk=record.pk)
        if record.state != StudyRecord.State.PENDING:
            raise RecordRefused(_("This record has already been decided."))
        record.state = StudyRecord.State.APPROVED if approve else StudyRecord.State.REFUSED
        record.decided_by = user
        record.decided_at = timezone.now()
        record.decision_note = note
        record.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])
        audit_event(
            event="study_record_approved" if approve else "study_record_refused",
            obj=record,
            actor=user,
            request=request,
            note=note,
        )
    return record


def records_visible(user):
    """Records about members in ``user``'s subtree (as a recording role)."""
    roots = access.role_roots(user, RECORDING_ROLES)
    records = StudyRecord.objects.select_related("member__organization", "recorded_by")
    if roots is None:
        return records
    return records.filter(subtree_q(roots, "member__organization__path"))


def records_to_decide(user):
    """Pending records this user may decide: not about them, not recorded by them."""
    return (
        records_visible(user)
        .pending()
        .exclude(Q(recorded_by=user) | Q(member__user=user))
        .order_by("recorded_at", "pk")
    )

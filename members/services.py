"""Writes that span several models: members, activation, password resets, roles.

Spreadsheet imports, their templates and the roster export are in ``importing``.
"""

import secrets
from importlib import import_module
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BooleanField, Case, F, Value, When
from django.dispatch import Signal
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from core.audit import FAILED, OK, REFUSED, audit_event
from core.sms import SmsMessage, send_sms

from . import access
from .models import (
    ActivationCode,
    Member,
    Organization,
    Role,
    RoleAssignment,
    normalize_phone,
)

CHUNK = 900  # below every database's limit on bound parameters


def chunks(items, size=CHUNK):
    """``items`` in lists of at most ``size``, for ``__in`` lookups on any database."""
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def free_usernames(phones) -> dict[str, str]:
    """{phone: a username no account has yet}: the phone itself, or the phone with a suffix."""
    User = get_user_model()
    taken = set()
    for chunk in chunks(phones):
        taken.update(User.objects.filter(username__in=chunk).values_list("username", flat=True))
    return {p: (p if p not in taken else f"{p}.{secrets.token_hex(3)}") for p in phones}


def members_deactivate(*, member_ids, user=None, request=None) -> int:
    """Mark members inactive (transferred out, deceased): kept on record, out of future rounds."""
    members = Member.objects.filter(pk__in=member_ids, is_active=True).select_related(
        "organization"
    )
    if user is not None:
        members = members.filter(
            pk__in=access.visible_members(user, access.ROLES_MANAGING_ROSTER).values("pk")
        )
    changed = []
    with transaction.atomic():
        for member in members:
            member.is_active = False
            member.save(update_fields=["is_active", "updated_at"])
            changed.append(member)
        if user is not None or changed:
            audit_event(
                event="members_deactivated",
                obj=user if user is not None else changed[0],
                actor=user,
                request=request,
                count=len(changed),
                member_ids=[m.pk for m in changed],
            )
    return len(changed)


# --- Activation codes and password resets ------------------------------------------------------


class Slip(NamedTuple):
    """What one printed slip carries: the member and their one-time code (not stored in clear)."""

    member: Member
    code: str


class ActivationError(Exception):
    """The number, the code or the account's state does not allow it; the message is for the
    person at the activation page."""


class PasswordResetRefused(Exception):
    """This user may not reset this member's password; the message says why."""


def activation_codes_issue(*, members, user=None, request=None) -> list[Slip]:
    """New one-time activation codes for those of ``members`` who are on record and whose
    account has never been in use (``MemberQuerySet.never_activated``); their earlier unused
    codes stop working.

    The others are refused here, whoever asks: a slip would hand an account in use (a
    secretary's, a trainer's) to whoever holds it. Such an account gets a new password only
    through ``member_password_reset``. Refused members are listed in the audit record.

    Returns a Slip per member issued a code, in the order given: the codes are not stored in
    clear.
    """
    members = list(members)
    issued = []
    expires = ActivationCode.expiry_from_now()
    with transaction.atomic():
        eligible = set()
        for chunk in chunks(m.pk for m in members):
            eligible.update(
                Member.objects.filter(pk__in=chunk)
                .active()
                .never_activated()
                .values_list("pk", flat=True)
            )
        chosen = [m for m in members if m.pk in eligible]
        refused = [m for m in members if m.pk not in eligible]
        for chunk in chunks(m.pk for m in chosen):
            ActivationCode.objects.filter(member_id__in=chunk).outstanding().update(revoked=True)
        codes = []
        for member in chosen:
            code = ActivationCode.generate_code()
            record = ActivationCode(
                member=member,
                kind=ActivationCode.Kind.ACTIVATION,
                created_by=user,
                expires_at=expires,
            )
            record.set_code(code)
            codes.append(record)
            issued.append(Slip(member, code))
        ActivationCode.objects.bulk_create(codes)
        if members:
            details = {}
            if refused:
                details["refused_member_ids"] = [m.pk for m in refused]
            if not chosen:
                details["error"] = _(
                    "These accounts are already activated or in use: they need a password "
                    "reset, not an activation slip."
                )
            audit_event(
                event="activation_codes_issued",
                obj=(chosen or refused)[0].organization,
                actor=user,
                request=request,
                result=OK if chosen else REFUSED,
                count=len(chosen),
                member_ids=[m.pk for m in chosen],
                **details,
            )
    return issued


def _code_fits_account(code: ActivationCode, member: Member, account) -> bool:
    """An activation code is for an account never in use; a reset code for one whose password
    the reset made unusable (and nobody has set since)."""
    if account.has_usable_password():
        return False
    return code.kind == ActivationCode.Kind.RESET or member.activated_at is None


def _count_wrong_code(member: Member) -> None:
    """Count a wrong code against every usable code of ``member``, revoking those that reach
    LUNXUN_ACTIVATION_MAX_FAILURES.

    One UPDATE: the database adds to the stored count, so concurrent wrong tries all count (a
    read-modify-write here lost them), and the statement that reaches the limit also revokes
    (SET reads the row as it was before: failures + 1 >= limit). ``usable()`` stops at the limit
    by itself, so a code is refused there even between two statements.
    """
    limit = settings.LUNXUN_ACTIVATION_MAX_FAILURES
    ActivationCode.objects.usable().filter(member=member).update(
        failures=F("failures") + 1,
        revoked=Case(
            When(failures__gte=limit - 1, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    )


def member_activate(*, phone: str, code: str, password: str, request=None) -> Member:
    """Set a member's password with the one-time code from a slip (an activation or a reset
    slip); raise ActivationError, or ValidationError for a weak password (the code stays good).

    A wrong code counts against the number's codes (see ``_count_wrong_code``). A right code is
    refused, and revoked, when it does not fit the account (``_code_fits_account``): a slip
    never takes over an account in use. Once the password is set, every other outstanding code
    of the member stops working. Accounts that may not log in (``is_active`` off) are treated
    like unknown numbers.
    """
    generic = _("The mobile number or the activation code is not correct.")
    member = (
        Member.objects.select_related("user")
        .filter(phone=normalize_phone(phone), is_active=True, user__is_active=True)
        .first()
    )
    if member is None:
        raise ActivationError(generic)
    candidates = list(ActivationCode.objects.usable().filter(member=member))
    match = next((c for c in candidates if c.matches(code)), None)
    if match is None:
        # Counted outside any transaction that the error would roll back.
        _count_wrong_code(member)
        raise ActivationError(generic)
    event = "member_activated" if match.kind == ActivationCode.Kind.ACTIVATION else "password_set"
    in_use = _(
        "This account is already in use. Log in with its password, or ask your branch "
        "secretary to reset the password."
    )
    if not _code_fits_account(match, member, member.user):
        ActivationCode.objects.filter(pk=match.pk).update(revoked=True)
        audit_event(
            event=event, obj=member, request=request, result=REFUSED, error=in_use, code=match.pk
        )
        raise ActivationError(in_use)
    validate_password(password, member.user)
    User = get_user_model()
    with transaction.atomic():
        # The account and the member as they are now, the account locked (a row lock on
        # PostgreSQL; SQLite's IMMEDIATE transactions queue writers anyway).
        account = User.objects.select_for_update().get(pk=member.user_id)
        member.refresh_from_db(fields=["activated_at"])
        if not _code_fits_account(match, member, account):
            raise ActivationError(in_use)
        # Claim the code atomically: two submissions of the same slip activate once.
        now = timezone.now()
        claimed = ActivationCode.objects.usable().filter(pk=match.pk).update(used_at=now)
        if not claimed:
            raise ActivationError(generic)
        account.set_password(password)
        account.save(update_fields=["password"])
        if member.activated_at is None:
            member.activated_at = now
            member.save(update_fields=["activated_at", "updated_at"])
        revoked = ActivationCode.objects.filter(member=member).outstanding().update(revoked=True)
        audit_event(
            event=event,
            obj=member,
            actor=account,
            request=request,
            code=match.pk,
            revoked_codes=revoked,
        )
    member.user = account
    return member


def _session_model():
    """The model of the configured session store, or None for one that cannot be listed."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return (store, store.get_model_class()) if hasattr(store, "get_model_class") else (store, None)


def user_session_keys(*, user, keep: str | None = None) -> list[str]:
    """The keys of ``user``'s unexpired sessions but ``keep`` (the session of the request
    asking). Sessions are signed, not indexed by user: the unexpired ones are read in chunks
    (a city has as many as people active in the last SESSION_COOKIE_AGE), so call this outside
    a write transaction. With a session engine that cannot be listed (cache, signed cookies)
    there are none to find; Django still refuses a session whose password hash no longer
    matches, which every password change causes."""
    store, model = _session_model()
    if model is None:
        return []
    decoder = store()
    owner = str(user.pk)
    unexpired = model.objects.filter(expire_date__gt=timezone.now()).only(
        "session_key", "session_data"
    )
    return [
        session.session_key
        for session in unexpired.iterator(chunk_size=2000)
        if session.session_key != keep
        and decoder.decode(session.session_data).get(SESSION_KEY) == owner
    ]


def sessions_end(keys) -> int:
    """Delete the sessions ``keys``: each is logged out at its next request. Returns how many
    there were."""
    _store, model = _session_model()
    if model is None:
        return 0
    return sum(model.objects.filter(session_key__in=chunk).delete()[0] for chunk in chunks(keys))


def member_password_reset(*, member: Member, user, request=None) -> str:
    """Reset ``member``'s password on ``user``'s word, when ``access.can_reset_password`` allows
    it: the current password stops working, every session of the account ends, earlier codes
    are revoked, and a one-time reset code is made for a printed slip, with which the member
    sets a new password at the activation page. The member is told by SMS (the reset was done,
    a slip is coming, and whom to tell if they did not ask), so a reset nobody asked for is
    noticed.

    Audit-logged as "password_reset" (a refusal too, with result "refused"), and the SMS as
    "password_reset_notified" (result "failed" when it could not be sent). Returns the code,
    which is stored hashed only. Raises PasswordResetRefused.
    """
    reason = None
    if not access.can_reset_password(user, member):
        reason = _(
            "You may not reset this password: only for members of your own organisations "
            "whose roles lie within yours, and never your own (change it on the password page)."
        )
    elif not member.is_active:
        reason = _("This member is no longer on record.")
    if reason is not None:
        audit_event(
            event="password_reset",
            obj=member,
            actor=user,
            request=request,
            result=REFUSED,
            error=str(reason),
        )
        raise PasswordResetRefused(reason)
    code = ActivationCode.generate_code()
    # Found before the write transaction; a session started in between still ends, on its next
    # request, because the password hash it carries no longer matches.
    session_keys = user_session_keys(user=member.user)
    User = get_user_model()
    with transaction.atomic():
        account = User.objects.select_for_update().get(pk=member.user_id)
        account.set_unusable_password()
        account.save(update_fields=["password"])
        revoked = ActivationCode.objects.filter(member=member).outstanding().update(revoked=True)
        record = ActivationCode(
            member=member,
            kind=ActivationCode.Kind.RESET,
            created_by=user,
            expires_at=ActivationCode.expiry_from_now(),
        )
        record.set_code(code)
        record.save()
        sessions = sessions_end(session_keys)
        audit_event(
            event="password_reset",
            obj=member,
            actor=user,
            request=request,
            code=record.pk,
            revoked_codes=revoked,
            sessions_ended=sessions,
        )
    member.user = account
    _notify_password_reset(member=member, user=user, request=request)
    return code


def _notify_password_reset(*, member, user, request=None) -> None:
    """The SMS telling ``member`` their password was reset; sent after the reset is committed
    (never holding a transaction open on a gateway), its outcome audit-logged."""
    with translation.override(settings.LANGUAGE_CODE):
        params = {
            "name": member.name,
            "when": formats.date_format(timezone.localtime(), "SHORT_DATETIME_FORMAT"),
        }
        text = _(
            "[Account notice] %(name)s, the password of your training account was reset by "
            "your Party organisation on %(when)s. Your branch secretary will give you a slip "
            "to set a new one at %(url)s. If you did not ask for this, tell your Party "
            "organisation."
        ) % {**params, "url": settings.LUNXUN_SITE_URL.rstrip("/")}
    message = SmsMessage(
        phone=member.phone, text=text, purpose="password_reset_notice", params=params
    )
    try:
        sent = send_sms([message], fail_silently=True)
        error = "" if sent else "the SMS backend sent nothing"
    except Exception as failure:  # a gateway's own error: the reset stands, the record says so
        sent, error = 0, f"{type(failure).__name__}: {failure}"
    details = {"error": error} if error else {}
    audit_event(
        event="password_reset_notified",
        obj=member,
        actor=user,
        request=request,
        result=OK if sent else FAILED,
        channel="sms",
        **details,
    )


def password_change_record(*, user, request) -> None:
    """After ``user`` changed their own password (the request's session kept): end their other
    sessions and audit-log it as "password_changed"."""
    ended = sessions_end(user_session_keys(user=user, keep=request.session.session_key))
    audit_event(
        event="password_changed", obj=user, actor=user, request=request, sessions_ended=ended
    )


# --- Members and roles -------------------------------------------------------------------------

TRAINER_GROUP = "培训管理员"
trainer_group_ready = Signal()  # sent with group=…: apps above members grant their permissions


def member_create(*, name, phone, organization, password=None, **fields) -> Member:
    """Create a member and their login account. ``password`` None leaves it unusable
    until the member activates with a code."""
    normalized = normalize_phone(phone)
    if not normalized:
        raise ValidationError({"phone": _("Not a valid mainland mobile number.")})
    User = get_user_model()
    with transaction.atomic():
        username = free_usernames([normalized])[normalized]
        user = User(username=username, first_name=name[:150])
        user.set_password(password) if password else user.set_unusable_password()
        user.save()
        member = Member(user=user, name=name, phone=normalized, organization=organization, **fields)
        member.full_clean(exclude=["user"])
        member.save()
    return member


def trainer_group() -> Group:
    """The Wagtail group every trainer belongs to: admin access and the members viewsets."""
    group, _created = Group.objects.get_or_create(name=TRAINER_GROUP)
    wanted = Permission.objects.filter(
        content_type__app_label="members",
        codename__in=[
            f"{action}_{model}"
            for action in ("add", "change", "view")
            for model in ("organization", "member", "roleassignment", "posting")
        ]
        + ["delete_roleassignment", "delete_posting"],
    ) | Permission.objects.filter(content_type__app_label="wagtailadmin", codename="access_admin")
    group.permissions.add(*wanted)
    # Higher apps (courses, rounds) add what trainers need of theirs.
    trainer_group_ready.send(sender=Group, group=group)
    return group


def trainer_group_sync(user):
    """Trainers, and only trainers, are in the trainer group (Wagtail admin access)."""
    is_trainer = RoleAssignment.objects.filter(user=user, role=Role.TRAINER).exists()
    group = trainer_group()
    if is_trainer:
        user.groups.add(group)
    elif user.groups.filter(pk=group.pk).exists():
        # Only a real removal: the account's audit record of its groups stays truthful.
        user.groups.remove(group)


def role_assign(*, user, role: str, organization: Organization) -> RoleAssignment:
    """Give ``user`` the ``role`` over ``organization``'s subtree (idempotent).

    Group membership (Wagtail admin access for trainers) follows through the RoleAssignment
    signals, so admin edits and this service keep it the same way.
    """
    assignment, _created = RoleAssignment.objects.get_or_create(
        user=user, role=role, organization=organization
    )
    return assignment

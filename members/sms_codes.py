"""Log in, activate an account or set a new password with a six-digit code sent by SMS to the
member's registered number (短信验证码).

The rules, all here:

- a code is six digits from ``secrets``, stored hashed only, bound to one member and one purpose
  (``SmsCode.Purpose``), and lasts LUNXUN_SMS_CODE_MINUTES (5);
- one at a time: sending a code revokes the member's earlier outstanding codes (printed slips,
  ``ActivationCode``, are another thing and stay as they are);
- LUNXUN_SMS_CODE_MAX_FAILURES (5) wrong tries burn it, counted by one conditional UPDATE so
  parallel guesses cannot exceed the limit; a right code is claimed by one conditional UPDATE,
  so it works once;
- who may have one: logging in and resetting a password need an account in use
  (``Member.account_in_use``), activating one never in use (``MemberQuerySet.never_activated``,
  the rule of printed activation slips); a member off the record, a disabled account and a
  superuser get none;
- asking for a code answers the same whatever the number (the views say "if this number is
  registered…"): an unknown or unqualified number costs the same hashing and sends nothing;
- every send and every use is audit-logged ("sms_code_sent", "sms_code_used"; the password set
  as "member_activated" or "password_set" with ``via="sms"``), with the number masked and never
  the code. A number nobody has is not anyone's record: it is written to this module's logger,
  masked.

Rate limits (per number and per address) are the views' part, through core.ratelimits.
"""

import functools
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.db.models import BooleanField, Case, F, Value, When
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.audit import FAILED, OK, REFUSED, audit_event
from core.sms import SmsMessage, mask_phone, send_sms

from .models import ActivationCode, Member, SmsCode, normalize_phone
from .services import sessions_end, user_session_keys

logger = logging.getLogger(__name__)

Purpose = SmsCode.Purpose


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the number has no usable code, so that a miss costs what a check
    costs; made on first use (hashing at import would slow every process start)."""
    return make_password("000000")


class SmsCodeError(Exception):
    """The number, the code or the account's state does not allow it; the message is for the
    person at the page, and the same whatever the reason."""


def wrong_code_message() -> str:
    return _(
        "The code is not correct, has expired, or was tried too often. Check the last SMS, "
        "or ask for a new code."
    )


def _member(phone: str) -> Member | None:
    phone = normalize_phone(phone)
    if not phone:
        return None
    return Member.objects.select_related("user").filter(phone=phone).first()


def refusal(member: Member, purpose: str) -> str:
    """Why ``member`` may not have a code for ``purpose`` ("" when they may), for the audit
    log: never shown to the person asking."""
    if not member.is_active or not member.user.is_active:
        return "member not on record or account disabled"
    if member.user.is_superuser:
        return "a superuser logs in with a password only"
    if purpose == Purpose.ACTIVATE and member.account_in_use:
        return "account already in use: log in, or reset the password"
    if purpose != Purpose.ACTIVATE and not member.account_in_use:
        return "account never activated: activate it first"
    return ""


def _sms_text(purpose: str, code: str, minutes: int) -> str:
    params = {"code": code, "minutes": minutes}
    if purpose == Purpose.LOGIN:
        return (
            _(
                "[Lunxun] Your code to log in is %(code)s, valid for %(minutes)d minutes. "
                "Never tell it to anyone, not even staff."
            )
            % params
        )
    if purpose == Purpose.ACTIVATE:
        return (
            _(
                "[Lunxun] Your code to activate your account is %(code)s, valid for %(minutes)d "
                "minutes. Never tell it to anyone, not even staff."
            )
            % params
        )
    return (
        _(
            "[Lunxun] Your code to set a new password is %(code)s, valid for %(minutes)d minutes. "
            "If you did not ask for it, ignore this message and tell no one the code."
        )
        % params
    )


def sms_code_send(*, phone: str, purpose: str, request=None) -> bool:
    """Send a new code for ``purpose`` to ``phone`` when it is a member's who may have one;
    their earlier outstanding codes stop working. Returns whether a message was sent; the
    caller tells the person the same either way."""
    Purpose(purpose)  # a programming error, not a person's: raises ValueError
    code = SmsCode.generate_code()
    record = SmsCode(purpose=purpose, expires_at=SmsCode.expiry_from_now())
    record.set_code(code)  # hashed for every number alike
    member = _member(phone)
    masked = mask_phone(normalize_phone(phone) or phone)
    if member is None:
        logger.info("SMS code (%s) asked for an unregistered number %s", purpose, masked)
        return False
    why = refusal(member, purpose)
    if why:
        audit_event(
            event="sms_code_sent",
            obj=member,
            request=request,
            result=REFUSED,
            error=why,
            purpose=purpose,
            phone=masked,
        )
        return False
    User = get_user_model()
    with transaction.atomic():
        # One sender at a time per account (a row lock on PostgreSQL; SQLite's IMMEDIATE
        # transactions queue writers anyway): two sends never leave two codes outstanding.
        User.objects.select_for_update().filter(pk=member.user_id).first()
        revoked = SmsCode.objects.filter(member=member).outstanding().update(revoked=True)
        record.member = member
        record.save()
    minutes = settings.LUNXUN_SMS_CODE_MINUTES
    with translation.override(settings.LANGUAGE_CODE):
        text = _sms_text(purpose, code, minutes)
    message = SmsMessage(
        phone=member.phone,
        text=text,
        purpose="verification_code",
        params={"code": code, "minutes": str(minutes)},
    )
    try:
        sent = send_sms([message], fail_silently=True)
        error = "" if sent else "the SMS backend sent nothing"
    except Exception as failure:  # a gateway's own error: recorded, the person told the same
        sent, error = 0, f"{type(failure).__name__}: {failure}"
    audit_event(
        event="sms_code_sent",
        obj=member,
        request=request,
        result=OK if sent else FAILED,
        purpose=purpose,
        phone=masked,
        sms_code=record.pk,
        revoked_codes=revoked,
        **({"error": error} if error else {}),
    )
    return bool(sent)


def _count_wrong_code(member: Member) -> None:
    """Count a wrong code against every usable SMS code of ``member``, revoking those that reach
    LUNXUN_SMS_CODE_MAX_FAILURES: one UPDATE, so concurrent wrong tries all count and the one
    that reaches the limit burns the code (SET reads the row as it was: failures + 1 >= limit).
    ``usable()`` stops at the limit by itself, so a code is refused there even in between."""
    limit = settings.LUNXUN_SMS_CODE_MAX_FAILURES
    SmsCode.objects.usable().filter(member=member).update(
        failures=F("failures") + 1,
        revoked=Case(
            When(failures__gte=limit - 1, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    )


def _why_none_usable(member: Member, purpose: str) -> str:
    latest = SmsCode.objects.filter(member=member, purpose=purpose).order_by("-pk").first()
    if latest is None:
        return "no code was sent"
    if latest.used_at is not None:
        return "code already used"
    if latest.failures >= settings.LUNXUN_SMS_CODE_MAX_FAILURES:
        return "code burnt by wrong tries"
    if latest.revoked:
        return "code revoked: a newer one was sent, or the password was set"
    if latest.expires_at <= timezone.now():
        return "code expired"
    return "no usable code"


def _check(*, phone: str, purpose: str, code: str, request=None) -> tuple[Member, SmsCode]:
    """The member and their code for ``purpose`` that ``code`` matches; or SmsCodeError, every
    refusal audit-logged (for a registered number) with why, a wrong code counted."""
    member = _member(phone)
    why = "unregistered number" if member is None else refusal(member, purpose)
    candidates = [] if why else list(SmsCode.objects.usable().filter(member=member))
    for_purpose = [c for c in candidates if c.purpose == purpose]
    match = next((c for c in for_purpose if c.matches(code)), None)
    if match is not None:
        return member, match
    if not for_purpose:
        SmsCode(code_hash=_dummy_hash()).matches(code)  # a miss costs what a check costs
    details = {}
    if member is None:
        logger.info("SMS code (%s) tried for an unregistered number", purpose)
        raise SmsCodeError(wrong_code_message())
    if not why and not for_purpose:
        why = _why_none_usable(member, purpose)
    if not why:
        # Counted outside any transaction that the error would roll back.
        _count_wrong_code(member)
        why = "wrong code"
        burnt = SmsCode.objects.filter(pk__in=[c.pk for c in candidates], revoked=True)
        details["burnt"] = burnt.filter(
            failures__gte=settings.LUNXUN_SMS_CODE_MAX_FAILURES
        ).exists()
    audit_event(
        event="sms_code_used",
        obj=member,
        request=request,
        result=REFUSED,
        error=why,
        purpose=purpose,
        phone=member.masked_phone,
        **details,
    )
    raise SmsCodeError(wrong_code_message())


def _claim(code: SmsCode, now) -> bool:
    """Mark ``code`` used if it still is usable: one conditional UPDATE, so two submissions of
    one code succeed once."""
    return bool(SmsCode.objects.usable().filter(pk=code.pk).update(used_at=now))


def sms_code_login(*, phone: str, code: str, request=None) -> Member:
    """The member whose login code ``code`` is; the caller logs them in. Raises SmsCodeError."""
    member, match = _check(phone=phone, purpose=Purpose.LOGIN, code=code, request=request)
    with transaction.atomic():
        if not _claim(match, timezone.now()):
            raise SmsCodeError(wrong_code_message())
        audit_event(
            event="sms_code_used",
            obj=member,
            actor=member.user,
            request=request,
            purpose=Purpose.LOGIN,
            phone=member.masked_phone,
            sms_code=match.pk,
        )
    return member


def sms_code_password_set(
    *, phone: str, purpose: str, code: str, password: str, request=None
) -> Member:
    """Set the password of the member whose activation or reset code ``code`` is. Raises
    SmsCodeError, or ValidationError for a weak password (the code stays good).

    Once set, the member's other outstanding codes (SMS and printed slips) stop working and
    every session of the account ends (the caller logs this one in), as after any reset.
    """
    if purpose not in (Purpose.ACTIVATE, Purpose.RESET):
        raise ValueError(purpose)
    member, match = _check(phone=phone, purpose=purpose, code=code, request=request)
    validate_password(password, member.user)
    # Found before the write transaction; a session started in between still ends, on its next
    # request, because the password hash it carries no longer matches.
    session_keys = user_session_keys(user=member.user)
    User = get_user_model()
    with transaction.atomic():
        account = User.objects.select_for_update().get(pk=member.user_id)
        member.refresh_from_db(fields=["activated_at", "is_active"])
        member.user = account
        if refusal(member, purpose):
            raise SmsCodeError(wrong_code_message())
        now = timezone.now()
        if not _claim(match, now):
            raise SmsCodeError(wrong_code_message())
        account.set_password(password)
        account.save(update_fields=["password"])
        if member.activated_at is None:
            member.activated_at = now
            member.save(update_fields=["activated_at", "updated_at"])
        revoked = SmsCode.objects.filter(member=member).outstanding().update(revoked=True)
        revoked += ActivationCode.objects.filter(member=member).outstanding().update(revoked=True)
        sessions = sessions_end(session_keys)
        audit_event(
            event="sms_code_used",
            obj=member,
            actor=account,
            request=request,
            purpose=purpose,
            phone=member.masked_phone,
            sms_code=match.pk,
        )
        audit_event(
            event="member_activated" if purpose == Purpose.ACTIVATE else "password_set",
            obj=member,
            actor=account,
            request=request,
            via="sms",
            sms_code=match.pk,
            revoked_codes=revoked,
            sessions_ended=sessions,
        )
    return member

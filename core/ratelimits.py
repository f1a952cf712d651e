"""Rate limits on django-ratelimit, counted in the cache (local memory in the embedded default,
Redis in the scale profile, where every worker shares the counts).

Addresses come from core.audit.client_ip: the address a limit counts is the one the audit log
records. Limits by address stay generous: a remote-education site puts a whole branch behind one
address, so they stop floods, never a room of members logging in one after another.
"""

import ipaddress

from django.conf import settings
from django_ratelimit.core import get_usage, is_ratelimited

from .audit import client_ip


def client_address(request) -> str:
    """core.audit.client_ip, never empty: what django-ratelimit's own "ip" key may read too
    (RATELIMIT_IP_META_KEY = "core.ratelimits.client_address"), so that the verification
    page counts the address the audit log records."""
    return client_ip(request) or "0.0.0.0"


def address(group, request) -> str:
    """The client's address as a rate-limit key; an IPv6 client counts by its /64 network, as
    django-ratelimit's own "ip" key does (one subscriber holds a whole /64)."""
    ip = client_address(request)
    if ":" in ip:
        mask = getattr(settings, "RATELIMIT_IPV6_MASK", 64)
        return str(ipaddress.ip_network(f"{ip}/{mask}", strict=False).network_address)
    return ip


def login_limited(request) -> bool:
    """Count a login attempt from the request's address (LUNXUN_LOGIN_RATE); True when over."""
    rate = settings.LUNXUN_LOGIN_RATE
    return is_ratelimited(
        request, group="lunxun.login", key=address, rate=rate, method="POST", increment=True
    )


def activate_limited(request) -> bool:
    """Count a try of the activation page from the request's address (LUNXUN_ACTIVATE_RATE);
    True when over. Wrong codes also burn the codes of the number tried (see
    members.services.member_activate); this stops one address trying many numbers."""
    rate = settings.LUNXUN_ACTIVATE_RATE
    return is_ratelimited(
        request, group="lunxun.activate", key=address, rate=rate, method="POST", increment=True
    )


def remind_limited(request) -> bool:
    """Count a reminder action by the request's user (LUNXUN_REMIND_RATE); True when over."""
    rate = settings.LUNXUN_REMIND_RATE
    return is_ratelimited(
        request, group="lunxun.remind", key="user", rate=rate, method="POST", increment=True
    )


PASSWORD_CHECK = {"group": "lunxun.password_check", "key": "user", "method": "POST"}


def password_check_locked(request) -> int:
    """Has the request's user given a wrong current password LUNXUN_PASSWORD_CHECK_RATE times
    (e.g. 5 in 15 minutes)? Then no current password is checked until the window passes, so a
    stolen session cannot be used to guess the account's password. Returns the seconds left
    while locked, 0 otherwise."""
    usage = get_usage(request, rate=settings.LUNXUN_PASSWORD_CHECK_RATE, **PASSWORD_CHECK)
    if usage is None or usage["count"] < usage["limit"]:
        return 0
    return max(1, usage["time_left"])


def password_check_failed(request) -> None:
    """Count one wrong current password for the request's user."""
    get_usage(request, rate=settings.LUNXUN_PASSWORD_CHECK_RATE, increment=True, **PASSWORD_CHECK)


def sms_send_limited(request, phone: str) -> bool:
    """Count a request for an SMS code to ``phone`` (the number typed, registered or not);
    True when a limit is over: LUNXUN_SMS_SEND_RATE_ADDRESS per address, then
    LUNXUN_SMS_SEND_RATE_PHONE and LUNXUN_SMS_SEND_RATE_PHONE_HOURLY per number, from whatever
    address. Counting stops at the first limit over, so a refused request uses up nothing
    further (a double tap does not eat into the hour)."""

    def number(group, request):
        return phone

    limits = (
        ("lunxun.sms_send.address", address, settings.LUNXUN_SMS_SEND_RATE_ADDRESS),
        ("lunxun.sms_send.phone", number, settings.LUNXUN_SMS_SEND_RATE_PHONE),
        ("lunxun.sms_send.phone_hourly", number, settings.LUNXUN_SMS_SEND_RATE_PHONE_HOURLY),
    )
    return any(
        is_ratelimited(request, group=group, key=key, rate=rate, method="POST", increment=True)
        for group, key, rate in limits
    )


def sms_check_limited(request) -> bool:
    """Count a try of an SMS code from the request's address (LUNXUN_SMS_CHECK_RATE); True when
    over. Wrong codes also burn the code tried (members.sms_codes); this stops one address
    trying codes for many numbers."""
    return is_ratelimited(
        request,
        group="lunxun.sms_check",
        key=address,
        rate=settings.LUNXUN_SMS_CHECK_RATE,
        method="POST",
        increment=True,
    )


def terminal_sync_limited(request) -> bool:
    """Count a site terminal's sync by the request's user (LUNXUN_TERMINAL_SYNC_RATE); True
    when over. A sync is idempotent, so a refused one is simply sent again later."""
    return is_ratelimited(
        request,
        group="lunxun.terminal_sync",
        key="user",
        rate=settings.LUNXUN_TERMINAL_SYNC_RATE,
        method="POST",
        increment=True,
    )

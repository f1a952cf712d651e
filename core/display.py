"""Large-type mode (长辈模式): one tap from every page, remembered on the device.

The choice lives in a cookie, the way Django's language switch remembers a language: it holds
on the login page and after logging out, and a phone handed to an older member stays in large
type whoever logs in next. Every page reads it through the context processor below; the
``<html>`` element then carries the ``large-type`` class that the style sheet and the player
(captions on by default) look for.
"""

from django.conf import settings
from django.http import HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

COOKIE = "lunxun_large_type"
LARGE = "large"
STANDARD = "standard"
MODES = (LARGE, STANDARD)
COOKIE_AGE = 365 * 24 * 60 * 60


def is_large_type(request) -> bool:
    return request.COOKIES.get(COOKIE) == LARGE


def display(request):
    """Context processor: ``large_type`` for every template."""
    return {"large_type": is_large_type(request)}


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.META.get("HTTP_REFERER") or "/"
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


@require_POST
def display_mode(request):
    """Switch large-type mode on or off and go back to the page the switch was pressed on.

    No login needed (the login page has the switch too); the form carries a CSRF token like
    every other POST. An unknown mode changes nothing.
    """
    response = HttpResponseRedirect(_safe_next(request))
    mode = request.POST.get("mode")
    if mode in MODES:
        response.set_cookie(
            COOKIE,
            mode,
            max_age=COOKIE_AGE,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
    return response

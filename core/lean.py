"""The lean path: requests that authenticate by a token they carry skip the cookie machinery.

A player's progress report and a quiz attempt's submit carry a token the server issued to the
member's own login session (``core/sessions.py`` checks that session is alive inside the query
that reads the token's row). Nothing on their normal path reads a cookie, so the middleware
that exists for cookie-authenticated requests is pure cost there: the session, the user, the
messages, the session lifetime, CSRF, Wagtail's redirects, django-axes. A report is the hottest
write in the product; through the whole stack that machinery cost as much as the report itself.

``LeanPathMiddleware`` is the first middleware. For a POST to a view marked ``@lean_path`` it
calls the view itself, through the short chain ``settings.LUNXUN_LEAN_MIDDLEWARE``: what every
response still needs (the security headers and the SSL redirect, the Content-Security-Policy,
the private cache headers, the member's language for the words in the answer, the frame
denial). The rest of the stack never runs. Because it is a middleware, runserver, the test
client and gunicorn all take it the same way.

Not on the chain: django-auditlog's middleware, which attributes the changes of registered
models to the request's user and address (connecting a signal receiver per request cost a
fifth of a report). A lean view writes no registered model; it records what matters itself,
with ``core.audit.audit_event(request=...)`` (the completion of a lesson, a quiz submit).

Why CSRF protection is not needed on the lean path: CSRF abuses an *ambient* credential, one
the browser attaches by itself (the session cookie). A lean view authorises its write by a
token in the request body alone (a random UUID issued to one login session and shown only in
the member's own page), which a page on another site cannot know; with it, cookies add
nothing, and without it nothing is written. A lean view must therefore never authorise a write
by a cookie.

When a request needs what the lean path skips (a refused report is answered 404 or 409
depending on the session's user; a refused quiz submit shows the page again, which needs the
session, the user and the messages), the view raises ``FullStackNeeded`` *before it has
written anything it would write again*, and the request goes through the whole stack, which
calls the view a second time with ``request.lean_handoff`` set to what the first call learnt.
"""

from functools import cache

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.utils import build_policy
from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpResponse
from django.urls import Resolver404, resolve
from django.utils.module_loading import import_string


class FullStackNeeded(Exception):
    """Raised by a ``@lean_path`` view on the lean path when this request needs the whole
    middleware stack. Only before the view has written anything that a second call would
    write again; ``handoff`` reaches that second call as ``request.lean_handoff``."""

    def __init__(self, handoff=None):
        super().__init__()
        self.handoff = handoff


def lean_path(view):
    """Mark a POST view that authorises by a token in its body, never by a cookie: see the
    module's docstring for what it may and may not rely on."""
    view.lean_path = True
    return view


def on_lean_path(request) -> bool:
    """Whether ``request`` is being answered on the lean path (no session, no user)."""
    return getattr(request, "lean_path", False)


class _Handoff(HttpResponse):
    """What the lean chain returns when its view asked for the whole stack."""

    def __init__(self, handoff):
        super().__init__(status=599)
        self.handoff = handoff


@cache
def _lean_policy():
    """The Content-Security-Policy headers core.csp.CSPMiddleware gives a response that used
    no nonce and asked for no policy of its own: every lean answer (JSON, a redirect)."""
    headers = {}
    for header, report_only in ((HEADER, False), (HEADER_REPORT_ONLY, True)):
        policy = build_policy(report_only=report_only)
        if policy:
            headers[header] = policy
    return headers


@receiver(setting_changed)
def _policy_changed(setting, **kwargs):
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _lean_policy.cache_clear()


class LeanCSPMiddleware:
    """core.csp.CSPMiddleware for the lean chain: the same policy, built once."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        for header, policy in _lean_policy().items():
            if header not in response:
                response[header] = policy
        return response


class LeanPathMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        # The short chain, built the way Django's handler builds the full one.
        handler = convert_exception_to_response(self._view)
        for path in reversed(settings.LUNXUN_LEAN_MIDDLEWARE):
            handler = convert_exception_to_response(import_string(path)(handler))
        self.lean = handler

    def __call__(self, request):
        if request.method == "POST":
            try:
                match = resolve(request.path_info)
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "lean_path", False):
                request.resolver_match = match
                request.lean_path = True
                response = self.lean(request)
                if not isinstance(response, _Handoff):
                    return response
                request.lean_path = False
                request.lean_handoff = response.handoff
        return self.get_response(request)

    @staticmethod
    def _view(request):
        match = request.resolver_match
        try:
            response = match.func(request, *match.args, **match.kwargs)
        except FullStackNeeded as needed:
            return _Handoff(needed.handoff)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response

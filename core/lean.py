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
from django.urls import URLResolver, get_resolver
from django.urls.resolvers import ResolverMatch
from django.utils import translation
from django.utils.cache import patch_vary_headers
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


class LeanLocaleMiddleware:
    """django.middleware.locale.LocaleMiddleware for the lean chain: the member's language
    from their language cookie or Accept-Language, and the headers that say so. The same
    answer, since no URL of ours has a language prefix (no i18n_patterns); the stock one
    looks for a prefix twice per request, which cost more than the rest of it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        translation.activate(translation.get_language_from_request(request))
        request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        return response


def _lean_routes(resolver):
    """Every URL pattern whose view is marked @lean_path, with the includes leading to it:
    [(patterns from the root's down to the view's, the view's URLPattern, app names,
    namespaces)]."""
    routes = []

    def walk(entries, chain, app_names, namespaces):
        for entry in entries:
            if isinstance(entry, URLResolver):
                walk(
                    entry.url_patterns,
                    [*chain, entry.pattern],
                    [*app_names, entry.app_name] if entry.app_name else app_names,
                    [*namespaces, entry.namespace] if entry.namespace else namespaces,
                )
            elif getattr(entry.callback, "lean_path", False):
                routes.append(([*chain, entry.pattern], entry, app_names, namespaces))

    walk(resolver.url_patterns, [resolver.pattern], [], [])
    return routes


def lean_match(path: str):
    """The ResolverMatch of ``path`` if it is a @lean_path view's URL, else None: only the lean
    views' own patterns are tried, not the whole URLconf (resolving a report's URL through
    every app's patterns cost more than its two SQL statements).
    tests/courses/test_progress_lean_path.py checks Django's resolve() gives the same view."""
    resolver = get_resolver()
    cached = _routes_cache.get("routes")
    if cached is None or cached[0] is not resolver:
        cached = _routes_cache["routes"] = (resolver, _lean_routes(resolver))
    for chain, pattern, app_names, namespaces in cached[1]:
        rest, kwargs = path, {}
        for step in chain:
            found = step.match(rest)
            if found is None:
                break
            rest, _args, step_kwargs = found
            kwargs.update(step_kwargs)
        else:
            return ResolverMatch(
                pattern.callback,
                (),
                {**kwargs, **pattern.default_args},
                pattern.name,
                app_names=app_names,
                namespaces=namespaces,
                route="".join(str(step) for step in chain[1:]),
            )
    return None


_routes_cache = {}


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
            match = lean_match(request.path_info)
            if match is not None:
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

import time

from auditlog.middleware import AuditlogMiddleware as BaseAuditlogMiddleware
from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.utils.cache import patch_cache_control
from django.utils.functional import SimpleLazyObject

from .audit import client_ip, trusted_ip_header

SESSION_STARTED_KEY = "lunxun_login_at"
SESSION_REFRESHED_KEY = "lunxun_seen_at"


class SessionLifetimeMiddleware:
    """Idle and absolute session limits, without a session write on every request.

    Idle: the session (and its cookie) is renewed when it was last renewed more than
    SESSION_REFRESH_SECONDS ago, so it expires SESSION_COOKIE_AGE after the last activity,
    give or take that much. Players report progress every few seconds; writing the session
    each time would double the cost of the hottest request.
    Absolute: SESSION_MAX_AGE seconds after login the session ends, however active.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(view_func, "session_free", False):
            return None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            session = request.session
            now = time.time()
            started = session.get(SESSION_STARTED_KEY)
            if started is None:
                session[SESSION_STARTED_KEY] = now
            elif now - started > settings.SESSION_MAX_AGE:
                logout(request)
                return redirect(settings.LOGIN_URL)
            if now - session.get(SESSION_REFRESHED_KEY, 0) > settings.SESSION_REFRESH_SECONDS:
                session[SESSION_REFRESHED_KEY] = now
        return None


def session_free(view):
    """Mark a view that authenticates by other means: no session checks or renewal for it."""
    view.session_free = True
    return view


class AuditlogMiddleware(BaseAuditlogMiddleware):
    """django-auditlog's middleware, with two changes.

    The actor stays the lazy request.user: the stock one evaluates it on every request (a
    session and a user query); here the user is loaded only when something is actually written
    to the audit log.

    The source address is core.audit.client_ip: the stock one believes any X-Forwarded-For
    header a client sends. Every record written during the request (model changes and explicit
    events alike) gets this address.
    """

    @staticmethod
    def _get_actor(request):
        # Read request.user when a record is written, not when the request starts: a view that
        # authenticates by a token (a quiz submit) sets request.user to the token's member, and
        # the session is then never loaded.
        return SimpleLazyObject(lambda: getattr(request, "user", None))

    @staticmethod
    def _get_remote_addr(request):
        if settings.AUDITLOG_DISABLE_REMOTE_ADDR:
            return None
        return client_ip(request)

    @staticmethod
    def _get_remote_port(request):
        # A port from a header is believable only from the trusted proxy that also names the
        # address; without one, the client could have written it.
        if not trusted_ip_header():
            return None
        return BaseAuditlogMiddleware._get_remote_port(request)


class PrivatePagesMiddleware:
    """Every HTML page is private and revalidated, unless its view said otherwise.

    Pages differ by user, by the large-type cookie and by CSRF token. Without a Cache-Control
    header some browsers keep and show an old copy: WeChat's built-in browser does, after the
    back button and even after a switch (large type, language) that redirected to the same
    address. No shared cache may keep a member's page either.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Cache-Control" not in response and response.get("Content-Type", "").startswith(
            "text/html"
        ):
            patch_cache_control(response, private=True, no_cache=True)
        return response

import time

from auditlog.middleware import AuditlogMiddleware as BaseAuditlogMiddleware
from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect

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
    """django-auditlog's middleware, but the actor stays the lazy request.user.

    The stock one evaluates request.user on every request (a session and a user query);
    here the user is loaded only when something is actually written to the audit log.
    """

    @staticmethod
    def _get_actor(request):
        return getattr(request, "user", None)

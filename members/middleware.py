import time

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
        return self.get_response(request)

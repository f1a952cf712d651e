import time

from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect

SESSION_STARTED_KEY = "lunxun_login_at"


class SessionLifetimeMiddleware:
    """End a session SESSION_MAX_AGE seconds after login, however active it has been.

    The idle limit is Django's own (SESSION_COOKIE_AGE renewed on every request).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            started = request.session.get(SESSION_STARTED_KEY)
            now = time.time()
            if started is None:
                request.session[SESSION_STARTED_KEY] = now
            elif now - started > settings.SESSION_MAX_AGE:
                logout(request)
                return redirect(settings.LOGIN_URL)
        return self.get_response(request)

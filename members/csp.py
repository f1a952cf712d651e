"""The Content-Security-Policy middleware: django-csp's, with the Wagtail admin's allowance."""

from csp.middleware import CSPMiddleware as BaseCSPMiddleware


class CSPMiddleware(BaseCSPMiddleware):
    pass

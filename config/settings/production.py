"""Production: the settings a real deployment runs with (a county on SQLite or a city).

Everything secret or site-specific comes from the environment and has no default here:
SECRET_KEY and ALLOWED_HOSTS must be set, or start-up fails. `manage.py check --deploy
--fail-level WARNING` is clean with these settings (tests/test_deploy.py runs it), and
core.checks refuses a wildcard ALLOWED_HOSTS or a weak SECRET_KEY.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env_bool, env_int

DEBUG = False

for _name in ("SECRET_KEY", "ALLOWED_HOSTS"):
    if not os.environ.get(_name):
        raise ImproperlyConfigured(f"Set {_name} in the environment (see README, Running a city).")

# nginx terminates TLS and says so in X-Forwarded-Proto (see the example configuration).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# nginx-rtmp calls gunicorn directly on this machine over plain HTTP (LUNXUN_LIVE_CALLBACK_URL,
# docs/live.md): a redirect to HTTPS would read to it as "rename the stream". The callbacks
# carry their own shared secret.
SECURE_REDIRECT_EXEMPT = [r"^live/callbacks/"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
USE_X_FORWARDED_HOST = False

# Hashed, compressed static files served by WhiteNoise (run `manage.py collectstatic`).
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
}
WAGTAILADMIN_BASE_URL = os.environ.get("WAGTAILADMIN_BASE_URL", LUNXUN_SITE_URL)  # noqa: F405
LOGGING["root"]["level"] = os.environ.get("LOG_LEVEL", "INFO")  # noqa: F405

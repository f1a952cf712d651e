"""Deployment checks of our own: refuse settings that would make a production site unsafe."""

from django.conf import settings
from django.core.checks import Error, Tags, register

# The keys shipped in this repository or in Django's project template: never secret.
KNOWN_KEYS = {"dev-only-insecure-key-change-me-in-production"}
MIN_KEY_LENGTH = 50
MIN_KEY_UNIQUE = 12


def weak_secret_key(key) -> str | None:
    """Why ``key`` is weak, or None."""
    key = key or ""
    if key in KNOWN_KEYS or key.startswith("django-insecure"):
        return "it is a published example key"
    if len(key) < MIN_KEY_LENGTH:
        return f"it has fewer than {MIN_KEY_LENGTH} characters"
    if len(set(key)) < MIN_KEY_UNIQUE:
        return f"it has fewer than {MIN_KEY_UNIQUE} different characters"
    return None


@register(Tags.security, deploy=True)
def check_production_settings(app_configs, **kwargs):
    errors = []
    wild = [host for host in settings.ALLOWED_HOSTS if "*" in host]
    if wild:
        errors.append(
            Error(
                f"ALLOWED_HOSTS contains a wildcard ({', '.join(wild)}).",
                hint="List the host names this site answers to, comma-separated.",
                id="lunxun.E001",
            )
        )
    reason = weak_secret_key(settings.SECRET_KEY)
    if reason:
        errors.append(
            Error(
                f"SECRET_KEY is weak: {reason}.",
                hint='Generate one: python3 -c "import secrets; print(secrets.token_urlsafe(50))"',
                id="lunxun.E002",
            )
        )
    return errors


# Caches that live in one process (or, for files, on one machine's disk).
LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
    "django.core.cache.backends.filebased.FileBasedCache",
}


@register(Tags.caches, deploy=True)
def check_shared_cache(app_configs, **kwargs):
    """A city (PostgreSQL) runs several gunicorn instances, often on several machines, behind
    one nginx upstream, with no stickiness: the cache must be the one they share (Redis), or
    rate limits would count per process and Wagtail's cached site paths would go stale."""
    engine = settings.DATABASES["default"]["ENGINE"]
    backend = settings.CACHES["default"]["BACKEND"]
    if "postgresql" not in engine or backend not in LOCAL_CACHES:
        return []
    return [
        Error(
            f"The cache ({backend.rsplit('.', 1)[-1]}) is not shared by the web processes of a "
            "city: rate limits would count per process.",
            hint="Set REDIS_URL (the scale profile's cache and task queue; docs/settings.md).",
            id="lunxun.E005",
        )
    ]


@register()
def check_sms_backend(app_configs, **kwargs):
    """A provider SMS backend selected but not fully configured stops the site at start-up,
    naming what is missing, instead of failing at its first message."""
    from .sms import _backend_class
    from .sms_providers import ProviderSmsBackend

    path = settings.LUNXUN_SMS_BACKEND
    try:
        backend = _backend_class(path)
    except Exception as error:
        return [
            Error(
                f"LUNXUN_SMS_BACKEND names {path}, which cannot be loaded: {error}",
                hint="core.sms.ConsoleBackend, core.sms_providers.AliyunSmsBackend or "
                "core.sms_providers.TencentSmsBackend.",
                id="lunxun.E003",
            )
        ]
    if not (isinstance(backend, type) and issubclass(backend, ProviderSmsBackend)):
        return []
    return [
        Error(problem, hint="See the SMS section of docs/settings.md.", id="lunxun.E004")
        for problem in backend.configuration_errors()
    ]

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """What every app uses: the audit log, CSP, rate limits, upload checks, spreadsheets,
    downloads, sessions, deployment checks, backup and restore, text messages. It imports no
    domain app (members, courses, rounds, certificates); they import it."""

    name = "core"
    verbose_name = _("Site-wide services")

    def ready(self):
        from . import checks, signals  # noqa: F401

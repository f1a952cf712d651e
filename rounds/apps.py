from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoundsConfig(AppConfig):
    """Training rounds on django-scheduler, attendance, coverage and the study-hours ledger."""

    name = "rounds"
    verbose_name = _("Training rounds")

    def ready(self):
        from . import signals  # noqa: F401

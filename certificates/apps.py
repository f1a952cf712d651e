from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CertificatesConfig(AppConfig):
    """Completion certificates and study-hours statements: numbering, WeasyPrint rendering,
    verification by QR code, bulk output."""

    name = "certificates"
    verbose_name = _("Certificates")

    def ready(self):
        from rounds.admin_forms import round_form_extensions

        from . import signals  # noqa: F401
        from .admin_forms import CertificateTemplateChoice

        round_form_extensions.append(CertificateTemplateChoice())

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CertificatesConfig(AppConfig):
    """Completion certificates rendered with WeasyPrint; filled in by the certificates issue."""

    name = "certificates"
    verbose_name = _("Certificates")

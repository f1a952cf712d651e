from auditlog.registry import auditlog

from .models import Certificate, CertificateTemplate

auditlog.register(Certificate, exclude_fields=["pdf", "pdf_rendered_at"])
auditlog.register(CertificateTemplate)

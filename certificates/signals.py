from io import BytesIO

from auditlog.registry import auditlog
from django.contrib.auth.models import Permission
from django.core.files.images import ImageFile
from django.dispatch import receiver
from wagtail.images.models import Image

from members.demo import demo_city_seeded
from members.services import trainer_group_ready
from rounds.services import round_closed

from .default_template import ensure_default_templates, sample_seal_png
from .models import Certificate, CertificateTemplate, RoundTemplate
from .tasks import certificates_issue_task

auditlog.register(Certificate, exclude_fields=["pdf", "pdf_rendered_at"])
auditlog.register(CertificateTemplate)
auditlog.register(RoundTemplate)


@receiver(round_closed)
def issue_on_close(sender, round_id, **kwargs):
    """A round closed: issue its certificates in the background, never in the request."""
    certificates_issue_task.enqueue(round_id)


@receiver(trainer_group_ready)
def grant_certificate_permissions(sender, group, **kwargs):
    """Trainers design certificate templates, list the certificates of their subtree, revoke
    and re-issue them."""
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="certificates",
            codename__in=[
                "add_certificatetemplate",
                "change_certificatetemplate",
                "view_certificatetemplate",
                "view_certificate",
                "change_certificate",
            ],
        )
    )


@receiver(demo_city_seeded)
def seed_demo_templates(sender, **kwargs):
    """The demo's certificate templates: the city's organisation department, with a drawn
    sample seal (a real deployment uploads its own)."""
    if CertificateTemplate.objects.exists():
        return None
    png = ImageFile(BytesIO(sample_seal_png("示范市委组织部")), name="demo-seal.png")
    seal = Image.objects.create(title="示范市委组织部印（演示）", file=png)
    ensure_default_templates(issuer_lines="中共示范市委组织部", seal=seal)
    return "Demo certificate templates ready (with a drawn sample seal)."

"""Seals and signatures are not public pictures.

The embedded profile serves the public part of MEDIA_ROOT itself (config.urls): the HLS ladder,
posters and Wagtail's image renditions under ``images/``. A picture used as a seal or a
signature, by a template now or by certificates already issued, is the organisation's own:
its renditions (what the admin's image chooser shows) go only to trainers; everyone else gets
what a missing file gets. Originals (``original_images/``) are never served from there, and
the certificate renderer reads the files through storage, not over HTTP.

In the scale profile Django serves no media: pictures live in the private store, whose URLs are
signed and expire (LUNXUN_S3_URL_SECONDS), and only the admin hands out a seal's URL.
"""

from django.conf import settings
from django.db.models import Q
from django.http import Http404
from django.views.static import serve
from wagtail.images import get_image_model

from members import access
from members.models import Role

from .models import CertificateTemplate, TemplateSnapshot

RENDITIONS = "images/"


def private_image_ids() -> set[int]:
    """The pictures used as seals or signatures, by a template now or by an issued
    certificate's template as issued."""
    ids = set()
    for model, fields in (
        (CertificateTemplate, ("seal_id", "signature_id")),
        (TemplateSnapshot, ("seal_image_id", "signature_image_id")),
    ):
        used = Q(**{f"{fields[0]}__isnull": False}) | Q(**{f"{fields[1]}__isnull": False})
        for row in model.objects.filter(used).values_list(*fields).distinct():
            ids.update(pk for pk in row if pk is not None)
    return ids


def is_private_rendition(name: str) -> bool:
    """Is the media file ``name`` a rendition of a seal or a signature?"""
    private = private_image_ids()
    if not private:
        return False
    renditions = get_image_model().get_rendition_model().objects
    return renditions.filter(image_id__in=private, file=name).exists()


def serve_public_media(request, path):
    """django.views.static.serve from MEDIA_ROOT for the public prefixes, but a seal's or a
    signature's rendition only to a trainer (or a superuser): a 404 for anyone else, as for a
    missing file."""
    private = path.startswith(RENDITIONS) and is_private_rendition(path)
    if private and not access.has_role(request.user, (Role.TRAINER,)):
        raise Http404
    response = serve(request, path, document_root=settings.MEDIA_ROOT)
    if private:
        response["Cache-Control"] = "private, no-store"
    return response

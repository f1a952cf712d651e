"""The certificate template form of the admin (a snippet): the seal and signature it names must
be real PNG or JPEG pictures, of a sensible size, carrying no web code."""

from django import forms
from django.conf import settings
from wagtail.admin.forms import WagtailAdminModelForm

from members import uploads

# A seal or signature is printed at most a few centimetres wide: 16 million pixels (and
# LUNXUN_CERTIFICATE_IMAGE_MAX_BYTES, 2 MB by default) are far more than it needs, and keep
# decoding it cheap.
DEFAULT_IMAGE_MAX_PIXELS = 4096 * 4096
IMAGE_FORMATS = ("PNG", "JPEG")


def check_certificate_image(image) -> None:
    """Refuse a Wagtail image that is not a plain PNG or JPEG (SVG, GIF, a polyglot...), or
    that is too large; raise UploadRefused."""
    max_bytes = settings.LUNXUN_CERTIFICATE_IMAGE_MAX_BYTES
    try:
        handle = image.file.open("rb")
    except (OSError, ValueError):
        raise uploads.UploadRefused(uploads.unreadable_picture_message()) from None
    with handle:
        uploads.check_picture(
            handle,
            formats=IMAGE_FORMATS,
            max_pixels=DEFAULT_IMAGE_MAX_PIXELS,
            max_bytes=max_bytes,
        )


class CertificateTemplateForm(WagtailAdminModelForm):
    def _get_validation_exclusions(self):
        # Ticking "default" on a second template is allowed: saving moves the mark to it
        # (DefaultTemplateMixin), so the one-default-per-kind constraint is not checked here.
        exclude = super()._get_validation_exclusions()
        exclude.add("is_default")
        return exclude

    def _clean_image(self, name):
        image = self.cleaned_data.get(name)
        if image is not None:
            try:
                check_certificate_image(image)
            except uploads.UploadRefused as error:
                # Shown again, the chooser would preview the refused picture (and Wagtail fails
                # on one that does not decode): show the field empty with the reason.
                self.data = self.data.copy()
                self.data[self.add_prefix(name)] = ""
                raise forms.ValidationError(str(error)) from None
        return image

    def clean_seal(self):
        return self._clean_image("seal")

    def clean_signature(self):
        return self._clean_image("signature")

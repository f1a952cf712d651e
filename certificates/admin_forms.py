"""The certificate template form of the admin (a snippet): the seal and signature it names must
be real PNG or JPEG pictures, of a sensible size, carrying no web code; the template names the
level that owns it. And the certificate template a round's form offers."""

from django import forms
from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm

from core import uploads
from courses.admin_forms import add_owner_field
from members import access
from rounds.admin_forms import RoundFormExtension

from .models import CertificateTemplate, RoundTemplate
from .services import round_template_set

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
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "owner_organization" in self.fields and self.for_user is not None:
            add_owner_field(self)

    def clean(self):
        data = super().clean()
        owner = data.get("owner_organization")
        if data.get("is_default") and owner is not None and owner.depth != 1:
            # The default serves every round that names none, city-wide.
            self.add_error(
                "is_default", _("Only a template owned by the whole city can be the default.")
            )
        return data

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


# --- The round form's certificate template ------------------------------------------------------


def templates_usable(user, kind=None):
    """The templates ``user`` may see and use: owned on the path from the top down to her
    trainer roots, or inside her subtree (members.access.may_use_content)."""
    templates = CertificateTemplate.objects.select_related("owner_organization")
    condition = access.usable_content_q(user)
    if condition is not None:
        templates = templates.filter(condition)
    if kind is not None:
        templates = templates.filter(kind=kind)
    return templates


def fits_scope(template, scope) -> bool:
    """A round's certificates may print ``template`` when its owner is above (or is) every
    organisation in the round's scope: a county's round uses the city's template or the
    county's own, never one of a township inside it or of another county."""
    owner = template.owner_organization
    return owner is None or all(owner.contains(node) for node in scope)


class CertificateTemplateChoice(RoundFormExtension):
    """Adds "certificate template" to the round form: a completion template the trainer may use
    (or none: the default), fitting the round's scope."""

    field_name = "certificate_template"

    def contribute(self, form):
        field = forms.ModelChoiceField(
            label=_("Certificate template"),
            queryset=templates_usable(form.for_user, CertificateTemplate.Kind.COMPLETION),
            required=False,
            empty_label=_("The default template"),
            help_text=_(
                "What the round's completion certificates print. Certificates issued already "
                "keep what they were issued with."
            ),
        )
        form.fields[self.field_name] = field
        if form.instance.pk:
            chosen = RoundTemplate.objects.filter(round=form.instance).first()
            if chosen is not None:
                form.initial[self.field_name] = chosen.template_id
                # Chosen by a level above: still shown, and kept unless changed.
                field.queryset = CertificateTemplate.objects.filter(
                    Q(pk__in=field.queryset.values("pk")) | Q(pk=chosen.template_id),
                    kind=CertificateTemplate.Kind.COMPLETION,
                ).select_related("owner_organization")

    def clean(self, form, data):
        template = data.get(self.field_name)
        scope = data.get("scope_roots")
        if template is not None and scope and not fits_scope(template, scope):
            form.add_error(
                self.field_name,
                _(
                    "This template belongs to %(owner)s, which is not above every organisation "
                    "in the round's scope."
                )
                % {"owner": template.owner_organization.name},
            )

    def save(self, form, training_round):
        if self.field_name not in form.changed_data:
            return
        round_template_set(
            training_round=training_round, template=form.cleaned_data.get(self.field_name)
        )


class RevokeForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Kept on record; the public verification page shows only that "
            "the certificate was revoked."
        ),
    )

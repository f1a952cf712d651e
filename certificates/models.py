"""Completion certificates (结业证书) and yearly study-hours statements (学时证明).

A certificate is a record first: its number (sequential per year and round, no gaps), its
random verification code, and the facts printed on it, copied at issue so the record never
changes under it. The PDF is rendered from the record in the background and stored.
"""

import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import Member


def new_verification_code():
    """At least 80 bits, URL-safe: 16 characters of base64 carry 96."""
    return secrets.token_urlsafe(12)


class CertificateTemplate(models.Model):
    """How a certificate looks; trainers design these in the admin (a snippet)."""

    class Kind(models.TextChoices):
        COMPLETION = "completion", _("Completion certificate (结业证书)")
        HOURS = "hours", _("Study-hours statement (学时证明)")

    class Border(models.TextChoices):
        CLASSIC = "classic", _("Classic: double red border with corner ornaments")
        SIMPLE = "simple", _("Simple: one thin border")
        NONE = "none", _("No border")

    name = models.CharField(_("template name"), max_length=100)
    kind = models.CharField(_("certificate kind"), max_length=20, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=50, default="结业证书")
    body = models.TextField(
        _("text"),
        help_text=_(
            "Placeholders: {name} {organization} {round} {opens} {closes} {hours} {year} "
            "{number}. A blank line starts a new paragraph."
        ),
    )
    issuer_lines = models.TextField(
        _("issuing organisation"), help_text=_("One line each, printed above the date.")
    )
    seal = models.ForeignKey(
        "wagtailimages.Image",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("official seal"),
        help_text=_("PNG with a transparent background; printed over the issuing lines."),
    )
    signature = models.ForeignKey(
        "wagtailimages.Image",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("signature"),
        help_text=_("PNG with a transparent background."),
    )
    border = models.CharField(
        _("border"), max_length=20, choices=Border.choices, default=Border.CLASSIC
    )
    is_default = models.BooleanField(
        _("default for its kind"),
        default=False,
        help_text=_("Used when a round names none. Only a template of the whole city can be it."),
    )
    owner_organization = models.ForeignKey(
        "members.Organization",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owned by"),
        help_text=_(
            "Its trainers (and those above) may change it; the levels below use it as it is."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("certificate template")
        verbose_name_plural = _("certificate templates")
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=Q(is_default=True), name="one_default_template_per_kind"
            )
        ]

    def __str__(self):
        return self.name

    def printed_pictures(self):
        """The seal's and the signature's files (or None), as the renderer reads them."""
        return (
            self.seal.file if self.seal else None,
            self.signature.file if self.signature else None,
        )

    @property
    def owned_by_top(self) -> bool:
        """Owned by the whole city (the top of the tree): only such a template can be a default."""
        return self.owner_organization_id is None or self.owner_organization.depth == 1


class TemplateSnapshot(models.Model):
    """A certificate template as certificates were issued with it: what they print and what
    the verification page names as their issuer, kept unchanged whatever later happens to the
    template (DESIGN.md: an issued certificate keeps what it said).

    Every certificate issued while the template stays the same shares one snapshot; the seal
    and signature are copied (a trainer can replace a picture's file in the admin), and the
    pictures they came from are kept only so that they stay private (certificates.media).
    Never edited.
    """

    template = models.ForeignKey(
        CertificateTemplate,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="snapshots",
    )
    fingerprint = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=20, choices=CertificateTemplate.Kind.choices)
    title = models.CharField(_("title"), max_length=50)
    body = models.TextField(_("text"))
    issuer_lines = models.TextField(_("issuing organisation"))
    border = models.CharField(max_length=20, choices=CertificateTemplate.Border.choices)
    seal = models.FileField(upload_to="certificates/pictures/", blank=True)
    signature = models.FileField(upload_to="certificates/pictures/", blank=True)
    seal_image = models.ForeignKey(
        "wagtailimages.Image", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    signature_image = models.ForeignKey(
        "wagtailimages.Image", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("certificate template as issued")
        verbose_name_plural = _("certificate templates as issued")

    def __str__(self):
        return f"{self.title} ({self.created_at:%Y-%m-%d})" if self.created_at else self.title

    def printed_pictures(self):
        return (self.seal or None, self.signature or None)

    @property
    def issuer(self) -> list[str]:
        """The issuing organisation's lines, as printed."""
        return [line.strip() for line in self.issuer_lines.splitlines() if line.strip()]


class RoundTemplate(models.Model):
    """The completion certificate template a round's certificates are issued with (without
    one, the default). Kept here, not on the round: rounds know nothing of certificates."""

    round = models.OneToOneField(
        "rounds.Round", on_delete=models.CASCADE, related_name="certificate_template"
    )
    # Deleting the template (a superuser's act) sends the round back to the default.
    template = models.ForeignKey(
        CertificateTemplate, on_delete=models.CASCADE, related_name="round_choices"
    )

    class Meta:
        verbose_name = _("certificate template of a round")
        verbose_name_plural = _("certificate templates of rounds")

    def __str__(self):
        return f"{self.round_id}: {self.template}"


class NumberSequence(models.Model):
    """The last number used for one series (a year and round, or a year of statements).

    Issuing locks the row for the length of its transaction, so numbers have no gaps and no
    duplicates however many issue at once.
    """

    key = models.CharField(max_length=40, unique=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.key}: {self.last}"


class CertificateQuerySet(models.QuerySet):
    def valid(self):
        return self.filter(state=Certificate.State.VALID)


class Certificate(models.Model):
    class State(models.TextChoices):
        VALID = "valid", _("Valid")
        REVOKED = "revoked", _("Revoked")
        SUPERSEDED = "superseded", _("Superseded by a corrected certificate")

    kind = models.CharField(
        _("certificate kind"),
        max_length=20,
        choices=CertificateTemplate.Kind.choices,
        db_index=True,
    )
    round = models.ForeignKey(
        "rounds.Round",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="certificates",
        verbose_name=_("round"),
    )
    year = models.PositiveSmallIntegerField(_("year"))
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="certificates", verbose_name=_("member")
    )
    template = models.ForeignKey(
        CertificateTemplate, on_delete=models.PROTECT, related_name="certificates"
    )
    # What the template printed when this certificate was issued: rendering and verification
    # read this, never the template as it is now.
    snapshot = models.ForeignKey(
        TemplateSnapshot,
        on_delete=models.PROTECT,
        related_name="certificates",
        verbose_name=_("template as issued"),
    )
    series = models.CharField(max_length=40)
    sequence = models.PositiveIntegerField()
    number = models.CharField(_("number"), max_length=40, unique=True)
    code = models.CharField(max_length=32, unique=True, default=new_verification_code)
    # What is printed, copied at issue.
    name = models.CharField(_("name as printed"), max_length=50)
    organization_name = models.CharField(_("organisation"), max_length=120)
    round_title = models.CharField(_("round"), max_length=120, blank=True)
    opens_on = models.DateField(null=True, blank=True)
    closes_on = models.DateField(null=True, blank=True)
    hours = models.DecimalField(
        _("study hours"), max_digits=6, decimal_places=1, default=Decimal(0)
    )
    issued_on = models.DateField(_("issued on"))
    issued_at = models.DateTimeField(auto_now_add=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    state = models.CharField(_("state"), max_length=20, choices=State.choices, default=State.VALID)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoke_reason = models.CharField(_("reason"), max_length=200, blank=True)
    supersedes = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="superseded_by",
        verbose_name=_("corrects"),
    )
    pdf = models.FileField(upload_to="certificates/%Y/", blank=True)
    pdf_rendered_at = models.DateTimeField(null=True, blank=True)

    objects = CertificateQuerySet.as_manager()

    class Meta:
        verbose_name = _("certificate")
        verbose_name_plural = _("certificates")
        ordering = ["series", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["series", "sequence"], name="certificate_sequence"),
            models.UniqueConstraint(
                fields=["round", "member"],
                condition=Q(state="valid", kind="completion"),
                name="one_valid_certificate_per_round",
            ),
            models.UniqueConstraint(
                fields=["year", "member"],
                condition=Q(state="valid", kind="hours"),
                name="one_valid_statement_per_year",
            ),
        ]
        indexes = [models.Index(fields=["member", "state"])]

    def __str__(self):
        return self.number

    @property
    def is_valid(self):
        return self.state == self.State.VALID

    @property
    def needs_rendering(self):
        return not self.pdf or self.pdf_rendered_at is None

import re
import secrets
import unicodedata
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, check_password, make_password
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Substr
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from treebeard.mp_tree import MP_Node, MP_NodeManager, MP_NodeQuerySet

from core.sms import mask_phone

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
# Organisation codes end up in file names, spreadsheets, logs and URLs: letters, digits, "-" and
# "_" only. \Z, not $: $ would let a trailing newline through.
ORGANIZATION_CODE_RE = re.compile(r"\A[A-Za-z0-9_-]+\Z")
validate_organization_code = RegexValidator(
    ORGANIZATION_CODE_RE.pattern,
    message=_("An organisation code may contain only letters, digits, - and _."),
    code="invalid_code",
)


def normalize_phone(raw) -> str:
    """Return the 11-digit mainland mobile number in ``raw``, or "" when there is none.

    Accepts what people type and spreadsheets store: full-width digits, spaces, dashes,
    brackets, a ``+86``/``0086``/``86`` prefix, or a number Excel turned into a float.
    """
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    digits = re.sub(r"[\s\-()（）.]", "", text)
    if digits.startswith("+"):
        digits = digits[1:]
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits if PHONE_RE.match(digits) else ""


def mask_name(name: str) -> str:
    """张*三 / 李* : the first and last character stay, the rest are hidden."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def subtree_q(roots, path_lookup="path", *, use_index=True) -> Q:
    """Rows whose ``path_lookup`` lies under any of ``roots`` (inclusive): a path prefix, never
    recursion. With no roots, a condition that matches nothing.

    ``use_index=False`` states the same prefix so that no index on the path can serve it: for a
    list over most of a city read in another index's order (members by name, rounds/ledger.py),
    where a database that started from the path index would have to sort the whole subtree."""
    if not roots:
        return Q(pk__in=[])
    condition = Q()
    for root in roots:
        if use_index:
            condition |= path_prefix_q(root.path, path_lookup)
        else:
            prefix = Substr(path_lookup, 1, len(root.path))
            condition |= Q(Exact(prefix, Value(root.path)))
    return condition


def path_prefix_q(path: str, path_lookup="path") -> Q:
    """``path_lookup`` starts with ``path``, also stated as a range (as treebeard does): SQLite's
    LIKE ignores case and so never uses the path index, the range does."""
    return Q(
        **{
            f"{path_lookup}__startswith": path,
            f"{path_lookup}__gte": path,
            f"{path_lookup}__lt": path[:-1] + chr(ord(path[-1]) + 1),
        }
    )


class OrganizationQuerySet(MP_NodeQuerySet):
    def in_subtree(self, *roots):
        """Nodes under any of ``roots`` (inclusive)."""
        return self.filter(subtree_q(roots))


class OrganizationManager(MP_NodeManager.from_queryset(OrganizationQuerySet)):
    def get_queryset(self):
        # treebeard's manager builds its own queryset class; keep ours, in tree order.
        return OrganizationQuerySet(self.model, using=self._db).order_by("path")


class Organization(MP_Node):
    """A node of the organisation tree: city committee > county > township > village > branch."""

    class Kind(models.TextChoices):
        COMMITTEE = "committee", _("Party committee (党委)")
        GENERAL_BRANCH = "general_branch", _("General branch (党总支)")
        BRANCH = "branch", _("Branch (党支部)")

    class Domain(models.TextChoices):
        RURAL = "rural", _("Rural (农村)")
        COMMUNITY = "community", _("Community (社区)")
        ORGAN = "organ", _("Government organ (机关)")
        INSTITUTION = "institution", _("Public institution (事业单位)")
        STATE_ENTERPRISE = "state_enterprise", _("State-owned enterprise (国有企业)")
        PRIVATE_ENTERPRISE = "private_enterprise", _("Non-public enterprise (非公企业)")
        SOCIAL = "social", _("Social organisation (社会组织)")
        SCHOOL = "school", _("School (学校)")
        OTHER = "other", _("Other (其他)")

    name = models.CharField(_("name"), max_length=120)
    code = models.CharField(
        _("organisation code"),
        max_length=40,
        unique=True,
        validators=[validate_organization_code],
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.BRANCH)
    domain = models.CharField(
        _("domain"), max_length=20, choices=Domain.choices, default=Domain.OTHER
    )
    is_site = models.BooleanField(
        _("remote-education site"),
        default=False,
        help_text=_("This organisation runs a remote-education site (远程教育站点)."),
    )

    node_order_by = ["code"]
    objects = OrganizationManager()

    class Meta:
        verbose_name = _("organisation (党组织)")
        verbose_name_plural = _("organisations (党组织)")

    def __str__(self):
        return self.name

    def contains(self, other: "Organization") -> bool:
        """True when ``other`` is this node or lies below it."""
        return other.path.startswith(self.path)

    def ancestor_paths(self) -> list[str]:
        """The paths of this node and of every node above it, root first."""
        return [self.path[:i] for i in range(self.steplen, len(self.path) + 1, self.steplen)]

    def ancestors_and_self(self):
        return Organization.objects.filter(path__in=self.ancestor_paths()).order_by("depth")


class MemberQuerySet(models.QuerySet):
    def in_subtree(self, *roots, use_index=True):
        """Members whose organisation lies under any of ``roots`` (``subtree_q``)."""
        return self.filter(subtree_q(roots, "organization__path", use_index=use_index))

    def active(self):
        return self.filter(is_active=True)

    def party_members(self):
        """Party members only: people in training to join (入党积极分子, 发展对象) are not."""
        return self.filter(status__in=Member.PARTY_STATUSES)

    def learners(self):
        return self.filter(status__in=Member.LEARNER_STATUSES)

    def never_activated(self):
        """Members whose account has never been in use: not activated, and no usable password
        (a password set by other means, as for demo or staff accounts, counts as in use).
        Only these may get an activation slip."""
        return self.filter(
            activated_at__isnull=True, user__password__startswith=UNUSABLE_PASSWORD_PREFIX
        )

    def search(self, text):
        text = (text or "").strip()
        if not text:
            return self
        digits = re.sub(r"\D", "", text)
        condition = Q(name__contains=text)
        if len(digits) >= 4:
            condition |= Q(phone__contains=digits)
        return self.filter(condition)


class Member(models.Model):
    """A Party member (党员). Only what training needs: no ID-card numbers."""

    class Status(models.TextChoices):
        FULL = "full", _("Full member (正式党员)")
        PROBATIONARY = "probationary", _("Probationary member (预备党员)")
        # People in training who are not yet members: a record and courses, but counted
        # nowhere as members (see PARTY_STATUSES).
        ACTIVIST = "activist", _("Activist applying to join (入党积极分子)")
        CANDIDATE = "candidate", _("Candidate for admission (发展对象)")

    class Position(models.TextChoices):
        MEMBER = "member", _("Member (普通党员)")
        SECRETARY = "secretary", _("Secretary (书记)")
        DEPUTY_SECRETARY = "deputy_secretary", _("Deputy secretary (副书记)")
        COMMITTEE = "committee", _("Committee member (支委委员)")
        PARTY_WORKER = "party_worker", _("Party affairs worker (党务工作者)")
        INSTRUCTOR = "instructor", _("Party-building instructor (党建指导员)")

    # The statuses that make someone a Party member, counted as such everywhere.
    PARTY_STATUSES = (Status.FULL, Status.PROBATIONARY)
    LEARNER_STATUSES = (Status.ACTIVIST, Status.CANDIDATE)

    class Gender(models.TextChoices):
        MALE = "male", _("Male")
        FEMALE = "female", _("Female")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="member"
    )
    name = models.CharField(_("name"), max_length=50)
    phone = models.CharField(_("mobile phone"), max_length=11, unique=True)
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="members",
        verbose_name=_("organisation"),
    )
    status = models.CharField(
        _("membership status"), max_length=20, choices=Status.choices, default=Status.FULL
    )
    position = models.CharField(
        _("position"), max_length=20, choices=Position.choices, default=Position.MEMBER
    )
    position_since = models.DateField(
        _("in this position since"),
        null=True,
        blank=True,
        help_text=_(
            "When the member took up the position: a new secretary is one who took "
            "office within a few months."
        ),
    )
    activity_organization = models.ForeignKey(
        Organization,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="mobile_members",
        verbose_name=_("organisation where they take part (活动地党组织)"),
        help_text=_(
            "For a mobile member (流动党员): where they actually take part. They still count "
            "where they belong, and can be ticked at roll call here."
        ),
    )
    is_retired = models.BooleanField(_("retired (离退休)"), default=False)
    limited_mobility = models.BooleanField(
        _("cannot easily come or use a phone (行动不便)"),
        default=False,
        help_text=_("Elderly, ill or disabled: served by study brought to the door (送学上门)."),
    )
    gender = models.CharField(_("gender"), max_length=10, choices=Gender.choices, blank=True)
    joined_on = models.DateField(_("date joined the Party"), null=True, blank=True)
    is_active = models.BooleanField(
        _("active"),
        default=True,
        help_text=_("Members transferred out or deceased stay on record but leave future rounds."),
    )
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MemberQuerySet.as_manager()

    class Meta:
        verbose_name = _("member (党员)")
        verbose_name_plural = _("members (党员)")
        ordering = ["organization__path", "name"]
        indexes = [
            # Covers counting a subtree's members by state without reading their rows.
            models.Index(
                fields=["organization", "is_active", "status", "position"],
                name="member_org_state_idx",
            ),
            # Lists over most of a city read members in name order (rounds/ledger.py).
            models.Index(fields=["name", "id"], name="member_name_idx"),
        ]

    def __str__(self):
        return self.name

    @property
    def masked_phone(self):
        return mask_phone(self.phone)

    @property
    def is_party_member(self) -> bool:
        return self.status in self.PARTY_STATUSES

    @property
    def is_mobile(self) -> bool:
        """流动党员: takes part somewhere other than the organisation they belong to."""
        return self.activity_organization_id is not None

    def has_category(self, category: str) -> bool:
        """The Python side of ``categories_q``: keep the two in step."""
        return {
            Category.MOBILE: self.is_mobile,
            Category.RETIRED: self.is_retired,
            Category.LIMITED_MOBILITY: self.limited_mobility,
        }.get(category, False)

    def categories(self) -> list[str]:
        """The member's categories in words, for pages and exports."""
        return [str(label) for value, label in Category.choices if self.has_category(value)]

    def clean(self):
        super().clean()
        if self.activity_organization_id and (
            self.activity_organization_id == self.organization_id
        ):
            raise ValidationError(
                {
                    "activity_organization": _(
                        "A mobile member takes part somewhere other than their own organisation."
                    )
                }
            )

    @property
    def account_in_use(self) -> bool:
        """True once the account has been activated or has a usable password by any other
        means: from then on only a password reset, never an activation slip, gives it a new
        password. The counterpart of ``MemberQuerySet.never_activated``."""
        return self.activated_at is not None or self.user.has_usable_password()


class Category(models.TextChoices):
    """Categories a training can be aimed at, beside position and status."""

    MOBILE = "mobile", _("Mobile member (流动党员)")
    RETIRED = "retired", _("Retired (离退休)")
    LIMITED_MOBILITY = "limited_mobility", _("Cannot easily come (行动不便)")


CATEGORY_LOOKUPS = {
    Category.MOBILE: ("activity_organization__isnull", False),
    Category.RETIRED: ("is_retired", True),
    Category.LIMITED_MOBILITY: ("limited_mobility", True),
}


def categories_q(categories, prefix="") -> Q:
    """Members having any of ``categories`` (``prefix`` for a lookup from another model);
    no categories: everybody."""
    if not categories:
        return Q()
    condition = Q(pk__in=[])
    for category in categories:
        lookup, value = CATEGORY_LOOKUPS[category]
        condition |= Q(**{f"{prefix}{lookup}": value})
    return condition


class Posting(models.Model):
    """Someone posted to another organisation (第一书记, 驻村工作队员, 挂职…): they are in that
    organisation's training scope as well, in the position they hold there, while their
    membership stays where it is."""

    member = models.ForeignKey(
        "Member", on_delete=models.CASCADE, related_name="postings", verbose_name=_("member")
    )
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="postings",
        verbose_name=_("posted to"),
    )
    title = models.CharField(
        _("title"), max_length=40, help_text=_("For example 第一书记 or 驻村工作队员.")
    )
    position = models.CharField(
        _("position held there"),
        max_length=20,
        choices=Member.Position.choices,
        default=Member.Position.SECRETARY,
    )
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("until"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("posting (派驻/挂职)")
        verbose_name_plural = _("postings (派驻/挂职)")
        ordering = ["-starts_on"]
        indexes = [models.Index(fields=["organization", "starts_on"])]

    def __str__(self):
        return f"{self.member} · {self.title} · {self.organization}"

    def clean(self):
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValidationError({"ends_on": _("A posting cannot end before it starts.")})
        if self.member_id and self.organization_id == self.member.organization_id:
            raise ValidationError(
                {"organization": _("A posting is to an organisation other than their own.")}
            )

    @staticmethod
    def overlapping_q(first_day, last_day, prefix="") -> Q:
        """Postings under way at some point between ``first_day`` and ``last_day``."""
        return Q(**{f"{prefix}starts_on__lte": last_day}) & (
            Q(**{f"{prefix}ends_on__isnull": True}) | Q(**{f"{prefix}ends_on__gte": first_day})
        )


class Role(models.TextChoices):
    TRAINER = "trainer", _("Trainer (培训管理员)")
    SECRETARY = "secretary", _("Secretary (支部书记/组织委员)")
    OPERATOR = "operator", _("Site operator (站点管理员)")


class RoleAssignmentQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(user=user).select_related("organization")


class RoleAssignment(models.Model):
    """A power bound to a node: it covers that node's whole subtree and nothing else."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="role_assignments",
        verbose_name=_("user"),
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="role_assignments",
        verbose_name=_("organisation"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RoleAssignmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("role assignment")
        verbose_name_plural = _("role assignments")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "role", "organization"], name="unique_role_per_node"
            )
        ]

    def __str__(self):
        return f"{self.user} · {self.get_role_display()} · {self.organization}"


# Letters and digits that survive being read aloud and printed: no 0/O, 1/I/L.
ACTIVATION_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


class OneTimeCodeQuerySet(models.QuerySet):
    """Printed slips and SMS codes alike: used once, revocable, expiring, burnt after too
    many wrong tries (the limit is the setting ``max_failures_setting`` names)."""

    max_failures_setting = ""

    def usable(self):
        """Codes that may still be tried: unused, not revoked, not expired, and short of the
        failure limit (checked here too, so a code that reached it in a concurrent request
        is refused even before that request has revoked it)."""
        return self.filter(
            used_at__isnull=True,
            revoked=False,
            expires_at__gt=timezone.now(),
            failures__lt=getattr(settings, self.max_failures_setting),
        )

    def outstanding(self):
        """Codes not used and not revoked (expired ones included: revoking them is harmless)."""
        return self.filter(used_at__isnull=True, revoked=False)


class ActivationCodeQuerySet(OneTimeCodeQuerySet):
    max_failures_setting = "LUNXUN_ACTIVATION_MAX_FAILURES"


class ActivationCode(models.Model):
    """A one-time code printed on a slip; with it a member sets their own password.

    Only a hash is stored: the code itself exists on the slip and nowhere else. An activation
    code works only for an account that has never been in use; a reset code only for an
    account whose password a reset made unusable (see members.services.member_activate).
    """

    class Kind(models.TextChoices):
        ACTIVATION = "activation", _("Activation")
        RESET = "reset", _("Password reset")

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="activation_codes")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.ACTIVATION)
    code_hash = models.CharField(max_length=128)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveSmallIntegerField(default=0)
    revoked = models.BooleanField(default=False)

    objects = ActivationCodeQuerySet.as_manager()

    class Meta:
        verbose_name = _("activation code")
        verbose_name_plural = _("activation codes")

    def __str__(self):
        return f"{self.member} · {self.created_at:%Y-%m-%d}"

    @staticmethod
    def generate_code() -> str:
        return "".join(secrets.choice(ACTIVATION_ALPHABET) for _ in range(10))

    @classmethod
    def expiry_from_now(cls):
        return timezone.now() + timedelta(days=settings.LUNXUN_ACTIVATION_CODE_DAYS)

    def set_code(self, code: str):
        self.code_hash = make_password(self.clean_code(code))

    def matches(self, code: str) -> bool:
        return check_password(self.clean_code(code), self.code_hash)

    @staticmethod
    def clean_code(code: str) -> str:
        return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", code or "")).upper()

    @property
    def is_usable(self):
        return (
            self.used_at is None
            and not self.revoked
            and self.expires_at > timezone.now()
            and self.failures < settings.LUNXUN_ACTIVATION_MAX_FAILURES
        )


class SmsCodeQuerySet(OneTimeCodeQuerySet):
    max_failures_setting = "LUNXUN_SMS_CODE_MAX_FAILURES"


class SmsCode(models.Model):
    """A six-digit code sent by SMS to a member's registered number: with it they log in,
    activate their account or set a new password (``purpose``), within minutes.

    Only a hash is stored: the code itself exists in the text message and nowhere else. One at
    a time: sending a code revokes the member's earlier outstanding ones (members.sms_codes).
    Printed slips are ``ActivationCode``; the two never stand in for each other.
    """

    class Purpose(models.TextChoices):
        LOGIN = "login", _("Log in")
        ACTIVATE = "activate", _("Activate the account")
        RESET = "reset", _("Reset the password")

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="sms_codes")
    purpose = models.CharField(_("purpose"), max_length=20, choices=Purpose.choices)
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveSmallIntegerField(default=0)
    revoked = models.BooleanField(default=False)

    objects = SmsCodeQuerySet.as_manager()

    class Meta:
        verbose_name = _("SMS code")
        verbose_name_plural = _("SMS codes")
        indexes = [models.Index(fields=["member", "used_at", "revoked"])]

    def __str__(self):
        return f"{self.member} · {self.get_purpose_display()} · {self.created_at:%Y-%m-%d %H:%M}"

    DIGITS = 6

    @classmethod
    def generate_code(cls) -> str:
        return f"{secrets.randbelow(10**cls.DIGITS):0{cls.DIGITS}d}"

    @staticmethod
    def expiry_from_now():
        return timezone.now() + timedelta(minutes=settings.LUNXUN_SMS_CODE_MINUTES)

    def set_code(self, code: str):
        self.code_hash = make_password(self.clean_code(code))

    def matches(self, code: str) -> bool:
        return check_password(self.clean_code(code), self.code_hash)

    @staticmethod
    def clean_code(code: str) -> str:
        """What people type: full-width digits, spaces, dashes."""
        return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", code or ""))


class SpreadsheetImport(models.Model):
    """One uploaded roster or organisation file: its dry-run report, then whether it was applied.

    The parsed, normalised rows are kept (not the uploaded file), so the confirmation applies
    exactly what the dry run showed and a second click finds the import already applied.
    """

    class Kind(models.TextChoices):
        ROSTER = "roster", _("Member roster")
        ORGANIZATIONS = "organizations", _("Organisations")
        QUESTIONS = "questions", _("Question bank")

    class State(models.TextChoices):
        CHECKED = "checked", _("Checked (dry run)")
        APPLIED = "applied", _("Applied")
        REJECTED = "rejected", _("Rejected")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.CHECKED)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    rows = models.JSONField(default=list)
    report = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_kind_display()} · {self.file_name}"

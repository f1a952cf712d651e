"""Forms for the trainers' Wagtail admin: organisations are named by code, scoped to the trainer."""

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm

from core.tabular import clean_name

from . import access
from .backends import resolve_username
from .models import Member, Organization, Posting, Role, RoleAssignment, normalize_phone


class OrganizationCodeField(forms.ModelChoiceField):
    """Pick an organisation by its code: a select of a whole city's 15,000 nodes would not do."""

    default_error_messages = {
        "invalid_choice": _(
            "Unknown organisation code, or an organisation outside your responsibility."
        ),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.TextInput(attrs={"placeholder": _("Organisation code")}))
        super().__init__(queryset=Organization.objects.none(), to_field_name="code", **kwargs)

    def prepare_value(self, value):
        if isinstance(value, int):
            return Organization.objects.filter(pk=value).values_list("code", flat=True).first()
        return super().prepare_value(value)


def trainer_organizations(user):
    return access.visible_organizations(user, (Role.TRAINER,))


class OrganizationForm(WagtailAdminModelForm):
    parent = OrganizationCodeField(
        label=_("Parent organisation code"),
        required=False,
        help_text=_("Leave empty only for the city committee at the top of the tree."),
    )

    class Meta:
        model = Organization
        fields = ["name", "code", "kind", "domain", "is_site"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = self.for_user
        queryset = trainer_organizations(user)
        if self.instance.pk:
            queryset = queryset.exclude(path__startswith=self.instance.path)
            parent = self.instance.get_parent()
            if parent is not None:
                self.initial["parent"] = parent.code
        self.fields["parent"].queryset = queryset
        if not user.is_superuser:
            self.fields["parent"].required = True

    def clean_code(self):
        return self.cleaned_data["code"].strip().upper()


class MemberForm(WagtailAdminModelForm):
    organization = OrganizationCodeField(label=_("Organisation code"))
    activity_organization = OrganizationCodeField(
        label=_("Where a mobile member takes part (活动地党组织编码)"),
        required=False,
        help_text=_(
            "Only for a mobile member (流动党员): the code of the organisation where they "
            "actually take part, anywhere in the city. Empty: not a mobile member."
        ),
    )
    # Longer than the stored 11 digits: "+86 138-0013-8000" is normalised in clean_phone.
    phone = forms.CharField(label=_("Mobile phone"), max_length=32)

    class Meta:
        model = Member
        fields = [
            "name",
            "phone",
            "organization",
            "status",
            "position",
            "position_since",
            "activity_organization",
            "is_retired",
            "limited_mobility",
            "gender",
            "joined_on",
            "is_active",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = trainer_organizations(self.for_user)
        # A mobile member may take part anywhere: their home trainer names the place by code.
        self.fields["activity_organization"].queryset = Organization.objects.all()

    def clean_name(self):
        return clean_name(self.cleaned_data["name"])

    def clean_phone(self):
        phone = normalize_phone(self.cleaned_data["phone"])
        if not phone:
            raise forms.ValidationError(_("Not a valid mainland mobile number."))
        return phone


class PostingForm(WagtailAdminModelForm):
    """A posting adds someone to the training scope of an organisation in the trainer's subtree;
    the person is named by mobile number, wherever their membership is."""

    login = forms.CharField(
        label=_("Mobile number of the person posted"),
        help_text=_("Their membership stays where it is."),
    )
    organization = OrganizationCodeField(label=_("Posted to (organisation code)"))

    class Meta:
        model = Posting
        fields = ["title", "organization", "position", "starts_on", "ends_on"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = trainer_organizations(self.for_user)
        if self.instance.pk:
            self.initial["login"] = self.instance.member.phone

    def clean_login(self):
        phone = normalize_phone(self.cleaned_data["login"])
        member = Member.objects.filter(phone=phone, is_active=True).first() if phone else None
        if member is None:
            raise forms.ValidationError(_("No member on record with this mobile number."))
        self.instance.member = member
        return self.cleaned_data["login"]


class RoleAssignmentForm(WagtailAdminModelForm):
    login = forms.CharField(
        label=_("Mobile number or username"),
        help_text=_("The person who receives the role."),
    )
    organization = OrganizationCodeField(label=_("Organisation code"))

    class Meta:
        model = RoleAssignment
        fields = ["role", "organization"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = trainer_organizations(self.for_user)
        if self.instance.pk:
            self.initial["login"] = self.instance.user.username

    def clean_login(self):
        User = get_user_model()
        user = User.objects.filter(username=resolve_username(self.cleaned_data["login"])).first()
        if user is None:
            raise forms.ValidationError(_("No account with this mobile number or username."))
        member = getattr(user, "member", None)
        if member is not None and not access.can_see_member(self.for_user, member, (Role.TRAINER,)):
            raise forms.ValidationError(_("This member is outside your responsibility."))
        self.instance.user = user
        return user

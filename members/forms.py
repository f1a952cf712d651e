from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from core import uploads

from .models import Category, Member, Organization, SmsCode, categories_q, normalize_phone


class LoginForm(AuthenticationForm):
    username = forms.CharField(
        label=_("Mobile number or username"),
        max_length=150,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    error_messages = {
        "invalid_login": _(
            "The login or the password is not correct. After %(limit)s failed attempts the "
            "account is locked for a while."
        ),
        "inactive": _("This account is inactive."),
    }

    def get_invalid_login_error(self):
        return forms.ValidationError(
            self.error_messages["invalid_login"],
            code="invalid_login",
            params={"limit": settings.AXES_FAILURE_LIMIT},
        )


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Spreadsheet (.xlsx or .csv)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv"}),
    )

    def clean_file(self):
        """Refuse a file that is too large before it is read; core.tabular.read_table
        judges the content (a web page, a polyglot, a zip bomb) as it parses."""
        upload = self.cleaned_data["file"]
        try:
            uploads.check_size(upload.size, settings.LUNXUN_IMPORT_MAX_BYTES)
        except uploads.UploadRefused as error:
            raise forms.ValidationError(str(error)) from None
        return upload


class RosterFilterForm(forms.Form):
    q = forms.CharField(label=_("Name or phone"), required=False)
    org = forms.IntegerField(required=False, widget=forms.HiddenInput)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All")), *Member.Status.choices]
    )
    position = forms.ChoiceField(
        label=_("Position"), required=False, choices=[("", _("All")), *Member.Position.choices]
    )
    category = forms.ChoiceField(
        label=_("Category"), required=False, choices=[("", _("All")), *Category.choices]
    )
    active = forms.ChoiceField(
        label=_("On record"),
        required=False,
        choices=[("1", _("Active")), ("0", _("Inactive")), ("all", _("All"))],
    )
    activated = forms.ChoiceField(
        label=_("Account"),
        required=False,
        choices=[("", _("All")), ("1", _("Activated")), ("0", _("Not activated"))],
    )

    def filter(self, members):
        data = self.cleaned_data
        members = members.search(data.get("q"))
        if data.get("status"):
            members = members.filter(status=data["status"])
        if data.get("position"):
            members = members.filter(position=data["position"])
        if data.get("category"):
            members = members.filter(categories_q([data["category"]]))
        active = data.get("active") or "1"
        if active != "all":
            members = members.filter(is_active=active == "1")
        if data.get("activated") == "1":
            members = members.filter(activated_at__isnull=False)
        elif data.get("activated") == "0":
            members = members.filter(activated_at__isnull=True)
        return members


class NewPasswordForm(forms.Form):
    """The new password, twice: the end of every way of setting one with a code."""

    password1 = forms.CharField(
        label=_("New password"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label=_("New password again"),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        return data


class ActivationForm(NewPasswordForm):
    phone = forms.CharField(label=_("Mobile number"), max_length=32)
    code = forms.CharField(label=_("Activation code"), max_length=32)

    field_order = ["phone", "code", "password1", "password2"]


class ResetConfirmForm(forms.Form):
    """The secretary's confirmation of a password reset: it logs the member out everywhere."""

    confirm = forms.BooleanField(
        label=_(
            "I have checked that this member asked for it: their password stops working, they "
            "are logged out everywhere and set a new one with the slip."
        )
    )


class MemberCategoriesForm(forms.ModelForm):
    """What a secretary keeps up to date about a member in her scope: status, position and
    since when, and the categories the department trains by."""

    activity_organization = forms.CharField(
        label=_("Mobile member: code of the organisation where they take part"),
        required=False,
        max_length=40,
        help_text=_(
            "Only for a mobile member (流动党员). They still count here and can be ticked at "
            "roll call there. Leave empty when they take part here."
        ),
    )

    class Meta:
        model = Member
        fields = ["status", "position", "position_since", "is_retired", "limited_mobility"]
        widgets = {"position_since": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.activity_organization_id:
            self.initial["activity_organization"] = self.instance.activity_organization.code

    def clean_activity_organization(self):
        code = self.cleaned_data["activity_organization"].strip()
        if not code:
            return None
        organization = Organization.objects.filter(code=code).first()
        if organization is None:
            raise forms.ValidationError(_("Unknown organisation code."))
        return organization

    def _post_clean(self):
        # Set before the model's own checks run (Member.clean: not their own organisation).
        if "activity_organization" in self.cleaned_data:
            self.instance.activity_organization = self.cleaned_data["activity_organization"]
        super()._post_clean()


class SmsCodeRequestForm(forms.Form):
    """Step one of logging in, activating or resetting by SMS: the registered number."""

    phone = forms.CharField(
        label=_("Mobile number"),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "tel", "inputmode": "numeric"}
        ),
    )

    def clean_phone(self):
        phone = normalize_phone(self.cleaned_data["phone"])
        if not phone:
            raise forms.ValidationError(
                _("Enter the 11-digit mobile number your branch has on record.")
            )
        return phone


class SmsCodeForm(forms.Form):
    """Step two: the code from the SMS."""

    code = forms.CharField(
        label=_("Code from the SMS"),
        max_length=20,
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "class": "sms-code",
            }
        ),
    )

    def clean_code(self):
        code = SmsCode.clean_code(self.cleaned_data["code"])
        if not (len(code) == SmsCode.DIGITS and code.isdigit()):
            raise forms.ValidationError(_("The code is the 6 digits in the SMS."))
        return code


class SmsCodePasswordForm(SmsCodeForm, NewPasswordForm):
    """Step two of activating or resetting: the code, and the new password twice."""

    field_order = ["code", "password1", "password2"]

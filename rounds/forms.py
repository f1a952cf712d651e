"""Forms of the member and secretary pages (the admin's forms live in admin_forms.py)."""

import secrets
from decimal import Decimal

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member, Organization

from . import paper
from .models import Participation, StudyRecord

STATUS_FILTERS = [
    ("missing", _("Not yet done")),
    ("all", _("Everyone")),
    (Participation.Status.COMPLETED, _("Completed")),
    (Participation.Status.IN_PROGRESS, _("In progress")),
    (Participation.Status.LEAVE, _("On leave")),
    (Participation.Status.NOT_STARTED, _("Not started")),
    (Participation.Status.EXEMPT, _("Exempt")),
]


class CoverageFilterForm(forms.Form):
    domain = forms.ChoiceField(
        label=_("Domain"),
        required=False,
        choices=[("", _("All domains")), *Organization.Domain.choices],
    )
    position = forms.ChoiceField(
        label=_("Category"),
        required=False,
        choices=[("", _("All categories")), *Member.Position.choices],
    )
    status = forms.ChoiceField(label=_("Show"), required=False, choices=STATUS_FILTERS)

    def value(self, name):
        if self.is_valid():
            return self.cleaned_data.get(name) or ""
        return ""


class LeaveForm(forms.Form):
    session = forms.ModelChoiceField(
        label=_("Group session you will miss"),
        queryset=None,
        required=False,
        empty_label=_("All group sessions of this round"),
    )
    reason = forms.CharField(
        label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, sessions=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["session"].queryset = sessions


class DecisionForm(forms.Form):
    note = forms.CharField(label=_("Note (optional)"), max_length=200, required=False)


class ExemptionForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for exemption"),
        max_length=200,
        help_text=_("For example: long illness, working abroad."),
    )


class StudyRecordForm(forms.Form):
    """Study the system did not see. A note is optional; no photo or document is asked for."""

    kind = forms.ChoiceField(label=_("Kind of study"), choices=StudyRecord.Kind.choices)
    title = forms.CharField(
        label=_("What was studied"),
        max_length=120,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. 学习党的二十届四中全会精神")}),
    )
    studied_on = forms.DateField(
        label=_("Date studied"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    hours = forms.DecimalField(
        label=_("Study hours (学时)"),
        min_value=Decimal("0.5"),
        max_value=Decimal("80"),
        decimal_places=1,
        max_digits=4,
        widget=forms.NumberInput(attrs={"step": "0.5", "inputmode": "decimal"}),
    )
    note = forms.CharField(
        label=_("Note (optional)"),
        required=False,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    # One token per form shown: sending the same form twice records nothing twice.
    form_token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["form_token"] = secrets.token_urlsafe(24)
            self.initial["studied_on"] = timezone.localdate()

    def clean_studied_on(self):
        day = self.cleaned_data["studied_on"]
        if day > timezone.localdate():
            raise forms.ValidationError(_("A study cannot be recorded before it has taken place."))
        if day.year < 2000:
            raise forms.ValidationError(_("Not a sensible date."))
        return day


class RecordDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("approve", _("Approve")), ("refuse", _("Refuse"))], widget=forms.HiddenInput
    )
    note = forms.CharField(label=_("Reason (needed to refuse)"), required=False, max_length=200)


class SheetCodeForm(forms.Form):
    """The code printed on a paper sign-in sheet; with ``sitting``, it must be that sitting's."""

    code = forms.CharField(
        label=_("Sheet code"),
        max_length=40,
        help_text=_("Printed large at the top of the sheet, like 1234-KXMPRA."),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args, sitting=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sitting = sitting

    def clean_code(self):
        code = self.cleaned_data["code"]
        try:
            self.cleaned_data["sitting"] = paper.sheet_code_read(code=code, sitting=self.sitting)
        except paper.SheetCodeRefused as refusal:
            raise forms.ValidationError(str(refusal), code="sheet_code") from None
        return code


class TerminalForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=80,
        help_text=_("The site and the room, e.g. 红旗村 activity room."),
    )
    host = forms.ModelChoiceField(label=_("Site (host organisation)"), queryset=None)

    def __init__(self, *args, organizations=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["host"].queryset = organizations.order_by("path")

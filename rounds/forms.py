"""Forms of the member and secretary pages (the admin's forms live in forms.py)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from members.models import Member, Organization

from .models import Participation

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

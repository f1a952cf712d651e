from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from core import uploads

from .models import Question


class QuestionImportForm(forms.Form):
    course = forms.ModelChoiceField(label=_("Course"), queryset=None)
    file = forms.FileField(
        label=_("Spreadsheet (.xlsx or .csv)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv"}),
    )

    def __init__(self, *args, courses, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["course"].queryset = courses

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            uploads.check_size(upload.size, settings.LUNXUN_IMPORT_MAX_BYTES)
        except uploads.UploadRefused as error:
            raise forms.ValidationError(str(error)) from None
        return upload


class AttemptForm(forms.Form):
    """The questions an attempt drew, each with its options in the order drawn. Only option ids
    and texts reach the page: never which is correct."""

    def __init__(self, *args, attempt, questions, lettered=False, **kwargs):
        """``lettered``: options labelled A, B, C… as the printed sheet shows them."""
        super().__init__(*args, **kwargs)
        for number, item in enumerate(attempt.drawn, start=1):
            question = questions.get(item["question"])
            if question is None:
                continue
            texts = {c.pk: c.text for c in question.choices.all()}
            choices = [(str(cid), texts[cid]) for cid in item["choices"] if cid in texts]
            if lettered:
                choices = [(v, f"{'ABCDEF'[i]}. {t}") for i, (v, t) in enumerate(choices)]
            label = f"{number}. {question.text}"
            if question.kind == Question.Kind.MULTIPLE:
                field = forms.MultipleChoiceField(
                    label=label,
                    choices=choices,
                    widget=forms.CheckboxSelectMultiple,
                    help_text=_("Choose every correct option."),
                )
            else:
                field = forms.ChoiceField(label=label, choices=choices, widget=forms.RadioSelect)
            field.error_messages["required"] = _("Answer this question.")
            self.fields[f"q{question.pk}"] = field

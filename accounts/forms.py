"""Forms: shape and format only; meaning is checked in services."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.identity import InvalidIdNumber, parse_id_number


class IdNumberField(forms.CharField):
    """R1: an ID number, checked as typed; the error says which part is wrong."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("label", _("ID number (公民身份号码)"))
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault(
            "widget",
            forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "inputmode": "text", "maxlength": 18}),
        )
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return value
        try:
            return parse_id_number(value, today=timezone.localdate()).value
        except InvalidIdNumber as error:
            raise forms.ValidationError(error.message, code=error.code) from None


class RealNameForm(forms.Form):
    """实名认证: link the login to an insured person."""

    name = forms.CharField(label=_("Full name"), max_length=50, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    id_number = IdNumberField()
    consent = forms.BooleanField(
        label=_(
            "I agree that my name and ID number are used only to find my insurance records "
            "and to decide family-sharing requests."
        ),
        error_messages={"required": _("Please read and accept how your ID number is used.")},
    )

"""Forms of the sharing-records pages (R35) and of a contribution paid for a relative (R31): shape only.

Whether the relative is bound, insured as a resident or in a region with long-term care is the service's
question (``family.services.contributions``), answered with the rule that refuses.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.masking import mask_name
from family.forms import DateInput, RadioChoices
from family.models import Binding, PaymentKind
from family.selectors_payments import ROLE_OWNER, ROLE_RELATIVE

IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[0-9a-f]{32}$")


class RecordsFilterForm(forms.Form):
    """共济使用明细 filters: which side, and a range of days (both ends included). Field names as in the API."""

    role = forms.ChoiceField(
        label=_("Which records"),
        required=False,
        choices=[
            ("", _("All records")),
            (ROLE_OWNER, _("Paid from my account for my family")),
            (ROLE_RELATIVE, _("Paid for me by my family")),
        ],
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so these two are added here rather than declared.
        self.fields["from"] = forms.DateField(label=_("First day"), required=False, widget=DateInput())
        self.fields["until"] = forms.DateField(label=_("Last day"), required=False, widget=DateInput())

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("from"), cleaned.get("until")
        if start and end and end < start:
            self.add_error("until", _("Choose an end date after the start date."))
        return cleaned

    @property
    def is_filtered(self) -> bool:
        return self.is_bound and any(self.data.get(name) for name in ("role", "from", "until"))


class BindingChoiceField(forms.ModelChoiceField):
    """A bound relative, named masked (R4) with the relationship and insurance type, as large radio buttons."""

    def label_from_instance(self, binding: Binding) -> str:
        relative = binding.relative
        insurance = relative.get_insurance_type_display()
        return f"{mask_name(relative.name)} · {binding.get_relationship_display()} · {insurance}"


class ContributionForm(forms.Form):
    """缴费: for whom (a relative bound to me), what, for which year, how much; the key makes it pay once (R34)."""

    binding = BindingChoiceField(
        queryset=Binding.objects.none(),
        label=_("For whom"),
        widget=RadioChoices,
        empty_label=None,
        error_messages={
            "required": _("Choose the family member you pay for."),
            "invalid_choice": _("Choose one of your family members listed here."),
        },
    )
    kind = forms.ChoiceField(
        label=_("What do you pay?"),
        widget=RadioChoices,
        choices=[
            (PaymentKind.RESIDENT_CONTRIBUTION, _("Resident-insurance contribution (居民医保个人缴费)")),
            (PaymentKind.LTC_CONTRIBUTION, _("Long-term-care insurance contribution (长护险)")),
        ],
        error_messages={"required": _("Choose what you pay.")},
    )
    year = forms.TypedChoiceField(label=_("For the year"), coerce=int, widget=RadioChoices)
    amount = forms.DecimalField(
        label=_("Amount (yuan)"),
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        help_text=_("The amount on the contribution notice of your region, for example 380.00."),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=32)

    def __init__(self, *args, bindings, **kwargs) -> None:
        kwargs.setdefault("initial", {})
        this_year = timezone.localdate().year
        kwargs["initial"].setdefault("idempotency_key", uuid.uuid4().hex)
        kwargs["initial"].setdefault("year", this_year)
        super().__init__(*args, **kwargs)
        self.fields["binding"].queryset = bindings
        # Contributions are collected for the current year and, at the end of a year, for the next one.
        self.fields["year"].choices = [(this_year, str(this_year)), (this_year + 1, str(this_year + 1))]

    def clean_idempotency_key(self) -> str:
        key = self.cleaned_data["idempotency_key"]
        if not IDEMPOTENCY_KEY_PATTERN.match(key):
            raise forms.ValidationError(_("This form is out of date; please start again."))
        return key

"""Forms of the clerks' counter: shape only (the services decide meaning). Keyboard first: every form has
one field that takes the focus, and Enter submits it."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.models import Institution
from cards.swipe import DEFAULT_CARD_NUMBER_PATTERN, CardInput, CardInputError, parse_card_input
from family.models import PaymentKind, PharmacyCategory, Relation

# R22: the originals a clerk may have seen; stored in Binding.originals_seen by these keys.
ORIGINALS = [
    ("id_cards", _("ID cards of both")),
    ("household_registers", _("household registers")),
    ("marriage_certificate", _("marriage certificate")),
    ("birth_certificate", _("birth medical certificate")),
]
# R31: what each kind of institution takes payments for.
KINDS_AT = {
    Institution.Kind.CLINIC: [PaymentKind.MEDICAL],
    Institution.Kind.PHARMACY: [PaymentKind.PHARMACY],
    Institution.Kind.BRANCH: [PaymentKind.RESIDENT_CONTRIBUTION, PaymentKind.LTC_CONTRIBUTION],
}


def _card_widget() -> forms.TextInput:
    # Readers and scanners type fast and end with Enter: no autocomplete, no spell check, no capitals.
    return forms.TextInput(
        attrs={
            "autofocus": True,
            "autocomplete": "off",
            "autocapitalize": "off",
            "spellcheck": "false",
            "class": "counter-card-input",
            "data-counter-card": "1",
            "aria-describedby": "card-help",
        }
    )


class CardField(forms.CharField):
    """A card field: a swipe, a scanned e-card code or a number typed by hand; cleans to a ``CardInput``."""

    def __init__(self, *, accept_id_number: bool = False, **kwargs) -> None:
        self.accept_id_number = accept_id_number
        kwargs.setdefault("max_length", 600)
        kwargs.setdefault("widget", _card_widget())
        super().__init__(**kwargs)

    def clean(self, value) -> CardInput:
        value = super().clean(value)
        pattern = getattr(settings, "CARD_NUMBER_PATTERN", DEFAULT_CARD_NUMBER_PATTERN)
        try:
            return parse_card_input(value, card_pattern=pattern, accept_id_number=self.accept_id_number)
        except CardInputError as error:
            raise forms.ValidationError(error.message, code=error.code) from None


class CardReadForm(forms.Form):
    """柜台: the one card field."""

    card = CardField(
        label=_("Card"), error_messages={"required": _("Swipe the card, scan the code or type the number.")}
    )


class BindOwnerForm(forms.Form):
    """R22 step 1: the card of the account owner (the account that pays)."""

    owner_card = CardField(
        label=_("Account owner's card (the account that pays)"),
        error_messages={"required": _("Swipe the account owner's card.")},
    )


class BindRelativeForm(forms.Form):
    """R22 step 2: the relative's card, or their card or ID number typed, and the name as on the ID card."""

    relative_card = CardField(
        label=_("Relative's card, card number or ID number"),
        accept_id_number=True,
        error_messages={"required": _("Swipe the relative's card or type their card or ID number.")},
    )
    relative_name = forms.CharField(
        label=_("Relative's name as on the ID card"),
        max_length=50,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The card field takes the focus, unless the card is read and only the name is missing.
        if self.is_bound and not self.errors.get("relative_card") and self.errors.get("relative_name"):
            self.fields["relative_card"].widget.attrs.pop("autofocus", None)
            self.fields["relative_name"].widget.attrs["autofocus"] = True

    def clean_relative_name(self) -> str:
        return " ".join(self.cleaned_data["relative_name"].split())


class BindRelationshipForm(forms.Form):
    """R22 step 3: what the relative is to the owner (C3 names); keys 1–6 choose on the page."""

    relationship = forms.ChoiceField(
        label=_("The relative is the account owner's"),
        choices=Relation.choices,
        widget=forms.RadioSelect(attrs={"data-counter-radios": "1"}),
    )


class BindConfirmForm(forms.Form):
    """R22 step 4: the originals seen, and the relative's identity confirmed in person."""

    originals_seen = forms.MultipleChoiceField(
        label=_("Originals seen"),
        choices=ORIGINALS,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Tick the originals you have seen; at least one is needed (R22).")},
    )
    identity_confirmed = forms.BooleanField(
        label=_("I have confirmed in person that the relative is the person on the ID card."),
        error_messages={"required": _("Confirm the relative's identity in person first (R22).")},
    )


class UnbindForm(forms.Form):
    """R26 at the counter: which active binding, why, and that the card holder asked for it."""

    binding = forms.TypedChoiceField(label=_("Binding to end"), coerce=int, widget=forms.RadioSelect)
    reason = forms.CharField(
        label=_("Reason (optional)"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    confirmed = forms.BooleanField(
        label=_("The card holder asked in person to end this binding."),
        error_messages={"required": _("Confirm that the card holder asked for it.")},
    )

    def __init__(self, *args, bindings, labels, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["binding"].choices = [(b.pk, labels[b.pk]) for b in bindings]
        if len(bindings) == 1:
            self.fields["binding"].initial = bindings[0].pk


class ChargeForm(forms.Form):
    """收费: the kind of payment (those the institution takes), a pharmacy's category, the amount."""

    kind = forms.ChoiceField(label=_("Payment for"), widget=forms.RadioSelect)
    category = forms.ChoiceField(
        label=_("Category"), choices=PharmacyCategory.choices, required=False, widget=forms.RadioSelect
    )
    amount = forms.DecimalField(
        label=_("Amount (yuan)"),
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        widget=forms.TextInput(attrs={"autofocus": True, "inputmode": "decimal", "autocomplete": "off"}),
    )

    def __init__(self, *args, institution: Institution, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        kinds = KINDS_AT.get(institution.kind, list(PaymentKind))
        self.fields["kind"].choices = [(kind.value, kind.label) for kind in kinds]
        self.fields["kind"].initial = kinds[0].value
        self.is_pharmacy = institution.kind == Institution.Kind.PHARMACY
        if self.is_pharmacy:
            self.fields["category"].required = True
            self.fields["category"].initial = PharmacyCategory.choices[0][0]
        else:
            del self.fields["category"]

    def clean_amount(self) -> Decimal:
        # Fen-exact, as the receipt shows it: "30" is ¥30.00.
        return self.cleaned_data["amount"].quantize(Decimal("0.01"))

    def payment_fields(self) -> dict:
        data = self.cleaned_data
        return {"kind": data["kind"], "category": data.get("category") or "", "amount": data["amount"]}


class ChargeConfirmForm(forms.Form):
    """收费 confirmation: what the preview showed, carried in hidden fields, with the key made for it (R34)."""

    kind = forms.ChoiceField(choices=PaymentKind.choices, widget=forms.HiddenInput)
    category = forms.ChoiceField(
        choices=[("", ""), *PharmacyCategory.choices], required=False, widget=forms.HiddenInput
    )
    amount = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"), widget=forms.HiddenInput)
    idempotency_key = forms.CharField(max_length=64, widget=forms.HiddenInput)
    split_check = forms.CharField(max_length=64, required=False, widget=forms.HiddenInput)

    def payment_fields(self) -> dict:
        data = self.cleaned_data
        return {"kind": data["kind"], "category": data.get("category") or "", "amount": data["amount"]}

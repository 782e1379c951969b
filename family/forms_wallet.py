"""Forms of the transfer (R36) and wallet (R37) pages: shape only; the services decide what is allowed.

Forms that move money carry an idempotency key in a hidden field, made when the page is shown: a
double-click or a resubmitted page sends the same key, and the service charges once (R34).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import IdNumberField
from family.forms import RadioChoices


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def amount_field(**kwargs) -> forms.DecimalField:
    """Yuan with at most two decimals, typed on a phone's decimal keypad."""
    kwargs.setdefault("label", _("Amount (yuan)"))
    return forms.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        error_messages={"required": _("Enter the amount."), "invalid": _("Enter an amount such as 100 or 100.50.")},
        **kwargs,
    )


class IdempotencyKeyField(forms.CharField):
    def __init__(self, **kwargs) -> None:
        super().__init__(max_length=64, widget=forms.HiddenInput, **kwargs)


class TransferReceiverForm(forms.Form):
    """转移人员信息录入: who receives the transfer, as on their ID card."""

    relative_name = forms.CharField(
        label=_("Receiver's name"),
        max_length=50,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text=_("As on the ID card."),
    )
    relative_id_number = IdNumberField(label=_("Receiver's ID number"))


class TransferAmountForm(forms.Form):
    """How much to move from the previous years' part (at most what is there)."""

    amount = amount_field()

    def __init__(self, *args, available: Decimal, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.available = available

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount > self.available:
            # Told here to save a step; the service checks it again under the account's lock.
            raise forms.ValidationError(
                _("The previous years' part holds ¥%(available)s; enter at most that."),
                params={"available": f"{self.available:,.2f}"},
            )
        return amount


class TransferConfirmForm(forms.Form):
    idempotency_key = IdempotencyKeyField()


class WalletSendForm(forms.Form):
    """Send to a relative's wallet in another province (R37): which relative, how much."""

    binding = forms.TypedChoiceField(
        label=_("To which family member?"),
        coerce=int,
        widget=RadioChoices,
        error_messages={"required": _("Choose the family member to send to.")},
    )
    amount = amount_field()
    idempotency_key = IdempotencyKeyField()

    def __init__(self, *args, choices: list[tuple[int, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["binding"].choices = choices
        if len(choices) == 1 and not self.is_bound:
            self.initial.setdefault("binding", choices[0][0])

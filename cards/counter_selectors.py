"""Reads of the clerks' counter (R22, R32): who a card belongs to, what the counter shows of them."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q
from django.http import Http404
from django.utils.translation import gettext as _

from accounts.errors import DomainError
from accounts.models import InsuredPerson, User
from cards.errors import QrRefused
from cards.payments import Presented, card_identify
from cards.swipe import CardInput
from family.models import OPEN_STATES, Binding, BindingState, Payment


class CardNotFound(DomainError):
    """No insured person holds this card (or has this ID number)."""


def _person_query():
    # The counter shows the person's region, account and e-card: loaded with them, one query.
    return InsuredPerson.objects.select_related("region", "account", "ecard")


def counter_card_read(*, client: User, card_input: CardInput) -> Presented:
    """R32: the holder of the card read (or of the ID number typed, where that is accepted).

    A card number shows its holder whatever the card's or insurance's state, so the clerk sees why a
    payment would be refused; a QR code goes through ``card_identify``, which uses it up (R42) and
    answers the ``qr_reference`` that a payment made in the next minutes names.
    """
    if card_input.kind == "qr_token":
        try:
            return card_identify(client=client, qr_token=card_input.value)
        except QrRefused as refused:
            # A scanner typing with Caps Lock on swaps the case of every letter; a forged-looking code is
            # not used up, so the swapped reading may be tried once.
            if refused.code != "forged" or card_input.value.swapcase() == card_input.value:
                raise
            return card_identify(client=client, qr_token=card_input.value.swapcase())
    if card_input.kind == "id_number":
        person = _person_query().filter(id_number=card_input.value).first()
        if person is None:
            raise CardNotFound(title=_("No insured person has this ID number."), status=404, code="person_unknown")
        return Presented(patient=person, card_number=person.card_number or "")
    person = _person_query().filter(card_number=card_input.value).first()
    if person is None:
        raise CardNotFound(title=_("Unknown card number."), status=404, code="card_unknown")
    return Presented(patient=person, card_number=person.card_number or "")


def counter_person_get(*, person_id: int) -> InsuredPerson | None:
    """The counter's current person with region, account and e-card (one query); None if gone."""
    return _person_query().filter(pk=person_id).first()


@dataclass
class CounterBindings:
    """A person's open bindings, as the counter shows them: who pays for them, whom they pay for."""

    paid_by: list[Binding] = field(default_factory=list)  # as relative: the owners
    pays_for: list[Binding] = field(default_factory=list)  # as owner: the relatives

    @property
    def active(self) -> list[Binding]:
        return [b for b in self.paid_by + self.pays_for if b.state == BindingState.ACTIVE]


def counter_bindings_for(*, person: InsuredPerson) -> CounterBindings:
    """Active and pending bindings of ``person`` on either side, oldest first, with both persons (one query)."""
    overview = CounterBindings()
    rows = (
        Binding.objects.filter(Q(owner=person) | Q(relative=person), state__in=OPEN_STATES)
        .select_related("owner", "relative")
        .order_by("created_at", "pk")
    )
    for binding in rows:
        if binding.owner_id == person.pk:
            overview.pays_for.append(binding)
        else:
            overview.paid_by.append(binding)
    return overview


def counter_binding_get(*, clerk: User, binding_id: int) -> Binding:
    """A binding made at the clerk's institution, with both persons; 404 for any other."""
    binding = (
        Binding.objects.select_related("owner", "relative", "institution", "submitted_by")
        .filter(pk=binding_id, institution_id=clerk.institution_id)
        .first()
    )
    if binding is None or clerk.institution_id is None:
        raise Http404
    return binding


def counter_payment_for_key(*, client: User, idempotency_key: str) -> Payment | None:
    """R34: the payment this clerk already made with this key (a second submit), with what it was charged to."""
    return (
        Payment.objects.select_related("patient", "institution")
        .filter(client=client, idempotency_key=idempotency_key)
        .first()
    )

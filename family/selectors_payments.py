"""Reads of payments (R33–R35): a payment as its client may see it."""

from __future__ import annotations

from django.utils.translation import gettext as _

from accounts.errors import DomainError
from accounts.models import User
from family.models import Payment


def payment_for_client(*, client: User, payment_id: int) -> Payment:
    """The payment if ``client`` made it, or is a clerk of its institution; else the same 404 as for none."""
    payment = Payment.objects.filter(pk=payment_id).first()
    allowed = payment is not None and (
        payment.client_id == client.pk
        or (
            client.role == User.Role.CLERK and client.institution_id and client.institution_id == payment.institution_id
        )
    )
    if not allowed:
        raise DomainError(title=_("No such payment."), status=404, code="not_found")
    return payment

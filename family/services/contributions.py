"""Contributions paid from the owner's account for a bound relative (R31): pay, then the insurance office confirms.

The owner pays the relative's resident-insurance contribution (居民医保个人缴费) or, where the relative's region
has it, the long-term-care insurance contribution (长护险) from their own personal account, online. The payment
is an ordinary sharing payment (R33, R34: ledger, all or nothing, once per key) made from that owner's account
only; it is born ``pending`` and becomes ``confirmed`` when the insurance office (``family.insurance_office``)
has recorded it, which ``contribution_confirm`` asks, once after the payment and then from the beat.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.masking import mask_name
from accounts.models import InsuredPerson, User
from accounts.services import audit_record, notification_send
from family.insurance_office import OfficeUnavailable, insurance_office
from family.models import OfficeState, Payment, PaymentKind, PaymentPart, PaymentSource
from family.selectors_payments import payment_candidates
from family.services.keys import request_fingerprint
from family.services.payments import PaymentRefused, Split, payment_make

logger = logging.getLogger(__name__)

CONTRIBUTION_KINDS = (PaymentKind.RESIDENT_CONTRIBUTION, PaymentKind.LTC_CONTRIBUTION)
# A payment younger than this is left to the task queued when it was made; the beat takes the rest.
BEAT_GRACE = dt.timedelta(minutes=2)
BEAT_BATCH = 200


def contribution_pay(
    *,
    client: User,
    owner: InsuredPerson,
    relative: InsuredPerson,
    kind: str,
    year: int,
    amount: Decimal,
    idempotency_key: str,
    on_date: dt.date | None = None,
) -> Split:
    """R31: pay a bound relative's contribution for ``year`` from ``owner``'s account only, once per key (R34).

    Refused, naming the rule, when the relative is not bound to the owner (in force today), when the owner's
    account may not pay for them (R36, R37), when the kind does not fit the relative (a resident contribution
    for someone not insured as a resident, long-term care where the region has none), or when the balance
    does not cover it (never topped up with cash). The caller queues ``contribution_confirm`` after commit.
    """
    if kind not in CONTRIBUTION_KINDS:
        raise PaymentRefused(
            title=_("R31: from this page an owner pays only a relative's insurance contributions."),
            code="kind_not_allowed",
        )
    request_hash = request_fingerprint(relative=relative.pk, kind=kind, year=year, amount=amount)
    replay = Payment.objects.filter(client=client, idempotency_key=idempotency_key).exists()
    if not replay:
        on_date = on_date or timezone.localdate()
        _check_owner_may_pay(owner=owner, relative=relative, on_date=on_date)
    receipt = payment_make(
        client=client,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        patient=relative,
        card_number="",
        institution=None,
        kind=kind,
        amount=amount,
        only_owner=owner,
        on_date=on_date,
        contribution_year=year,
    )
    if not receipt.replayed:
        audit_record(
            actor=client,
            action="contribution.paid",
            target=receipt.payment,
            detail={"year": year, "kind": kind, "owner": owner.pk, "relative": relative.pk},
        )
    return receipt


def _check_owner_may_pay(*, owner: InsuredPerson, relative: InsuredPerson, on_date: dt.date) -> None:
    # The same candidates a payment uses (R27 authorization period, R36 transfer regions, R37 other
    # provinces), so this check and the charge cannot disagree.
    candidates = payment_candidates(patient=relative, on_date=on_date, only_owner=owner)
    if not candidates:
        raise PaymentRefused(
            title=_("R31: %(relative)s is not a family member bound to your account, so your account cannot pay.")
            % {"relative": mask_name(relative.name)},
            detail=_("Add them as a family member first; the contribution can be paid once the binding is active."),
            code="not_bound",
        )
    excluded = candidates[0].excluded
    if excluded is not None:
        raise PaymentRefused(
            title=f"{excluded['rule']}: {excluded['message']}", code=f"excluded_{excluded['rule'].lower()}"
        )


def contribution_confirm(*, payment_id: int) -> Payment | None:
    """R31: ask the insurance office about a pending contribution; when it confirms, record its reference and
    time and tell the owner and the relative. Idempotent: a confirmed payment stays as it is, told once."""
    payment = Payment.objects.filter(pk=payment_id, kind__in=CONTRIBUTION_KINDS).first()
    if payment is None or payment.office_state != OfficeState.PENDING:
        return payment
    # The office is asked outside any transaction (no row lock held over the network); it answers the
    # same payment the same way, so a concurrent second asker only finds it confirmed below.
    try:
        answer = insurance_office().submit_contribution(payment)
    except OfficeUnavailable:
        logger.warning("insurance office unavailable for contribution %s; the beat asks again", payment.reference)
        return payment
    if not answer.confirmed:
        return payment
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("patient").get(pk=payment_id)
        if payment.office_state != OfficeState.PENDING:
            return payment
        payment.office_state = OfficeState.CONFIRMED
        payment.office_reference = answer.reference[:40]
        payment.office_confirmed_at = timezone.now()
        payment.save(update_fields=["office_state", "office_reference", "office_confirmed_at"])
        audit_record(
            actor=None,
            action="contribution.confirmed",
            target=payment,
            detail={"office_reference": payment.office_reference},
        )
        _notify_confirmed(payment)
    return payment


def _notify_confirmed(payment: Payment) -> None:
    """消息: the owner whose account paid and the relative it was paid for both learn the office confirmed it."""
    link = reverse("contribution_detail", args=[payment.pk])
    parts = PaymentPart.objects.filter(payment=payment, source=PaymentSource.BINDING).select_related("payer")
    owners = {part.payer.pk: part.payer for part in parts}
    values = {
        "kind": payment.get_kind_display(),
        "amount": f"{payment.amount:,.2f}",
        "reference": payment.office_reference,
    }
    for owner in owners.values():
        notification_send(
            person=owner,
            kind="contribution.confirmed",
            title=_("The insurance office confirmed the contribution you paid for %(relative)s")
            % {"relative": mask_name(payment.patient.name)},
            body=_("%(kind)s, ¥%(amount)s, office reference %(reference)s.") % values,
            link=link,
            dedup_key=f"contribution:{payment.pk}:confirmed:{owner.pk}",
        )
    payers = ", ".join(mask_name(owner.name) for owner in owners.values())
    notification_send(
        person=payment.patient,
        kind="contribution.confirmed",
        title=_("Your insurance contribution was paid by %(owner)s and is confirmed") % {"owner": payers},
        body=_("%(kind)s, ¥%(amount)s, office reference %(reference)s.") % values,
        link=link,
        dedup_key=f"contribution:{payment.pk}:confirmed:{payment.patient_id}",
    )


def contributions_confirm_pending(*, now: dt.datetime) -> int:
    """Beat: ask the office again about contributions still pending; how many it confirmed this time."""
    pending = list(
        Payment.objects.filter(
            office_state=OfficeState.PENDING, kind__in=CONTRIBUTION_KINDS, created_at__lt=now - BEAT_GRACE
        )
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:BEAT_BATCH]
    )
    confirmed = 0
    for payment_id in pending:
        payment = contribution_confirm(payment_id=payment_id)
        if payment is not None and payment.office_state == OfficeState.CONFIRMED:
            confirmed += 1
    return confirmed

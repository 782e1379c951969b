"""A payment starts from a card (R32 人卡一致): who the patient is, from the card number read at the
counter or by a clinic's system, or from the patient's dynamic QR code. Then family decides who pays.

A QR code is used once (R42). A quote that reads a code uses it and answers its ``qr_reference``; the
payment that follows names that reference, which only the same client can use, for a few minutes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.errors import DomainError, FieldError
from accounts.identity import normalize_id_number
from accounts.models import Institution, InsuranceStatus, InsuredPerson, User
from cards.models import CardState, ECard, QrToken
from cards.services import qr_verify

# How long after a code was read its reference pays (a busy counter: quote, talk, pay).
QR_REFERENCE_MINUTES = 10


class CardNotAccepted(DomainError):
    """R32: an unknown or blocked card, a card that is not the patient's, a code not usable here."""


@dataclass(frozen=True)
class Presented:
    """What identified the patient: the person, the card number to record, the QR reference if any."""

    patient: InsuredPerson
    card_number: str
    qr_reference: str = ""


def _refused(title: str, *, code: str, status: int = 400, field: str = "", detail: str = "") -> CardNotAccepted:
    return CardNotAccepted(
        title=title, detail=detail, status=status, code=code, errors=[FieldError(field, title)] if field else []
    )


def _patient_query():
    # The payment needs the patient's account, wallet and region: loaded here, so no query of their own.
    return InsuredPerson.objects.select_related("account", "wallet", "region")


def _check_usable(person: InsuredPerson, *, field: str) -> None:
    card = ECard.objects.filter(person=person).only("state").first()
    if card is not None and card.state == CardState.SUSPENDED:
        raise _refused(
            _("This card is blocked."),
            code="card_blocked",
            status=409,
            field=field,
            detail=_("The card holder's e-card is suspended; they can ask at a social-security branch."),
        )
    if person.status != InsuranceStatus.ACTIVE:
        raise _refused(
            _("The card holder's insurance is suspended."),
            code="card_blocked",
            status=409,
            field=field,
            detail=_("A suspended insurance cannot be used for payments until it is resumed."),
        )


def card_identify(
    *,
    client: User,
    card_number: str = "",
    qr_token: str = "",
    qr_reference: str = "",
    patient_id_number: str = "",
    now: dt.datetime | None = None,
) -> Presented:
    """R32: the patient is the holder of the card presented, never anyone else.

    Exactly one of ``card_number``, ``qr_token`` (used up here) or ``qr_reference`` (a code this client
    read in the last minutes). With ``patient_id_number`` the card must be that person's, or it is refused.
    """
    given = [
        name
        for name, value in (("card_number", card_number), ("qr_token", qr_token), ("qr_reference", qr_reference))
        if value
    ]
    if len(given) != 1:
        raise _refused(
            _("Present exactly one of a card number, a QR code or a QR reference."),
            code="card_missing",
            field="card_number",
        )
    now = now or timezone.now()
    qr_used = ""
    if card_number:
        patient = _patient_query().filter(card_number=card_number.strip()).first()
        if patient is None:
            raise _refused(_("Unknown card number."), code="card_unknown", status=404, field="card_number")
        field = "card_number"
    elif qr_token:
        verification = qr_verify(token=qr_token, verifier=client)
        patient = _patient_query().get(ecard__pk=verification.card_id)
        qr_used, field = verification.reference, "qr_token"
    else:
        row = (
            QrToken.objects.filter(
                nonce=qr_reference, used_by=client, used_at__gte=now - dt.timedelta(minutes=QR_REFERENCE_MINUTES)
            )
            .only("holder_id")
            .first()
        )
        if row is None:
            raise _refused(
                _("This QR reference is unknown, not yours or too old: scan a new code."),
                code="qr_reference_invalid",
                field="qr_reference",
            )
        patient = _patient_query().get(pk=row.holder_id)
        qr_used, field = qr_reference, "qr_reference"
    if patient_id_number:
        try:
            wanted = normalize_id_number(patient_id_number)
        except ValueError:
            wanted = patient_id_number.strip().upper()
        if wanted != patient.id_number:
            raise _refused(
                _("R32: this card is not the patient's. Each patient pays with their own card or code."),
                code="card_not_patients",
                status=409,
                field=field,
            )
    _check_usable(patient, field=field)
    return Presented(patient=patient, card_number=patient.card_number or "", qr_reference=qr_used)


def client_institution(*, client: User, institution_code: str = "") -> Institution | None:
    """The institution a payment is made at: the clerk's or the partner token's own. A code naming any
    other institution is outside the token's rights."""
    institution = (
        Institution.objects.select_related("region").filter(pk=client.institution_id).first()
        if client.institution_id
        else None
    )
    if institution is None and client.role in (User.Role.CLERK, User.Role.PARTNER):
        raise _refused(
            _("This login is not bound to a designated institution, so it cannot take payments."),
            code="no_institution",
            status=403,
        )
    if institution_code and (institution is None or institution.code != institution_code):
        raise _refused(
            _("This login may not take payments for that institution."),
            code="institution_not_allowed",
            status=403,
            field="institution_code",
        )
    return institution

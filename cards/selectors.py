"""Reads of the e-card: a person's card, the family card links they manage, who may pay for them (R33)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Prefetch, Q

from accounts.identity import age_on
from accounts.models import InsuredPerson, LedgerEntry, PersonalAccount
from cards.models import (
    FAMILY_CARD_OPEN_STATES,
    ECard,
    FamilyCardDocument,
    FamilyCardDocumentStatus,
    FamilyCardLink,
    FamilyCardLinkState,
)
from family.models import Payment, PaymentPart
from family.selectors import policy_in_force
from family.selectors_payments import payment_candidates

# R23: the age from which a person acts for themselves, when no policy version says otherwise.
DEFAULT_FACE_AGE = 16


def card_for_person(*, person: InsuredPerson) -> ECard | None:
    """R40: the person's e-card (claimed or being claimed), or None (one query)."""
    return ECard.objects.select_related("issuing_region", "person").filter(person=person).first()


# Ended links shown in a person's family card history.
FAMILY_CARD_HISTORY_LIMIT = 20


def family_card_links_for(*, person: InsuredPerson) -> list[FamilyCardLink]:
    """R43: the family card links of ``person``: those they manage and those managing their card (two queries).

    Open links (pending, active) come first, oldest first, then the latest ended ones. The persons are
    loaded with each link; pages and answers show them masked (``relative.masked_name``,
    ``relative.masked_id_number``, R4), and each link carries ``relative_card_state`` (None without a card).
    """
    either_side = Q(manager=person) | Q(relative=person)
    base = FamilyCardLink.objects.filter(either_side).select_related("manager", "relative", "relative__ecard")
    links = list(base.filter(state__in=FAMILY_CARD_OPEN_STATES).order_by("created_at", "pk"))
    links += list(base.filter(state=FamilyCardLinkState.ENDED).order_by("-ended_at", "-pk")[:FAMILY_CARD_HISTORY_LIMIT])
    for link in links:
        card = getattr(link.relative, "ecard", None)
        link.relative_card_state = card.state if card is not None else None
    return links


def family_card_link_active(*, manager: InsuredPerson | int | None, relative: InsuredPerson | int) -> bool:
    """R43: whether ``manager`` holds an active family card link to ``relative``."""
    if manager is None:
        return False
    return FamilyCardLink.objects.filter(manager=manager, relative=relative, state=FamilyCardLinkState.ACTIVE).exists()


def family_card_max_for(*, region_code: str, on_date: dt.date) -> int:
    """R43: how many relatives one manager may have in the family card service: the limit of the manager's
    region policy in force on ``on_date``, or the ``FAMILY_CARD_MAX_RELATIVES`` setting (8) where it sets none."""
    policy = policy_in_force(region_code=region_code, on_date=on_date)
    if policy is not None and policy.family_card_max is not None:
        return policy.family_card_max
    return int(getattr(settings, "FAMILY_CARD_MAX_RELATIVES", 8))


def face_age_for(*, region_code: str, on_date: dt.date) -> int:
    """R23: the age from which a person confirms with their own face, by the policy in force (default 16)."""
    policy = policy_in_force(region_code=region_code, on_date=on_date)
    return policy.face_age if policy is not None else DEFAULT_FACE_AGE


def person_is_child(*, person: InsuredPerson, region_code: str, on_date: dt.date) -> bool:
    """R23/R42: under the face age on ``on_date`` (full years; 29 February counts as 28 February)."""
    return age_on(person.birth_date, on_date) < face_age_for(region_code=region_code, on_date=on_date)


@dataclass(frozen=True)
class Payer:
    """One account that may pay for a patient (R33): their own, or the owner of an active binding."""

    kind: str  # "own", "wallet" or "binding" (family.models.PaymentSource)
    person: InsuredPerson
    binding_id: int | None = None
    relationship: str = ""
    since: dt.datetime | None = None


def payers_for_person(*, person: InsuredPerson, on_date: dt.date) -> list[Payer]:
    """R33: who may pay for ``person`` on ``on_date``, in the order a payment takes them: the same
    decision as ``family.selectors_payments.payment_candidates`` (own account, own wallet, the owners of
    active bindings), without the owners it excludes (another province, a region sharing by transfer).

    Only bindings give a right to spend (R43): a family card manager is never a payer as such.
    """
    return [
        Payer(
            kind=candidate.source,
            person=candidate.payer,
            binding_id=candidate.binding.pk if candidate.binding else None,
            relationship=candidate.binding.relationship if candidate.binding else "",
            since=candidate.binding.activated_at if candidate.binding else None,
        )
        for candidate in payment_candidates(patient=person, on_date=on_date)
        if candidate.excluded is None
    ]


# --- Family card documents and their review (R43 via R20/R21, R24) ---


def family_card_documents_waiting():
    """R24: documents of pending family card links that wait for a reviewer, oldest first (a queryset)."""
    return (
        FamilyCardDocument.objects.filter(
            status=FamilyCardDocumentStatus.PENDING, link__state=FamilyCardLinkState.PENDING
        )
        .select_related("link__manager", "link__relative", "link__manager__region", "claimed_by")
        .order_by("created_at", "pk")
    )


def family_card_document_for_review(*, document_id: int) -> FamilyCardDocument | None:
    """One document with its link and persons, as the review screen shows it (None when there is none)."""
    return (
        FamilyCardDocument.objects.select_related(
            "link__manager", "link__relative", "link__manager__region", "decided_by", "uploaded_by", "claimed_by"
        )
        .filter(pk=document_id)
        .first()
    )


def family_card_documents_of(*, link: FamilyCardLink) -> list[FamilyCardDocument]:
    """The documents of a link, newest first: the first is the one that counts (R24: a rejected one is replaced)."""
    return list(
        FamilyCardDocument.objects.filter(link=link).select_related("decided_by").order_by("-created_at", "-pk")
    )


# The relative's movements shown on the family card page (R43: "see their records").
FAMILY_CARD_RECORDS_LIMIT = 10


@dataclass(frozen=True)
class RelativeRecords:
    """R43: a relative's recent movements, read-only: their own ledger entries and payments made for them."""

    entries: list[LedgerEntry]
    payments: list[Payment]
    more_entries: bool
    more_payments: bool
    has_account: bool


def family_card_records_for(*, relative: InsuredPerson, limit: int = FAMILY_CARD_RECORDS_LIMIT) -> RelativeRecords:
    """R43: the latest ``limit`` ledger entries of the relative's personal account (if any) and payments made
    for them as the patient, newest first, with who paid each part (four queries, whatever the number of rows).

    Seeing records gives no right to spend (R43): nothing here is a payer.
    """
    has_account = PersonalAccount.objects.filter(person=relative).exists()
    entries = list(LedgerEntry.objects.filter(account__person=relative).order_by("-created_at", "-pk")[: limit + 1])
    parts = PaymentPart.objects.select_related("payer").order_by("position")
    payments = list(
        Payment.objects.filter(patient=relative)
        .select_related("institution")
        .prefetch_related(Prefetch("parts", queryset=parts))
        .order_by("-created_at", "-pk")[: limit + 1]
    )
    return RelativeRecords(
        entries=entries[:limit],
        payments=payments[:limit],
        more_entries=len(entries) > limit,
        more_payments=len(payments) > limit,
        has_account=has_account,
    )

"""Reads for accounts."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import FaceVerification, InsuredPerson, LedgerEntry, Notification, PersonalAccount, User


def account_for_user(*, user: User) -> PersonalAccount | None:
    """The personal account of the user's linked person, with person and region, or None."""
    if not user.person_id:
        return None
    return PersonalAccount.objects.select_related("person__region").filter(person_id=user.person_id).first()


def ledger_entries_for_account(*, account: PersonalAccount) -> QuerySet[LedgerEntry]:
    """The account's entries, newest first (R30: the balance is their sum)."""
    return LedgerEntry.objects.filter(account=account).order_by("-created_at", "-id")


def notifications_for_user(*, user: User) -> QuerySet[Notification]:
    """消息: the notifications of the user's insured person, newest first."""
    return Notification.objects.filter(person_id=user.person_id).order_by("-created_at", "-id")


def face_verification_latest(
    *, person: InsuredPerson, purpose: str, reference: str, within_minutes: int = 10
) -> FaceVerification | None:
    """The newest face check of this purpose and reference, if it is recent enough to act on (vendor flow)."""
    since = timezone.now() - dt.timedelta(minutes=within_minutes)
    return (
        FaceVerification.objects.filter(person=person, purpose=purpose, reference=reference, created_at__gte=since)
        .order_by("-created_at", "-pk")
        .first()
    )

"""Reads for accounts."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import LedgerEntry, Notification, PersonalAccount, User


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

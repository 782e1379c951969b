"""Writes for accounts: the ledger, the real-name link and the audit log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Case, DecimalField, F, Value, When
from django.http import HttpRequest
from django.utils.translation import gettext as _

from accounts.errors import InsufficientBalance, RealNameMismatch
from accounts.identity import normalize_id_number
from accounts.masking import mask_id_number
from accounts.messaging import send_sms
from accounts.models import (
    AuditEvent,
    InsuredPerson,
    LedgerEntry,
    Notification,
    PersonalAccount,
    User,
    Wallet,
    WalletEntry,
)

MONEY = DecimalField(max_digits=12, decimal_places=2)


@dataclass(frozen=True)
class Posting:
    """One line to post: a signed amount on one part of one account."""

    part: str
    amount: Decimal
    kind: str
    description: str = ""
    reference: str = ""


def ledger_post(*, account_id: int, postings: list[Posting], created_by: User | None = None) -> list[LedgerEntry]:
    """R30/R34: append entries and move the cached balances together, all or nothing, never below zero."""
    with transaction.atomic():
        accounts, _wallets = accounts_lock(account_ids=[account_id])
        return ledger_post_locked(
            accounts=accounts, postings=[(account_id, posting) for posting in postings], created_by=created_by
        )


def accounts_lock(
    *, account_ids: Iterable[int], wallet_ids: Iterable[int] = ()
) -> tuple[dict[int, PersonalAccount], dict[int, Wallet]]:
    """R34: lock personal accounts, then wallets, each in id order, inside the caller's transaction.

    Every writer of balances locks through here, so two transactions always take their locks in the
    same order and never deadlock; the rows come back fresh, to decide on and to post against.
    """
    account_ids = sorted(set(account_ids))
    wallet_ids = sorted(set(wallet_ids))
    # No query for an empty set: the lock window is what concurrent payments wait on.
    accounts = (
        {a.pk: a for a in PersonalAccount.objects.select_for_update().filter(pk__in=account_ids).order_by("pk")}
        if account_ids
        else {}
    )
    wallets = (
        {w.pk: w for w in Wallet.objects.select_for_update().filter(pk__in=wallet_ids).order_by("pk")}
        if wallet_ids
        else {}
    )
    return accounts, wallets


def ledger_post_locked(
    *,
    accounts: dict[int, PersonalAccount],
    postings: Sequence[tuple[int, Posting]],
    created_by: User | None = None,
) -> list[LedgerEntry]:
    """R30/R34: append entries on accounts locked by ``accounts_lock`` and move their cached balances.

    Refuses the whole set when any account part would go below zero (the CHECK constraints agree).
    One INSERT for all entries, one UPDATE per account; the locked rows are updated in memory too.
    """
    delta: dict[int, dict[str, Decimal]] = {}
    for account_id, posting in postings:
        parts = delta.setdefault(
            account_id, {LedgerEntry.Part.CURRENT: Decimal(0), LedgerEntry.Part.HISTORICAL: Decimal(0)}
        )
        parts[posting.part] += posting.amount
    for account_id, parts in delta.items():
        account = accounts[account_id]
        if account.current_balance + parts["current"] < 0 or account.historical_balance + parts["historical"] < 0:
            raise InsufficientBalance(title=_("The account balance is not enough for this."), status=409)
    entries = LedgerEntry.objects.bulk_create(
        LedgerEntry(
            account_id=account_id,
            part=p.part,
            amount=p.amount,
            kind=p.kind,
            description=p.description[:200],
            reference=p.reference,
            created_by=created_by,
        )
        for account_id, p in postings
        if p.amount
    )
    moved = {account_id: parts for account_id, parts in delta.items() if parts["current"] or parts["historical"]}
    if moved:
        # One UPDATE for every account touched: fewer round trips while the rows are locked.
        PersonalAccount.objects.filter(pk__in=moved).update(
            current_balance=F("current_balance")
            + Case(*(When(pk=pk, then=Value(p["current"])) for pk, p in moved.items()), output_field=MONEY),
            historical_balance=F("historical_balance")
            + Case(*(When(pk=pk, then=Value(p["historical"])) for pk, p in moved.items()), output_field=MONEY),
        )
    for account_id, parts in moved.items():
        account = accounts[account_id]
        account.current_balance += parts["current"]
        account.historical_balance += parts["historical"]
    return entries


def wallet_post_locked(
    *,
    wallet: Wallet,
    amount: Decimal,
    kind: str,
    description: str = "",
    reference: str = "",
    created_by: User | None = None,
) -> WalletEntry:
    """R37: one wallet movement on a wallet locked by ``accounts_lock``; never below zero."""
    if wallet.balance + amount < 0:
        raise InsufficientBalance(title=_("The wallet balance is not enough for this."), status=409)
    entry = WalletEntry.objects.create(
        wallet=wallet,
        amount=amount,
        kind=kind,
        description=description[:200],
        reference=reference,
        created_by=created_by,
    )
    Wallet.objects.filter(pk=wallet.pk).update(balance=F("balance") + amount)
    wallet.balance += amount
    return entry


def wallet_open(*, person: InsuredPerson, opened_by: User | None) -> Wallet:
    """R37: open the person's medical-insurance wallet (idempotent: an open wallet is returned as it is)."""
    wallet, created = Wallet.objects.get_or_create(person=person, defaults={"opened_by": opened_by})
    if created:
        audit_record(actor=opened_by, action="wallet.opened", target=person)
    return wallet


def adjustment_postings(
    *, account: PersonalAccount, total: Decimal, historical: Decimal, reference: str = ""
) -> list[Posting]:
    """C1: the entries that move an account to the core system's balances (never an overwrite)."""
    current = total - historical
    postings = []
    if current != account.current_balance:
        postings.append(
            Posting(
                LedgerEntry.Part.CURRENT,
                current - account.current_balance,
                LedgerEntry.Kind.ADJUSTMENT,
                "core system balance",
                reference,
            )
        )
    if historical != account.historical_balance:
        postings.append(
            Posting(
                LedgerEntry.Part.HISTORICAL,
                historical - account.historical_balance,
                LedgerEntry.Kind.ADJUSTMENT,
                "core system balance",
                reference,
            )
        )
    return postings


def user_link_person(*, user: User, name: str, id_number: str) -> InsuredPerson:
    """Real-name link: tie the user to the insured person with this name and ID number.

    A mismatch, an unknown number and a person already linked to another user all give
    the same answer, so the form does not reveal whether an ID number exists.
    """
    refused = RealNameMismatch(
        title=_("The name and ID number do not match our records, or this person is already linked to another login."),
        status=400,
    )
    value = normalize_id_number(id_number)
    with transaction.atomic():
        person = InsuredPerson.objects.select_for_update().filter(id_number=value).first()
        if person is None or person.name.strip() != name.strip():
            raise refused
        if User.objects.filter(person=person).exclude(pk=user.pk).exists():
            raise refused
        user.person = person
        user.save(update_fields=["person"])
        audit_record(actor=user, action="person.linked", target=person)
    return person


def audit_record(
    *,
    actor: User | None,
    action: str,
    target: Any = None,
    request: HttpRequest | None = None,
    detail: dict | None = None,
) -> AuditEvent:
    """R51: write one audit row: who, what, which object, when, from where. Labels are masked (R4)."""
    label = ""
    if isinstance(target, InsuredPerson):
        label = f"{target.masked_name} {mask_id_number(target.id_number)}"
    elif target is not None:
        label = str(target)[:200]
    if actor is not None and not actor.is_authenticated:
        actor = None
    return AuditEvent.objects.create(
        actor=actor,
        actor_label=(actor.get_username() if actor else "anonymous")[:150],
        action=action,
        target_type=target._meta.label_lower if hasattr(target, "_meta") else "",
        target_id=str(getattr(target, "pk", "") or ""),
        target_label=label,
        ip_address=request.META.get("REMOTE_ADDR") if request else None,
        detail=detail or {},
    )


def notification_send(
    *, person: InsuredPerson, kind: str, title: str, body: str = "", link: str = "", dedup_key: str, sms: bool = False
) -> Notification | None:
    """消息: tell a person once. ``dedup_key`` makes it idempotent: a redelivered task sends nothing twice.

    With ``sms`` the text also goes to the person's phone (or the phone of their login) through the sender.
    Returns the new notification, or None when it had been sent already.
    """
    notification, created = Notification.objects.get_or_create(
        dedup_key=dedup_key[:100],
        defaults={"person": person, "kind": kind, "title": title[:200], "body": body, "link": link[:200]},
    )
    if not created:
        return None
    if sms:
        phone = person.phone or User.objects.filter(person=person).values_list("phone", flat=True).first()
        if phone:
            transaction.on_commit(lambda: send_sms(phone=phone, text=f"{title} {body} {link}".strip()))
    return notification

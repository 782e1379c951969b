"""历年账户家庭共济 (R36): in a region that shares by transfer, the owner moves money from the previous
years' part of the personal account to a bound relative's personal account.

A transfer is a payment in R34's sense: ledger entries only, all or nothing, idempotent by the
client's key. The receiver is named by name and ID number, as in the Alipay flow (转移人员信息录入).
"""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.errors import DomainError, FieldError, InsufficientBalance
from accounts.identity import normalize_id_number
from accounts.models import InsuredPerson, LedgerEntry, PersonalAccount, User
from accounts.services import Posting, accounts_lock, audit_record, ledger_post_locked, notification_send
from family.models import AccountTransfer, Binding, BindingState, PolicyVersion, SharingMode
from family.rules import amount_problem
from family.selectors import policy_in_force
from family.services.keys import KeyedRequest

__all__ = [
    "TransferRefused",
    "account_transfer_for_key",
    "account_transfer_get_for_user",
    "account_transfer_make",
    "amount_refusal",
    "binding_in_force",
    "transfer_mode_policy",
    "transfer_receiver_check",
]


class TransferRefused(DomainError):
    """R36: the rules refuse this transfer; the title names the rule."""


def amount_refusal(amount: Decimal, *, field: str = "amount") -> DomainError | None:
    """The refusal for an amount of money that is not acceptable (``family.rules.amount_problem``), or None."""
    problem = amount_problem(amount)
    if problem is None:
        return None
    message = {
        "not_a_number": _("Enter an amount of money."),
        "not_positive": _("Enter an amount above zero."),
        "too_precise": _("Enter the amount in yuan with at most two decimals (fen)."),
        "too_large": _("This amount is too large."),
    }[problem]
    return DomainError(title=message, errors=[FieldError(field, message)], status=400, code=f"amount_{problem}")


def binding_in_force(binding: Binding, today: dt.date) -> bool:
    """R26, R27: active, and today within the owner's authorization period (both ends inclusive)."""
    return (
        binding.state == BindingState.ACTIVE
        and (binding.authorized_from is None or binding.authorized_from <= today)
        and (binding.authorized_until is None or today <= binding.authorized_until)
    )


def transfer_mode_policy(*, owner: InsuredPerson, today: dt.date) -> PolicyVersion:
    """R36: the owner's policy in force, if it shares by transfer; else a refusal naming the rule and version (R13)."""
    policy = policy_in_force(region_code=owner.region_id, on_date=today)
    if policy is None:
        raise TransferRefused(
            title=_("No family-sharing policy is in force in your pooling region %(region)s today (R36).")
            % {"region": owner.region_id},
            status=409,
            code="transfer_mode_off",
        )
    if policy.sharing_mode != SharingMode.TRANSFER:
        raise TransferRefused(
            title=_(
                "Your pooling region shares by payment, not by transfer: policy %(policy)s (R36). "
                "Your family members pay from your account at the clinic or pharmacy instead."
            )
            % {"policy": policy.label},
            status=409,
            code="transfer_mode_off",
        )
    return policy


def account_transfer_for_key(*, client: User, idempotency_key: str) -> AccountTransfer | None:
    """The transfer this client made with this key, if any (R34)."""
    return (
        AccountTransfer.objects.select_related("owner", "relative")
        .filter(client=client, idempotency_key=idempotency_key)
        .first()
    )


def account_transfer_get_for_user(user: User, reference: str) -> AccountTransfer:
    """A transfer the user's insured person sent or received; strangers cannot tell it from one that does not exist."""
    person_id = getattr(user, "person_id", None)
    transfer = (
        AccountTransfer.objects.select_related("owner", "relative")
        .filter(Q(owner_id=person_id) | Q(relative_id=person_id), reference=reference)
        .first()
        if person_id
        else None
    )
    if transfer is None:
        raise Http404
    return transfer


def _keyed(*, client: User, idempotency_key: str, request_hash: str) -> KeyedRequest[AccountTransfer, AccountTransfer]:
    """R34: the same key again answers the first transfer, if it is the same request."""
    return KeyedRequest(
        find=lambda: account_transfer_for_key(client=client, idempotency_key=idempotency_key),
        request_hash=request_hash,
        answer=_replayed,
    )


def _replayed(transfer: AccountTransfer) -> AccountTransfer:
    transfer.replayed = True
    return transfer


def _new_reference(now: dt.datetime) -> str:
    # ZY: 转移. Random, so a number says nothing about how many transfers there are.
    return f"ZY{timezone.localtime(now):%Y%m%d}{secrets.randbelow(10**8):08d}"


def transfer_receiver_check(
    *, owner: InsuredPerson, relative_name: str, relative_id_number: str, today: dt.date
) -> Binding:
    """R36: the owner's binding in force with the person named, who has a personal account; else a refusal.

    An unknown number, a wrong name and a person not bound to this owner all answer the same, so the
    form does not tell whether an ID number exists (R50).
    """
    id_number = normalize_id_number(relative_id_number)
    binding = (
        Binding.objects.select_related("owner", "relative", "relative__account")
        .filter(owner=owner, relative__id_number=id_number, state=BindingState.ACTIVE)
        .order_by("pk")
        .first()
    )
    if binding is None or " ".join(binding.relative.name.split()) != " ".join(relative_name.split()):
        message = _("The name and ID number do not match a family member bound to you.")
        raise TransferRefused(
            title=_(
                "The name and ID number do not match a family member bound to you (R36). "
                "Check both as on the ID card; only family members in your family network can receive a transfer."
            ),
            errors=[FieldError("relative_name", message), FieldError("relative_id_number", message)],
            status=400,
            code="receiver_mismatch",
        )
    if not binding_in_force(binding, today):
        raise TransferRefused(
            title=_("Your authorization period for this family member does not cover today (R27)."),
            status=409,
            code="binding_not_in_force",
        )
    if getattr(binding.relative, "account", None) is None:
        raise TransferRefused(
            title=_(
                "%(name)s has no personal account, so nothing can be transferred to them (R36). Only employee "
                "medical insurance (职工医保) has a personal account."
            )
            % {"name": binding.relative.masked_name},
            status=409,
            code="relative_no_account",
        )
    return binding


@transaction.atomic
def account_transfer_make(
    *,
    client: User,
    idempotency_key: str,
    request_hash: str,
    owner: InsuredPerson,
    relative_name: str,
    relative_id_number: str,
    amount: Decimal,
    now: dt.datetime | None = None,
) -> AccountTransfer:
    """R36: move ``amount`` from the owner's previous-years part to the relative's, once per key (R34).

    Returns the transfer; ``replayed`` is True when the key had been used for this same request before
    (nothing is charged again). The same key with another request is refused (409).
    """
    keyed = _keyed(client=client, idempotency_key=idempotency_key, request_hash=request_hash)
    if (replayed := keyed.replay()) is not None:
        return replayed
    if refusal := amount_refusal(amount):
        raise refusal
    now = now or timezone.now()
    today = timezone.localdate(now)
    transfer_mode_policy(owner=owner, today=today)
    binding = transfer_receiver_check(
        owner=owner, relative_name=relative_name, relative_id_number=relative_id_number, today=today
    )
    owner_account = PersonalAccount.objects.filter(person=owner).first()
    if owner_account is None:
        raise TransferRefused(title=_("You have no personal account to transfer from."), status=409, code="no_account")
    relative_account = binding.relative.account
    # A concurrent request with the same key loses on the unique constraint and answers the winner.
    return keyed.make(
        lambda: _transfer_locked(
            client=client,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            binding=binding,
            owner_account=owner_account,
            relative_account=relative_account,
            amount=amount,
            now=now,
        )
    )


def _transfer_locked(
    *,
    client: User,
    idempotency_key: str,
    request_hash: str,
    binding: Binding,
    owner_account: PersonalAccount,
    relative_account: PersonalAccount,
    amount: Decimal,
    now: dt.datetime,
) -> AccountTransfer:
    accounts, _wallets = accounts_lock(account_ids=[owner_account.pk, relative_account.pk])
    # A request with the same key that held the lock before us has committed by now: answer it.
    keyed = _keyed(client=client, idempotency_key=idempotency_key, request_hash=request_hash)
    if (replayed := keyed.replay()) is not None:
        return replayed
    owner, relative = binding.owner, binding.relative
    available = accounts[owner_account.pk].historical_balance
    if available < amount:
        raise InsufficientBalance(
            title=_(
                "Only the previous years' part of your account can be transferred (R36), and it holds %(available)s."
            )
            % {"available": f"¥{available:,.2f}"},
            errors=[FieldError("amount", _("At most %(available)s.") % {"available": f"¥{available:,.2f}"})],
            status=409,
            code="insufficient_historical_balance",
        )
    transfer = AccountTransfer.objects.create(
        client=client,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        reference=_new_reference(now),
        binding=binding,
        owner=owner,
        relative=relative,
        amount=amount,
    )
    # R36: previous years to previous years; the current year's part is never touched.
    ledger_post_locked(
        accounts=accounts,
        postings=[
            (
                owner_account.pk,
                Posting(
                    LedgerEntry.Part.HISTORICAL,
                    -amount,
                    LedgerEntry.Kind.TRANSFER,
                    f"transfer to {relative.masked_name}",
                    transfer.reference,
                ),
            ),
            (
                relative_account.pk,
                Posting(
                    LedgerEntry.Part.HISTORICAL,
                    amount,
                    LedgerEntry.Kind.TRANSFER,
                    f"transfer from {owner.masked_name}",
                    transfer.reference,
                ),
            ),
        ],
        created_by=client,
    )
    audit_record(
        actor=client, action="transfer.made", target=transfer, detail={"binding": binding.pk, "amount": str(amount)}
    )
    link = reverse("transfer_detail", args=[transfer.reference])
    money = f"¥{amount:,.2f}"
    notification_send(
        person=owner,
        kind="transfer.sent",
        title=_("You transferred %(amount)s to %(name)s") % {"amount": money, "name": relative.masked_name},
        body=_("From the previous years' part of your personal account. Transfer number %(reference)s.")
        % {"reference": transfer.reference},
        link=link,
        dedup_key=f"transfer:{transfer.pk}:owner",
    )
    notification_send(
        person=relative,
        kind="transfer.received",
        title=_("%(name)s transferred %(amount)s to your personal account")
        % {"name": owner.masked_name, "amount": money},
        body=_("It is in the previous years' part of your personal account. Transfer number %(reference)s.")
        % {"reference": transfer.reference},
        link=link,
        dedup_key=f"transfer:{transfer.pk}:relative",
    )
    transfer.replayed = False
    return transfer

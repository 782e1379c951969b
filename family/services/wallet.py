"""跨省共济 through the medical-insurance wallet (医保钱包, R37).

The owner sends an amount from their personal account to a relative in another province; the owner's
account is debited at once (the money is in flight), and the relative's wallet is credited when the
relative accepts. Unaccepted at 06:00 (local) the next day, it goes back to the parts it came from.
When the relationship ends, what is pending and what is unused in the wallet goes back too.

Locks are always taken in one order, so no two writers wait on each other in a circle (R34):
binding (only ``binding_transition`` holds it) → personal accounts → wallets (both through
``accounts_lock``) → wallet-transfer rows.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.errors import DomainError, FieldError, InsufficientBalance
from accounts.models import InsuredPerson, LedgerEntry, PersonalAccount, User, Wallet, WalletEntry
from accounts.services import (
    Posting,
    accounts_lock,
    audit_record,
    ledger_post_locked,
    notification_send,
    wallet_post_locked,
)
from family.models import Binding, BindingState, WalletTransfer, WalletTransferState
from family.rules import take_from_account
from family.services.keys import KeyedRequest
from family.services.transfers import amount_refusal, binding_in_force

__all__ = [
    "SendAllowance",
    "WalletLimits",
    "WalletOverview",
    "WalletRefused",
    "in_quiet_hours",
    "return_due_at",
    "wallet_limits",
    "wallet_overview",
    "wallet_send_allowance",
    "wallet_send_bindings",
    "wallet_transfer_accept",
    "wallet_transfer_for_key",
    "wallet_transfer_send",
    "wallet_transfers_return_due",
    "wallet_transfers_return_for_binding",
]

S = WalletTransferState


class WalletRefused(DomainError):
    """R37: the rules refuse this wallet movement; the title names the rule or the limit."""


# --- Limits (R37, configurable in settings) and the pure time rules --------------------------------


@dataclass(frozen=True)
class WalletLimits:
    """R37's limits: transfers a day per owner, most per transfer, the quiet hours, when unaccepted ones return."""

    per_day: int
    max_amount: Decimal
    quiet_from: dt.time
    quiet_until: dt.time
    return_at: dt.time


def wallet_limits() -> WalletLimits:
    """The limits as configured (WALLET_* settings; Asia/Shanghai local times)."""
    return WalletLimits(
        per_day=settings.WALLET_MAX_TRANSFERS_PER_DAY,
        max_amount=Decimal(settings.WALLET_MAX_TRANSFER_AMOUNT),
        quiet_from=dt.time.fromisoformat(settings.WALLET_QUIET_FROM),
        quiet_until=dt.time.fromisoformat(settings.WALLET_QUIET_UNTIL),
        return_at=dt.time.fromisoformat(settings.WALLET_RETURN_AT),
    )


def in_quiet_hours(moment: dt.time, *, quiet_from: dt.time, quiet_until: dt.time) -> bool:
    """R37: whether a local time is in the quiet hours ``[quiet_from, quiet_until)``.

    The default 22:00–06:00 crosses midnight: then it is "from 22:00, or before 06:00".
    Equal ends mean no quiet hours. (Pure; a candidate for family/rules.py.)
    """
    if quiet_from == quiet_until:
        return False
    if quiet_from < quiet_until:
        return quiet_from <= moment < quiet_until
    return moment >= quiet_from or moment < quiet_until


def return_due_at(sent_local: dt.datetime, *, return_at: dt.time) -> dt.datetime:
    """R37: an unaccepted transfer returns at ``return_at`` (06:00) of the day after it was sent, local time.

    ``sent_local`` is an aware local time. (Pure; a candidate for family/rules.py.)
    """
    next_day = sent_local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(next_day, return_at, tzinfo=sent_local.tzinfo)


def _local_day(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The local calendar day (Asia/Shanghai) that ``now`` falls in, as [start, end)."""
    local = timezone.localtime(now)
    start = dt.datetime.combine(local.date(), dt.time(0), tzinfo=local.tzinfo)
    return start, start + dt.timedelta(days=1)


def _money(amount: Decimal) -> str:
    return f"¥{amount:,.2f}"


def _sent_today(*, owner_id: int, now: dt.datetime) -> int:
    # Counted by ``created_at``, which the row takes from the clock: ``now`` is the clock too, except in
    # tests that move the clock itself (time-machine) rather than pass another ``now``.
    start, end = _local_day(now)
    return WalletTransfer.objects.filter(owner_id=owner_id, created_at__gte=start, created_at__lt=end).count()


# --- Reads for the pages and the API -----------------------------------------------------------------
# (Reads belong in selectors; they live here because family/selectors.py is shared and this feature's
# reads are few. Move them there when it settles.)


@dataclass
class SendAllowance:
    """What the owner may still send today (shown on the send page before they try)."""

    limits: WalletLimits
    sent_today: int
    quiet_now: bool

    @property
    def left_today(self) -> int:
        return max(0, self.limits.per_day - self.sent_today)


def wallet_send_allowance(*, owner: InsuredPerson, now: dt.datetime | None = None) -> SendAllowance:
    """R37: the limits, how many transfers the owner sent today, and whether it is quiet hours now."""
    now = now or timezone.now()
    limits = wallet_limits()
    return SendAllowance(
        limits=limits,
        sent_today=_sent_today(owner_id=owner.pk, now=now),
        quiet_now=in_quiet_hours(
            timezone.localtime(now).time(), quiet_from=limits.quiet_from, quiet_until=limits.quiet_until
        ),
    )


def wallet_send_bindings(*, owner: InsuredPerson, today: dt.date) -> list[Binding]:
    """R37: the owner's bindings in force with a relative in another province; ``relative_wallet`` is set on each."""
    bindings = [
        binding
        for binding in Binding.objects.filter(owner=owner, state=BindingState.ACTIVE, relative__isnull=False)
        .select_related("owner__region", "relative__region")
        .order_by("activated_at", "pk")
        if binding_in_force(binding, today) and binding.relative.region.province != binding.owner.region.province
    ]
    wallets = {w.person_id: w for w in Wallet.objects.filter(person_id__in=[b.relative_id for b in bindings])}
    for binding in bindings:
        binding.relative_wallet = wallets.get(binding.relative_id)
    return bindings


@dataclass
class WalletOverview:
    """医保钱包 page: my wallet, what waits for my acceptance, its entries, and what I sent as an owner."""

    wallet: Wallet | None
    waiting: list[WalletTransfer] = field(default_factory=list)
    entries: list[WalletEntry] = field(default_factory=list)
    sent: list[WalletTransfer] = field(default_factory=list)


WALLET_ENTRIES_SHOWN = 50
WALLET_SENT_SHOWN = 20


def wallet_overview(*, person: InsuredPerson, now: dt.datetime | None = None) -> WalletOverview:
    """The person's wallet, pending transfers they can still accept, latest entries, transfers they sent."""
    now = now or timezone.now()
    wallet = Wallet.objects.filter(person=person).first()
    overview = WalletOverview(wallet=wallet)
    if wallet is not None:
        overview.waiting = list(
            WalletTransfer.objects.filter(wallet=wallet, state=S.PENDING, return_due_at__gt=now)
            .select_related("owner", "wallet__person")
            .order_by("return_due_at", "pk")
        )
        overview.entries = list(
            WalletEntry.objects.filter(wallet=wallet).order_by("-created_at", "-pk")[:WALLET_ENTRIES_SHOWN]
        )
    overview.sent = list(
        WalletTransfer.objects.filter(owner=person)
        .select_related("owner", "wallet__person")
        .order_by("-created_at", "-pk")[:WALLET_SENT_SHOWN]
    )
    return overview


def wallet_transfer_for_key(*, client: User, idempotency_key: str) -> WalletTransfer | None:
    """The wallet transfer this client sent with this key, if any (R34)."""
    return (
        WalletTransfer.objects.select_related("owner", "wallet__person")
        .filter(client=client, idempotency_key=idempotency_key)
        .first()
    )


# --- Send (the owner) --------------------------------------------------------------------------------


def _keyed(*, client: User, idempotency_key: str, request_hash: str) -> KeyedRequest[WalletTransfer, WalletTransfer]:
    """R34: the same key again answers the first transfer, if it is the same request."""
    return KeyedRequest(
        find=lambda: wallet_transfer_for_key(client=client, idempotency_key=idempotency_key),
        request_hash=request_hash,
        answer=_replayed,
    )


def _replayed(transfer: WalletTransfer) -> WalletTransfer:
    transfer.replayed = True
    return transfer


def _new_reference(now: dt.datetime) -> str:
    # QB: 钱包. Random, so a number says nothing about how many transfers there are.
    return f"QB{timezone.localtime(now):%Y%m%d}{secrets.randbelow(10**8):08d}"


def _link() -> str:
    return reverse("wallet_home")


@transaction.atomic
def wallet_transfer_send(
    *,
    client: User,
    idempotency_key: str,
    request_hash: str,
    owner: InsuredPerson,
    binding_id: int,
    amount: Decimal,
    now: dt.datetime | None = None,
) -> WalletTransfer:
    """R37: send ``amount`` from the owner's account to a cross-province relative's wallet, once per key (R34).

    The account is debited now (current year first, then previous years); the wallet is credited when
    the relative accepts. ``replayed`` on the answer is True when the key had been used for this same
    request (nothing is charged again); the same key with another request is refused (409).
    """
    keyed = _keyed(client=client, idempotency_key=idempotency_key, request_hash=request_hash)
    if (replayed := keyed.replay()) is not None:
        return replayed
    if refusal := amount_refusal(amount):
        raise refusal
    now = now or timezone.now()
    local = timezone.localtime(now)
    limits = wallet_limits()
    if amount > limits.max_amount:
        message = _("At most %(limit)s per transfer (R37).") % {"limit": _money(limits.max_amount)}
        raise WalletRefused(
            title=_("A wallet transfer can be at most %(limit)s (R37 limit).") % {"limit": _money(limits.max_amount)},
            errors=[FieldError("amount", message)],
            status=400,
            code="wallet_amount_limit",
        )
    if in_quiet_hours(local.time(), quiet_from=limits.quiet_from, quiet_until=limits.quiet_until):
        raise WalletRefused(
            title=_("No wallet transfers between %(start)s and %(end)s (R37 limit). Please send from %(end)s.")
            % {"start": limits.quiet_from.strftime("%H:%M"), "end": limits.quiet_until.strftime("%H:%M")},
            status=409,
            code="wallet_quiet_hours",
        )
    binding = (
        Binding.objects.select_related("owner__region", "relative__region")
        .filter(pk=binding_id, owner=owner, relative__isnull=False)
        .first()
    )
    if binding is None:
        # The same answer for a binding of someone else's and one that does not exist.
        raise WalletRefused(
            title=_("You have no family-sharing binding with this number."),
            errors=[FieldError("binding_id", _("Choose one of your family members."))],
            status=400,
            code="binding_not_found",
        )
    if not binding_in_force(binding, local.date()):
        raise WalletRefused(
            title=_("Family sharing with this family member is not active today (R26, R27)."),
            status=409,
            code="binding_not_in_force",
        )
    relative = binding.relative
    if relative.region.province == owner.region.province:
        raise WalletRefused(
            title=_(
                "%(name)s is insured in the same province as you: family members in your province pay from your "
                "account directly, the wallet is only for sharing across provinces (R37)."
            )
            % {"name": relative.masked_name},
            status=409,
            code="wallet_same_province",
        )
    wallet = Wallet.objects.filter(person=relative).first()
    if wallet is None:
        raise WalletRefused(
            title=_(
                "%(name)s has not opened a medical-insurance wallet yet (R37). They can open it on the wallet page "
                "of the portal with their own login, or a family card manager can open it for them; then send again."
            )
            % {"name": relative.masked_name},
            status=409,
            code="wallet_not_open",
        )
    owner_account = PersonalAccount.objects.filter(person=owner).first()
    if owner_account is None:
        raise WalletRefused(title=_("You have no personal account to send from."), status=409, code="no_account")
    # A concurrent request with the same key loses on the unique constraint and answers the winner.
    return keyed.make(
        lambda: _send_locked(
            client=client,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            binding=binding,
            wallet=wallet,
            owner_account=owner_account,
            amount=amount,
            now=now,
            limits=limits,
        )
    )


def _send_locked(
    *,
    client: User,
    idempotency_key: str,
    request_hash: str,
    binding: Binding,
    wallet: Wallet,
    owner_account: PersonalAccount,
    amount: Decimal,
    now: dt.datetime,
    limits: WalletLimits,
) -> WalletTransfer:
    # The owner's account lock also serialises the owner's sends, so the day's count below is exact.
    accounts, _wallets = accounts_lock(account_ids=[owner_account.pk])
    keyed = _keyed(client=client, idempotency_key=idempotency_key, request_hash=request_hash)
    if (replayed := keyed.replay()) is not None:
        return replayed
    owner, relative = binding.owner, binding.relative
    sent = _sent_today(owner_id=owner.pk, now=now)
    if sent >= limits.per_day:
        raise WalletRefused(
            title=_("At most %(count)d wallet transfers a day (R37 limit); you have sent %(sent)d today.")
            % {"count": limits.per_day, "sent": sent},
            detail=_("You can send again tomorrow from %(time)s.") % {"time": limits.quiet_until.strftime("%H:%M")},
            status=409,
            code="wallet_daily_limit",
        )
    account = accounts[owner_account.pk]
    from_current, from_historical = take_from_account(
        current=account.current_balance, historical=account.historical_balance, amount=amount
    )
    if from_current + from_historical < amount:
        raise InsufficientBalance(
            title=_("Your personal account holds %(balance)s, less than %(amount)s.")
            % {"balance": _money(account.balance), "amount": _money(amount)},
            errors=[FieldError("amount", _("At most %(balance)s.") % {"balance": _money(account.balance)})],
            status=409,
            code="insufficient_balance",
        )
    transfer = WalletTransfer.objects.create(
        client=client,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        reference=_new_reference(now),
        binding=binding,
        owner=owner,
        wallet=wallet,
        amount=amount,
        from_current=from_current,
        from_historical=from_historical,
        return_due_at=return_due_at(timezone.localtime(now), return_at=limits.return_at),
    )
    description = f"wallet transfer to {relative.masked_name}"
    ledger_post_locked(
        accounts=accounts,
        postings=[
            (owner_account.pk, Posting(part, -taken, LedgerEntry.Kind.WALLET, description, transfer.reference))
            for part, taken in (
                (LedgerEntry.Part.CURRENT, from_current),
                (LedgerEntry.Part.HISTORICAL, from_historical),
            )
            if taken
        ],
        created_by=client,
    )
    audit_record(
        actor=client,
        action="wallet_transfer.sent",
        target=transfer,
        detail={"binding": binding.pk, "amount": str(amount)},
    )
    due = timezone.localtime(transfer.return_due_at)
    money = _money(amount)
    notification_send(
        person=owner,
        kind="wallet_transfer.sent",
        title=_("You sent %(amount)s to the medical-insurance wallet of %(name)s")
        % {"amount": money, "name": relative.masked_name},
        body=_("If they do not accept it by %(time)s, it comes back to your account. Transfer number %(reference)s.")
        % {"time": f"{due:%Y-%m-%d %H:%M}", "reference": transfer.reference},
        link=_link(),
        dedup_key=f"wallet-transfer:{transfer.pk}:sent:owner",
    )
    notification_send(
        person=relative,
        kind="wallet_transfer.waiting",
        title=_("%(name)s sent %(amount)s to your medical-insurance wallet")
        % {"name": owner.masked_name, "amount": money},
        body=_("Accept it by %(time)s on the wallet page; otherwise it goes back to %(name)s.")
        % {"time": f"{due:%Y-%m-%d %H:%M}", "name": owner.masked_name},
        link=_link(),
        dedup_key=f"wallet-transfer:{transfer.pk}:sent:relative",
        sms=True,
    )
    transfer.replayed = False
    return transfer


# --- Accept (the relative) ---------------------------------------------------------------------------


@transaction.atomic
def wallet_transfer_accept(*, transfer_id: int, user: User, now: dt.datetime | None = None) -> WalletTransfer:
    """R37: the relative accepts a transfer into their wallet. Accepting again answers the same; a returned
    one is refused.

    Only the wallet holder's own login accepts. A family card manager (R43) could do it on their behalf,
    but that link lives in ``cards``, which family must not import (cards → family → accounts); it would
    be passed in from cards if that is wanted.
    """
    now = now or timezone.now()
    person_id = getattr(user, "person_id", None)
    transfer = WalletTransfer.objects.select_related("wallet").filter(pk=transfer_id).first()
    # A stranger cannot tell a transfer that exists from one that does not.
    if transfer is None or person_id is None or person_id not in (transfer.owner_id, transfer.wallet.person_id):
        raise Http404
    if person_id != transfer.wallet.person_id:
        raise WalletRefused(
            title=_("Only the family member who holds the wallet can accept this transfer, with their own login."),
            status=403,
            code="not_wallet_holder",
        )
    _accounts, wallets = accounts_lock(account_ids=[], wallet_ids=[transfer.wallet_id])
    transfer = (
        WalletTransfer.objects.select_for_update(of=("self",))
        .select_related("owner", "wallet__person", "binding")
        .get(pk=transfer_id)
    )
    if transfer.state == S.ACCEPTED:
        transfer.replayed = True
        return transfer
    if transfer.state == S.RETURNED:
        raise WalletRefused(
            title=_("This transfer went back to %(name)s on %(time)s; it can no longer be accepted (R37).")
            % {
                "name": transfer.owner.masked_name,
                "time": f"{timezone.localtime(transfer.returned_at):%Y-%m-%d %H:%M}",
            },
            status=409,
            code="wallet_transfer_returned",
        )
    if transfer.return_due_at <= now:
        # The return task runs every few minutes; until then the money is the owner's already.
        raise WalletRefused(
            title=_("The time to accept this transfer is over; it goes back to %(name)s (R37).")
            % {"name": transfer.owner.masked_name},
            status=409,
            code="wallet_transfer_expired",
        )
    if transfer.binding.state != BindingState.ACTIVE:
        raise WalletRefused(
            title=_("Family sharing with %(name)s has ended; the transfer goes back to them (R37).")
            % {"name": transfer.owner.masked_name},
            status=409,
            code="binding_not_in_force",
        )
    wallet = wallets[transfer.wallet_id]
    wallet_post_locked(
        wallet=wallet,
        amount=transfer.amount,
        kind=WalletEntry.Kind.TRANSFER_IN,
        description=f"from {transfer.owner.masked_name}",
        reference=transfer.reference,
        created_by=user,
    )
    transfer.state = S.ACCEPTED
    transfer.accepted_at = now
    transfer.save(update_fields=["state", "accepted_at"])
    audit_record(actor=user, action="wallet_transfer.accepted", target=transfer)
    money = _money(transfer.amount)
    holder = transfer.wallet.person
    notification_send(
        person=transfer.owner,
        kind="wallet_transfer.accepted",
        title=_("%(name)s accepted your wallet transfer of %(amount)s") % {"name": holder.masked_name, "amount": money},
        body=_("The money is in their medical-insurance wallet now. Transfer number %(reference)s.")
        % {"reference": transfer.reference},
        link=_link(),
        dedup_key=f"wallet-transfer:{transfer.pk}:accepted:owner",
    )
    notification_send(
        person=holder,
        kind="wallet_transfer.accepted",
        title=_("%(amount)s is in your medical-insurance wallet") % {"amount": money},
        body=_("You accepted the transfer from %(name)s. Transfer number %(reference)s.")
        % {"name": transfer.owner.masked_name, "reference": transfer.reference},
        link=_link(),
        dedup_key=f"wallet-transfer:{transfer.pk}:accepted:relative",
    )
    transfer.replayed = False
    return transfer


# --- Return (06:00 the next day; the end of the relationship) ----------------------------------------


def _return_pending_locked(
    transfer: WalletTransfer, *, accounts: dict[int, PersonalAccount], account_id: int, now: dt.datetime, why: str
) -> None:
    """Give a locked pending transfer back to the owner's account, to the parts it came from (R37)."""
    description = f"wallet transfer returned: {why}"
    ledger_post_locked(
        accounts=accounts,
        postings=[
            (account_id, Posting(part, amount, LedgerEntry.Kind.WALLET, description, transfer.reference))
            for part, amount in (
                (LedgerEntry.Part.CURRENT, transfer.from_current),
                (LedgerEntry.Part.HISTORICAL, transfer.from_historical),
            )
            if amount
        ],
    )
    transfer.state = S.RETURNED
    transfer.returned_at = now
    transfer.save(update_fields=["state", "returned_at"])
    audit_record(actor=None, action="wallet_transfer.returned", target=transfer, detail={"why": why})
    money = _money(transfer.amount)
    holder = transfer.wallet.person
    notification_send(
        person=transfer.owner,
        kind="wallet_transfer.returned",
        title=_("%(amount)s came back to your personal account") % {"amount": money},
        body=(
            _("%(name)s did not accept your wallet transfer in time. Transfer number %(reference)s.")
            if why == "not accepted"
            else _(
                "Family sharing with %(name)s ended before the transfer was accepted. Transfer number %(reference)s."
            )
        )
        % {"name": holder.masked_name, "reference": transfer.reference},
        link=_link(),
        dedup_key=f"wallet-transfer:{transfer.pk}:returned:owner",
    )
    notification_send(
        person=holder,
        kind="wallet_transfer.returned",
        title=_("The wallet transfer of %(amount)s from %(name)s went back")
        % {"amount": money, "name": transfer.owner.masked_name},
        body=_("It was not accepted in time, or family sharing ended. Transfer number %(reference)s.")
        % {"reference": transfer.reference},
        link=_link(),
        dedup_key=f"wallet-transfer:{transfer.pk}:returned:relative",
    )


def wallet_transfers_return_due(*, now: dt.datetime) -> int:
    """R37: every pending transfer due by ``now`` goes back to its owner; each in its own transaction.

    Idempotent: a transfer is returned only while it is pending, under its row lock; a row another run
    holds is skipped (that run returns it). Returns how many this run returned.
    """
    due = list(
        WalletTransfer.objects.filter(state=S.PENDING, return_due_at__lte=now)
        .order_by("return_due_at", "pk")
        .values_list("pk", "owner_id")
    )
    return sum(_return_one_due(transfer_id=pk, owner_id=owner_id, now=now) for pk, owner_id in due)


@transaction.atomic
def _return_one_due(*, transfer_id: int, owner_id: int, now: dt.datetime) -> int:
    account_id = PersonalAccount.objects.filter(person_id=owner_id).values_list("pk", flat=True).get()
    # Lock order (accounts, then the transfer row), as every writer of this transfer takes them.
    accounts, _wallets = accounts_lock(account_ids=[account_id])
    transfer = (
        WalletTransfer.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("owner", "wallet__person")
        .filter(pk=transfer_id, state=S.PENDING, return_due_at__lte=now)
        .first()
    )
    if transfer is None:
        return 0  # accepted or returned meanwhile, or another run holds it
    _return_pending_locked(transfer, accounts=accounts, account_id=account_id, now=now, why="not accepted")
    return 1


@transaction.atomic
def wallet_transfers_return_for_binding(*, binding: Binding, now: dt.datetime | None = None) -> Decimal:
    """R37: the relationship ended: pending transfers go back, and so does what is unused in the wallet.

    Called by ``binding_transition`` inside its transaction when a binding ends or expires.

    Simplification: money in a wallet is not earmarked by where it came from, so "unused" is taken as
    ``min(wallet balance, accepted through this binding − already returned through it)``: spending is
    assumed to use the owner's money last. It is given back newest transfer first, and within a transfer
    previous years first, then the current year (the reverse of how it was taken), recorded in each
    transfer's ``returned_amount``. A wallet fed by several owners may thus give one owner back money
    another sent; the platform's own accounting would be needed to do better.
    Returns the amount that went back (pending and unused together).
    """
    now = now or timezone.now()
    open_transfers = WalletTransfer.objects.filter(binding=binding, state__in=[S.PENDING, S.ACCEPTED])
    if binding.relative_id is None or not open_transfers.exists():
        return Decimal(0)
    account_id = PersonalAccount.objects.filter(person_id=binding.owner_id).values_list("pk", flat=True).get()
    wallet_ids = set(open_transfers.values_list("wallet_id", flat=True))
    accounts, wallets = accounts_lock(account_ids=[account_id], wallet_ids=wallet_ids)
    transfers = list(
        open_transfers.select_for_update(of=("self",))
        .select_related("owner", "wallet__person")
        .order_by("-created_at", "-pk")
    )
    returned = Decimal(0)
    for transfer in transfers:
        if transfer.state == S.PENDING:
            _return_pending_locked(transfer, accounts=accounts, account_id=account_id, now=now, why="sharing ended")
            returned += transfer.amount
    for wallet_id, wallet in wallets.items():
        accepted = [t for t in transfers if t.wallet_id == wallet_id and t.state == S.ACCEPTED]
        outstanding = sum((t.amount - t.returned_amount for t in accepted), Decimal(0))
        left = min(wallet.balance, outstanding)
        if left <= 0:
            continue
        unused = left
        to_current = to_historical = Decimal(0)
        for transfer in accepted:
            give = min(left, transfer.amount - transfer.returned_amount)
            if give <= 0:
                continue
            # What of this transfer's previous-years part has not gone back yet (it goes back first).
            historical_open = max(Decimal(0), transfer.from_historical - transfer.returned_amount)
            historical = min(give, historical_open)
            to_historical += historical
            to_current += give - historical
            transfer.returned_amount += give
            transfer.save(update_fields=["returned_amount"])
            left -= give
        wallet_post_locked(
            wallet=wallet,
            amount=-unused,
            kind=WalletEntry.Kind.RETURN,
            description=f"unused, back to {binding.owner.masked_name}: sharing ended",
            reference=f"binding:{binding.pk}",
        )
        ledger_post_locked(
            accounts=accounts,
            postings=[
                (
                    account_id,
                    Posting(
                        part, amount, LedgerEntry.Kind.WALLET, "unused wallet money returned", f"binding:{binding.pk}"
                    ),
                )
                for part, amount in (
                    (LedgerEntry.Part.CURRENT, to_current),
                    (LedgerEntry.Part.HISTORICAL, to_historical),
                )
                if amount
            ],
        )
        returned += unused
        audit_record(
            actor=None,
            action="wallet.unused_returned",
            target=wallet,
            detail={"binding": binding.pk, "amount": str(unused)},
        )
        money = _money(unused)
        notification_send(
            person=binding.owner,
            kind="wallet.unused_returned",
            title=_("%(amount)s came back to your personal account") % {"amount": money},
            body=_("Family sharing with %(name)s ended; what was unused in their medical-insurance wallet came back.")
            % {"name": wallet.person.masked_name},
            link=_link(),
            dedup_key=f"binding:{binding.pk}:wallet:{wallet_id}:unused:owner",
        )
        notification_send(
            person=wallet.person,
            kind="wallet.unused_returned",
            title=_("%(amount)s went back from your medical-insurance wallet") % {"amount": money},
            body=_("Family sharing with %(name)s ended; what was unused of their money went back to them (R37).")
            % {"name": binding.owner.masked_name},
            link=_link(),
            dedup_key=f"binding:{binding.pk}:wallet:{wallet_id}:unused:relative",
        )
    return returned


def wallet_for_person(*, person: InsuredPerson) -> Wallet | None:
    """The person's wallet, if they opened one."""
    return Wallet.objects.filter(person=person).first()


def wallet_transfers_visible(*, person_id: int) -> Q:
    """Wallet transfers a person is party to: sent as owner, or into their wallet."""
    return Q(owner_id=person_id) | Q(wallet__person_id=person_id)

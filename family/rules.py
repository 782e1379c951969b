"""Pure rules of family sharing: plain values in, decisions out; no ORM, no clock, no settings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol, TypeVar


class PolicyLike(Protocol):
    """What policy selection needs of a version: a ``PolicyVersion`` row or a parsed C2 entry."""

    @property
    def region_id(self) -> str | None:
        """The region's code; ``None`` is the national default (``*``)."""

    @property
    def effective_from(self) -> date: ...

    @property
    def effective_to(self) -> date | None: ...


P = TypeVar("P", bound=PolicyLike)


def policy_covers(version: PolicyLike, on_date: date) -> bool:
    """C2: a version is in force from ``effective_from`` (inclusive) to ``effective_to`` (exclusive)."""
    return version.effective_from <= on_date and (version.effective_to is None or on_date < version.effective_to)


def select_policy(versions: Sequence[P], region_code: str, on_date: date) -> P | None:
    """C2, R12: the region's own version covering the date, else the national one covering it, else ``None``."""
    own = [v for v in versions if v.region_id == region_code and policy_covers(v, on_date)]
    if own:
        # Versions of one region never overlap (the loader and the admin refuse it); if they did, the latest start wins.
        return max(own, key=lambda v: v.effective_from)
    national = [v for v in versions if v.region_id is None and policy_covers(v, on_date)]
    if national:
        return max(national, key=lambda v: v.effective_from)
    return None


def periods_overlap(first: tuple[date, date | None], second: tuple[date, date | None]) -> bool:
    """Whether two half-open periods ``[from, to)`` (``to`` ``None`` is open-ended) share a day."""
    (first_start, first_end), (second_start, second_end) = first, second
    return (first_end is None or second_start < first_end) and (second_end is None or first_start < second_end)


def overlapping_periods(periods: Iterable[tuple[date, date | None]]) -> list[tuple[int, int]]:
    """C2: pairs ``(earlier, later)`` of indexes into ``periods`` whose half-open periods share a day.

    Each later-starting period is paired with the first earlier-starting one that still covers its start.
    """
    indexed = sorted(enumerate(periods), key=lambda item: item[1][0])
    overlaps = []
    for position, (later, (start, _end)) in enumerate(indexed):
        for earlier, (earlier_start, earlier_end) in indexed[:position]:
            if earlier_start <= start and (earlier_end is None or start < earlier_end):
                overlaps.append((earlier, later))
                break
    return overlaps


# --- Spending (R31–R37) ------------------------------------------------------------------------

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Funds:
    """What one source can give to a payment (R33): an account's two parts, or a wallet."""

    current: Decimal = Decimal(0)
    historical: Decimal = Decimal(0)
    wallet: Decimal = Decimal(0)
    is_owner: bool = False  # another person's account, through a binding

    @property
    def total(self) -> Decimal:
        return self.current + self.historical + self.wallet


@dataclass(frozen=True)
class Take:
    """What a payment takes from the source at ``index`` of the list it was given."""

    index: int
    current: Decimal = Decimal(0)
    historical: Decimal = Decimal(0)
    wallet: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.current + self.historical + self.wallet


def take_from_account(*, current: Decimal, historical: Decimal, amount: Decimal) -> tuple[Decimal, Decimal]:
    """How much of ``amount`` an account gives from each part: the current year first, then previous years.

    Gives at most what is there; the caller compares the sum with ``amount``.
    """
    from_current = min(current, amount)
    from_historical = min(historical, amount - from_current)
    return from_current, from_historical


def payment_split(
    *, amount: Decimal, funds: Sequence[Funds], one_owner_per_payment: bool = False
) -> tuple[list[Take], Decimal]:
    """R33: take ``amount`` from the sources in their order (own account, own wallet, owners by binding
    order), each as far as it goes; the rest is cash. With ``one_owner_per_payment`` (a region's choice),
    only the first owner who can give anything is used. Returns the takes (none for sources that give
    nothing) and the cash part."""
    remaining = amount
    takes: list[Take] = []
    owner_used = False
    for index, source in enumerate(funds):
        if remaining <= 0:
            break
        if source.total <= 0 or (source.is_owner and one_owner_per_payment and owner_used):
            continue
        from_wallet = min(source.wallet, remaining)
        from_current, from_historical = take_from_account(
            current=source.current, historical=source.historical, amount=remaining - from_wallet
        )
        take = Take(index=index, current=from_current, historical=from_historical, wallet=from_wallet)
        takes.append(take)
        remaining -= take.total
        owner_used = owner_used or source.is_owner
    return takes, remaining


@dataclass(frozen=True)
class Refundable:
    """What is left to refund of one payment part (paid minus refunded so far), per part of the source."""

    current: Decimal = Decimal(0)
    historical: Decimal = Decimal(0)
    wallet: Decimal = Decimal(0)


def refund_split(*, amount: Decimal, cash_left: Decimal, parts: Sequence[Refundable]) -> tuple[Decimal, list[Take]]:
    """R34: where a refund of ``amount`` goes back: as if the payment had been that much smaller, so cash
    first, then the parts in reverse deduction order (the last owner first, the patient's own account last),
    and within a part the reverse of how it was taken (previous years, then the current year; a wallet
    part is one sum). The caller has checked that ``amount`` is at most what is left to refund."""
    cash_back = min(cash_left, amount)
    remaining = amount - cash_back
    takes: list[Take] = []
    for index in range(len(parts) - 1, -1, -1):
        if remaining <= 0:
            break
        part = parts[index]
        wallet = min(part.wallet, remaining)
        historical = min(part.historical, remaining - wallet)
        current = min(part.current, remaining - wallet - historical)
        take = Take(index=index, current=current, historical=historical, wallet=wallet)
        if take.total:
            takes.append(take)
            remaining -= take.total
    return cash_back, takes


def amount_problem(amount: Decimal) -> str | None:
    """Why an amount of money is not acceptable (a code; the caller words it), or None.

    Positive, at most two decimals (fen), below a hundred million yuan.
    """
    if not amount.is_finite():
        return "not_a_number"
    if amount <= 0:
        return "not_positive"
    if amount != amount.quantize(CENT):
        return "too_precise"
    if amount >= Decimal("100000000"):
        return "too_large"
    return None

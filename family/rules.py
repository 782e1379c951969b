"""Pure rules of family sharing: plain values in, decisions out; no ORM, no clock, no settings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
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

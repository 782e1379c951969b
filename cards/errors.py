"""Refusals of the e-card (R40–R43): members of the one DomainError family, so the API answers problem+json."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from accounts.errors import DomainError


class CardRefused(DomainError):
    """R40–R42: the card is not in a state that allows this, or the person may not do it."""


@dataclass
class CardPasswordRefused(DomainError):
    """R41: a trivial password (``problems`` holds the codes of ``cards.rules.password_problems``) or a wrong one."""

    problems: list[str] = field(default_factory=list)


@dataclass
class CardLocked(DomainError):
    """R41: too many wrong passwords; the card refuses every password until ``locked_until``."""

    locked_until: dt.datetime | None = None


class QrRefused(DomainError):
    """R42: a code that is forged, expired, used already, from another province, or of a card not active.

    ``code`` names which: forged, expired, replayed, foreign_region, card_not_active.
    """


class FamilyCardRefused(DomainError):
    """R43: the family card service refuses the request (limit, no such person, not pending...)."""

"""The one domain error family; the API answers it as problem+json, pages as a message."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FieldError:
    field: str
    message: str


@dataclass
class DomainError(Exception):
    """A request that the rules refuse: ``title`` for people, ``errors`` per field when the input is at fault."""

    title: str
    detail: str = ""
    status: int = 400
    code: str = "refused"
    errors: list[FieldError] = field(default_factory=list)

    def __str__(self) -> str:
        return self.detail or self.title


class InsufficientBalance(DomainError):
    """R34: a movement that would overdraw an account."""


class RealNameMismatch(DomainError):
    """The name and ID number given do not match an insured person free to link."""

"""Idempotency keys (R34): what a request meant, as one comparable fingerprint, and the one way a keyed
write is made once: replay the first outcome for the same request, refuse another request under the key,
and let the unique constraint on (client, key) decide a race."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.errors import DomainError


def _canonical(value: Any) -> Any:
    """Plain JSON values, written the same way whatever form the caller had them in."""
    if isinstance(value, Decimal):
        # "10", "10.0" and "10.00" are the same amount: the same request must give the same fingerprint.
        return format(value.normalize(), "f") if value.is_finite() else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, str):
        return " ".join(value.split())
    return value


def request_fingerprint(**fields: Any) -> str:
    """sha256 (hex) of the canonical JSON of the request's meaningful fields: sorted keys, no spacing.

    The same key sent again with the same fields is the same request (answer it again); with other
    fields it is a client's mistake (refuse it). Callers pass only what changes the outcome.
    """
    canonical = json.dumps(_canonical(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def idempotency_key_reused() -> DomainError:
    """R34: the key was used before for a different request (409); the first request's outcome stands."""
    return DomainError(
        title=_("This Idempotency-Key was already used for a different request."),
        detail=_("Send a new key for a new request; the same key is only for repeating the same request."),
        status=409,
        code="idempotency_key_reused",
    )


Row = TypeVar("Row")
Answer = TypeVar("Answer")


@dataclass(frozen=True)
class KeyedRequest(Generic[Row, Answer]):
    """R34 for one keyed request: the row its (client, key) made, if any, answers it again.

    ``find`` reads that row (it carries ``request_hash``); ``answer`` turns it into what the first request
    answered, marked as a replay; ``refused`` is the 409 for another request under the same key.
    """

    find: Callable[[], Row | None]
    request_hash: str
    answer: Callable[[Row], Answer]
    refused: Callable[[], DomainError] = idempotency_key_reused

    def replay(self) -> Answer | None:
        """The first outcome when the key was used before (before any check: it stands as it was); else None."""
        row = self.find()
        return None if row is None else self._answer_again(row)

    def make(self, write: Callable[[], Answer]) -> Answer:
        """``write`` in a savepoint. When the unique constraint on (client, key) says a concurrent request
        with the key got there first, answer that one; any other integrity error goes to the caller."""
        try:
            with transaction.atomic():
                return write()
        except IntegrityError:
            row = self.find()
            if row is None:
                raise
            return self._answer_again(row)

    def _answer_again(self, row: Row) -> Answer:
        if row.request_hash != self.request_hash:
            raise self.refused()
        return self.answer(row)

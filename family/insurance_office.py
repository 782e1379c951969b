"""The insurance office (医保经办机构), an edge we cannot run: it confirms contributions paid for a relative (R31).

A contribution paid from the owner's account is ours at once (ledger, R34), but the relative is insured for
the year only when the office has recorded it. We submit the payment and the office answers: confirmed with
its own reference, or not yet (the beat task asks again later). Submitting the same payment again must
answer the same way: an adapter keys its request by our payment reference, never by a new one.

INSURANCE_OFFICE_BACKEND names the implementation in ``BACKENDS`` (no dynamic imports): ``local``
confirms at once, ``local_not_yet`` never confirms (tests and demonstrations of the waiting state).
A real adapter is added to ``BACKENDS`` under its own name.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from family.models import Payment

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OfficeAnswer:
    """What the office said: ``confirmed`` with its own ``reference``, or not yet (``confirmed`` False)."""

    confirmed: bool
    reference: str = ""


class OfficeUnavailable(Exception):
    """The office could not be reached or answered nonsense: transient, the payment stays pending."""


class InsuranceOffice(Protocol):
    def submit_contribution(self, payment: Payment) -> OfficeAnswer:
        """Hand the contribution to the office; the same payment again answers the same."""


class LocalInsuranceOffice:
    """A stand-in that answers honestly without a network: it confirms (or, configured so, answers not yet).

    Its reference is derived from our payment reference, so asking twice gives the same one, as a real office
    keyed by our reference would; it is logged, the local office's only record.
    """

    def __init__(self, *, confirms: bool = True) -> None:
        self.confirms = confirms

    def submit_contribution(self, payment: Payment) -> OfficeAnswer:
        if not self.confirms:
            logger.info("local insurance office: contribution %s received, not confirmed yet", payment.reference)
            return OfficeAnswer(confirmed=False)
        digest = hashlib.sha256(payment.reference.encode("ascii")).hexdigest()[:10].upper()
        reference = f"YB{payment.created_at:%Y%m%d}{digest}"
        logger.info("local insurance office: contribution %s confirmed as %s", payment.reference, reference)
        return OfficeAnswer(confirmed=True, reference=reference)


BACKENDS: dict[str, InsuranceOffice] = {
    "local": LocalInsuranceOffice(),
    "local_not_yet": LocalInsuranceOffice(confirms=False),
}


def insurance_office() -> InsuranceOffice:
    """The office named by INSURANCE_OFFICE_BACKEND (default ``local``)."""
    name = getattr(settings, "INSURANCE_OFFICE_BACKEND", "local")
    try:
        return BACKENDS[name]
    except KeyError:
        raise ImproperlyConfigured(
            f"INSURANCE_OFFICE_BACKEND={name!r} is not one of {', '.join(sorted(BACKENDS))}."
        ) from None

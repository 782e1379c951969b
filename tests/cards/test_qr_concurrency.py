"""R42 under concurrency: a code shown once and scanned at two counters at the same moment is accepted once.

PostgreSQL only: each thread has its own connection, so the two conditional UPDATEs really race.
"""

from __future__ import annotations

import pytest

from cards.errors import QrRefused
from cards.models import QrToken
from cards.services import QrVerification, qr_issue, qr_verify
from tests.concurrency import run_together
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def outcomes(results: list[object]) -> list[str]:
    return sorted(
        "ok" if isinstance(r, QrVerification) else r.code if isinstance(r, QrRefused) else repr(r) for r in results
    )


@pytest.mark.parametrize("round_number", range(5))
def test_r42_two_counters_scan_one_code_at_once_exactly_one_is_accepted(
    card_a, citizen_a, clerk_x, partner, round_number
):
    token, row = qr_issue(card=card_a, viewer=citizen_a)
    results = run_together(
        [lambda: qr_verify(token=token, verifier=clerk_x), lambda: qr_verify(token=token, verifier=partner)]
    )
    assert outcomes(results) == ["ok", "replayed"]
    row.refresh_from_db()
    winner = next(r for r in results if isinstance(r, QrVerification))
    assert row.used_at == winner.verified_at
    assert row.used_by in (clerk_x, partner)


def test_r42_eight_scans_of_one_code_at_once_one_is_accepted(card_a, citizen_a, clerk_x, institution_x):
    token, row = qr_issue(card=card_a, viewer=citizen_a)
    clerks = [clerk_x] + [UserFactory(role="clerk", institution=institution_x) for _ in range(7)]
    results = run_together([lambda c=c: qr_verify(token=token, verifier=c) for c in clerks])
    assert outcomes(results) == ["ok"] + ["replayed"] * 7
    assert QrToken.objects.filter(pk=row.pk, used_at__isnull=False).count() == 1

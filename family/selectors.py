"""Reads for family sharing: the policy in force (C2, R12); bindings will join here."""

from __future__ import annotations

from datetime import date

from django.db.models import F, Q

from family.models import PolicyVersion
from family.rules import select_policy


def policy_versions_for_region(*, region_code: str) -> list[PolicyVersion]:
    """Every version that can apply to the region, by start date, the national one first on a tie (one query)."""
    return list(
        PolicyVersion.objects.filter(Q(region_id=region_code) | Q(region__isnull=True)).order_by(
            "effective_from", F("region_id").asc(nulls_first=True)
        )
    )


def policy_in_force(*, region_code: str, on_date: date) -> PolicyVersion | None:
    """C2, R12: the region's own version covering ``on_date``, else the national one covering it (one query)."""
    candidates = PolicyVersion.objects.filter(
        Q(region_id=region_code) | Q(region__isnull=True),
        Q(effective_to__isnull=True) | Q(effective_to__gt=on_date),
        effective_from__lte=on_date,
    )
    return select_policy(list(candidates), region_code, on_date)

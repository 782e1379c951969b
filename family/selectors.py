"""Reads for family sharing: the policy in force (C2, R12), eligibility facts (R10–R16), bindings."""

from __future__ import annotations

from datetime import date

from django.db.models import Count, F, Q

from accounts.identity import parse_id_number
from accounts.models import InsuredPerson
from family.eligibility import Decision, NetworkFacts, PersonFacts, decide
from family.models import OPEN_STATES, Binding, BindingState, PolicyVersion
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


def eligibility_facts(
    *, owner_id_number: str, relative_id_number: str, on_date: date
) -> tuple[PersonFacts, PersonFacts, list[PolicyVersion], NetworkFacts]:
    """Load what ``family.eligibility.decide`` needs, in three queries whatever the table sizes.

    Both ID numbers must already be valid (R1). Unknown persons are facts too (R10, R11).
    """
    persons = {
        p.id_number: p
        for p in InsuredPerson.objects.select_related("region", "account").filter(
            id_number__in=[owner_id_number, relative_id_number]
        )
    }
    owner = persons.get(owner_id_number)
    relative = persons.get(relative_id_number)
    regions = {p.region_id for p in (owner, relative) if p is not None}
    versions = list(
        PolicyVersion.objects.filter(Q(region_id__in=regions) | Q(region__isnull=True)).order_by("effective_from")
    )
    network = NetworkFacts()
    if owner is not None and relative is not None and owner.pk != relative.pk:
        counts = Binding.objects.filter(Q(owner=owner) | Q(relative=relative)).aggregate(
            owner_members=Count("pk", filter=Q(owner=owner, state__in=OPEN_STATES) & ~Q(relative=relative)),
            relative_owners=Count("pk", filter=Q(relative=relative, state=BindingState.ACTIVE) & ~Q(owner=owner)),
        )
        network = NetworkFacts(owner_member_count=counts["owner_members"], relative_owner_count=counts["relative_owners"])
    return (
        person_facts(owner_id_number, owner, on_date),
        person_facts(relative_id_number, relative, on_date),
        versions,
        network,
    )


def person_facts(id_number: str, person: InsuredPerson | None, on_date: date) -> PersonFacts:
    """A person as the eligibility rules see them; an unknown one is only what the ID number says (R2)."""
    if person is None:
        # Already checked against today (R1); here only birth date and sex are read from it (R2).
        parsed = parse_id_number(id_number, today=date.max)
        return PersonFacts(id_number=id_number, birth_date=parsed.birth_date, sex=parsed.sex)
    account = getattr(person, "account", None)
    return PersonFacts(
        id_number=person.id_number,
        birth_date=person.birth_date,
        sex=person.sex,
        known=True,
        is_employee=person.is_employee,
        is_active=person.is_active,
        region_code=person.region_id,
        province_code=person.region.province,
        balance=account.balance if account is not None else None,
    )


def eligibility_check(*, owner_id_number: str, relative_id_number: str, relationship: str, on_date: date) -> Decision:
    """C3, R10–R16, R23: the decision the binding pipeline makes, for these two ID numbers. Writes nothing."""
    owner, relative, versions, network = eligibility_facts(
        owner_id_number=owner_id_number, relative_id_number=relative_id_number, on_date=on_date
    )
    return decide(
        owner=owner,
        relative=relative,
        relationship=relationship,
        on_date=on_date,
        owner_versions=[v for v in versions if v.region_id in (None, owner.region_code)],
        relative_versions=[v for v in versions if v.region_id in (None, relative.region_code)],
        network=network,
    )

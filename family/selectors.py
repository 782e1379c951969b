"""Reads for family sharing: the policy in force (C2, R12), eligibility facts (R10–R16), bindings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count, F, Q, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts.identity import parse_id_number
from accounts.models import InsuredPerson
from family.eligibility import Decision, NetworkFacts, PersonFacts, decide, decide_newborn
from family.models import (
    OPEN_STATES,
    Binding,
    BindingDocument,
    BindingEvent,
    BindingMethod,
    BindingState,
    DocumentKind,
    PolicyVersion,
)
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
        network = NetworkFacts(
            owner_member_count=counts["owner_members"], relative_owner_count=counts["relative_owners"]
        )
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


def newborn_eligibility_check(*, owner: InsuredPerson, on_date: date, binding_id: int | None = None) -> Decision:
    """R21: the owner's side of a newborn binding (R10, R12 for a child, R15), not counting ``binding_id``."""
    owner = InsuredPerson.objects.select_related("region", "account").get(pk=owner.pk)
    versions = list(
        PolicyVersion.objects.filter(Q(region_id=owner.region_id) | Q(region__isnull=True)).order_by("effective_from")
    )
    members = Binding.objects.filter(owner=owner, state__in=OPEN_STATES).exclude(pk=binding_id).count()
    return decide_newborn(
        owner=person_facts(owner.id_number, owner, on_date),
        on_date=on_date,
        owner_versions=versions,
        network=NetworkFacts(owner_member_count=members),
    )


# --- Citizen pages of family sharing (family/views.py) ---

# Closed bindings shown on the family page (R26: an ended binding shows in both histories).
FAMILY_HISTORY_LIMIT = 20
CLOSED_STATES = (BindingState.REJECTED, BindingState.CANCELLED, BindingState.EXPIRED, BindingState.ENDED)
# What the family page reads of a binding and its two persons (templates/family/home.html and its includes).
# A binding has some 35 columns (three of them JSON) and a person 12: building the query and the objects
# for all of them was most of the page's time. A field read that is not listed costs one query per binding,
# which the page's query-count test catches.
_OVERVIEW_FIELDS = (
    "owner_id",
    "relative_id",
    "relationship",
    "method",
    "state",
    "face_deadline",
    "authorized_until",
    "newborn_name",
    "mother_id_number",
    "created_at",
    "activated_at",
    "ended_at",
    "end_reason",
    "owner__name",
    "relative__name",
    "relative__id_number",
)


def _parties(person_id: int, id_number: str | None = None) -> Q:
    """Bindings a person is a party to: as owner, as relative, or as the mother of a newborn (R21).

    The mother is named by her ID number on the binding; a caller that has it passes it, otherwise a
    subquery keeps this one query.
    """
    mother = id_number or Subquery(InsuredPerson.objects.filter(pk=person_id).values("id_number")[:1])
    return Q(owner_id=person_id) | Q(relative_id=person_id) | Q(method=BindingMethod.NEWBORN, mother_id_number=mother)


def binding_get_for_user(user, pk: int) -> Binding:
    """The binding if the user's insured person is a party to it (owner, relative, newborn's mother); else 404.

    A stranger cannot tell a binding that exists from one that does not.
    """
    person_id = getattr(user, "person_id", None)
    if not person_id:
        raise Http404
    return get_object_or_404(Binding.objects.select_related("owner", "relative", "region"), _parties(person_id), pk=pk)


def binding_confirmer_is(binding: Binding, person: InsuredPerson) -> bool:
    """R21, R23: who confirms with their own face: the newborn's mother, otherwise the relative."""
    if binding.method == BindingMethod.NEWBORN:
        return bool(binding.mother_id_number) and binding.mother_id_number == person.id_number
    return binding.relative_id is not None and binding.relative_id == person.pk


@dataclass
class FamilyOverview:
    """家庭共济 page: what a person owns, is in, is asked to join, and what ended lately."""

    owned: list[Binding] = field(default_factory=list)  # my network: active and pending, as owner
    joined: list[Binding] = field(default_factory=list)  # networks I am in: active, as relative
    asked: list[Binding] = field(default_factory=list)  # pending where I am the relative (R23 consent)
    history: list[Binding] = field(default_factory=list)  # closed, newest first, both sides

    @property
    def owned_active(self) -> list[Binding]:
        return [b for b in self.owned if b.state == BindingState.ACTIVE]

    @property
    def owned_pending(self) -> list[Binding]:
        return [b for b in self.owned if b.state != BindingState.ACTIVE]


def bindings_for_person(*, person_id: int, id_number: str | None = None) -> FamilyOverview:
    """Every binding the person is a party to, in one query whatever the family size.

    ``id_number`` is the person's (R21: how a newborn's binding names the mother), when the caller has it.
    Open and closed bindings come in the same query (one query to build instead of two: building it costs
    more than running it); the closed ones are few, one per ended binding or closed application, and
    only the latest ``FAMILY_HISTORY_LIMIT`` are kept.
    """
    overview = FamilyOverview()
    history: list[Binding] = []
    for binding in (
        Binding.objects.filter(_parties(person_id, id_number))
        .select_related("owner", "relative")
        .only(*_OVERVIEW_FIELDS)
        .order_by("created_at", "pk")
    ):
        if binding.state in CLOSED_STATES:
            history.append(binding)
        elif binding.owner_id == person_id:
            overview.owned.append(binding)
        elif binding.state == BindingState.ACTIVE:
            if binding.relative_id == person_id:
                overview.joined.append(binding)
            # A newborn's mother is not in the network once it is active: nothing to show her.
        else:
            overview.asked.append(binding)
    # The latest closed ones first (R26: an ended binding shows in both histories).
    history.sort(key=_closed_order, reverse=True)
    overview.history = history[:FAMILY_HISTORY_LIMIT]
    return overview


def _closed_order(binding: Binding) -> tuple:
    """Sorted in reverse, as ``ORDER BY ended_at DESC, pk DESC`` on PostgreSQL (NULLs first: never ended)."""
    return (binding.ended_at is None, binding.ended_at.timestamp() if binding.ended_at else 0.0, binding.pk)


def binding_open_for_pair(*, owner_id: int, relative_id_number: str) -> Binding | None:
    """The open application or binding of this owner with this relative, if there is one (one per pair)."""
    return (
        Binding.objects.filter(owner_id=owner_id, relative__id_number=relative_id_number, state__in=OPEN_STATES)
        .order_by("pk")
        .first()
    )


def insured_person_matches(*, id_number: str, name: str) -> bool:
    """R11 as ``binding_submit`` checks it: an insured person with this ID number has this name."""
    person = InsuredPerson.objects.filter(id_number=id_number).only("name").first()
    return person is not None and person.name.strip() == " ".join(name.split())


def binding_events(*, binding: Binding) -> list[BindingEvent]:
    """R25: the binding's history, oldest first, with who acted (one query)."""
    return list(BindingEvent.objects.filter(binding=binding).select_related("actor").order_by("created_at", "pk"))


def binding_documents_current(*, binding: Binding) -> list[BindingDocument]:
    """The latest document of each kind (a re-upload replaces a rejected one), in kind order (one query)."""
    latest: dict[str, BindingDocument] = {}
    for document in BindingDocument.objects.filter(binding=binding).order_by("kind", "-created_at", "-pk"):
        latest.setdefault(document.kind, document)
    return list(latest.values())


def binding_letter_document(*, binding_id: int) -> BindingDocument | None:
    """The binding's stored commitment letter (R20), the latest if there are several."""
    return (
        BindingDocument.objects.filter(binding_id=binding_id, kind=DocumentKind.COMMITMENT_LETTER)
        .order_by("-created_at", "-pk")
        .first()
    )

"""Who may share with whom (R10–R16, R23): one pure function, shared by C3, the pre-check and the pipeline.

Plain values in, a decision out: no ORM, no clock, no settings. The caller loads the facts
(``family.selectors.eligibility_facts``) and passes the decision date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from accounts.identity import age_on
from family.rules import select_policy

DEFAULT_FACE_AGE = 16  # R23, used only when no policy is in force
PARENT_GAP_YEARS = 15  # R16
GRANDPARENT_GAP_YEARS = 30  # R16
MARRIAGE_AGE = {"M": 22, "F": 20}  # R16, Civil Code art. 1047

RELATION_WORDS = {
    "spouse": ("配偶", "spouse"),
    "parent": ("父母", "parent"),
    "child": ("子女", "child"),
    "sibling": ("兄弟姐妹", "sibling"),
    "grandparent": ("祖父母、外祖父母", "grandparent"),
    "grandchild": ("孙子女、外孙子女", "grandchild"),
}


class PolicyFacts(Protocol):
    """What the rules need of a policy version (a ``PolicyVersion`` row fits)."""

    region_id: str | None
    effective_from: date
    effective_to: date | None
    relations: list[str]
    cross_province: bool
    max_members: int | None
    multiple_owners: bool
    face_age: int
    min_owner_balance: Decimal | None

    @property
    def label(self) -> str: ...


@dataclass(frozen=True)
class PersonFacts:
    """What the rules know of one side. ``known`` is False for an ID number nobody is insured under."""

    id_number: str
    birth_date: date
    sex: str
    known: bool = False
    is_employee: bool = False
    is_active: bool = False
    region_code: str | None = None
    province_code: str | None = None
    balance: Decimal | None = None


@dataclass(frozen=True)
class NetworkFacts:
    """R15: the owner's network and the relative's other networks, as they stand."""

    owner_member_count: int = 0
    relative_owner_count: int = 0  # active networks the relative is in with other owners


@dataclass(frozen=True)
class Reason:
    rule: str
    message: str


@dataclass
class Decision:
    eligible: bool
    needs_face_verification: bool
    needs_review: bool
    policy_version: str | None
    reasons: list[Reason] = field(default_factory=list)

    @property
    def refusals(self) -> list[Reason]:
        return [r for r in self.reasons if r.rule != "R16"]

    @property
    def doubts(self) -> list[Reason]:
        return [r for r in self.reasons if r.rule == "R16"]


def relation_label(relation: str) -> str:
    """The relationship in the words of the active language (配偶 / spouse)."""
    chinese, english = RELATION_WORDS.get(relation, (relation, relation))
    return chinese if (get_language() or "zh-hans").startswith("zh") else english


def decide(
    *,
    owner: PersonFacts,
    relative: PersonFacts,
    relationship: str,
    on_date: date,
    owner_versions: Sequence[PolicyFacts],
    relative_versions: Sequence[PolicyFacts] = (),
    network: NetworkFacts | None = None,
) -> Decision:
    """R10–R16 and R23 on ``on_date``: every refusing rule and every doubt, with the policy version used.

    ``owner_versions`` are the versions that can apply to the owner's region (its own and the national
    ones); ``relative_versions`` the same for the relative's region (needed for R14 only).
    """
    network = network or NetworkFacts()
    owner_region = owner.region_code if owner.known else None
    policy = select_policy(owner_versions, owner_region or "*", on_date)
    reasons: list[Reason] = []
    reasons += check_owner(owner)
    reasons += check_relative(owner, relative)
    reasons += check_relationship(policy, relationship, owner_region, owner_versions, on_date)
    if owner.known and relative.known:
        relative_policy = select_policy(relative_versions, relative.region_code or "*", on_date)
        reasons += check_cross_province(owner, relative, policy, relative_policy)
    if owner.known and policy is not None:
        reasons += check_network_limits(owner, policy, network)
    reasons += check_plausibility(owner, relative, relationship, on_date)
    face_age = policy.face_age if policy is not None else DEFAULT_FACE_AGE
    refusing = [r for r in reasons if r.rule != "R16"]
    return Decision(
        eligible=not refusing,
        needs_face_verification=age_on(relative.birth_date, on_date) >= face_age,
        needs_review=any(r.rule == "R16" for r in reasons),
        policy_version=policy.label if policy is not None else None,
        reasons=reasons,
    )


def check_owner(owner: PersonFacts) -> list[Reason]:
    """R10: the owner is in 职工医保, insured and active."""
    if not owner.known or not owner.is_employee:
        return [Reason("R10", _("The account owner must be insured in employee medical insurance (职工医保)."))]
    if not owner.is_active:
        return [Reason("R10", _("The account owner's insurance is suspended (停保); sharing needs it active."))]
    return []


def check_relative(owner: PersonFacts, relative: PersonFacts) -> list[Reason]:
    """R11: the relative is insured (either type), active, and not the owner."""
    if relative.id_number == owner.id_number:
        return [Reason("R11", _("An owner cannot share with himself or herself."))]
    if not relative.known:
        return [Reason("R11", _("The relative must be insured in basic medical insurance; no insured person matches."))]
    if not relative.is_active:
        return [Reason("R11", _("The relative's insurance is suspended (停保); sharing needs it active."))]
    return []


def check_relationship(
    policy: PolicyFacts | None,
    relationship: str,
    region_code: str | None,
    versions: Sequence[PolicyFacts],
    on_date: date,
) -> list[Reason]:
    """R12, R13: the relationship must be allowed by the policy in force; say when it would be."""
    words = relation_label(relationship)
    if policy is None:
        return [Reason("R12", _("No sharing policy is in force on %(date)s.") % {"date": on_date.isoformat()})]
    if relationship in policy.relations:
        return []
    message = _("%(relation)s is not allowed by policy %(policy)s.") % {"relation": words, "policy": policy.label}
    allowed_from = first_date_allowed(versions, region_code or "*", relationship, on_date)
    if allowed_from is not None:
        message += " " + _("Region %(region)s allows it from %(date)s.") % {
            "region": region_code or "*",
            "date": allowed_from.isoformat(),
        }
    return [Reason("R12", message)]


def first_date_allowed(
    versions: Sequence[PolicyFacts], region_code: str, relationship: str, after: date
) -> date | None:
    """R13: the first day after ``after`` on which the policy in force allows the relationship, if any."""
    boundaries = sorted(
        {v.effective_from for v in versions if v.effective_from > after}
        | {v.effective_to for v in versions if v.effective_to is not None and v.effective_to > after}
    )
    for day in boundaries:
        policy = select_policy(versions, region_code, day)
        if policy is not None and relationship in policy.relations:
            return day
    return None


def check_cross_province(
    owner: PersonFacts,
    relative: PersonFacts,
    owner_policy: PolicyFacts | None,
    relative_policy: PolicyFacts | None,
) -> list[Reason]:
    """R14: across provinces, both regions must have cross-province sharing opened on the date."""
    if not owner.province_code or owner.province_code == relative.province_code:
        return []
    closed = []
    if owner_policy is None or not owner_policy.cross_province:
        closed.append(owner.region_code)
    if relative_policy is None or not relative_policy.cross_province:
        closed.append(relative.region_code)
    if not closed:
        return []
    return [
        Reason(
            "R14",
            _("Sharing across provinces needs both regions opened; not opened on this date: %(regions)s.")
            % {"regions": ", ".join(code or "?" for code in closed)},
        )
    ]


def check_network_limits(owner: PersonFacts, policy: PolicyFacts, network: NetworkFacts) -> list[Reason]:
    """R15: the owner's region's limits: members, one network per relative, minimum balance."""
    reasons = []
    region = policy.region_id or "*"
    if policy.max_members is not None and network.owner_member_count >= policy.max_members:
        reasons.append(
            Reason(
                "R15",
                _("Region %(region)s allows at most %(count)d relatives per owner; this owner has %(have)d.")
                % {"region": region, "count": policy.max_members, "have": network.owner_member_count},
            )
        )
    if not policy.multiple_owners and network.relative_owner_count > 0:
        reasons.append(
            Reason(
                "R15",
                _("Region %(region)s allows a relative in one family network only; this relative is already in one.")
                % {"region": region},
            )
        )
    if policy.min_owner_balance is not None and (owner.balance or Decimal(0)) < policy.min_owner_balance:
        reasons.append(
            Reason(
                "R15",
                _("Region %(region)s asks for an owner balance of at least ¥%(amount)s.")
                % {"region": region, "amount": f"{policy.min_owner_balance:,.2f}"},
            )
        )
    return reasons


def check_plausibility(owner: PersonFacts, relative: PersonFacts, relationship: str, on_date: date) -> list[Reason]:
    """R16: doubts from the two ID numbers' birth dates and sexes; they ask a reviewer to look, never refuse."""
    if owner.id_number == relative.id_number:
        return []
    older, younger, gap = None, None, None
    if relationship == "parent":
        older, younger, gap = relative, owner, PARENT_GAP_YEARS
    elif relationship == "child":
        older, younger, gap = owner, relative, PARENT_GAP_YEARS
    elif relationship == "grandparent":
        older, younger, gap = relative, owner, GRANDPARENT_GAP_YEARS
    elif relationship == "grandchild":
        older, younger, gap = owner, relative, GRANDPARENT_GAP_YEARS
    if gap is not None:
        if older.birth_date >= younger.birth_date or age_on(older.birth_date, younger.birth_date) < gap:
            return [
                Reason(
                    "R16",
                    _("A %(relation)s is expected to be at least %(years)d years older; the ID numbers say otherwise.")
                    % {
                        "relation": relation_label("parent" if gap == PARENT_GAP_YEARS else "grandparent"),
                        "years": gap,
                    },
                )
            ]
        return []
    if relationship == "spouse":
        doubts = []
        if owner.sex == relative.sex:
            doubts.append(
                Reason("R16", _("The two ID numbers are of the same sex; a reviewer will look at the marriage."))
            )
        for person in (owner, relative):
            if age_on(person.birth_date, on_date) < MARRIAGE_AGE[person.sex]:
                doubts.append(
                    Reason("R16", _("One of the spouses is under the legal marriage age (men 22, women 20)."))
                )
                break
        return doubts
    return []


def decide_newborn(
    *, owner: PersonFacts, on_date: date, owner_versions: Sequence[PolicyFacts], network: NetworkFacts | None = None
) -> Decision:
    """R21 with R10, R12, R15: a newborn without an ID number yet is the owner's child.

    R11 and R16 wait for the newborn's ID number; the mother's face verification completes the binding.
    """
    network = network or NetworkFacts()
    owner_region = owner.region_code if owner.known else None
    policy = select_policy(owner_versions, owner_region or "*", on_date)
    reasons = check_owner(owner) + check_relationship(policy, "child", owner_region, owner_versions, on_date)
    if owner.known and policy is not None:
        reasons += check_network_limits(owner, policy, network)
    return Decision(
        eligible=not reasons,
        needs_face_verification=True,
        needs_review=False,
        policy_version=policy.label if policy is not None else None,
        reasons=reasons,
    )

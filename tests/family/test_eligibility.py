"""R10–R16, R23: the pure eligibility rules (``family.eligibility``) on plain policy objects and facts.

No database, no clock: every test passes the decision date and the policy versions it means.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from django.utils import translation

from accounts.identity import id_check_character
from family.eligibility import (
    NetworkFacts,
    PersonFacts,
    check_cross_province,
    check_network_limits,
    check_owner,
    check_plausibility,
    check_relationship,
    check_relative,
    decide,
)

CORE = ("spouse", "parent", "child")
CLOSE = (*CORE, "sibling", "grandparent", "grandchild")
SUZHOU, SUZHOU_PROVINCE = "320500", "320000"
NANJING = "320100"  # same province as Suzhou
SHIJIAZHUANG, HEBEI = "130100", "130000"
BEIJING, BEIJING_PROVINCE = "110100", "110000"
FUZHOU, FUJIAN = "350100", "350000"


@dataclass(frozen=True)
class Policy:
    """A policy version as the rules see it (the attributes of ``PolicyVersion``, no database)."""

    region_id: str | None = None
    effective_from: date = date(2021, 4, 13)
    effective_to: date | None = None
    relations: tuple[str, ...] = CORE
    cross_province: bool = False
    max_members: int | None = None
    multiple_owners: bool = False
    face_age: int = 16
    min_owner_balance: Decimal | None = None

    @property
    def label(self) -> str:
        return f"{self.region_id or '*'}@{self.effective_from.isoformat()}"


# R12 default national policy: core relatives from 2021-04-13, close relatives from 2024-07-01.
NATIONAL_CORE = Policy(effective_from=date(2021, 4, 13), effective_to=date(2024, 7, 1), relations=CORE)
NATIONAL_CLOSE = Policy(effective_from=date(2024, 7, 1), relations=CLOSE)
NATIONAL = (NATIONAL_CORE, NATIONAL_CLOSE)

_sequence = iter(range(1, 10_000))


def id_number(birth: date, *, male: bool = True, division: str = "320505") -> str:
    """A valid ID number (R1) for this birth date and sex (R2: an odd sequence is male)."""
    seq = next(_sequence) * 2 % 1000 + (1 if male else 0)
    body = f"{division}{birth:%Y%m%d}{seq:03d}"
    return body + id_check_character(body)


def person(
    birth: date = date(1980, 3, 15),
    *,
    male: bool = True,
    known: bool = True,
    employee: bool = True,
    active: bool = True,
    region: str = SUZHOU,
    province: str = SUZHOU_PROVINCE,
    balance: Decimal | None = Decimal("1500.00"),
    number: str | None = None,
) -> PersonFacts:
    """An insured person's facts; ``known=False`` is only what the ID number says."""
    number = number or id_number(birth, male=male)
    if not known:
        return PersonFacts(id_number=number, birth_date=birth, sex="M" if male else "F")
    return PersonFacts(
        id_number=number,
        birth_date=birth,
        sex="M" if male else "F",
        known=True,
        is_employee=employee,
        is_active=active,
        region_code=region,
        province_code=province,
        balance=balance,
    )


def rules_of(decision) -> list[str]:
    return [reason.rule for reason in decision.reasons]


def decide_on(
    on_date: date,
    *,
    owner: PersonFacts | None = None,
    relative: PersonFacts | None = None,
    relationship: str = "spouse",
    owner_versions=NATIONAL,
    relative_versions=None,
    network: NetworkFacts | None = None,
):
    """``decide`` with a plausible married couple of Suzhou by default."""
    return decide(
        owner=owner or person(date(1980, 3, 15), male=True),
        relative=relative or person(date(1982, 6, 20), male=False),
        relationship=relationship,
        on_date=on_date,
        owner_versions=owner_versions,
        relative_versions=owner_versions if relative_versions is None else relative_versions,
        network=network,
    )


TODAY = date(2026, 3, 10)


def test_clear_case_is_eligible_with_no_reasons():
    decision = decide_on(TODAY)

    assert decision.eligible is True
    assert decision.needs_review is False
    assert decision.reasons == []
    assert decision.policy_version == "*@2024-07-01"


# R10: the owner is in 职工医保, insured and active.


def test_r10_resident_owner_is_refused():
    decision = decide_on(TODAY, owner=person(employee=False))

    assert decision.eligible is False
    assert rules_of(decision) == ["R10"]


def test_r10_suspended_owner_is_refused():
    decision = decide_on(TODAY, owner=person(active=False))

    assert decision.eligible is False
    assert rules_of(decision) == ["R10"]
    with translation.override("en"):
        assert "suspended" in check_owner(person(active=False))[0].message


def test_r10_unknown_owner_is_refused_and_no_network_limit_is_claimed():
    tight = Policy(relations=CLOSE, max_members=0, min_owner_balance=Decimal("2000"))

    decision = decide_on(TODAY, owner=person(known=False), owner_versions=(tight,))

    assert decision.eligible is False
    assert rules_of(decision) == ["R10"]


def test_r10_active_employee_owner_passes():
    assert check_owner(person()) == []


# R11: the relative is insured (either type), active, and not the owner.


def test_r11_unknown_relative_is_refused():
    decision = decide_on(TODAY, relative=person(date(1982, 6, 20), male=False, known=False))

    assert decision.eligible is False
    assert rules_of(decision) == ["R11"]


def test_r11_suspended_relative_is_refused():
    decision = decide_on(TODAY, relative=person(date(1982, 6, 20), male=False, active=False))

    assert decision.eligible is False
    assert rules_of(decision) == ["R11"]


def test_r11_resident_relative_is_fine():
    assert check_relative(person(), person(date(1982, 6, 20), male=False, employee=False)) == []


def test_r11_owner_cannot_be_his_own_relative():
    owner = person()

    decision = decide_on(TODAY, owner=owner, relative=owner, relationship="spouse")

    assert decision.eligible is False
    # R16 (same sex, same person) is not a doubt here: only R11 speaks.
    assert rules_of(decision) == ["R11"]
    assert decision.needs_review is False


# R12: relationships allowed by the policy in force for the owner's region on the decision date.


@pytest.mark.parametrize("relationship", CORE)
def test_r12_core_relatives_allowed_before_and_after_2024_07_01(relationship):
    for day, label in ((date(2024, 6, 30), "*@2021-04-13"), (date(2024, 7, 1), "*@2024-07-01")):
        reasons = check_relationship(
            NATIONAL_CORE if day < date(2024, 7, 1) else NATIONAL_CLOSE, relationship, SUZHOU, NATIONAL, day
        )
        assert reasons == [], (relationship, day)
        assert (
            decide_on(day, relationship=relationship, owner=person(), relative=plausible(relationship)).policy_version
            == label
        )


@pytest.mark.parametrize("relationship", ["sibling", "grandparent", "grandchild"])
def test_r12_close_relatives_refused_the_day_before_2024_07_01(relationship):
    decision = decide_on(date(2024, 6, 30), relationship=relationship, relative=plausible(relationship))

    assert decision.eligible is False
    assert rules_of(decision) == ["R12"]
    assert decision.policy_version == "*@2021-04-13"


@pytest.mark.parametrize("relationship", ["sibling", "grandparent", "grandchild"])
def test_r12_close_relatives_allowed_from_2024_07_01_the_day_itself(relationship):
    decision = decide_on(date(2024, 7, 1), relationship=relationship, relative=plausible(relationship))

    assert decision.eligible is True
    assert decision.reasons == []
    # effective_to is exclusive: 2024-07-01 already belongs to the next version.
    assert decision.policy_version == "*@2024-07-01"


def test_r12_effective_to_is_exclusive_even_without_a_successor():
    """On its ``effective_to`` day a version is over: the region falls back to the national version."""
    suzhou_core = Policy(region_id=SUZHOU, effective_from=date(2021, 4, 13), effective_to=date(2024, 7, 1))
    national_close = (Policy(effective_from=date(2021, 4, 13), relations=CLOSE),)
    sibling = plausible("sibling")

    last_day = decide_on(
        date(2024, 6, 30), relationship="sibling", relative=sibling, owner_versions=(*national_close, suzhou_core)
    )
    day_after = decide_on(
        date(2024, 7, 1), relationship="sibling", relative=sibling, owner_versions=(*national_close, suzhou_core)
    )
    nothing_after = decide_on(date(2024, 7, 1), relationship="sibling", relative=sibling, owner_versions=(suzhou_core,))

    assert (last_day.policy_version, rules_of(last_day)) == ("320500@2021-04-13", ["R12"])
    assert (day_after.policy_version, day_after.eligible) == ("*@2021-04-13", True)
    assert nothing_after.policy_version is None


def test_r12_region_own_version_wins_over_the_national_one():
    # Fuzhou adopted close relatives later than the national date.
    fuzhou = (
        Policy(region_id=FUZHOU, effective_from=date(2021, 4, 13), effective_to=date(2025, 1, 1), relations=CORE),
        Policy(region_id=FUZHOU, effective_from=date(2025, 1, 1), relations=CLOSE),
    )
    owner = person(region=FUZHOU, province=FUJIAN)
    sibling = person(date(1983, 1, 1), region=FUZHOU, province=FUJIAN)

    refused = decide_on(
        date(2024, 8, 1), owner=owner, relative=sibling, relationship="sibling", owner_versions=(*NATIONAL, *fuzhou)
    )
    allowed = decide_on(
        date(2025, 1, 1), owner=owner, relative=sibling, relationship="sibling", owner_versions=(*NATIONAL, *fuzhou)
    )

    assert rules_of(refused) == ["R12"]
    assert refused.policy_version == "350100@2021-04-13"
    assert allowed.eligible is True
    assert allowed.policy_version == "350100@2025-01-01"


def test_r12_no_policy_in_force_refuses_and_names_no_version():
    with translation.override("en"):
        decision = decide_on(date(2021, 4, 12))

    assert decision.eligible is False
    assert decision.policy_version is None
    assert rules_of(decision) == ["R12"]
    assert decision.reasons[0].message == "No sharing policy is in force on 2021-04-12."


# R13: a refusal names the policy version and, if ever, the date the region allows it.


def test_r13_refusal_names_the_version_and_the_date_the_region_allows_it():
    suzhou = (
        Policy(region_id=SUZHOU, effective_from=date(2021, 4, 13), effective_to=date(2024, 7, 1), relations=CORE),
        Policy(region_id=SUZHOU, effective_from=date(2024, 7, 1), relations=CLOSE),
    )
    with translation.override("en"):
        decision = decide_on(
            date(2024, 6, 15),
            relationship="sibling",
            relative=plausible("sibling"),
            owner_versions=(*NATIONAL, *suzhou),
        )

    assert [(r.rule, r.message) for r in decision.reasons] == [
        ("R12", "sibling is not allowed by policy 320500@2021-04-13. Region 320500 allows it from 2024-07-01.")
    ]


def test_r13_region_that_adopts_later_says_its_own_date_not_the_national_one():
    fuzhou = (
        Policy(region_id=FUZHOU, effective_from=date(2021, 4, 13), effective_to=date(2025, 3, 1), relations=CORE),
        Policy(region_id=FUZHOU, effective_from=date(2025, 3, 1), relations=CLOSE),
    )
    owner = person(region=FUZHOU, province=FUJIAN)
    with translation.override("en"):
        reasons = check_relationship(fuzhou[0], "grandparent", FUZHOU, (*NATIONAL, *fuzhou), date(2024, 9, 1))
        decision = decide_on(
            date(2024, 9, 1),
            owner=owner,
            relationship="grandparent",
            relative=person(date(1940, 1, 1), region=FUZHOU, province=FUJIAN),
            owner_versions=(*NATIONAL, *fuzhou),
        )

    assert reasons[0].message == (
        "grandparent is not allowed by policy 350100@2021-04-13. Region 350100 allows it from 2025-03-01."
    )
    assert decision.reasons == reasons


def test_r13_says_nothing_about_a_date_when_never_allowed():
    only_core = (Policy(relations=CORE),)
    with translation.override("en"):
        decision = decide_on(TODAY, relationship="sibling", relative=plausible("sibling"), owner_versions=only_core)

    assert [(r.rule, r.message) for r in decision.reasons] == [
        ("R12", "sibling is not allowed by policy *@2021-04-13.")
    ]


def test_r13_names_the_relationship_in_the_users_language():
    with translation.override("zh-hans"):
        chinese = check_relationship(NATIONAL_CORE, "sibling", None, NATIONAL, date(2024, 6, 1))[0].message
    with translation.override("en"):
        english = check_relationship(NATIONAL_CORE, "sibling", None, NATIONAL, date(2024, 6, 1))[0].message

    assert "兄弟姐妹" in chinese and "sibling" not in chinese
    assert "sibling" in english and "兄弟姐妹" not in english
    for message in (chinese, english):
        assert "*@2021-04-13" in message
        assert "2024-07-01" in message


# R14: across provinces only when both regions have it opened on the decision date.

SUZHOU_OPEN = Policy(region_id=SUZHOU, effective_from=date(2024, 12, 2), relations=CLOSE, cross_province=True)
HEBEI_OPEN = Policy(region_id=SHIJIAZHUANG, effective_from=date(2024, 12, 2), relations=CLOSE, cross_province=True)


def test_r14_same_province_needs_no_check():
    owner = person()
    relative = person(date(1982, 6, 20), male=False, region=NANJING, province=SUZHOU_PROVINCE)

    decision = decide_on(TODAY, owner=owner, relative=relative)  # national: cross-province closed

    assert decision.eligible is True
    assert check_cross_province(owner, relative, NATIONAL_CLOSE, NATIONAL_CLOSE) == []


def test_r14_both_regions_opened_is_allowed():
    relative = person(date(1982, 6, 20), male=False, region=SHIJIAZHUANG, province=HEBEI)

    decision = decide_on(
        TODAY, relative=relative, owner_versions=(*NATIONAL, SUZHOU_OPEN), relative_versions=(*NATIONAL, HEBEI_OPEN)
    )

    assert decision.eligible is True
    assert decision.reasons == []


def test_r14_one_region_closed_is_refused_and_named():
    relative = person(date(1982, 6, 20), male=False, region=BEIJING, province=BEIJING_PROVINCE)

    with translation.override("en"):
        decision = decide_on(
            TODAY, relative=relative, owner_versions=(*NATIONAL, SUZHOU_OPEN), relative_versions=NATIONAL
        )

    assert decision.eligible is False
    assert rules_of(decision) == ["R14"]
    message = decision.reasons[0].message
    assert BEIJING in message
    assert SUZHOU not in message


def test_r14_owner_region_closed_is_named_too():
    relative = person(date(1982, 6, 20), male=False, region=SHIJIAZHUANG, province=HEBEI)
    suzhou_closed = Policy(region_id=SUZHOU, effective_from=date(2024, 7, 1), relations=CLOSE)

    decision = decide_on(
        TODAY, relative=relative, owner_versions=(*NATIONAL, suzhou_closed), relative_versions=(*NATIONAL, HEBEI_OPEN)
    )

    assert rules_of(decision) == ["R14"]
    assert SUZHOU in decision.reasons[0].message
    assert SHIJIAZHUANG not in decision.reasons[0].message


def test_r14_relative_region_without_versions_falls_back_to_the_national_one():
    relative = person(date(1982, 6, 20), male=False, region=BEIJING, province=BEIJING_PROVINCE)
    national_opened = Policy(effective_from=date(2026, 1, 9), relations=CLOSE, cross_province=True)
    national = (
        NATIONAL_CORE,
        Policy(effective_from=date(2024, 7, 1), effective_to=date(2026, 1, 9), relations=CLOSE),
        national_opened,
    )

    before = decide_on(
        date(2026, 1, 8), relative=relative, owner_versions=(*national, SUZHOU_OPEN), relative_versions=national
    )
    after = decide_on(
        date(2026, 1, 9), relative=relative, owner_versions=(*national, SUZHOU_OPEN), relative_versions=national
    )

    assert rules_of(before) == ["R14"]
    assert BEIJING in before.reasons[0].message
    assert after.eligible is True


def test_r14_is_not_judged_for_an_unknown_relative():
    relative = person(date(1982, 6, 20), male=False, known=False)

    assert rules_of(decide_on(TODAY, relative=relative)) == ["R11"]


# R15: network limits of the owner's region.


def test_r15_max_members_reached_is_refused_naming_limit_and_region():
    policy = Policy(region_id=SUZHOU, relations=CLOSE, max_members=2)
    with translation.override("en"):
        refused = check_network_limits(person(), policy, NetworkFacts(owner_member_count=2))
        decision = decide_on(TODAY, owner_versions=(policy,), network=NetworkFacts(owner_member_count=2))

    assert [r.rule for r in refused] == ["R15"]
    assert refused[0].message == "Region 320500 allows at most 2 relatives per owner; this owner has 2."
    assert decision.eligible is False
    assert decision.reasons == refused


def test_r15_below_max_members_is_allowed():
    policy = Policy(region_id=SUZHOU, relations=CLOSE, max_members=2)

    assert check_network_limits(person(), policy, NetworkFacts(owner_member_count=1)) == []


def test_r15_relative_in_another_network_is_refused_when_one_owner_only():
    policy = Policy(region_id=SUZHOU, relations=CLOSE, multiple_owners=False)

    decision = decide_on(TODAY, owner_versions=(policy,), network=NetworkFacts(relative_owner_count=1))

    assert decision.eligible is False
    assert rules_of(decision) == ["R15"]
    assert SUZHOU in decision.reasons[0].message


def test_r15_relative_in_another_network_is_allowed_when_region_allows_several_owners():
    policy = Policy(region_id=SUZHOU, relations=CLOSE, multiple_owners=True)

    decision = decide_on(TODAY, owner_versions=(policy,), network=NetworkFacts(relative_owner_count=1))

    assert decision.eligible is True


@pytest.mark.parametrize(
    ("balance", "refused"),
    [(Decimal("1999.99"), True), (Decimal("2000.00"), False), (Decimal("2000.01"), False), (None, True)],
)
def test_r15_min_owner_balance(balance, refused):
    policy = Policy(region_id=FUZHOU, relations=CLOSE, min_owner_balance=Decimal("2000"))
    owner = person(region=FUZHOU, province=FUJIAN, balance=balance)

    with translation.override("en"):
        decision = decide_on(
            TODAY,
            owner=owner,
            owner_versions=(policy,),
            relative=person(date(1982, 6, 20), male=False, region=FUZHOU, province=FUJIAN),
        )

    assert decision.eligible is not refused
    if refused:
        assert [(r.rule, r.message) for r in decision.reasons] == [
            ("R15", "Region 350100 asks for an owner balance of at least ¥2,000.00.")
        ]


def test_r15_limits_are_those_of_the_owners_region_not_the_relatives():
    relative = person(date(1982, 6, 20), male=False, region=NANJING, province=SUZHOU_PROVINCE)
    nanjing_tight = Policy(region_id=NANJING, relations=CLOSE, max_members=0, min_owner_balance=Decimal("9999"))

    decision = decide_on(
        TODAY,
        relative=relative,
        owner_versions=NATIONAL,
        relative_versions=(*NATIONAL, nanjing_tight),
        network=NetworkFacts(owner_member_count=3),
    )

    assert decision.eligible is True


def test_r15_all_limits_are_reported_together():
    policy = Policy(region_id=SUZHOU, relations=CLOSE, max_members=1, min_owner_balance=Decimal("2000"))

    decision = decide_on(
        TODAY,
        owner=person(balance=Decimal("10")),
        owner_versions=(policy,),
        network=NetworkFacts(owner_member_count=1, relative_owner_count=1),
    )

    assert rules_of(decision) == ["R15", "R15", "R15"]


# R16: kinship plausibility from the two ID numbers; a doubt asks for review, never refuses.


def plausible(relationship: str, owner_birth: date = date(1980, 3, 15)) -> PersonFacts:
    """A relative whose ID number fits ``relationship`` to an owner born ``owner_birth``."""
    births = {
        "spouse": (date(1982, 6, 20), False),
        "parent": (date(1950, 5, 1), True),
        "child": (date(2010, 5, 1), True),
        "sibling": (date(1983, 1, 1), True),
        "grandparent": (date(1925, 5, 1), True),
        "grandchild": (date(2015, 5, 1), True),
    }
    birth, male = births[relationship]
    return person(birth, male=male, employee=False)


def doubt(owner: PersonFacts, relative: PersonFacts, relationship: str, on_date: date = TODAY) -> list[str]:
    return [r.rule for r in check_plausibility(owner, relative, relationship, on_date)]


def test_r16_parent_exactly_15_years_older_is_plausible():
    owner = person(date(1980, 3, 15))

    assert doubt(owner, person(date(1965, 3, 15)), "parent") == []
    assert doubt(owner, person(date(1965, 3, 16)), "parent") == ["R16"]


def test_r16_child_15_years_younger_boundary():
    owner = person(date(1980, 3, 15))

    assert doubt(owner, person(date(1995, 3, 15)), "child") == []
    assert doubt(owner, person(date(1995, 3, 14)), "child") == ["R16"]


def test_r16_parent_younger_than_child_is_a_doubt():
    assert doubt(person(date(1980, 3, 15)), person(date(1990, 1, 1)), "parent") == ["R16"]


def test_r16_grandparent_exactly_30_years_older_is_plausible():
    owner = person(date(1980, 3, 15))

    assert doubt(owner, person(date(1950, 3, 15)), "grandparent") == []
    assert doubt(owner, person(date(1950, 3, 16)), "grandparent") == ["R16"]
    assert doubt(owner, person(date(2010, 3, 15)), "grandchild") == []
    assert doubt(owner, person(date(2010, 3, 14)), "grandchild") == ["R16"]


def test_r16_siblings_have_no_age_rule():
    assert doubt(person(date(1980, 3, 15)), person(date(2012, 1, 1)), "sibling") == []


def test_r16_husband_22_on_the_decision_date_is_of_age():
    husband_birth = date(2004, 3, 10)
    wife = person(date(2000, 1, 1), male=False)
    owner = person(husband_birth, male=True)

    assert doubt(owner, wife, "spouse", on_date=date(2026, 3, 10)) == []
    assert doubt(owner, wife, "spouse", on_date=date(2026, 3, 9)) == ["R16"]


def test_r16_wife_20_on_the_decision_date_is_of_age():
    owner = person(date(1990, 1, 1), male=True)
    wife = person(date(2006, 3, 10), male=False)

    assert doubt(owner, wife, "spouse", on_date=date(2026, 3, 10)) == []
    assert doubt(owner, wife, "spouse", on_date=date(2026, 3, 9)) == ["R16"]


def test_r16_a_woman_of_21_is_of_age_where_a_man_of_21_is_not():
    """Marriage ages differ by sex (men 22, women 20): the sex comes from the ID number."""
    on_date = date(2026, 3, 10)
    man_21 = person(date(2005, 1, 1), male=True)
    woman_21 = person(date(2005, 1, 1), male=False)

    assert doubt(person(date(1995, 1, 1), male=False), man_21, "spouse", on_date) == ["R16"]
    assert doubt(person(date(1995, 1, 1), male=True), woman_21, "spouse", on_date) == []


def test_r16_spouses_of_the_same_sex_are_a_doubt():
    assert doubt(person(male=True), person(date(1982, 6, 20), male=True), "spouse") == ["R16"]
    assert doubt(person(male=False), person(date(1982, 6, 20), male=False), "spouse") == ["R16"]


def test_r16_sets_needs_review_and_never_refuses():
    underage_same_sex = person(date(2008, 1, 1), male=True, employee=False)

    decision = decide_on(TODAY, relative=underage_same_sex, relationship="spouse")

    assert decision.eligible is True
    assert decision.needs_review is True
    assert set(rules_of(decision)) == {"R16"}
    assert decision.refusals == []
    assert len(decision.doubts) == 2  # same sex, and under the marriage age


def test_r16_doubt_comes_with_refusals_without_hiding_them():
    decision = decide_on(TODAY, owner=person(active=False), relative=person(date(1975, 1, 1)), relationship="parent")

    assert decision.eligible is False
    assert rules_of(decision) == ["R10", "R16"]
    assert decision.needs_review is True


def test_r16_is_evaluated_for_unknown_persons_from_their_id_numbers():
    owner = person(date(1980, 3, 15), known=False)
    relative = person(date(1970, 1, 1), known=False)  # a "parent" only ten years older

    decision = decide_on(TODAY, owner=owner, relative=relative, relationship="parent")

    assert rules_of(decision) == ["R10", "R11", "R16"]
    assert decision.needs_review is True


def test_r16_is_never_evaluated_for_the_same_person():
    owner = person(date(1980, 3, 15))

    assert check_plausibility(owner, owner, "parent", TODAY) == []
    assert check_plausibility(owner, owner, "spouse", TODAY) == []


# R23: age branch on the decision date; face age from the policy.


def test_r23_16th_birthday_on_the_decision_date_needs_face():
    relative = person(date(2010, 3, 10), employee=False)

    assert decide_on(date(2026, 3, 10), relative=relative, relationship="child").needs_face_verification is True
    assert decide_on(date(2026, 3, 9), relative=relative, relationship="child").needs_face_verification is False


def test_r23_29_february_birthday_counts_on_28_february_in_other_years():
    relative = person(date(2008, 2, 29), employee=False)
    face_at_17 = (Policy(relations=CLOSE, face_age=17),)

    # 2025 is not a leap year: the 17th birthday is 28 February.
    assert (
        decide_on(
            date(2025, 2, 28), relative=relative, relationship="child", owner_versions=face_at_17
        ).needs_face_verification
        is True
    )
    assert (
        decide_on(
            date(2025, 2, 27), relative=relative, relationship="child", owner_versions=face_at_17
        ).needs_face_verification
        is False
    )
    # 2024 is: the 16th birthday is 29 February itself.
    assert decide_on(date(2024, 2, 28), relative=relative, relationship="child").needs_face_verification is False
    assert decide_on(date(2024, 2, 29), relative=relative, relationship="child").needs_face_verification is True


def test_r23_face_age_comes_from_the_owners_policy():
    relative = person(date(2011, 1, 1), employee=False)  # 15 on TODAY
    face_at_14 = (Policy(region_id=SUZHOU, relations=CLOSE, face_age=14),)

    assert decide_on(TODAY, relative=relative, relationship="child").needs_face_verification is False
    assert (
        decide_on(TODAY, relative=relative, relationship="child", owner_versions=face_at_14).needs_face_verification
        is True
    )


def test_r23_without_a_policy_the_face_age_is_16():
    relative = person(date(2005, 1, 1), employee=False)

    decision = decide_on(date(2021, 1, 1), relative=relative, relationship="child")

    assert decision.policy_version is None
    assert decision.needs_face_verification is True


def test_r23_face_verification_does_not_make_anyone_ineligible():
    decision = decide_on(TODAY, relative=person(date(1950, 5, 1), employee=False), relationship="parent")

    assert decision.eligible is True
    assert decision.needs_face_verification is True

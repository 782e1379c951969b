"""C2, R12, R14, R37: which policy version is in force, on the shipped default policy and on plain objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest

from accounts.models import Region
from family.models import PolicyVersion
from family.rules import select_policy
from family.selectors import policy_in_force, policy_versions_for_region

CORE = ["spouse", "parent", "child"]
CLOSE = [*CORE, "sibling", "grandparent", "grandchild"]

# R14: the first 31 pooling regions to open cross-province sharing, with their division codes.
PILOT_REGIONS = {
    "130100": "石家庄市",
    "130200": "唐山市",
    "130300": "秦皇岛市",
    "130400": "邯郸市",
    "130500": "邢台市",
    "130600": "保定市",
    "130700": "张家口市",
    "130800": "承德市",
    "130900": "沧州市",
    "131000": "廊坊市",
    "131100": "衡水市",
    "130181": "辛集市",
    "130682": "定州市",
    "133100": "雄安新区",
    "139900": "河北省本级",
    "340400": "淮南市",
    "320500": "苏州市",
    "519900": "四川省本级",
    "510100": "成都市",
    "511600": "广安市",
    "500235": "云阳县",
    "622900": "临夏回族自治州",
    "420600": "襄阳市",
    "421100": "黄冈市",
    "421200": "咸宁市",
    "421300": "随州市",
    "422800": "恩施土家族苗族自治州",
    "429005": "潜江市",
    "410100": "郑州市",
    "411500": "信阳市",
    "371400": "德州市",
}


def in_force(region_code: str, on_date: date) -> PolicyVersion | None:
    return policy_in_force(region_code=region_code, on_date=on_date)


# The shipped default policy, as the data migration left it.


def test_r12_national_policy_before_2024_07_01_allows_core_relatives_only(db):
    version = in_force("330100", date(2024, 6, 30))  # 杭州: no versions of its own

    assert version.label == "*@2021-04-13"
    assert version.relations == CORE
    assert version.cross_province is False


def test_r12_close_relatives_from_2024_07_01_inclusive(db):
    version = in_force("330100", date(2024, 7, 1))

    assert version.label == "*@2024-07-01"
    assert version.relations == CLOSE


def test_r12_effective_to_is_exclusive(db):
    """The core version ends on 2024-07-01: that day already belongs to the next version."""
    core = PolicyVersion.objects.get(region__isnull=True, effective_from=date(2021, 4, 13))
    assert core.effective_to == date(2024, 7, 1)

    assert in_force("330100", date(2024, 7, 1)).pk != core.pk
    assert in_force("330100", date(2024, 6, 30)).pk == core.pk


def test_r12_no_policy_before_2021_04_13(db):
    assert in_force("330100", date(2021, 4, 12)) is None
    assert in_force("320500", date(2021, 4, 12)) is None


def test_r14_pilot_region_has_its_own_versions(db):
    before_pilot = in_force("320500", date(2024, 12, 1))
    pilot = in_force("320500", date(2025, 1, 1))

    assert (before_pilot.label, before_pilot.relations, before_pilot.cross_province) == (
        "320500@2024-07-01",
        CLOSE,
        False,
    )
    assert (pilot.label, pilot.relations, pilot.cross_province) == ("320500@2024-12-02", CLOSE, True)
    assert in_force("320500", date(2024, 6, 30)).label == "320500@2021-04-13"


@pytest.mark.parametrize(("code", "name"), sorted(PILOT_REGIONS.items()))
def test_r14_each_pilot_region_opens_cross_province_on_2024_12_02(db, code, name):
    region = Region.objects.get(code=code)
    assert (region.name, region.province) == (name, code[:2] + "0000")

    assert in_force(code, date(2024, 12, 1)).cross_province is False
    assert in_force(code, date(2024, 12, 2)).label == f"{code}@2024-12-02"
    assert in_force(code, date(2024, 12, 2)).cross_province is True


def test_r14_only_the_31_pilot_regions_open_before_2026(db):
    opened = set(
        PolicyVersion.objects.filter(cross_province=True, effective_from__lt=date(2026, 1, 9)).values_list(
            "region_id", flat=True
        )
    )

    assert opened == set(PILOT_REGIONS)


def test_r37_national_cross_province_opens_on_2026_01_09(db):
    assert in_force("330100", date(2026, 1, 8)).cross_province is False
    nationwide = in_force("330100", date(2026, 1, 9))

    assert (nationwide.label, nationwide.relations, nationwide.cross_province) == ("*@2026-01-09", CLOSE, True)
    assert nationwide.effective_to is None


def test_r15_fuzhou_requires_a_minimum_owner_balance_from_2024_07_01(db):
    version = in_force("350100", date(2024, 7, 1))

    assert version.label == "350100@2024-07-01"
    assert version.min_owner_balance == Decimal("2000.00")
    # Fuzhou's own versions follow the national opening too, rather than hiding it.
    assert in_force("350100", date(2026, 1, 9)).cross_province is True


def test_c2_falls_back_to_national_when_no_own_version_covers_the_date(db):
    """福州 has versions from 2024-07-01 only: before that the national one applies."""
    assert in_force("350100", date(2024, 6, 30)).label == "*@2021-04-13"


def test_c2_unknown_region_gets_the_national_version(db):
    assert in_force("999999", date(2025, 1, 1)).label == "*@2024-07-01"


def test_c2_default_regions_without_own_versions(db):
    for code, name in {"110100": "北京市", "330100": "杭州市", "420100": "武汉市"}.items():
        assert Region.objects.get(code=code).name == name
        assert not PolicyVersion.objects.filter(region_id=code).exists()


def test_c2_policy_in_force_takes_one_query(db, django_assert_num_queries):
    # 1. the region's and the national versions covering the date
    with django_assert_num_queries(1):
        assert in_force("320500", date(2025, 1, 1)).label == "320500@2024-12-02"


def test_c2_versions_for_region_lists_own_and_national_by_start(db):
    labels = [version.label for version in policy_versions_for_region(region_code="350100")]

    assert labels == ["*@2021-04-13", "*@2024-07-01", "350100@2024-07-01", "*@2026-01-09", "350100@2026-01-09"]


# select_policy on plain objects (no database)


@dataclass(frozen=True)
class Version:
    region_id: str | None
    effective_from: date
    effective_to: date | None = None


NATIONAL_CORE = Version(None, date(2021, 4, 13), date(2024, 7, 1))
NATIONAL_CLOSE = Version(None, date(2024, 7, 1))
SUZHOU_2022 = Version("320500", date(2022, 1, 1), date(2023, 1, 1))
SUZHOU_2024 = Version("320500", date(2024, 7, 1))
VERSIONS = [SUZHOU_2024, NATIONAL_CLOSE, SUZHOU_2022, NATIONAL_CORE]


@pytest.mark.parametrize(
    ("region_code", "on_date", "expected"),
    [
        pytest.param("320500", date(2022, 6, 1), SUZHOU_2022, id="own-version"),
        pytest.param("320500", date(2023, 1, 1), NATIONAL_CORE, id="own-version-ended-exclusive"),
        pytest.param("320500", date(2021, 12, 31), NATIONAL_CORE, id="before-own-version"),
        pytest.param("320500", date(2024, 7, 1), SUZHOU_2024, id="own-beats-national-same-day"),
        pytest.param("330100", date(2024, 6, 30), NATIONAL_CORE, id="other-region-national"),
        pytest.param("330100", date(2024, 7, 1), NATIONAL_CLOSE, id="national-start-inclusive"),
        pytest.param("330100", date(2021, 4, 12), None, id="nothing-in-force"),
    ],
)
def test_c2_select_policy_on_plain_objects(region_code, on_date, expected):
    assert select_policy(VERSIONS, region_code, on_date) is expected


def test_c2_select_policy_without_national_versions_is_none_outside_own():
    assert select_policy([SUZHOU_2022], "320500", date(2024, 1, 1)) is None
    assert select_policy([], "320500", date(2024, 1, 1)) is None

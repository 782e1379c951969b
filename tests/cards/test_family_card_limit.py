"""R43: how many relatives a manager may add is the limit of the manager's region policy in force today
(PolicyVersion.family_card_max), or the FAMILY_CARD_MAX_RELATIVES setting (8) where the policy sets none."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from cards.errors import FamilyCardRefused
from cards.models import FamilyCardLink
from cards.selectors import family_card_max_for
from cards.services import family_card_add
from family.models import PolicyVersion
from tests.cards.test_card_pages import client_for, text_of
from tests.factories import InsuredPersonFactory, RegionFactory

ALL = ["spouse", "parent", "child", "sibling", "grandparent", "grandchild"]


@pytest.fixture
def region_policy_of_5(region):
    """A version of the region's policy from today (the latest start wins over the shipped versions)."""
    return PolicyVersion.objects.create(
        region=region, effective_from=timezone.localdate(), relations=ALL, family_card_max=5
    )


def add(citizen, relative):
    return family_card_add(
        manager=citizen.person,
        relative_id_number=relative.id_number,
        relative_name=relative.name,
        relationship="sibling",
        user=citizen,
    )


def test_r43_the_region_policy_sets_the_limit(citizen_a, region, region_policy_of_5):
    today = timezone.localdate()
    assert family_card_max_for(region_code=region.code, on_date=today) == 5
    for number in range(5):
        add(citizen_a, InsuredPersonFactory(region=region, birth=f"199{number}0101"))
    with pytest.raises(FamilyCardRefused) as refused:
        add(citizen_a, InsuredPersonFactory(region=region, birth="19990101"))
    assert (refused.value.code, refused.value.status) == ("limit", 409)
    assert "5" in refused.value.title  # the limit named, in the default language
    assert FamilyCardLink.objects.filter(manager=citizen_a.person).count() == 5

    page = client_for(citizen_a).get(reverse("family_card_home"))
    assert "5 of at most 5 relatives." in text_of(page)


def test_r43_a_policy_not_yet_in_force_does_not_count(citizen_a, region):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    assert family_card_max_for(region_code=region.code, on_date=timezone.localdate()) == 8
    PolicyVersion.objects.create(region=region, effective_from=tomorrow, relations=ALL, family_card_max=5)
    assert family_card_max_for(region_code=region.code, on_date=timezone.localdate()) == 8
    assert family_card_max_for(region_code=region.code, on_date=tomorrow) == 5


@override_settings(FAMILY_CARD_MAX_RELATIVES=3)
def test_r43_without_a_region_limit_the_setting_applies(citizen_a, region, region_policy_of_5):
    other = RegionFactory(code="320600", name="南通市", province="320000")
    assert family_card_max_for(region_code=other.code, on_date=timezone.localdate()) == 3
    region_policy_of_5.family_card_max = None
    region_policy_of_5.save(update_fields=["family_card_max"])
    assert family_card_max_for(region_code=region.code, on_date=timezone.localdate()) == 3

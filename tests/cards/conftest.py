"""Fixtures of the e-card tests: face checks as the provider would record them, claimed cards, verifiers.

The face provider is outside the portal: tests write its outcome (a FaceVerification row) directly,
as ``accounts.face.face_verify`` would after the provider answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.models import FaceVerification, InsuredPerson, User
from cards.models import ECard, FamilyCardLink, FamilyCardLinkState, FamilyCardVerifiedBy
from cards.services import (
    card_accept_agreement,
    card_claim_start,
    card_face_passed,
    card_set_password,
)
from family.models import Relation
from tests.factories import InstitutionFactory, RegionFactory, UserFactory

GOOD_PASSWORD = "586217"


@pytest.fixture
def face() -> Callable[..., FaceVerification]:
    """``face(person, purpose, reference)``: a face check's recorded outcome (passed unless told)."""

    def make(
        person: InsuredPerson, purpose: str, reference: object, *, passed: bool = True, at: dt.datetime | None = None
    ) -> FaceVerification:
        verification = FaceVerification.objects.create(
            person=person,
            purpose=purpose,
            reference=str(reference),
            provider="test",
            decision=FaceVerification.Decision.PASSED if passed else FaceVerification.Decision.FAILED,
            score=0.99 if passed else 0.1,
            detail="one_face" if passed else "no_face",
        )
        if at is not None:
            FaceVerification.objects.filter(pk=verification.pk).update(created_at=at)
            verification.refresh_from_db()
        return verification

    return make


@pytest.fixture
def claim_card(face) -> Callable[..., ECard]:
    """``claim_card(person)``: the four claim steps of R40 through the services; the card comes back active."""

    def claim(person: InsuredPerson, *, region_code: str = "320500", password: str = GOOD_PASSWORD) -> ECard:
        card = card_claim_start(person=person, region_code=region_code)
        card = card_accept_agreement(card=card)
        # A face check is newer than the claim it confirms, also when the test has frozen the clock.
        verification = face(person, "card_claim", card.pk, at=card.created_at + dt.timedelta(milliseconds=1))
        card = card_face_passed(card=card, verification=verification)
        return card_set_password(card=card, password=password)

    return claim


@pytest.fixture
def card_a(citizen_a, claim_card) -> ECard:
    """Citizen A's active e-card, issued by 苏州 (province 320000)."""
    return claim_card(citizen_a.person)


@pytest.fixture
def partner(partner_token) -> User:
    """The partner system of the shared ``partner_token`` (no institution: a national system)."""
    return Token.objects.get(key=partner_token).user


@pytest.fixture
def wuhan(db):
    return RegionFactory(code="420100", name="武汉市", province="420000")


@pytest.fixture
def clerk_wuhan(wuhan) -> User:
    """A clerk of a Wuhan pharmacy: another province than Suzhou's."""
    institution = InstitutionFactory(code="P420100001", name="武汉市大药房", region=wuhan)
    return UserFactory(username="clerk_wuhan", role=User.Role.CLERK, institution=institution)


@pytest.fixture
def family_link_active() -> Callable[..., FamilyCardLink]:
    """``family_link_active(manager, relative)``: an active family card link (亲情服务), set up directly."""

    def make(manager: InsuredPerson, relative: InsuredPerson, *, relationship: str = Relation.PARENT) -> FamilyCardLink:
        return FamilyCardLink.objects.create(
            manager=manager,
            relative=relative,
            relationship=relationship,
            state=FamilyCardLinkState.ACTIVE,
            verified_by=FamilyCardVerifiedBy.FACE,
            activated_at=timezone.now(),
        )

    return make

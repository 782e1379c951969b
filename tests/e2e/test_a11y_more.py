"""Accessibility (ui.md, 适老化), continued: the pages test_a11y.py does not reach, because they need a flow
half done or data of their own: the e-card claim steps, the transfer steps and the wallet send page, the
contribution pages, the counter with a patient read (the split preview and a receipt), the family-card
document review screen and the records page with rows.

Same rules and helpers as test_a11y.py: axe (AAA contrast, target size) and the 48 px check on each page in
zh, en and elderly mode; serious and critical violations, small targets, CSP refusals and script errors fail.
Sessions are written directly, with the flow's state in them (the counter's patient, the transfer draft).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import Browser, Page

from accounts.models import FaceVerification, InsuranceType, User
from accounts.services import wallet_open
from accounts.storage import PrivateStorage
from cards.models import FamilyCardDocument
from cards.services import card_accept_agreement, card_claim_start, card_face_passed, family_card_add
from family.models import Payment, PaymentKind, Relation
from family.services.contributions import contribution_pay
from family.services.payments import payment_make
from tests.attack_files import png_scan
from tests.e2e.test_a11y import (
    MODES,
    SCREENSHOTS,
    _audit,
    _binding,
    _context,
    _session_cookie,
    _watch,
)
from tests.factories import InstitutionFactory, InsuredPersonFactory, RegionFactory, UserFactory, give_account
from tests.family.wallet_setup import bind, cross_province_parent, transfer_region_people

COUNTER_PERSON_KEY = "counter_person"  # cards.counter_views.PERSON_KEY: the patient read at the desk
TRANSFER_DRAFT_KEY = "family_transfer_draft"  # family.views_wallet.DRAFT_KEY: the transfer stepper's draft
CHILD_CARD = "C34567890"


@dataclass
class Visit:
    name: str  # screenshot a11y-<name>-*.png
    user: str  # a key of World.sessions
    path: str
    shows: str  # a selector the page must show, so a refusal or an empty state is not what axe checked
    submit: str = ""  # a form to fill and send first: "charge" (the counter's split preview)


@dataclass
class World:
    users: dict[str, User]
    sessions: dict[str, dict]  # user key -> what the session holds besides the login
    visits: list[Visit]


def _face_passed(card) -> None:
    verification = FaceVerification.objects.create(
        person=card.person,
        purpose="card_claim",
        reference=str(card.pk),
        provider="test",
        decision=FaceVerification.Decision.PASSED,
        score=0.99,
        detail="one_face",
    )
    FaceVerification.objects.filter(pk=verification.pk).update(created_at=card.created_at + dt.timedelta(seconds=1))
    verification.refresh_from_db()
    card_face_passed(card=card, verification=verification)


def _claimant(username: str, name: str, region, step: int) -> User:
    """A citizen stopped at claim step ``step`` (0 region, 1 agreement, 2 face, 3 password)."""
    person = InsuredPersonFactory(name=name, region=region)
    if step >= 1:
        card = card_claim_start(person=person, region_code=region.code)
        if step >= 2:
            card = card_accept_agreement(card=card)
        if step >= 3:
            _face_passed(card)
    return UserFactory(username=username, person=person)


@pytest.fixture
def world(db, tmp_path, monkeypatch) -> World:
    call_command("load_policy", str(settings.BASE_DIR / "family" / "data" / "default_policy.json"), verbosity=0)
    # Family-card documents go to a private folder of this test, as in tests/cards/test_family_card_review.py.
    monkeypatch.setattr(
        FamilyCardDocument._meta.get_field("file"), "storage", PrivateStorage(location=tmp_path / "private")
    )
    suzhou = RegionFactory(code="320500", name="苏州市", province="320000")
    owner = InsuredPersonFactory(name="张伟", region=suzhou, birth="19800315", male=True)
    give_account(owner, current="1200.00", historical="300.50")
    child = InsuredPersonFactory(
        name="张小明", region=suzhou, birth="20150101", insurance_type=InsuranceType.RESIDENT, card_number=CHILD_CARD
    )
    parent = InsuredPersonFactory(
        name="张建国", region=suzhou, birth="19520303", male=True, insurance_type=InsuranceType.RESIDENT
    )
    citizen = UserFactory(username="owner", email="owner@example.com", person=owner)
    institution = InstitutionFactory(code="H320500001", name="苏州市立医院", region=suzhou)
    clerk = UserFactory(username="clerk", role=User.Role.CLERK, institution=institution)
    reviewer = UserFactory(username="reviewer", role=User.Role.REVIEWER, is_staff=True)
    _binding(owner, child, "active", Relation.CHILD, activated_at=timezone.now())

    # 跨省共济: the owner's father in 河北, his wallet open (the send page lists him).
    father, father_user = cross_province_parent()
    wallet_open(person=father, opened_by=father_user)
    bind(owner, father, relationship=Relation.PARENT)

    # Rows for the records page, a receipt for the counter and a contribution to follow (R31, R33, R35).
    payment_make(
        client=clerk,
        idempotency_key=uuid.uuid4().hex,
        request_hash="a11y-receipt",
        patient=child,
        card_number=CHILD_CARD,
        institution=institution,
        kind=PaymentKind.MEDICAL,
        amount=Decimal("120.00"),
    )
    payment = Payment.objects.get(kind=PaymentKind.MEDICAL)
    contribution_pay(
        client=citizen,
        owner=owner,
        relative=child,
        kind=PaymentKind.RESIDENT_CONTRIBUTION,
        year=timezone.localdate().year,
        amount=Decimal("380.00"),
        idempotency_key=uuid.uuid4().hex,
    )
    contribution = Payment.objects.get(kind=PaymentKind.RESIDENT_CONTRIBUTION)

    # A family-card document waiting for the reviewer (R43).
    link = family_card_add(
        manager=owner,
        relative_id_number=parent.id_number,
        relative_name=parent.name,
        relationship=Relation.PARENT,
        user=citizen,
        document=SimpleUploadedFile("register.png", png_scan(), "image/png"),
    )
    document = link.documents.get()

    # 南昌 shares by transfer (R36): an owner with the draft of a transfer to his daughter up to the last step.
    nanchang = transfer_region_people()
    daughter = nanchang["daughter"]
    transfer_draft = {
        "owner_id": nanchang["owner"].pk,
        "relative_name": daughter.name,
        "relative_id_number": daughter.id_number,
        "relative_masked": daughter.masked_name,
        "relative_masked_id": daughter.masked_id_number,
        "amount": "100.00",
    }
    users = {
        "citizen": citizen,
        "clerk": clerk,
        "reviewer": reviewer,
        "transferrer": nanchang["owner_user"],
        **{f"claim{step}": _claimant(f"claim{step}", f"王{'一二三四'[step]}", suzhou, step) for step in range(4)},
    }
    counter_person = {
        "person_id": child.pk,
        "card_number": CHILD_CARD,
        "qr_reference": "",
        "how": "swipe",
        "read_at": timezone.now().isoformat(),
    }
    visits = [
        Visit("claim-region", "claim0", "/card/claim/region/", "[name=region]"),
        Visit("claim-agreement", "claim1", "/card/claim/agreement/", "[data-testid=agreement]"),
        Visit("claim-face", "claim2", "/card/claim/face/", "[data-testid=face-form]"),
        Visit("claim-password", "claim3", "/card/claim/password/", "[name=new_password]"),
        Visit("transfer-receiver", "transferrer", "/family/wallet/transfer/", "[name=relative_id_number]"),
        Visit("transfer-amount", "transferrer", "/family/wallet/transfer/amount/", "[data-testid=available]"),
        Visit("transfer-confirm", "transferrer", "/family/wallet/transfer/confirm/", "[data-testid=transfer-summary]"),
        Visit("wallet-send", "citizen", "/family/wallet/send/", "input[name=binding]"),
        Visit("contribute", "citizen", "/family/records/contribute/", "[data-testid=contribution-form]"),
        Visit(
            "contribution-progress",
            "citizen",
            f"/family/records/contributions/{contribution.pk}/",
            "[data-testid=contribution-progress]",
        ),
        Visit("sharing-records-rows", "citizen", "/family/records/", "[data-testid=record]"),
        Visit("counter-person", "clerk", "/counter/", "[data-testid=counter-person]"),
        Visit("counter-charge", "clerk", "/counter/charge/", "[data-testid=charge-form]"),
        Visit("counter-charge-preview", "clerk", "/counter/charge/", "[data-testid=charge-confirm]", submit="charge"),
        Visit("counter-receipt", "clerk", f"/counter/receipts/{payment.pk}/", "[data-testid=receipt]"),
        Visit("family-card-review", "reviewer", f"/staff/family-cards/{document.pk}/", "[data-testid=page-image]"),
    ]
    return World(
        users=users,
        sessions={"clerk": {COUNTER_PERSON_KEY: counter_person}, "transferrer": {TRANSFER_DRAFT_KEY: transfer_draft}},
        visits=visits,
    )


def _session(user: User, extra: dict) -> str:
    key = _session_cookie(user, None)
    if extra:
        session = SessionStore(session_key=key)
        session.update(extra)
        session.save()
    return key


def _submit(page: Page, how: str) -> None:
    if how == "charge":  # 收费: an amount, then "show the split" (a preview charges nothing)
        page.fill("input[name=amount]", "50.00")
        with page.expect_navigation():
            page.click("[data-testid=charge-preview]")


@pytest.mark.django_db(transaction=True)
def test_axe_finds_no_serious_violation_on_the_flow_pages(live_server, browser: Browser, world: World):
    base_url = live_server.url
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    sessions = {key: _session(user, world.sessions.get(key, {})) for key, user in world.users.items()}
    failures: list[str] = []
    for mode, language, elderly in MODES:
        User.objects.filter(pk__in=[user.pk for user in world.users.values()]).update(elderly_mode=elderly)
        context = _context(browser, base_url, language=language, elderly=elderly, session_key=None)
        page = context.new_page()
        problems: list[str] = []
        _watch(page, problems)
        signed_in = None
        try:
            for visit in world.visits:
                if visit.user != signed_in:
                    context.add_cookies(
                        [{"name": settings.SESSION_COOKIE_NAME, "value": sessions[visit.user], "url": base_url}]
                    )
                    signed_in = visit.user
                response = page.goto(base_url + visit.path)
                assert response is not None and response.status == 200, (mode, visit, response.status)
                assert page.url.startswith(base_url + visit.path), (mode, visit, page.url)
                page.wait_for_load_state("load")
                if visit.submit:
                    _submit(page, visit.submit)
                assert page.locator(visit.shows).count(), (mode, visit, "not shown")
                label = f"[{visit.user}/{mode}] {visit.name}"
                _audit(page, label=label, name=visit.name, mode=mode, problems=problems, failures=failures)
        finally:
            context.close()
    assert not failures, "\n".join(failures)

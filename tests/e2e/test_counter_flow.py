"""柜台 in the browser, keyboard only: a clerk binds a child to the parent's account by swiping both cards
(R22), then charges the child's visit (R33: the owner's account pays part, the rest is cash, R34 once);
the owner then logs in and sees the payment from their account (R35).

The card reader is simulated as the keyboard it is: ``;<card number>?`` and Enter typed into the focused field.
Screenshots of each step: test-artifacts/screenshots/counter-NN-<step>.png.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import NoReverseMatch, reverse
from playwright.sync_api import Page, expect

from accounts.models import InsuranceType, User
from family.models import Binding, BindingMethod, BindingState, Payment, PaymentSource
from tests.conftest import PASSWORD
from tests.factories import InstitutionFactory, InsuredPersonFactory, RegionFactory, UserFactory, give_account

OWNER_CARD = "A12345678"
CHILD_CARD = "C34567890"


@pytest.fixture
def shots(request: pytest.FixtureRequest):
    """``shot(page, name)``: test-artifacts/screenshots/counter-NN-<name>.png (the last run's are replaced)."""
    folder = request.config.rootpath / "test-artifacts" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("counter-*.png"):
        old.unlink()
    taken = 0

    def shot(page: Page, name: str) -> Path:
        nonlocal taken
        taken += 1
        target = folder / f"counter-{taken:02d}-{name}.png"
        page.screenshot(path=str(target), full_page=True)
        return target

    return shot


@pytest.fixture
def suzhou(db):
    return RegionFactory(code="320500", name="苏州市", province="320000")


@pytest.fixture
def owner_user(suzhou):
    person = InsuredPersonFactory(name="张伟", region=suzhou, birth="19800315", card_number=OWNER_CARD)
    give_account(person, current="1200.00", historical="300.50")
    return UserFactory(username="owner", email="owner@example.com", person=person)


@pytest.fixture
def child(suzhou):
    return InsuredPersonFactory(
        name="张小明", region=suzhou, birth="20150101", insurance_type=InsuranceType.RESIDENT, card_number=CHILD_CARD
    )


@pytest.fixture
def clerk_user(suzhou):
    clinic = InstitutionFactory(code="H320500001", name="苏州市立医院", region=suzhou)
    return UserFactory(username="clerk", email="clerk@example.com", role=User.Role.CLERK, institution=clinic)


def log_in(page: Page, base_url: str, email: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form.form button[type=submit]").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


def swipe(page: Page, field: str, card_number: str) -> None:
    """A magnetic reader: it types track 2 into the focused field and presses Enter."""
    expect(page.locator(f"input[name={field}]")).to_be_focused()
    page.keyboard.type(f";{card_number}=2512101?")
    page.keyboard.press("Enter")


@pytest.mark.django_db(transaction=True)
def test_r22_r33_a_clerk_binds_and_charges_at_the_counter_by_keyboard_and_the_owner_sees_the_payment(
    live_server, desktop_page: Page, page: Page, shots, owner_user, child, clerk_user
):
    clerk = desktop_page
    log_in(clerk, live_server.url, "clerk@example.com")
    clerk.goto(live_server.url + "/counter/")
    expect(clerk.locator("input[name=card]")).to_be_focused()
    expect(clerk.locator("#card-help")).to_be_visible()  # a hand-held reader or scanner is all it needs
    shots(clerk, "counter-empty")

    # 绑定: the access key opens the stepper; both cards are swiped.
    clerk.keyboard.press("Alt+b")
    expect(clerk).to_have_url(re.compile(r"/counter/bind/owner/$"))
    swipe(clerk, "owner_card", OWNER_CARD)
    expect(clerk).to_have_url(re.compile(r"/counter/bind/relative/$"))
    expect(clerk.get_by_test_id("bind-owner")).to_contain_text("张*")
    shots(clerk, "bind-relative")
    swipe(clerk, "relative_card", CHILD_CARD)
    # The name is missing: the page says so, keeps the card read and puts the cursor in the name.
    expect(clerk.locator("input[name=relative_name]")).to_be_focused()
    expect(clerk.locator("input[name=relative_card]")).to_have_value(f";{CHILD_CARD}=2512101?")
    clerk.keyboard.type("张小明")
    clerk.keyboard.press("Enter")
    expect(clerk).to_have_url(re.compile(r"/counter/bind/relationship/$"))
    clerk.keyboard.press("3")  # 3: child (子女)
    expect(clerk.locator("input[name=relationship][value=child]")).to_be_checked()
    shots(clerk, "bind-relationship")
    clerk.keyboard.press("Enter")
    expect(clerk).to_have_url(re.compile(r"/counter/bind/confirm/$"))
    expect(clerk.get_by_test_id("eligibility")).to_have_attribute("data-eligible", "true")
    # Originals: Space ticks the focused box, Tab moves on; the identity is confirmed the same way.
    expect(clerk.locator("input[name=originals_seen]").first).to_be_focused()
    clerk.keyboard.press("Space")  # ID cards
    clerk.keyboard.press("Tab")
    clerk.keyboard.press("Space")  # household registers
    clerk.keyboard.press("Tab")
    clerk.keyboard.press("Tab")
    clerk.keyboard.press("Tab")
    expect(clerk.locator("input[name=identity_confirmed]")).to_be_focused()
    clerk.keyboard.press("Space")
    shots(clerk, "bind-confirm")
    clerk.keyboard.press("Enter")
    expect(clerk.get_by_test_id("binding-result")).to_have_attribute("data-state", "active")
    shots(clerk, "bind-done")

    binding = Binding.objects.get(owner=owner_user.person, relative=child)
    assert binding.state == BindingState.ACTIVE and binding.method == BindingMethod.COUNTER
    assert binding.institution_id == clerk_user.institution_id and binding.submitted_by_id == clerk_user.pk
    assert binding.originals_seen == ["id_cards", "household_registers"]
    assert binding.counter_cards["owner"] == OWNER_CARD and binding.counter_cards["relative"] == CHILD_CARD

    # 收费: the next card is the child's; the focus is back in the card field.
    swipe(clerk, "card", CHILD_CARD)
    expect(clerk).to_have_url(re.compile(r"/counter/$"))
    expect(clerk.get_by_test_id("paid-by")).to_contain_text("张*")
    shots(clerk, "patient")
    clerk.keyboard.press("Alt+c")
    expect(clerk).to_have_url(re.compile(r"/counter/charge/$"))
    expect(clerk.locator("input[name=amount]")).to_be_focused()
    clerk.keyboard.type("2000")
    clerk.keyboard.press("Enter")
    preview = clerk.get_by_test_id("preview")
    expect(preview).to_contain_text("¥1,500.50")
    expect(clerk.get_by_test_id("split-cash")).to_have_attribute("data-amount", "499.50")
    expect(clerk.get_by_test_id("charge-confirm")).to_be_focused()
    shots(clerk, "charge-preview")
    assert not Payment.objects.exists()
    clerk.keyboard.press("Enter")
    receipt = clerk.get_by_test_id("receipt")
    expect(receipt).to_be_visible()
    expect(clerk.get_by_test_id("receipt-cash")).to_contain_text("¥499.50")
    expect(clerk.locator("input[name=card]")).to_be_focused()
    shots(clerk, "receipt")

    payment = Payment.objects.get()
    assert payment.amount == Decimal("2000.00") and payment.cash_amount == Decimal("499.50")
    part = payment.parts.get()
    assert part.source == PaymentSource.BINDING and part.payer_id == owner_user.person_id
    expect(clerk.get_by_test_id("receipt-reference")).to_have_text(payment.reference)

    # The owner, on the phone, sees the payment from their account.
    log_in(page, live_server.url, "owner@example.com")
    try:
        records_url = reverse("family_records")
    except NoReverseMatch:
        records_url = None
    if records_url:
        page.goto(live_server.url + records_url)
        expect(page.locator("main")).to_contain_text("1,500.50")
    page.goto(live_server.url + reverse("notifications"))
    expect(page.locator("main")).to_contain_text(payment.reference)
    expect(page.locator("main")).to_contain_text("1,500.50")
    shots(page, "owner-sees-payment")

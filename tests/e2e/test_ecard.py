"""电子社保卡 in the browser, on a phone: claim the card with the local face check (R40), see the dynamic
QR code refresh by itself before it expires (R42), and add a child through the family card service,
claim the child's card and show the child's code (R43). A screenshot of every step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from accounts.models import InsuranceType, User
from cards.models import CardState, ECard, FamilyCardLink, FamilyCardLinkState, QrToken
from cards.services import family_card_document_approve
from tests.attack_files import png_scan
from tests.conftest import PASSWORD
from tests.face_images import make_blank_png, make_face_png
from tests.factories import InsuredPersonFactory, RegionFactory, UserFactory, give_account

CARD_PASSWORD = "572946"


@pytest.fixture
def face_photo(tmp_path: Path) -> Path:
    """A frontal face the local provider accepts, as a file on disk, like a photo on the phone."""
    path = tmp_path / "face.png"
    path.write_bytes(make_face_png())
    return path


@pytest.fixture
def dark_photo(tmp_path: Path) -> Path:
    path = tmp_path / "blank.png"
    path.write_bytes(make_blank_png())
    return path


@pytest.fixture
def citizen(transactional_db):
    region = RegionFactory(code="320500", name="苏州市", province="320000")
    person = InsuredPersonFactory(name="张伟", region=region, birth="19800315", male=True)
    give_account(person, current="1200.00")
    return UserFactory(username="card-owner", email="card-owner@example.com", person=person)


def log_in(page: Page, base_url: str, email: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form.form button[type=submit]").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


def submit_step(page: Page) -> None:
    """The page's own primary button (not the language or large-text switches)."""
    page.locator("main form.form button.btn-primary[type=submit]").click()


def step_mark(page: Page):
    return page.locator(".stepper [aria-current=step] .step-mark")


def qr_svg(page: Page) -> str:
    return page.locator("[data-qr-box] svg").inner_html()


@pytest.mark.django_db(transaction=True)
def test_a_citizen_claims_the_ecard_and_the_code_refreshes_by_itself(
    live_server, page, screenshot, settings, citizen, face_photo
):
    settings.CARD_QR_TTL_SECONDS = 3  # a short life, so the refresh shows within the test
    person = citizen.person
    log_in(page, live_server.url, "card-owner@example.com")
    page.goto(live_server.url + "/#family-card-service")
    screenshot(page, "home-with-card-buttons")
    page.get_by_test_id("home-ecard").click()

    expect(page).to_have_url(re.compile(r"/card/$"))
    expect(page.get_by_test_id("no-card")).to_be_visible()
    screenshot(page, "no-card-yet")
    page.get_by_test_id("claim").click()

    # Step 1: the region, the person's own chosen already.
    expect(page).to_have_url(re.compile(r"/card/claim/region/$"))
    expect(step_mark(page)).to_have_text("1")
    expect(page.locator("select[name=region]")).to_have_value("320500")
    screenshot(page, "step-1-region")
    submit_step(page)

    # Step 2: the user agreement.
    expect(page).to_have_url(re.compile(r"/card/claim/agreement/$"))
    expect(page.get_by_test_id("agreement")).to_be_visible()
    page.locator("input[name=accept]").check()
    screenshot(page, "step-2-agreement")
    submit_step(page)

    # Step 3: face verification, with the consent and the local check's limits said.
    expect(page).to_have_url(re.compile(r"/card/claim/face/$"))
    expect(page.get_by_test_id("local-provider")).to_be_visible()
    page.locator("input[name=agree]").check()
    page.locator("input[name=photo]").set_input_files(str(face_photo))
    screenshot(page, "step-3-face")
    submit_step(page)

    # Step 4: the password twice, on the number pad.
    expect(page).to_have_url(re.compile(r"/card/claim/password/$"))
    expect(page.locator("input[name=new_password]")).to_have_attribute("inputmode", "numeric")
    page.locator("input[name=new_password]").fill("123456")
    page.locator("input[name=new_password_again]").fill("123456")
    submit_step(page)
    expect(page.locator(".field-error .error").first).to_contain_text(re.compile("123456|rising|递增|连续"))
    screenshot(page, "step-4-trivial-password-refused")
    page.locator("input[name=new_password]").fill(CARD_PASSWORD)
    page.locator("input[name=new_password_again]").fill(CARD_PASSWORD)
    screenshot(page, "step-4-password")
    submit_step(page)

    # The card and its code, counting down and refreshing by itself (card_qr.js).
    expect(page).to_have_url(re.compile(r"/card/$"))
    expect(page.get_by_test_id("ecard")).to_have_attribute("data-state", "active")
    expect(page.get_by_test_id("ecard")).to_contain_text(person.name)
    assert person.id_number not in page.content()  # R4
    expect(page.locator("[data-qr-box] svg")).to_be_visible()
    expect(page.locator("[data-qr-countdown]")).not_to_be_empty()
    screenshot(page, "card-with-code")
    first = qr_svg(page)
    page.wait_for_function(
        "previous => (svg => !!svg && svg.innerHTML !== previous)(document.querySelector('[data-qr-box] svg'))",
        arg=first,
        timeout=10_000,
    )
    screenshot(page, "card-code-refreshed")
    card = ECard.objects.get(person=person)
    assert card.state == CardState.ACTIVE
    assert QrToken.objects.filter(card=card).count() >= 2
    assert set(QrToken.objects.filter(card=card).values_list("holder_id", flat=True)) == {person.pk}

    # Claiming again shows the card.
    page.goto(live_server.url + "/card/claim/")
    expect(page).to_have_url(re.compile(r"/card/$"))
    expect(page.get_by_test_id("ecard")).to_be_visible()


@pytest.mark.django_db(transaction=True)
def test_a_failed_face_check_shows_tips_tries_left_family_help_and_the_offline_route(
    live_server, page, screenshot, citizen, dark_photo
):
    log_in(page, live_server.url, "card-owner@example.com")
    page.goto(live_server.url + "/card/claim/")
    page.get_by_role("button", name=re.compile("长辈模式|Large text|大字")).click()  # 适老化
    submit_step(page)
    page.locator("input[name=accept]").check()
    submit_step(page)
    page.locator("input[name=agree]").check()
    page.locator("input[name=photo]").set_input_files(str(dark_photo))
    submit_step(page)
    expect(page.get_by_test_id("face-failed")).to_be_visible()
    expect(page.get_by_test_id("face-failed")).to_contain_text("4")
    expect(page.get_by_test_id("family-help")).to_be_visible()
    expect(page.get_by_test_id("offline-route")).to_be_visible()
    expect(page.locator("body")).to_have_class("elderly")
    screenshot(page, "face-failed-large-text")


@pytest.mark.django_db(transaction=True)
def test_a_parent_adds_a_child_claims_the_childs_card_and_shows_its_code(
    live_server, page, screenshot, citizen, face_photo, tmp_path
):
    parent = citizen.person
    child = InsuredPersonFactory(
        name="张小明", region=parent.region, birth="20150101", insurance_type=InsuranceType.RESIDENT
    )
    log_in(page, live_server.url, "card-owner@example.com")
    page.goto(live_server.url + "/")
    page.get_by_test_id("home-family-card-service").click()

    expect(page).to_have_url(re.compile(r"/card/family/$"))
    expect(page.get_by_test_id("service-explained")).to_be_visible()
    expect(page.get_by_test_id("to-family-sharing")).to_be_visible()
    screenshot(page, "family-card-service-empty")
    page.get_by_test_id("add-relative").click()

    page.locator("input[name=relative_name]").fill(child.name)
    page.locator("input[name=relative_id_number]").fill(child.id_number)
    page.locator("input[name=relationship][value=child]").check()
    # R20/R21: the household register page showing the child.
    register = tmp_path / "register.png"
    register.write_bytes(png_scan())
    page.locator("input[name=file]").set_input_files(str(register))
    screenshot(page, "add-child")
    submit_step(page)

    # Under 16: a frontal photo of the child, sent by the parent.
    expect(page).to_have_url(re.compile(r"/card/family/\d+/photo/$"))
    page.locator("input[name=agree]").check()
    page.locator("input[name=photo]").set_input_files(str(face_photo))
    screenshot(page, "child-photo")
    submit_step(page)

    # R24: the household register waits for a reviewer; the link is usable once it is approved.
    link = FamilyCardLink.objects.get(manager=parent, relative=child)
    assert link.state != FamilyCardLinkState.ACTIVE
    document = link.documents.get()
    assert document.content_type == "image/png"
    expect(page).to_have_url(re.compile(rf"/card/family/{link.pk}/$"))
    screenshot(page, "child-link-waiting-for-review")
    reviewer = UserFactory(username="card-reviewer", role=User.Role.REVIEWER, is_staff=True)
    family_card_document_approve(document_id=document.pk, reviewer=reviewer)
    link.refresh_from_db()
    assert link.state == FamilyCardLinkState.ACTIVE
    page.reload()
    expect(page.get_by_test_id("link-state")).to_have_attribute("data-state", "active")
    screenshot(page, "child-link-active")
    page.get_by_test_id("claim-child").click()

    # The child's card: region and agreement, the parent's own face, the password.
    expect(step_mark(page)).to_have_text("1")
    page.locator("input[name=accept]").check()
    screenshot(page, "child-claim-region-agreement")
    submit_step(page)
    expect(step_mark(page)).to_have_text("3")
    page.locator("input[name=agree]").check()
    page.locator("input[name=photo]").set_input_files(str(face_photo))
    screenshot(page, "child-claim-parent-face")
    submit_step(page)
    expect(step_mark(page)).to_have_text("4")
    page.locator("input[name=new_password]").fill(CARD_PASSWORD)
    page.locator("input[name=new_password_again]").fill(CARD_PASSWORD)
    screenshot(page, "child-claim-password")
    submit_step(page)

    expect(page).to_have_url(re.compile(rf"/card/relatives/{link.pk}/qr/$"))
    expect(page.locator("[data-qr-box] svg")).to_be_visible()
    expect(page.get_by_test_id("patient-warning")).to_be_visible()
    assert child.id_number not in page.content() and child.name not in page.content()  # R4
    screenshot(page, "child-code")
    token = QrToken.objects.filter(card__person=child).latest("created_at")
    assert (token.holder_id, token.shown_by_id) == (child.pk, citizen.pk)

    page.goto(live_server.url + "/card/family/")
    expect(page.get_by_test_id("show-code")).to_be_visible()
    screenshot(page, "family-card-service-with-child")

"""电子社保卡 pages, functionally: the real rendered forms of the claim (R40), the password (R41) and the
dynamic QR code (R42), filled and submitted with CSRF checks on. A field the page does not render, or a
missing CSRF token, fails here."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.face import face_verify
from accounts.models import FaceVerification
from cards.models import CardState, ECard, QrToken
from cards.services import (
    card_accept_agreement,
    card_check_password,
    card_claim_start,
    card_face_passed,
    card_set_password,
)
from tests.face_images import make_blank_png, make_face_png
from tests.factories import UserFactory
from tests.page_forms import main_form, submit

GOOD_PASSWORD = "572946"


def face_file(data: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile("face.png", data if data is not None else make_face_png(), "image/png")


def text_of(response) -> str:
    """The page's text, tags dropped and whitespace squeezed, to read a sentence across markup."""
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def client_for(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(user)
    return client


def claim_card_directly(person, password: str = GOOD_PASSWORD) -> ECard:
    """An active card through the services: set-up for tests that are not about the claim pages."""
    card = card_claim_start(person=person, region_code=person.region_id)
    card_accept_agreement(card=card)
    verification = face_verify(person=person, purpose="card_claim", reference=str(card.pk), image_bytes=make_face_png())
    card_face_passed(card=card, verification=verification)
    return card_set_password(card=card, password=password)


@pytest.fixture
def alice(citizen_a) -> Client:
    return client_for(citizen_a)


@pytest.fixture
def bob(citizen_b) -> Client:
    return client_for(citizen_b)


# --- R40 the claim --------------------------------------------------------------------------------


def test_r40_a_citizen_claims_the_card_through_every_step(alice, citizen_a):
    person = citizen_a.person
    home = alice.get(reverse("card_home"))
    assert home.status_code == 200
    assert 'data-testid="no-card"' in home.content.decode()
    assert alice.get(reverse("card_claim"))["Location"] == reverse("card_claim_region")

    # Step 1: the person's own region is chosen already.
    page = alice.get(reverse("card_claim_region"))
    assert main_form(page.content.decode()).values["region"] == person.region_id
    assert 'aria-current="step"' in page.content.decode()
    response = submit(alice, reverse("card_claim_region"))
    assert response["Location"] == reverse("card_claim_agreement")
    card = ECard.objects.get(person=person)
    assert (card.state, card.issuing_region_id) == (CardState.PENDING, "320500")

    # Step 2: the agreement must be ticked.
    refused = submit(alice, reverse("card_claim_agreement"))
    assert refused.status_code == 200
    assert "Please read the agreement and tick the box to go on." in text_of(refused)
    response = submit(alice, reverse("card_claim_agreement"), {"accept": "on"})
    assert response["Location"] == reverse("card_claim_face")

    # Step 3: consent shown where the picture is collected (R50), and it is not identity proof.
    page = alice.get(reverse("card_claim_face"))
    html = page.content.decode()
    assert 'accept="image/*"' in html and 'capture="user"' in html
    assert "deleted right after the check" in text_of(page)
    assert 'data-testid="local-provider"' in html
    assert "js/camera.js" in html and "<script>" not in html
    response = submit(alice, reverse("card_claim_face"), {"agree": "on", "photo": face_file()})
    assert response["Location"] == reverse("card_claim_password")
    verification = FaceVerification.objects.get(person=person, purpose="card_claim")
    assert verification.decision == FaceVerification.Decision.PASSED

    # Step 4: the password, twice, on the number pad.
    page = alice.get(reverse("card_claim_password"))
    fields = main_form(page.content.decode()).attrs
    assert fields["new_password"]["inputmode"] == "numeric"
    assert fields["new_password"]["autocomplete"] == "new-password"
    response = submit(
        alice,
        reverse("card_claim_password"),
        {"new_password": GOOD_PASSWORD, "new_password_again": GOOD_PASSWORD},
    )
    assert response["Location"] == reverse("card_home")
    card.refresh_from_db()
    assert card.state == CardState.ACTIVE
    assert card.password != GOOD_PASSWORD  # R41: hashed
    assert card_check_password(card=card, password=GOOD_PASSWORD)

    # The card: the holder's own name, the ID number masked (R4), the region, the state, a QR code.
    home = alice.get(reverse("card_home"))
    html = home.content.decode()
    assert person.name in html
    assert person.masked_id_number in html and person.id_number not in html
    assert "苏州市" in html
    assert 'data-state="active"' in html
    assert "<svg" in html


def test_r40_a_half_finished_claim_resumes_at_its_step_on_another_device(citizen_a):
    first = client_for(citizen_a)
    submit(first, reverse("card_claim_region"))
    submit(first, reverse("card_claim_agreement"), {"accept": "on"})

    later = client_for(citizen_a)  # another phone, another session: the card itself remembers
    assert later.get(reverse("card_claim"))["Location"] == reverse("card_claim_face")
    # A later step opened too early goes back to the step that is next.
    assert later.get(reverse("card_claim_password"))["Location"] == reverse("card_claim_face")
    # A step already done goes forward again.
    assert later.get(reverse("card_claim_agreement"))["Location"] == reverse("card_claim_face")
    home = later.get(reverse("card_home"))
    assert 'data-testid="claim-unfinished"' in home.content.decode()
    assert "Step 3 of 4" in text_of(home)
    # The stepper shows the first two done.
    page = later.get(reverse("card_claim_face"))
    assert page.content.decode().count("step step-done") == 2


def test_r40_claiming_again_shows_the_existing_card(alice, citizen_a):
    card = claim_card_directly(citizen_a.person)
    for name in ("card_claim", "card_claim_region", "card_claim_agreement", "card_claim_face", "card_claim_password"):
        response = alice.get(reverse(name))
        assert response["Location"] == reverse("card_home"), name
    response = alice.get(reverse("card_claim"), follow=True)
    assert "You already have an electronic social-security card" in text_of(response)
    assert ECard.objects.filter(person=citizen_a.person).count() == 1
    card.refresh_from_db()
    assert card.state == CardState.ACTIVE


def test_r40_the_region_can_be_another_one(alice, citizen_a):
    from tests.factories import RegionFactory

    RegionFactory(code="320100", name="南京市", province="320000")
    submit(alice, reverse("card_claim_region"), {"region": "320100"})
    assert ECard.objects.get(person=citizen_a.person).issuing_region_id == "320100"


def test_r50_a_failed_face_check_says_why_and_how_to_get_help(alice, citizen_a):
    submit(alice, reverse("card_claim_region"))
    submit(alice, reverse("card_claim_agreement"), {"accept": "on"})
    response = submit(alice, reverse("card_claim_face"), {"agree": "on", "photo": face_file(make_blank_png())})
    assert response.status_code == 200
    html, words = response.content.decode(), text_of(response)
    assert 'data-testid="face-failed"' in html
    assert "No face was found" in words
    assert "Light:" in words and "Glasses" in words and "Distance:" in words
    assert "You have 4 tries left today." in words
    assert 'data-testid="family-help"' in html and reverse("family_card_home") in html
    assert 'data-testid="offline-route"' in html and "ID card" in words
    card = ECard.objects.get(person=citizen_a.person)
    assert card.face_verified_at is None
    # R52: only the outcome is kept.
    verification = FaceVerification.objects.get(person=citizen_a.person, purpose="card_claim")
    assert verification.decision == FaceVerification.Decision.FAILED


def test_r50_without_consent_no_picture_is_checked(alice, citizen_a):
    submit(alice, reverse("card_claim_region"))
    submit(alice, reverse("card_claim_agreement"), {"accept": "on"})
    response = submit(alice, reverse("card_claim_face"), {"photo": face_file()})
    assert response.status_code == 200
    assert "Tick the box to agree" in text_of(response)
    assert not FaceVerification.objects.filter(person=citizen_a.person).exists()


def _to_password_step(client: Client) -> None:
    submit(client, reverse("card_claim_region"))
    submit(client, reverse("card_claim_agreement"), {"accept": "on"})
    submit(client, reverse("card_claim_face"), {"agree": "on", "photo": face_file()})


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("111111", "Six equal digits are too easy to guess."),
        ("123456", "rising run"),
        ("654321", "falling run"),
        ("800315", "Your birth date"),  # 张伟 was born on 1980-03-15
    ],
)
def test_r41_a_trivial_password_is_refused_with_the_reason(alice, citizen_a, password, reason):
    _to_password_step(alice)
    response = submit(alice, reverse("card_claim_password"), {"new_password": password, "new_password_again": password})
    assert response.status_code == 200
    assert reason in text_of(response)
    card = ECard.objects.get(person=citizen_a.person)
    assert (card.state, card.password) == (CardState.PENDING, "")


def test_r41_the_password_must_be_six_digits_typed_the_same_twice(alice, citizen_a):
    _to_password_step(alice)
    response = submit(alice, reverse("card_claim_password"), {"new_password": "12ab", "new_password_again": "12ab"})
    assert "exactly six digits" in text_of(response)
    response = submit(
        alice, reverse("card_claim_password"), {"new_password": GOOD_PASSWORD, "new_password_again": "572947"}
    )
    assert "The two passwords are not the same" in text_of(response)
    assert ECard.objects.get(person=citizen_a.person).state == CardState.PENDING


# --- R41 change and reset -------------------------------------------------------------------------


def test_r41_change_the_password_with_the_current_one(alice, citizen_a):
    card = claim_card_directly(citizen_a.person)
    response = submit(
        alice,
        reverse("card_password_change"),
        {"old_password": GOOD_PASSWORD, "new_password": "390571", "new_password_again": "390571"},
    )
    assert response["Location"] == reverse("card_home")
    card.refresh_from_db()
    assert card_check_password(card=card, password="390571")


def test_r41_wrong_current_passwords_count_and_lock_the_card(alice, citizen_a):
    card = claim_card_directly(citizen_a.person)
    wrong = {"old_password": "000111", "new_password": "390571", "new_password_again": "390571"}

    response = submit(alice, reverse("card_password_change"), wrong)
    assert response.status_code == 200
    assert "4 tries left" in text_of(response)
    card.refresh_from_db()
    assert card.failed_attempts == 1

    # Coming back later, the page still says how many are left.
    assert "4 tries left" in text_of(alice.get(reverse("card_password_change")))

    for left in (3, 2, 1):
        assert f"{left} tr" in text_of(submit(alice, reverse("card_password_change"), wrong))
    response = submit(alice, reverse("card_password_change"), wrong)
    card.refresh_from_db()
    assert card.locked_until is not None and card.locked_until > timezone.now()
    until = timezone.localtime(card.locked_until).strftime("%H:%M")
    html = response.content.decode()
    assert 'data-testid="locked"' in html
    assert f"try again after {until}" in text_of(response)
    assert reverse("card_password_reset") in html

    # While locked even the right password is not taken, and the form is not offered.
    page = alice.get(reverse("card_password_change"))
    assert 'data-testid="locked"' in page.content.decode()
    assert 'name="old_password"' not in page.content.decode()
    home = alice.get(reverse("card_home"))
    assert f"after {until}" in text_of(home)


def test_r41_forgot_password_face_first_then_a_new_one_lifts_the_lock(alice, citizen_a):
    card = claim_card_directly(citizen_a.person)
    ECard.objects.filter(pk=card.pk).update(
        failed_attempts=5, locked_until=timezone.now() + timezone.timedelta(minutes=30)
    )

    page = alice.get(reverse("card_password_reset"))
    assert 'data-testid="face-form"' in page.content.decode()
    assert "Step 1 of 2" in text_of(page)
    response = submit(alice, reverse("card_password_reset"), {"agree": "on", "photo": face_file()})
    assert response["Location"] == reverse("card_password_reset")
    page = alice.get(reverse("card_password_reset"))
    assert "Step 2 of 2" in text_of(page)
    refused = submit(alice, reverse("card_password_reset"), {"new_password": "222222", "new_password_again": "222222"})
    assert "Six equal digits" in text_of(refused)
    response = submit(alice, reverse("card_password_reset"), {"new_password": "390571", "new_password_again": "390571"})
    assert response["Location"] == reverse("card_home")
    card.refresh_from_db()
    assert card.locked_until is None and card.failed_attempts == 0
    assert card_check_password(card=card, password="390571")
    # The face check counted once: the next reset asks for the face again.
    assert 'data-testid="face-form"' in alice.get(reverse("card_password_reset")).content.decode()


def test_password_pages_without_a_card_send_to_the_claim(alice):
    assert alice.get(reverse("card_password_change"))["Location"] == reverse("card_claim")
    assert alice.get(reverse("card_password_reset"))["Location"] == reverse("card_claim")


# --- R42 the dynamic QR code ----------------------------------------------------------------------


def test_r42_the_card_page_shows_a_fresh_code_and_the_fragment_gives_a_new_one(alice, citizen_a):
    card = claim_card_directly(citizen_a.person)
    home = alice.get(reverse("card_home"))
    html = home.content.decode()
    assert "<svg" in html and "data-qr-code" in html
    assert 'data-expires-in="' in html
    assert "no-store" in home["Cache-Control"]
    # Without JavaScript: a plain link that reloads the page; with it, card_qr.js and the fragment URL.
    assert f'href="{reverse("card_home")}" data-qr-refresh' in html
    assert f'data-fragment-url="{reverse("card_qr_fragment")}"' in html
    assert "js/card_qr.js" in html and "<script>" not in html
    first = QrToken.objects.get(card=card)
    assert first.holder_id == citizen_a.person_id and first.shown_by_id == citizen_a.pk
    ttl = (first.expires_at - first.created_at).total_seconds()
    assert 59 <= ttl <= 60

    fragment = alice.get(reverse("card_qr_fragment"))
    assert fragment.status_code == 200
    body = fragment.content.decode()
    assert "<svg" in body and "<html" not in body  # a fragment, not a page
    assert "no-store" in fragment["Cache-Control"]
    assert QrToken.objects.filter(card=card).count() == 2
    second = QrToken.objects.filter(card=card).exclude(pk=first.pk).get()
    assert second.nonce != first.nonce
    svg = lambda html: re.search(r"<svg.*?</svg>", html, re.S).group(0)  # noqa: E731
    assert svg(body) != svg(html)


def test_r42_the_ttl_is_a_setting(alice, citizen_a, settings):
    settings.CARD_QR_TTL_SECONDS = 3
    card = claim_card_directly(citizen_a.person)
    home = alice.get(reverse("card_home"))
    assert re.search(r'data-expires-in="[23]"', home.content.decode())
    token = QrToken.objects.get(card=card)
    assert (token.expires_at - token.created_at).total_seconds() <= 3


def test_r42_no_code_without_an_active_card(alice, citizen_a):
    assert alice.get(reverse("card_qr_fragment")).status_code == 404
    card_claim_start(person=citizen_a.person, region_code="320500")
    assert alice.get(reverse("card_qr_fragment")).status_code == 404
    assert "<svg" not in alice.get(reverse("card_home")).content.decode()
    assert not QrToken.objects.exists()


# --- who may open what --------------------------------------------------------------------------


CARD_URLS = [
    "card_home",
    "card_qr_fragment",
    "card_claim",
    "card_claim_region",
    "card_claim_agreement",
    "card_claim_face",
    "card_claim_password",
    "card_password_change",
    "card_password_reset",
    "family_card_home",
    "family_card_add",
]


@pytest.mark.parametrize("name", CARD_URLS)
def test_anonymous_is_sent_to_log_in(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("name", ["card_home", "card_claim_region", "family_card_home"])
def test_a_login_without_real_name_is_sent_to_link_it_first(db, name):
    client = client_for(UserFactory(username="no-person"))
    response = client.get(reverse(name))
    assert response["Location"].startswith(reverse("real_name"))


def test_a_strangers_card_never_shows_on_my_pages(bob, citizen_a, citizen_b):
    claim_card_directly(citizen_a.person)
    home = bob.get(reverse("card_home"))
    assert citizen_a.person.name not in home.content.decode()
    assert 'data-testid="no-card"' in home.content.decode()
    assert bob.get(reverse("card_qr_fragment")).status_code == 404
    assert not QrToken.objects.filter(shown_by=citizen_b).exists()


def test_the_nav_and_the_home_page_lead_to_the_card_pages(alice):
    html = alice.get(reverse("home")).content.decode()
    assert f'href="{reverse("card_home")}"' in html
    assert f'href="{reverse("family_card_home")}"' in html


def test_r40_with_a_face_vendor_the_step_links_out_and_reads_the_outcome_back(alice, citizen_a, settings):
    settings.FACE_PROVIDER = "vendor"
    submit(alice, reverse("card_claim_region"))
    submit(alice, reverse("card_claim_agreement"), {"accept": "on"})
    card = ECard.objects.get(person=citizen_a.person)
    page = alice.get(reverse("card_claim_face"))
    html = page.content.decode()
    assert 'data-testid="face-vendor"' in html and 'name="photo"' not in html
    assert (
        f"{reverse('face_vendor_start')}?purpose=card_claim&amp;reference={card.pk}&amp;next=%2Fcard%2Fclaim%2Fface%2F"
        in html
    )

    # The vendor's outcomes, as its signed callback records them (accounts.face_vendor has those tests).
    outcome = {"person": citizen_a.person, "purpose": "card_claim", "reference": str(card.pk), "provider": "vendor"}
    FaceVerification.objects.create(**outcome, decision="failed", detail="vendor_liveness_failed")
    page = alice.get(reverse("card_claim_face"))
    assert "could not tell that a live person" in text_of(page)
    assert "You have 4 tries left today." in text_of(page)
    FaceVerification.objects.create(**outcome, decision="passed", detail="vendor_passed")
    assert alice.get(reverse("card_claim_face"))["Location"] == reverse("card_claim_password")
    card.refresh_from_db()
    assert card.face_verified_at is not None

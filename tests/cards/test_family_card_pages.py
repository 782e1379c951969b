"""亲情服务 family card service pages (R43), functionally through the real rendered forms: add a child,
confirm with the child's photo, claim the child's card, show the child's code; an adult relative confirms
with their own face; the limit of 8; strangers get 404 on every object URL."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import FaceVerification, InsuranceType
from cards.models import CardState, ECard, FamilyCardLink, FamilyCardLinkState, FamilyCardVerifiedBy, QrToken
from cards.services import family_card_add, family_card_end
from family.models import Relation
from tests.attack_files import png_scan
from tests.cards.test_card_pages import (
    GOOD_PASSWORD,
    claim_card_directly,
    client_for,
    face_file,
    text_of,
)
from tests.face_images import make_blank_png, make_face_png
from tests.factories import InsuredPersonFactory, UserFactory
from tests.page_forms import main_form, submit


@pytest.fixture(autouse=True)
def _private_storage(tmp_path, monkeypatch):
    """Documents of these tests go to a folder of their own: parallel tests count the shared folder's files."""
    from accounts.storage import PrivateStorage
    from cards.models import FamilyCardDocument

    monkeypatch.setattr(FamilyCardDocument._meta.get_field("file"), "storage", PrivateStorage(location=tmp_path))


@pytest.fixture
def alice(citizen_a):
    return client_for(citizen_a)


@pytest.fixture
def bob(citizen_b):
    return client_for(citizen_b)


@pytest.fixture
def child(citizen_a_family):
    return citizen_a_family["child"]  # 张小明, born 2015: under 16


@pytest.fixture
def parent(citizen_a_family):
    return citizen_a_family["parent"]  # 张建国, born 1952


def register_file() -> SimpleUploadedFile:
    """R20/R21: the relative's household register page, as a valid PNG scan."""
    return SimpleUploadedFile("register.png", png_scan(), "image/png")


def add_link(citizen, relative, relationship=Relation.CHILD) -> FamilyCardLink:
    return family_card_add(
        manager=citizen.person,
        relative_id_number=relative.id_number,
        relative_name=relative.name,
        relationship=relationship,
        user=citizen,
        document=register_file(),
    )


def approve_document(link: FamilyCardLink) -> None:
    """R24: a reviewer approves the link's latest document."""
    from cards.services import family_card_document_approve

    reviewer = UserFactory(role="reviewer")
    family_card_document_approve(document_id=link.documents.latest("created_at").pk, reviewer=reviewer)


def active_child_link(citizen, child) -> FamilyCardLink:
    from accounts.face import face_verify
    from cards.services import family_card_confirm

    link = add_link(citizen, child)
    approve_document(link)
    verification = face_verify(
        person=child, purpose="family_card_photo", reference=str(link.pk), image_bytes=make_face_png()
    )
    return family_card_confirm(link_id=link.pk, verification=verification)


def test_r43_the_start_page_says_plainly_it_shares_no_money_and_offers_family_sharing(alice):
    page = alice.get(reverse("family_card_home"))
    assert page.status_code == 200
    words, html = text_of(page), page.content.decode()
    assert "No money is shared." in words
    assert "use family sharing (家庭共济) instead" in words
    assert f'href="{reverse("family_home")}"' in html
    # Said at the top: before the list of relatives.
    assert html.index('data-testid="service-explained"') < html.index('data-testid="managed"')
    assert "0 of at most 8 relatives." in words


def test_r43_add_a_child_confirm_with_a_photo_claim_the_card_and_show_its_code(alice, citizen_a, child):
    response = submit(
        alice,
        reverse("family_card_add"),
        {
            "relative_name": child.name,
            "relative_id_number": child.id_number.lower(),
            "relationship": "child",
            "file": register_file(),
        },
    )
    link = FamilyCardLink.objects.get(manager=citizen_a.person, relative=child)
    assert link.state == FamilyCardLinkState.PENDING
    assert response["Location"] == reverse("family_card_photo", args=[link.pk])

    # The child's photo: consent as the guardian, the back camera offered, the local check's limits said.
    page = alice.get(reverse("family_card_photo", args=[link.pk]))
    html = page.content.decode()
    assert 'capture="environment"' in html and 'accept="image/*"' in html
    assert 'data-testid="local-provider"' in html
    refused = submit(
        alice, reverse("family_card_photo", args=[link.pk]), {"agree": "on", "photo": face_file(make_blank_png())}
    )
    assert 'data-testid="face-failed"' in refused.content.decode()
    assert "You have 4 tries left today." in text_of(refused)
    response = submit(alice, reverse("family_card_photo", args=[link.pk]), {"agree": "on", "photo": face_file()})
    assert response["Location"] == reverse("family_card_detail", args=[link.pk])
    link.refresh_from_db()
    # R24: the photo is recorded; the link waits for the reviewer's approval of the document.
    assert (link.state, link.verified_by) == (FamilyCardLinkState.PENDING, FamilyCardVerifiedBy.PHOTO)
    waiting = alice.get(reverse("family_card_detail", args=[link.pk]))
    assert "A reviewer checks the document" in text_of(waiting)
    assert alice.get(reverse("family_card_photo", args=[link.pk]))["Location"] == reverse(
        "family_card_detail", args=[link.pk]
    )
    approve_document(link)
    link.refresh_from_db()
    assert (link.state, link.verified_by) == (FamilyCardLinkState.ACTIVE, FamilyCardVerifiedBy.PHOTO)
    assert link.verification.person_id == child.pk and link.verification.purpose == "family_card_photo"

    detail = alice.get(reverse("family_card_detail", args=[link.pk]))
    assert 'data-testid="claim-child"' in detail.content.decode()
    assert "not claimed yet" in text_of(detail)

    # Claim the child's card: region and agreement, the guardian's own face, the password.
    claim_url = reverse("family_card_claim_child", args=[link.pk])
    page = alice.get(claim_url)
    assert main_form(page.content.decode()).values["region"] == child.region_id
    assert "Step 1 of 4" in text_of(page)
    not_accepted = submit(alice, claim_url)
    assert "Please read the agreement" in text_of(not_accepted)
    assert submit(alice, claim_url, {"accept": "on"})["Location"] == claim_url
    card = ECard.objects.get(person=child)
    assert card.guardian_id == citizen_a.person_id and card.agreement_accepted_at is not None
    page = alice.get(claim_url)
    assert "Step 3 of 4" in text_of(page) and 'data-testid="face-form"' in page.content.decode()
    assert submit(alice, claim_url, {"agree": "on", "photo": face_file()})["Location"] == claim_url
    assert FaceVerification.objects.filter(person=citizen_a.person, purpose="card_claim").exists()
    trivial = submit(alice, claim_url, {"new_password": "150101", "new_password_again": "150101"})
    assert "birth date" in text_of(trivial)  # the child's birth date, 2015-01-01
    response = submit(alice, claim_url, {"new_password": GOOD_PASSWORD, "new_password_again": GOOD_PASSWORD})
    assert response["Location"] == reverse("card_relative_qr", args=[link.pk])
    card.refresh_from_db()
    assert card.state == CardState.ACTIVE

    # The child's code: the token names the child, shown by the manager.
    page = alice.get(reverse("card_relative_qr", args=[link.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html
    assert child.masked_name in html and child.name not in html  # R4: a relative's card is masked
    assert 'data-testid="patient-warning"' in html
    token = QrToken.objects.get(card=card)
    assert (token.holder_id, token.shown_by_id) == (child.pk, citizen_a.pk)
    fragment = alice.get(reverse("card_relative_qr_fragment", args=[link.pk]))
    assert fragment.status_code == 200 and "<svg" in fragment.content.decode()
    assert QrToken.objects.filter(card=card, holder=child).count() == 2

    # The switcher on my own card page leads to the child's card.
    claim_card_directly(citizen_a.person)
    home = alice.get(reverse("card_home")).content.decode()
    assert reverse("card_relative_qr", args=[link.pk]) in home
    # Claiming again shows the card.
    assert alice.get(claim_url)["Location"] == reverse("card_relative_qr", args=[link.pk])


def test_r43_a_relative_of_16_or_over_confirms_with_their_own_face(alice, citizen_a, parent):
    response = submit(
        alice,
        reverse("family_card_add"),
        {
            "relative_name": parent.name,
            "relative_id_number": parent.id_number,
            "relationship": "parent",
            "file": register_file(),
        },
    )
    link = FamilyCardLink.objects.get(manager=citizen_a.person, relative=parent)
    assert response["Location"] == reverse("family_card_detail", args=[link.pk])
    detail = alice.get(reverse("family_card_detail", args=[link.pk]))
    assert 'data-testid="waiting"' in detail.content.decode()
    # The manager cannot confirm for them: neither with a photo nor on the consent page.
    assert alice.get(reverse("family_card_photo", args=[link.pk])).status_code == 404
    assert alice.get(reverse("family_card_consent", args=[link.pk])).status_code == 404

    parent_client = client_for(UserFactory(username="parent", person=parent))
    home = parent_client.get(reverse("family_card_home"))
    assert 'data-testid="asked"' in home.content.decode()
    assert reverse("family_card_consent", args=[link.pk]) in home.content.decode()
    page = parent_client.get(reverse("family_card_consent", args=[link.pk]))
    assert "No money is shared:" in text_of(page)
    response = submit(
        parent_client, reverse("family_card_consent", args=[link.pk]), {"agree": "on", "photo": face_file()}
    )
    assert response["Location"] == reverse("family_card_consent", args=[link.pk])
    link.refresh_from_db()
    assert (link.state, link.verified_by) == (FamilyCardLinkState.PENDING, FamilyCardVerifiedBy.FACE)
    assert (
        'data-testid="consent-given"'
        in parent_client.get(reverse("family_card_consent", args=[link.pk])).content.decode()
    )
    # R24: the reviewer's approval, coming last, makes it active.
    approve_document(link)
    link.refresh_from_db()
    assert link.state == FamilyCardLinkState.ACTIVE
    assert (
        'data-testid="consent-done"'
        in parent_client.get(reverse("family_card_consent", args=[link.pk])).content.decode()
    )

    # The parent has no card yet: no code, and no claiming it for them (16 or over claim their own).
    page = alice.get(reverse("card_relative_qr", args=[link.pk]))
    assert 'data-testid="relative-no-card"' in page.content.decode() and "<svg" not in page.content.decode()
    assert alice.get(reverse("family_card_claim_child", args=[link.pk])).status_code == 404
    # Once the parent has claimed their own card, the manager can show it.
    claim_card_directly(parent)
    assert "<svg" in alice.get(reverse("card_relative_qr", args=[link.pk])).content.decode()

    # The relative may stop it too.
    response = submit(parent_client, reverse("family_card_end", args=[link.pk]))
    assert response["Location"] == reverse("family_card_home")
    link.refresh_from_db()
    assert link.state == FamilyCardLinkState.ENDED
    assert alice.get(reverse("card_relative_qr", args=[link.pk])).status_code == 404


def test_r43_a_wrong_name_is_refused_without_saying_whether_the_id_number_exists(alice, child):
    response = submit(
        alice,
        reverse("family_card_add"),
        {
            "relative_name": "李四",
            "relative_id_number": child.id_number,
            "relationship": "child",
            "file": register_file(),
        },
    )
    assert response.status_code == 200
    assert "No insured person matches this name and ID number." in text_of(response)
    assert not FamilyCardLink.objects.exists()


def test_r43_a_ninth_relative_is_refused(alice, citizen_a, region):
    relatives = [
        InsuredPersonFactory(region=region, birth="20120101", insurance_type=InsuranceType.RESIDENT) for _ in range(9)
    ]
    for relative in relatives[:8]:
        add_link(citizen_a, relative)
    home = alice.get(reverse("family_card_home"))
    assert 'data-testid="limit-reached"' in home.content.decode()
    assert 'data-testid="add-relative"' not in home.content.decode()
    assert "8 of at most 8 relatives." in text_of(home)
    ninth = relatives[8]
    response = submit(
        alice,
        reverse("family_card_add"),
        {
            "relative_name": ninth.name,
            "relative_id_number": ninth.id_number,
            "relationship": "child",
            "file": register_file(),
        },
    )
    assert response.status_code == 200
    assert "at most 8 relatives" in text_of(response)
    assert FamilyCardLink.objects.filter(manager=citizen_a.person).count() == 8
    # Ending one makes room again.
    family_card_end(link_id=FamilyCardLink.objects.filter(manager=citizen_a.person).first().pk, user=citizen_a)
    assert 'data-testid="add-relative"' in alice.get(reverse("family_card_home")).content.decode()


def test_r43_the_list_masks_relatives_and_shows_the_state(alice, citizen_a, child, parent):
    active_child_link(citizen_a, child)
    add_link(citizen_a, parent, Relation.PARENT)
    html = alice.get(reverse("family_card_home")).content.decode()
    for person in (child, parent):
        assert person.masked_name in html and person.masked_id_number in html
        assert person.name not in html and person.id_number not in html
    assert html.count('data-testid="managed-relative"') == 2
    assert "waiting for confirmation" in html


def test_ending_a_link_asks_first_then_ends_at_once(alice, citizen_a, child):
    link = active_child_link(citizen_a, child)
    page = alice.get(reverse("family_card_end", args=[link.pk]))
    assert "Stop managing this card?" in text_of(page)
    link.refresh_from_db()
    assert link.state == FamilyCardLinkState.ACTIVE
    response = submit(alice, reverse("family_card_end", args=[link.pk]))
    assert response["Location"] == reverse("family_card_home")
    link.refresh_from_db()
    assert link.state == FamilyCardLinkState.ENDED and link.ended_by_id == citizen_a.pk
    assert alice.get(reverse("card_relative_qr", args=[link.pk])).status_code == 404


def test_a_pending_link_shows_no_code(alice, citizen_a, child):
    link = add_link(citizen_a, child)
    assert alice.get(reverse("card_relative_qr", args=[link.pk])).status_code == 404
    assert alice.get(reverse("family_card_claim_child", args=[link.pk])).status_code == 404


# --- every object URL: strangers 404, anonymous to log in ---------------------------------------


OBJECT_URLS = [
    "card_relative_qr",
    "card_relative_qr_fragment",
    "family_card_detail",
    "family_card_consent",
    "family_card_photo",
    "family_card_claim_child",
    "family_card_end",
]


@pytest.fixture
def child_with_card(citizen_a, child):
    link = active_child_link(citizen_a, child)
    claim_card_directly(child)
    return link


@pytest.mark.parametrize("name", OBJECT_URLS)
def test_a_stranger_gets_404_on_every_object_url(bob, citizen_b, child_with_card, name):
    url = reverse(name, args=[child_with_card.pk])
    assert bob.get(url).status_code == 404
    assert not QrToken.objects.filter(shown_by=citizen_b).exists()


@pytest.mark.parametrize("name", ["family_card_consent", "family_card_photo", "family_card_end"])
def test_a_stranger_cannot_post_either(bob, child_with_card, name):
    url = reverse(name, args=[child_with_card.pk])
    page = bob.get(reverse("family_card_home"))  # a page of bob's own, for a valid CSRF token
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = bob.post(url, {"csrfmiddlewaretoken": token, "agree": "on", "photo": face_file()})
    assert response.status_code == 404
    child_with_card.refresh_from_db()
    assert child_with_card.state == FamilyCardLinkState.ACTIVE


@pytest.mark.parametrize("name", OBJECT_URLS)
def test_anonymous_is_sent_to_log_in_on_every_object_url(client, child_with_card, name):
    response = client.get(reverse(name, args=[child_with_card.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_the_relative_cannot_show_their_own_code_through_the_managers_link(child_with_card, child):
    child_client = client_for(UserFactory(username="child", person=child))
    assert child_client.get(reverse("card_relative_qr", args=[child_with_card.pk])).status_code == 404
    assert child_client.get(reverse("family_card_detail", args=[child_with_card.pk])).status_code == 404


def test_an_unknown_link_is_404(alice):
    assert alice.get(reverse("card_relative_qr", args=[999999])).status_code == 404
    assert alice.get(reverse("family_card_detail", args=[999999])).status_code == 404

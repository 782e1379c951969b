"""添加家庭成员, functionally: the real rendered forms of every step, filled and submitted with CSRF checks on.

A field the page does not render, or a missing CSRF token, fails here (as in django-oscar's functional tests).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image, ImageDraw

from accounts.models import InsuranceType
from family.models import Binding, BindingDocument, BindingState, DocumentKind, Relation
from tests.factories import InsuredPersonFactory
from tests.page_forms import submit

S = BindingState


def register_png(text: str) -> bytes:
    """A household register page, drawn (a stand-in for a phone photo)."""
    image = Image.new("RGB", (900, 640), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([20, 20, 880, 620], outline="black", width=4)
    draw.text((60, 60), "Household register (常住人口登记卡)", fill="black")
    draw.text((60, 120), text, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def upload(name: str, data: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type)


def private_files() -> set[Path]:
    root = Path(settings.PRIVATE_MEDIA_ROOT) / "bindings"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.fixture(autouse=True)
def _no_precheck(monkeypatch):
    """The automatic pre-check has its own tests (test_precheck_*); these pages are about the citizen's flow,
    and the simple test pictures here would be sent back as unreadable."""
    from family import tasks

    monkeypatch.setattr(tasks.document_precheck, "delay", lambda document_id: None)


@pytest.fixture
def owner_client(citizen_a) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(citizen_a)
    return client


@pytest.fixture
def child(region):
    """10 years old on 2026-11-26: no face verification (R23)."""
    return InsuredPersonFactory(name="张小红", region=region, birth="20160501", insurance_type=InsuranceType.RESIDENT)


def fill_notice_and_member(client: Client, relative, relationship: str, **extra):
    submit(client, reverse("binding_add_notice"), {"accept": "on"})
    return submit(
        client,
        reverse("binding_add_member"),
        {
            "relative_name": relative.name,
            "relative_id_number": relative.id_number.lower(),
            "relationship": relationship,
            **extra,
        },
    )


def sign_by_typing(client: Client, name: str):
    return submit(client, reverse("binding_add_letter"), {"signed_name": name, "confirm": "on"})


def test_an_owner_adds_a_10_year_old_child_through_every_step(owner_client, citizen_a, child, pipeline):
    assert owner_client.get(reverse("binding_add"))["Location"] == reverse("binding_add_notice")

    response = fill_notice_and_member(owner_client, child, Relation.CHILD, authorized_until="2027-12-31")
    assert response.status_code == 302 and response["Location"] == reverse("binding_add_letter")

    letter = owner_client.get(reverse("binding_add_letter")).content.decode()
    assert "个人承诺书" in letter and child.name in letter  # the generated commitment letter
    assert "data-signature-pad hidden" in letter  # the canvas needs JavaScript; the typed name does not
    response = sign_by_typing(owner_client, "张伟")
    assert response["Location"] == reverse("binding_add_upload")

    upload_page = owner_client.get(reverse("binding_add_upload")).content.decode()
    assert 'accept="image/*,application/pdf"' in upload_page and "capture" not in upload_page
    assert "marriage_certificate" not in upload_page  # only for a spouse
    with pipeline():
        response = submit(
            owner_client,
            reverse("binding_add_upload"),
            {
                "owner_register": upload("owner.png", register_png("张伟")),
                "relative_register": upload("child.png", register_png("张小红")),
            },
        )

    binding = Binding.objects.get(owner=citizen_a.person, relative=child)
    assert response.status_code == 302 and response["Location"] == reverse("binding_detail", args=[binding.pk])
    assert binding.state == S.UNDER_REVIEW  # eligible; the documents wait for a reviewer (eager pipeline)
    assert binding.letter_signed_name == "张伟" and binding.authorized_until == dt.date(2027, 12, 31)
    assert [e.to_state for e in binding.events.all()] == [S.SUBMITTED, S.UNDER_REVIEW]
    kinds = sorted(binding.documents.values_list("kind", flat=True))
    assert kinds == sorted(
        [
            DocumentKind.COMMITMENT_LETTER,
            DocumentKind.OWNER_HOUSEHOLD_REGISTER,
            DocumentKind.RELATIVE_HOUSEHOLD_REGISTER,
        ]
    )
    assert "family_add_draft" not in owner_client.session  # the draft is cleared
    status = owner_client.get(response["Location"]).content.decode()
    assert "Your application is submitted." in status
    assert 'data-state="under_review"' in status and "Waiting for: a reviewer" in status


def test_a_bad_file_is_refused_next_to_its_field_and_nothing_is_stored(owner_client, citizen_a, child, pipeline):
    fill_notice_and_member(owner_client, child, Relation.CHILD)
    sign_by_typing(owner_client, "张伟")
    files_before = private_files()

    with pipeline():
        response = submit(
            owner_client,
            reverse("binding_add_upload"),
            {
                "owner_register": upload("owner.png", register_png("张伟")),
                "relative_register": upload("child.png", b"this is not a picture at all"),
            },
        )

    assert response.status_code == 200
    body = response.content.decode()
    field = re.search(r'<div class="field field-error">.*?</div>', body, re.S).group(0)
    assert 'name="relative_register"' in field and "is not a JPEG, PNG or WebP picture or a PDF" in field
    assert "error-summary" in body
    assert Binding.objects.count() == 0
    assert BindingDocument.objects.count() == 0
    assert private_files() == files_before  # the letter and the first file written were removed too
    assert owner_client.session["family_add_draft"]["signed_at"]  # the draft is still there to try again


def test_leaving_and_coming_back_keeps_the_draft(owner_client, child):
    fill_notice_and_member(owner_client, child, Relation.CHILD)

    owner_client.get(reverse("family_home"))  # away, then back
    assert 'data-testid="draft-notice"' in owner_client.get(reverse("family_home")).content.decode()
    response = owner_client.get(reverse("binding_add"))

    assert response["Location"] == reverse("binding_add_letter")
    member_page = owner_client.get(reverse("binding_add_member")).content.decode()
    assert f'value="{child.name}"' in member_page and f'value="{child.id_number}"' in member_page
    assert re.search(r'value="child"[^>]*checked', member_page)


def test_a_later_step_cannot_be_opened_before_the_earlier_ones(owner_client):
    assert owner_client.get(reverse("binding_add_upload"))["Location"] == reverse("binding_add_notice")
    submit(owner_client, reverse("binding_add_notice"), {"accept": "on"})
    assert owner_client.get(reverse("binding_add_letter"))["Location"] == reverse("binding_add_member")


def test_the_typed_name_must_be_the_owners_own(owner_client, child):
    fill_notice_and_member(owner_client, child, Relation.CHILD)
    response = sign_by_typing(owner_client, "李四")
    assert response.status_code == 200
    assert "Type your own full name, exactly as on your ID card." in response.content.decode()
    response = submit(owner_client, reverse("binding_add_letter"), {"confirm": "on"})
    assert "Draw your signature above, or type your full name here." in response.content.decode()


def test_a_duplicate_pair_is_shown_the_existing_application(owner_client, citizen_a, child, binding_insert):
    existing = binding_insert(citizen_a.person, child, state=S.UNDER_REVIEW)

    response = fill_notice_and_member(owner_client, child, Relation.CHILD)

    assert response["Location"] == reverse("binding_detail", args=[existing.pk])
    assert "already open" in owner_client.get(response["Location"]).content.decode()
    assert Binding.objects.count() == 1


def test_a_duplicate_made_meanwhile_is_shown_on_submit(owner_client, citizen_a, child, binding_insert, pipeline):
    fill_notice_and_member(owner_client, child, Relation.CHILD)
    sign_by_typing(owner_client, "张伟")
    existing = binding_insert(citizen_a.person, child, state=S.UNDER_REVIEW)  # e.g. from another tab

    with pipeline():
        response = submit(
            owner_client,
            reverse("binding_add_upload"),
            {
                "owner_register": upload("owner.png", register_png("张伟")),
                "relative_register": upload("child.png", register_png("张小红")),
            },
        )

    assert response["Location"] == reverse("binding_detail", args=[existing.pk])
    assert Binding.objects.count() == 1 and BindingDocument.objects.count() == 0


def test_an_ineligible_relationship_shows_r12_with_the_policy_before_any_upload(owner_client, region):
    sibling = InsuredPersonFactory(name="张丽", region=region, birth="19850707", male=False)
    with time_machine.travel(dt.datetime(2023, 6, 1, 10, tzinfo=dt.UTC), tick=False):
        response = fill_notice_and_member(owner_client, sibling, Relation.SIBLING)

        assert response.status_code == 200
        body = response.content.decode()
        assert "Sharing with this person is not possible now." in body
        r12 = re.search(r'data-rule="R12">.*?</li>', body, re.S).group(0)
        assert "320500@2021-04-13" in r12 and "2024-07-01" in r12  # R13: the policy, and when it would be allowed
        assert owner_client.get(reverse("binding_add_letter"))["Location"] == reverse("binding_add_member")
        assert owner_client.get(reverse("binding_add_upload"))["Location"] == reverse("binding_add_member")
    assert Binding.objects.count() == 0


def test_a_name_that_does_not_match_the_id_number_is_refused_before_upload(owner_client, child):
    submit(owner_client, reverse("binding_add_notice"), {"accept": "on"})
    response = submit(
        owner_client,
        reverse("binding_add_member"),
        {"relative_name": "王五", "relative_id_number": child.id_number, "relationship": "child"},
    )
    body = response.content.decode()
    assert "No insured person matches this name and ID number." in body
    assert owner_client.get(reverse("binding_add_letter"))["Location"] == reverse("binding_add_member")


def test_a_spouse_may_send_the_marriage_certificate_instead_of_the_register(
    owner_client, citizen_a, citizen_a_family, pipeline
):
    spouse = citizen_a_family["spouse"]
    fill_notice_and_member(owner_client, spouse, Relation.SPOUSE)
    sign_by_typing(owner_client, "张伟")
    assert 'name="marriage_certificate"' in owner_client.get(reverse("binding_add_upload")).content.decode()

    response = submit(
        owner_client, reverse("binding_add_upload"), {"owner_register": upload("o.png", register_png("x"))}
    )
    assert "marriage certificate below" in response.content.decode()

    with pipeline():
        response = submit(
            owner_client,
            reverse("binding_add_upload"),
            {
                "owner_register": upload("owner.png", register_png("张伟")),
                "marriage_certificate": upload("marriage.png", register_png("结婚证")),
            },
        )

    binding = Binding.objects.get(owner=citizen_a.person, relative=spouse)
    assert response["Location"] == reverse("binding_detail", args=[binding.pk])
    assert binding.documents.filter(kind=DocumentKind.MARRIAGE_CERTIFICATE).exists()


def test_a_drawn_signature_goes_into_the_letter(owner_client, citizen_a, child, pipeline):
    import base64

    fill_notice_and_member(owner_client, child, Relation.CHILD)
    canvas = Image.new("RGB", (600, 240), "white")
    ImageDraw.Draw(canvas).line([(40, 200), (300, 40), (560, 180)], fill="black", width=5)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    data_url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()

    response = submit(owner_client, reverse("binding_add_letter"), {"signature": data_url, "confirm": "on"})
    assert response["Location"] == reverse("binding_add_upload")
    with pipeline():
        submit(
            owner_client,
            reverse("binding_add_upload"),
            {
                "owner_register": upload("owner.png", register_png("张伟")),
                "relative_register": upload("child.png", register_png("张小红")),
            },
        )

    binding = Binding.objects.get(owner=citizen_a.person, relative=child)
    assert binding.letter_signed_name == "张伟"
    letter = binding.documents.get(kind=DocumentKind.COMMITMENT_LETTER)
    with letter.file.open("rb") as pdf:
        assert b"/Subtype /Image" in pdf.read()  # the drawing is in the PDF


def test_a_broken_drawn_signature_is_refused_on_the_letter_step(owner_client, child):
    fill_notice_and_member(owner_client, child, Relation.CHILD)
    response = submit(
        owner_client, reverse("binding_add_letter"), {"signature": "data:image/png;base64,AAAA", "confirm": "on"}
    )
    assert response.status_code == 200
    assert "The drawn signature could not be read." in response.content.decode()

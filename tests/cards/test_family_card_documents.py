"""R43 via R20/R21: adding a relative to the family card service needs the household register page showing
the relative (or a newborn's birth medical certificate), checked by content as a binding's documents are
(family.documents), stored privately with the link, all or nothing; no confirmation without it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.storage import PrivateStorage
from cards.errors import FamilyCardRefused
from cards.models import FamilyCardDocument, FamilyCardDocumentKind, FamilyCardLink, FamilyCardLinkState
from cards.services import family_card_add, family_card_confirm, family_card_document_approve
from family.documents import DocumentRefused
from tests.attack_files import html_page, png_scan, zero_bytes
from tests.cards.test_card_pages import client_for, main_form, submit, text_of


@pytest.fixture
def frozen():
    """Time stands still tomorrow at 09:00 UTC (after the fixtures' rows); ``frozen.shift(...)`` moves it."""
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    with time_machine.travel(start, tick=False) as traveller:
        yield traveller


@pytest.fixture
def alice(citizen_a):
    return client_for(citizen_a)


@pytest.fixture
def child(citizen_a_family):
    return citizen_a_family["child"]


@pytest.fixture
def parent(citizen_a_family):
    return citizen_a_family["parent"]


@pytest.fixture
def storage():
    return FamilyCardDocument._meta.get_field("file").storage


@pytest.fixture
def stored_files(storage):
    """The files under family_cards/ in private storage now; the ones a test adds are removed afterwards."""
    root = Path(storage.location) / "family_cards"

    def files() -> set[Path]:
        return {path for path in root.rglob("*") if path.is_file()} if root.exists() else set()

    before = files()
    yield files
    for path in files() - before:
        path.unlink()


def _add_form(relative, relationship: str, upload: SimpleUploadedFile, **extra) -> dict:
    return {
        "relative_name": relative.name,
        "relative_id_number": relative.id_number,
        "relationship": relationship,
        "file": upload,
        **extra,
    }


def test_the_add_page_asks_for_a_photo_or_pdf_of_the_document(alice):
    page = alice.get(reverse("family_card_add"))
    html = page.content.decode()
    form = main_form(html)
    assert form.enctype == "multipart/form-data"
    assert {"file", "document_kind"} <= form.names
    assert 'accept="image/*,application/pdf"' in html
    register_radio = html[: html.index(f'value="{FamilyCardDocumentKind.RELATIVE_HOUSEHOLD_REGISTER}"') + 80]
    assert "checked" in register_radio[register_radio.rindex("<input") :]
    assert "birth medical certificate" in text_of(page)


def test_a_good_file_is_stored_privately_with_the_link(alice, citizen_a, parent, storage, stored_files):
    before = stored_files()
    response = submit(
        alice,
        reverse("family_card_add"),
        _add_form(parent, "parent", SimpleUploadedFile("户口本 ../../evil.html", png_scan(), "text/html")),
    )
    link = FamilyCardLink.objects.get(manager=citizen_a.person, relative=parent)
    assert response["Location"] == reverse("family_card_detail", args=[link.pk])
    document = link.documents.get()
    assert document.kind == FamilyCardDocumentKind.RELATIVE_HOUSEHOLD_REGISTER
    # The content decides, never the client's name or type; the name is generated.
    assert document.content_type == "image/png"
    assert document.file.name.startswith(f"family_cards/{link.pk}/") and document.file.name.endswith(".png")
    assert "evil" not in document.file.name and "户口本" not in document.file.name
    assert document.uploaded_by == citizen_a
    assert document.size == document.file.size > 0
    # Private storage: outside MEDIA_ROOT, no URL.
    assert isinstance(storage, PrivateStorage)
    assert Path(storage.location) == Path(settings.PRIVATE_MEDIA_ROOT)
    with pytest.raises(ValueError):
        document.file.url  # noqa: B018 the property is what is tested
    assert stored_files() - before == {Path(storage.path(document.file.name))}
    with document.file.open("rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_birth_medical_certificate_may_be_chosen_for_a_child(alice, citizen_a, child, stored_files):
    submit(
        alice,
        reverse("family_card_add"),
        _add_form(
            child,
            "child",
            SimpleUploadedFile("cert.png", png_scan(), "image/png"),
            document_kind=FamilyCardDocumentKind.BIRTH_CERTIFICATE,
        ),
    )
    link = FamilyCardLink.objects.get(manager=citizen_a.person, relative=child)
    assert link.documents.get().kind == FamilyCardDocumentKind.BIRTH_CERTIFICATE


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (
            SimpleUploadedFile("register.jpg", html_page(), "image/jpeg"),
            "This file is a web page or an SVG drawing, not a photo or a scan.",
        ),
        (SimpleUploadedFile("register.jpg", zero_bytes(), "image/jpeg"), "The file is empty."),
    ],
    ids=["html-named-jpg", "zero-bytes"],
)
def test_a_bad_file_is_refused_next_to_the_field_and_leaves_no_link_and_no_file(
    alice, citizen_a, parent, stored_files, upload, message
):
    before = stored_files()
    response = submit(alice, reverse("family_card_add"), _add_form(parent, "parent", upload))
    assert response.status_code == 200
    html = response.content.decode()
    # Next to the file field (its error paragraph follows the input), not only in the summary.
    field_start = html.index('name="file"')
    field_end = html.index("</div>", field_start)
    assert message in html[field_start:field_end]
    assert not FamilyCardLink.objects.exists()
    assert not FamilyCardDocument.objects.exists()
    assert stored_files() == before


def test_the_service_refuses_a_bad_file_as_a_binding_document_is(citizen_a, parent, stored_files):
    before = stored_files()
    with pytest.raises(DocumentRefused) as refused:
        family_card_add(
            manager=citizen_a.person,
            relative_id_number=parent.id_number,
            relative_name=parent.name,
            relationship="parent",
            user=citizen_a,
            document=SimpleUploadedFile("register.jpg", html_page(), "image/jpeg"),
        )
    assert refused.value.code == "document_markup"
    assert [error.field for error in refused.value.errors] == ["file"]
    assert not FamilyCardLink.objects.exists() and stored_files() == before


def test_a_refusal_after_the_file_is_written_leaves_no_file(citizen_a, parent, stored_files, monkeypatch):
    """All or nothing: if the transaction fails after the file was written, the file goes too."""
    import cards.services

    def broken_audit(**kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(cards.services, "audit_record", broken_audit)
    before = stored_files()
    with pytest.raises(RuntimeError):
        family_card_add(
            manager=citizen_a.person,
            relative_id_number=parent.id_number,
            relative_name=parent.name,
            relationship="parent",
            user=citizen_a,
            document=SimpleUploadedFile("register.png", png_scan(), "image/png"),
        )
    assert not FamilyCardLink.objects.exists() and not FamilyCardDocument.objects.exists()
    assert stored_files() == before


def test_confirming_a_link_without_a_document_is_refused(citizen_a, parent, face, frozen):
    link = family_card_add(
        manager=citizen_a.person,
        relative_id_number=parent.id_number,
        relative_name=parent.name,
        relationship="parent",
        user=citizen_a,
    )
    frozen.shift(1)
    with pytest.raises(FamilyCardRefused) as refused:
        family_card_confirm(link_id=link.pk, verification=face(parent, "family_card_consent", link.pk))
    assert (refused.value.code, refused.value.status) == ("document_missing", 409)
    assert "household register page" in refused.value.title
    link.refresh_from_db()
    assert (link.state, link.activated_at) == (FamilyCardLinkState.PENDING, None)


def test_r24_confirming_with_a_document_waits_for_its_approval(citizen_a, parent, face, frozen, stored_files, reviewer):
    link = family_card_add(
        manager=citizen_a.person,
        relative_id_number=parent.id_number,
        relative_name=parent.name,
        relationship="parent",
        user=citizen_a,
        document=SimpleUploadedFile("register.png", png_scan(), "image/png"),
    )
    frozen.shift(1)
    confirmed = family_card_confirm(link_id=link.pk, verification=face(parent, "family_card_consent", link.pk))
    assert confirmed.state == FamilyCardLinkState.PENDING and confirmed.face_step_done
    family_card_document_approve(document_id=link.documents.get().pk, reviewer=reviewer)
    assert FamilyCardLink.objects.get(pk=link.pk).state == FamilyCardLinkState.ACTIVE

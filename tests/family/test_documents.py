"""Uploaded documents (R20, R24, R51): checked by content, re-encoded, private, viewed with an audit trail."""

from __future__ import annotations

import io
import os
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.http import Http404
from PIL import Image

from accounts.models import AuditEvent
from accounts.storage import PrivateStorage
from family.documents import DocumentRefused, document_attach, document_open_for
from family.models import BindingDocument, BindingState, DocumentKind, DocumentStatus, Relation
from tests.factories import UserFactory

KIND = DocumentKind.OWNER_HOUSEHOLD_REGISTER
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(autouse=True)
def storage(tmp_path, monkeypatch) -> PrivateStorage:
    """Documents go to a private folder of this test (the field's storage is built once, at import)."""
    private = PrivateStorage(location=tmp_path / "private")
    monkeypatch.setattr(BindingDocument._meta.get_field("file"), "storage", private)
    return private


def stored_files(storage: PrivateStorage) -> list[str]:
    root = storage.location
    return sorted(
        os.path.relpath(os.path.join(folder, name), root) for folder, _dirs, names in os.walk(root) for name in names
    )


@pytest.fixture
def binding(citizen_a, citizen_a_family, binding_insert):
    return binding_insert(
        citizen_a.person, citizen_a_family["spouse"], state=BindingState.UNDER_REVIEW, relationship=Relation.SPOUSE
    )


def picture(fmt: str = "JPEG", size=(600, 400), **options) -> bytes:
    image = Image.new("RGB", size, (200, 180, 160))
    image.paste((20, 20, 20), (0, 0, size[0] // 4, size[1] // 4))  # a dark corner: shows which way is up
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def upload(content: bytes, name: str = "户口本.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def exif_with_gps_and_orientation() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (31.0, 18.0, 12.5)
    gps[3], gps[4] = "E", (120.0, 35.0, 1.0)
    return exif.tobytes()


def test_r24_a_photo_is_reencoded_upright_without_exif_or_gps(binding, citizen_a, storage):
    original = picture(exif=exif_with_gps_and_orientation())
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the set-up has a GPS position

    document = document_attach(
        binding=binding, kind=KIND, uploaded=upload(original, "../../my-home.jpg"), user=citizen_a
    )

    document.refresh_from_db()
    assert (document.kind, document.status, document.content_type) == (KIND, DocumentStatus.PENDING, "image/jpeg")
    assert document.uploaded_by == citizen_a
    # A generated name under the binding's folder; nothing of the client's name.
    assert re.fullmatch(rf"bindings/{binding.pk}/[0-9a-f]{{32}}\.jpg", document.file.name)
    assert stored_files(storage) == [document.file.name]
    with document.file.open("rb") as handle:
        stored = handle.read()
    assert document.size == len(stored)
    image = Image.open(io.BytesIO(stored))
    assert image.format == "JPEG"
    assert dict(image.getexif()) == {}
    assert b"Exif" not in stored and b"PhoneMaker" not in stored
    # Orientation applied: 600×400 stored sideways is 400×600 upright, the dark corner now top right.
    assert image.size == (400, 600)
    assert image.getpixel((390, 10))[0] < 60 and image.getpixel((10, 10))[0] > 150


def test_a_png_stays_a_png_without_its_text_chunks(binding, citizen_a):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "home address here")
    document = document_attach(
        binding=binding,
        kind=KIND,
        uploaded=upload(picture("PNG", pnginfo=info), "scan.png", "image/png"),
        user=citizen_a,
    )
    with document.file.open("rb") as handle:
        stored = handle.read()
    assert document.content_type == "image/png" and document.file.name.endswith(".png")
    assert b"home address" not in stored
    assert Image.open(io.BytesIO(stored)).format == "PNG"


def test_a_webp_is_stored_as_jpeg(binding, citizen_a):
    document = document_attach(binding=binding, kind=KIND, uploaded=upload(picture("WEBP"), "a.webp"), user=citizen_a)
    assert document.content_type == "image/jpeg" and document.file.name.endswith(".jpg")


def test_a_pdf_is_stored_as_sent(binding, citizen_a):
    document = document_attach(
        binding=binding, kind=KIND, uploaded=upload(PDF, "register.jpg", "image/jpeg"), user=citizen_a
    )
    # The type comes from the content, not from the name or the client's content type.
    assert document.content_type == "application/pdf" and document.file.name.endswith(".pdf")
    with document.file.open("rb") as handle:
        assert handle.read() == PDF


def truncated(content: bytes) -> bytes:
    return content[: len(content) * 2 // 3]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "not a JPEG, PNG or WebP"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "not a JPEG, PNG or WebP"),
        (b"MZ\x90\x00 an executable", "not a JPEG, PNG or WebP"),
        (picture("GIF"), "not a JPEG, PNG or WebP"),
        (picture("BMP"), "not a JPEG, PNG or WebP"),
        (truncated(picture("JPEG")), "damaged or incomplete"),
        (truncated(picture("PNG")), "damaged or incomplete"),
        (b"%PDF-1.4\n1 0 obj << >> endobj\n", "incomplete"),
    ],
    ids=["empty", "svg", "html", "exe", "gif", "bmp", "truncated-jpeg", "truncated-png", "truncated-pdf"],
)
def test_what_is_not_an_accepted_document_is_refused_and_nothing_stored(binding, citizen_a, storage, content, words):
    with pytest.raises(DocumentRefused) as refused:
        document_attach(binding=binding, kind=KIND, uploaded=upload(content), user=citizen_a)
    assert words in refused.value.title
    assert [e.field for e in refused.value.errors] == ["file"]
    assert refused.value.status == 400
    assert not BindingDocument.objects.exists()
    assert stored_files(storage) == []


def test_a_file_over_the_size_limit_is_refused(binding, citizen_a, settings, storage):
    settings.DOCUMENT_MAX_BYTES = 2 * 1024 * 1024
    big = upload(b"%PDF-1.4\n" + b"0" * (2 * 1024 * 1024) + b"\n%%EOF\n")
    with pytest.raises(DocumentRefused, match="larger than 2 MB"):
        document_attach(binding=binding, kind=KIND, uploaded=big, user=citizen_a)
    assert stored_files(storage) == []


def test_a_picture_of_too_many_pixels_is_refused_before_decoding(binding, citizen_a, storage):
    buffer = io.BytesIO()
    Image.new("1", (8000, 6000)).save(buffer, format="PNG")  # 48 MP, a few kB compressed
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(DocumentRefused, match="40 million pixels"):
        document_attach(binding=binding, kind=KIND, uploaded=upload(buffer.getvalue()), user=citizen_a)
    assert stored_files(storage) == []


def test_a_live_document_of_the_same_kind_is_not_replaced(binding, citizen_a, storage):
    first = document_attach(binding=binding, kind=KIND, uploaded=upload(picture()), user=citizen_a)
    with pytest.raises(DocumentRefused) as refused:
        document_attach(binding=binding, kind=KIND, uploaded=upload(picture()), user=citizen_a)
    assert refused.value.status == 409
    assert "already uploaded" in refused.value.title
    assert list(BindingDocument.objects.values_list("pk", flat=True)) == [first.pk]
    assert stored_files(storage) == [first.file.name]


def test_a_rejected_document_may_be_replaced(binding, citizen_a):
    first = document_attach(binding=binding, kind=KIND, uploaded=upload(picture()), user=citizen_a)
    BindingDocument.objects.filter(pk=first.pk).update(status=DocumentStatus.REJECTED, rejection_reason="blurred")
    second = document_attach(binding=binding, kind=KIND, uploaded=upload(picture()), user=citizen_a)
    assert second.pk != first.pk
    assert BindingDocument.objects.filter(binding=binding, kind=KIND).count() == 2
    # Another kind is independent of the first.
    document_attach(
        binding=binding, kind=DocumentKind.RELATIVE_HOUSEHOLD_REGISTER, uploaded=upload(picture()), user=citizen_a
    )


def test_no_file_is_left_when_the_database_refuses_the_row(binding, citizen_a, storage, monkeypatch):
    def database_down(self, *args, **kwargs):
        raise OperationalError("the database went away")

    monkeypatch.setattr(BindingDocument, "save", database_down)
    with pytest.raises(OperationalError):
        document_attach(binding=binding, kind=KIND, uploaded=upload(picture()), user=citizen_a)
    assert stored_files(storage) == []


def test_only_the_owner_uploads(binding, citizen_b, citizen_a_family, storage):
    relative_user = UserFactory(person=citizen_a_family["spouse"])
    for user in (citizen_b, relative_user):
        with pytest.raises(DocumentRefused) as refused:
            document_attach(binding=binding, kind=KIND, uploaded=upload(picture()), user=user)
        assert refused.value.status == 403
    assert stored_files(storage) == []


@pytest.mark.parametrize("state", [BindingState.ACTIVE, BindingState.REJECTED, BindingState.AWAITING_FACE])
def test_a_decided_application_takes_no_documents(citizen_a, citizen_a_family, binding_insert, state):
    binding = binding_insert(citizen_a.person, citizen_a_family["child"], state=state)
    with pytest.raises(DocumentRefused) as refused:
        document_attach(binding=binding, kind=KIND, uploaded=upload(picture()), user=citizen_a)
    assert refused.value.status == 409


def test_an_unknown_kind_is_refused(binding, citizen_a):
    with pytest.raises(DocumentRefused) as refused:
        document_attach(binding=binding, kind="selfie", uploaded=upload(picture()), user=citizen_a)
    assert [e.field for e in refused.value.errors] == ["kind"]


# R51: who may open a document.


@pytest.fixture
def documents(binding, citizen_a):
    return {
        kind: document_attach(binding=binding, kind=kind, uploaded=upload(picture()), user=citizen_a)
        for kind in (DocumentKind.OWNER_HOUSEHOLD_REGISTER, DocumentKind.RELATIVE_HOUSEHOLD_REGISTER)
    }


def test_r51_the_owner_opens_every_document_without_an_audit_row(documents, citizen_a):
    for document in documents.values():
        assert document_open_for(user=citizen_a, document_id=document.pk) == document
    assert not AuditEvent.objects.filter(action="document.viewed").exists()


def test_r4_the_relative_opens_only_the_documents_about_the_relative(documents, citizen_a_family):
    relative_user = UserFactory(person=citizen_a_family["spouse"])
    own_page = documents[DocumentKind.RELATIVE_HOUSEHOLD_REGISTER]
    assert document_open_for(user=relative_user, document_id=own_page.pk) == own_page
    with pytest.raises(Http404):
        document_open_for(user=relative_user, document_id=documents[DocumentKind.OWNER_HOUSEHOLD_REGISTER].pk)


def test_r51_every_staff_view_is_audited(documents, reviewer, admin_user, rf):
    document = documents[DocumentKind.OWNER_HOUSEHOLD_REGISTER]
    request = rf.get("/", REMOTE_ADDR="10.1.2.3")
    assert document_open_for(user=reviewer, document_id=document.pk, request=request) == document
    document_open_for(user=admin_user, document_id=document.pk)

    rows = list(AuditEvent.objects.filter(action="document.viewed").order_by("pk"))
    assert [(row.actor, row.target_type, row.target_id) for row in rows] == [
        (reviewer, "family.bindingdocument", str(document.pk)),
        (admin_user, "family.bindingdocument", str(document.pk)),
    ]
    assert rows[0].ip_address == "10.1.2.3"
    assert rows[0].detail == {"binding": document.binding_id, "kind": document.kind}


def test_r51_strangers_get_404(documents, citizen_b, clerk_x, django_user_model):
    from django.contrib.auth.models import AnonymousUser

    document = documents[DocumentKind.OWNER_HOUSEHOLD_REGISTER]
    partner = UserFactory(role="partner")
    for user in (citizen_b, clerk_x, partner, AnonymousUser()):
        with pytest.raises(Http404):
            document_open_for(user=user, document_id=document.pk)
    with pytest.raises(Http404):
        document_open_for(user=citizen_b, document_id=999_999)
    assert not AuditEvent.objects.filter(action="document.viewed").exists()

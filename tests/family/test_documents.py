"""Uploaded documents (R20, R24, R51): checked by content, re-encoded, private, viewed with an audit trail.

The attack corpus (every kind of bad file, and the phone files that must come out clean) is in
test_upload_attacks.py; this module is about the service's other behaviour.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connections
from django.http import Http404
from PIL import Image, ImageFile

from accounts.models import AuditEvent
from family.documents import (
    DocumentRefused,
    StoredContent,
    document_attach,
    document_open_for,
    document_page_image,
    document_store,
)
from family.models import BindingDocument, BindingState, DocumentKind, DocumentStatus, PrecheckStatus
from tests import attack_files
from tests.factories import UserFactory
from tests.family.conftest import stored_files

KIND = DocumentKind.OWNER_HOUSEHOLD_REGISTER
PDF = attack_files.pdf_scan(1)


pytestmark = pytest.mark.usefixtures("storage", "english", "prechecks")


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
    document.refresh_from_db()
    assert document.pages == 1


def test_r24_the_precheck_is_queued_once_the_upload_commits(
    binding, citizen_a, prechecks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        document = document_attach(binding=binding, kind=KIND, uploaded=upload(picture()), user=citizen_a)
        assert prechecks == []  # not before the commit: the task would not find the row
    assert prechecks == [document.pk]
    assert len(callbacks) == 2  # the thumbnail, then the pre-check
    document.refresh_from_db()
    assert document.precheck_status == PrecheckStatus.PENDING


def test_a_refused_upload_queues_nothing(binding, citizen_a, prechecks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(DocumentRefused):
        document_attach(binding=binding, kind=KIND, uploaded=upload(b"<html></html>"), user=citizen_a)
    assert callbacks == [] and prechecks == []


def test_the_thumbnail_is_written_after_the_commit_and_not_at_all_after_a_rollback(
    binding, citizen_a, storage, django_capture_on_commit_callbacks
):
    """An application's files are stored all or nothing (the caller rolls back): no thumbnail is left behind."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        document = document_attach(binding=binding, kind=KIND, uploaded=upload(picture()), user=citizen_a)
    # The caller's transaction rolled back: its callbacks never run, and the caller removes the file.
    document.file.storage.delete(document.file.name)
    assert stored_files(storage) == []
    assert not document.thumbnail

    callbacks[0]()  # had it committed:
    document.refresh_from_db()
    assert document.thumbnail.name.startswith(f"bindings/{binding.pk}/") and document.thumbnail.name.endswith(".jpg")
    with document.thumbnail.open("rb") as handle:
        assert max(Image.open(handle).size) == 320


def test_a_document_we_generated_gets_pages_and_a_thumbnail_too(
    binding, citizen_a, storage, django_capture_on_commit_callbacks
):
    """The commitment letter is stored through document_store, without going through the upload checks."""
    pdf = attack_files.pdf_scan(2)
    with django_capture_on_commit_callbacks(execute=True):
        document = document_store(
            binding=binding,
            kind=DocumentKind.COMMITMENT_LETTER,
            content=StoredContent(pdf, "application/pdf", "pdf"),
            user=citizen_a,
        )
    document.refresh_from_db()
    assert (document.pages, document.size) == (2, len(pdf))
    assert sorted(stored_files(storage)) == sorted([document.file.name, document.thumbnail.name])


def truncated(content: bytes) -> bytes:
    return content[: len(content) * 2 // 3]


@pytest.mark.parametrize(
    ("content", "code", "words"),
    [
        (b"", "document_empty", "empty"),
        (picture("GIF"), "document_type", "not a JPEG, PNG or WebP"),
        (picture("BMP"), "document_type", "not a JPEG, PNG or WebP"),
        (picture("TIFF"), "document_type", "not a JPEG, PNG or WebP"),
        (b"\xff\xd8\xff but not a JPEG after the marker", "document_damaged", "damaged or incomplete"),
        (truncated(picture("JPEG")), "document_damaged", "damaged or incomplete"),
        (truncated(picture("PNG")), "document_damaged", "damaged or incomplete"),
        (b"%PDF-1.4\n1 0 obj << >> endobj\n", "document_damaged", "incomplete"),
        (b"%PDF-1.4\n%%EOF\n", "document_damaged", "cannot be read"),
    ],
    ids=["empty", "gif", "bmp", "tiff", "jpeg-magic-only", "truncated-jpeg", "truncated-png", "cut-pdf", "no-pdf"],
)
def test_what_is_not_an_accepted_document_is_refused_and_nothing_stored(
    binding, citizen_a, storage, content, code, words
):
    with pytest.raises(DocumentRefused) as refused:
        document_attach(binding=binding, kind=KIND, uploaded=upload(content), user=citizen_a)
    assert refused.value.code == code
    assert words in refused.value.title
    assert [e.field for e in refused.value.errors] == ["file"]
    assert refused.value.status == 400
    assert not BindingDocument.objects.exists()
    assert stored_files(storage) == []


def test_a_file_over_the_size_limit_is_refused(binding, citizen_a, settings, storage):
    settings.DOCUMENT_MAX_BYTES = 2 * 1024 * 1024
    big = upload(b"%PDF-1.4\n" + b"0" * (2 * 1024 * 1024) + b"\n%%EOF\n")
    with pytest.raises(DocumentRefused, match="larger than 2 MB") as refused:
        document_attach(binding=binding, kind=KIND, uploaded=big, user=citizen_a)
    assert refused.value.code == "document_too_large"
    assert stored_files(storage) == []


def test_the_size_limit_also_holds_when_the_client_does_not_say_the_size(binding, citizen_a, settings, storage):
    settings.DOCUMENT_MAX_BYTES = 1024 * 1024
    big = upload(b"%PDF-1.4\n" + b"0" * (1024 * 1024) + b"\n%%EOF\n")
    big.size = None
    with pytest.raises(DocumentRefused) as refused:
        document_attach(binding=binding, kind=KIND, uploaded=big, user=citizen_a)
    assert refused.value.code == "document_too_large"


def test_a_picture_of_too_many_pixels_is_refused_before_decoding(binding, citizen_a, storage, monkeypatch):
    buffer = io.BytesIO()
    Image.new("1", (8000, 6000)).save(buffer, format="PNG")  # 48 MP, a few kB compressed
    assert len(buffer.getvalue()) < 100_000

    def no_decoding(self):
        raise AssertionError("decoded before the pixel count was checked")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(DocumentRefused, match="40 million pixels") as refused:
        document_attach(binding=binding, kind=KIND, uploaded=upload(buffer.getvalue()), user=citizen_a)
    assert refused.value.code == "document_too_many_pixels"
    assert stored_files(storage) == []


def test_the_pixel_limit_is_a_setting(binding, citizen_a, settings):
    settings.DOCUMENT_MAX_PIXELS = 200_000
    with pytest.raises(DocumentRefused) as refused:
        document_attach(binding=binding, kind=KIND, uploaded=upload(picture(size=(600, 400))), user=citizen_a)
    assert refused.value.code == "document_too_many_pixels"
    settings.DOCUMENT_MAX_PIXELS = 240_000
    assert document_attach(binding=binding, kind=KIND, uploaded=upload(picture(size=(600, 400))), user=citizen_a)


def test_a_live_document_of_the_same_kind_is_not_replaced(binding, citizen_a, storage):
    first = document_attach(binding=binding, kind=KIND, uploaded=upload(picture()), user=citizen_a)
    with pytest.raises(DocumentRefused) as refused:
        document_attach(binding=binding, kind=KIND, uploaded=upload(picture()), user=citizen_a)
    assert (refused.value.status, refused.value.code) == (409, "document_already_uploaded")
    assert "already uploaded" in refused.value.title
    assert list(BindingDocument.objects.values_list("pk", flat=True)) == [first.pk]
    assert stored_files(storage) == [first.file.name]


def test_an_application_takes_a_bounded_number_of_documents(binding, citizen_a, settings, storage):
    """Re-uploads of rejected documents count too: a citizen cannot fill the disk by rejecting and retrying."""
    settings.DOCUMENT_MAX_PER_BINDING = 3
    for _attempt in range(3):
        document = document_attach(binding=binding, kind=KIND, uploaded=upload(picture()), user=citizen_a)
        BindingDocument.objects.filter(pk=document.pk).update(status=DocumentStatus.REJECTED)
    files_before = stored_files(storage)

    for kind in (KIND, DocumentKind.RELATIVE_HOUSEHOLD_REGISTER):
        with pytest.raises(DocumentRefused) as refused:
            document_attach(binding=binding, kind=kind, uploaded=upload(picture()), user=citizen_a)
        assert (refused.value.status, refused.value.code) == (409, "document_limit_reached")
        assert "3 documents already" in refused.value.title
        assert [e.field for e in refused.value.errors] == ["file"]
    assert BindingDocument.objects.count() == 3
    assert stored_files(storage) == files_before


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
    assert refused.value.code == "document_kind"


# document_page_image: what the OCR pre-check and the reviewer's screen look at.


def png_of(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(data))


def test_the_page_image_of_a_picture_is_the_stored_upright_picture(binding, citizen_a):
    document = document_attach(
        binding=binding, kind=KIND, uploaded=upload(attack_files.jpeg_rotated_by_exif()), user=citizen_a
    )
    image = png_of(document_page_image(document=document))
    assert image.size == (400, 600)
    assert image.getpixel((390, 10))[0] < 60  # the dark corner, top right once upright
    assert png_of(document_page_image(document=document, max_side=300)).size == (200, 300)


def test_the_page_image_of_a_pdf_is_the_rendered_page(binding, citizen_a):
    document = document_attach(binding=binding, kind=KIND, uploaded=upload(attack_files.pdf_scan(3)), user=citizen_a)
    first = png_of(document_page_image(document=document))
    assert max(first.size) <= 2000 and max(first.size) >= 1990
    assert first.height > first.width  # A4 upright
    third = png_of(document_page_image(document=document, page=2, max_side=500))
    assert max(third.size) <= 500
    assert third.getpixel((10, 10))[0] < 60  # the dark corner of the scanned page


@pytest.mark.parametrize(("source", "page"), [("pdf", 3), ("pdf", -1), ("picture", 1), ("picture", -1)])
def test_a_page_that_is_not_there_is_a_value_error(binding, citizen_a, source, page):
    content = attack_files.pdf_scan(3) if source == "pdf" else picture()
    document = document_attach(binding=binding, kind=KIND, uploaded=upload(content), user=citizen_a)
    with pytest.raises(ValueError, match="out of range"):
        document_page_image(document=document, page=page)


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
    assert rows[0].detail == {
        "binding": document.binding_id,
        "kind": document.kind,
        "owner": document.binding.owner_id,
        "relative": document.binding.relative_id,
    }


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


# Concurrency (PostgreSQL: real transactions, one connection per thread, real row locks).


def run_together(jobs: list) -> list:
    """Run the jobs in threads released at the same moment; each job's result or the exception it raised."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def worker(index: int, job) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = job()
        except Exception as error:  # the test inspects it
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (a lock never released?)"
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("kinds", "code"),
    [
        ([KIND] * 4, "document_already_uploaded"),
        ([KIND, DocumentKind.RELATIVE_HOUSEHOLD_REGISTER, DocumentKind.MARRIAGE_CERTIFICATE], "document_limit_reached"),
    ],
    ids=["same-kind", "over-the-cap"],
)
def test_uploads_at_the_same_moment_keep_one_per_kind_and_the_cap(binding, citizen_a, settings, storage, kinds, code):
    settings.DOCUMENT_MAX_PER_BINDING = 1
    photo = picture()

    def upload_as_owner(kind):
        return lambda: document_attach(binding=binding, kind=kind, uploaded=upload(photo), user=citizen_a)

    results = run_together([upload_as_owner(kind) for kind in kinds])

    stored = [r for r in results if isinstance(r, BindingDocument)]
    refused = [r for r in results if isinstance(r, DocumentRefused)]
    assert len(stored) == 1 and len(refused) == len(kinds) - 1, results
    assert {r.code for r in refused} == {code}
    assert list(BindingDocument.objects.values_list("pk", flat=True)) == [stored[0].pk]
    document = BindingDocument.objects.get()
    # The refused uploads left nothing: only the kept document and its thumbnail.
    assert stored_files(storage) == sorted([document.file.name, document.thumbnail.name])


def test_r24_a_precheck_the_broker_lost_is_queued_again_by_the_sweeper(binding, citizen_a, prechecks, storage):
    """The upload was saved while the broker was down: the beat sweeper queues its pre-check later."""
    from django.utils import timezone

    from family.models import BindingDocument
    from family.services.precheck import documents_requeue_pending_precheck

    document = document_attach(binding=binding, kind=KIND, uploaded=upload(picture()), user=citizen_a)
    assert documents_requeue_pending_precheck(older_than_seconds=300) == 0  # too recent: maybe still queued
    BindingDocument.objects.filter(pk=document.pk).update(created_at=timezone.now() - dt.timedelta(minutes=10))
    assert documents_requeue_pending_precheck(older_than_seconds=300) == 1
    assert prechecks == [document.pk]

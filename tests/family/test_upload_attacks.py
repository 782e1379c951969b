"""The upload attack corpus (R24, R51): every bad file is refused with its own code and leaves nothing behind;
the files phones really make are accepted and come out clean (no EXIF, no GPS, upright, with a thumbnail).

The files are made in memory by tests/attack_files.py. The name and content type the client claims
are chosen to mislead: the content alone decides.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from family.documents import DocumentRefused, document_attach
from family.models import BindingDocument, DocumentKind
from tests import attack_files as files
from tests.family.conftest import stored_files

KIND = DocumentKind.OWNER_HOUSEHOLD_REGISTER
SMALL_PIXEL_LIMIT = 2_000_000


pytestmark = pytest.mark.usefixtures("storage", "english", "prechecks")


@pytest.fixture
def attach(binding, citizen_a, django_capture_on_commit_callbacks):
    """Upload as the owner and commit (thumbnail and pre-check run on commit), as a request would."""

    def upload(content: bytes, name: str = "户口本.jpg", content_type: str = "image/jpeg") -> BindingDocument:
        with django_capture_on_commit_callbacks(execute=True):
            document = document_attach(
                binding=binding,
                kind=KIND,
                uploaded=SimpleUploadedFile(name, content, content_type=content_type),
                user=citizen_a,
            )
        document.refresh_from_db()
        return document

    return upload


def read(field) -> bytes:
    with field.open("rb") as handle:
        return handle.read()


# --- Refused: each with the code and words that name the problem, nothing stored --------------------------------

# (file maker, name the client claims, content type the client claims, code, words of the message)
BAD_FILES = {
    "zero-bytes": (files.zero_bytes, "photo.jpg", "image/jpeg", "document_empty", "empty"),
    "truncated-jpeg": (files.truncated_jpeg, "photo.jpg", "image/jpeg", "document_damaged", "damaged or incomplete"),
    "truncated-png": (files.truncated_png, "scan.png", "image/png", "document_damaged", "damaged or incomplete"),
    "truncated-pdf": (files.truncated_pdf, "scan.pdf", "application/pdf", "document_damaged", "incomplete"),
    "html-as-jpg": (files.html_page, "photo.jpg", "image/jpeg", "document_markup", "web page"),
    "exe-as-png": (files.executable, "scan.png", "image/png", "document_type", "not a JPEG, PNG or WebP"),
    "svg-with-script": (files.svg_with_script, "drawing.svg", "image/svg+xml", "document_markup", "SVG drawing"),
    "svg-as-png": (files.svg_plain, "scan.png", "image/png", "document_markup", "SVG drawing"),
    "gif": (files.gif_picture, "photo.gif", "image/gif", "document_type", "not a JPEG, PNG or WebP"),
    "bomb-png": (files.bomb_png, "scan.png", "image/png", "document_too_many_pixels", "million pixels"),
    "bomb-jpeg-header": (files.bomb_jpeg_header, "photo.jpg", "image/jpeg", "document_too_many_pixels", "pixels"),
    "pdf-javascript": (files.pdf_with_javascript, "a.pdf", "application/pdf", "document_pdf_javascript", "JavaScript"),
    "pdf-open-action-javascript": (
        files.pdf_with_open_action_javascript,
        "a.pdf",
        "application/pdf",
        "document_pdf_javascript",
        "JavaScript",
    ),
    "pdf-link-javascript": (
        files.pdf_with_link_javascript,
        "a.pdf",
        "application/pdf",
        "document_pdf_javascript",
        "JavaScript",
    ),
    "pdf-launch": (files.pdf_with_launch, "a.pdf", "application/pdf", "document_pdf_launch", "start a program"),
    "pdf-embedded-file": (
        files.pdf_with_embedded_file,
        "a.pdf",
        "application/pdf",
        "document_pdf_attachment",
        "attached files",
    ),
    "pdf-encrypted-no-password": (
        files.pdf_encrypted,
        "a.pdf",
        "application/pdf",
        "document_pdf_encrypted",
        "password or encryption",
    ),
    "pdf-encrypted-password": (
        lambda: files.pdf_encrypted("secret"),
        "a.pdf",
        "application/pdf",
        "document_pdf_encrypted",
        "password or encryption",
    ),
    "pdf-too-many-pages": (
        lambda: files.pdf_blank(6),
        "a.pdf",
        "application/pdf",
        "document_pdf_too_many_pages",
        "6 pages; at most 5",
    ),
    "pdf-image-bomb": (files.pdf_with_image_bomb, "a.pdf", "application/pdf", "document_too_many_pixels", "pixels"),
    "oversized-dimensions": (
        lambda: files.png_just_over(SMALL_PIXEL_LIMIT),
        "scan.png",
        "image/png",
        "document_too_many_pixels",
        "more than 2 million pixels",
    ),
}


@pytest.mark.parametrize(("make", "name", "content_type", "code", "words"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_file_is_refused_naming_the_problem_and_nothing_is_stored(
    binding,
    citizen_a,
    storage,
    prechecks,
    settings,
    django_capture_on_commit_callbacks,
    make,
    name,
    content_type,
    code,
    words,
):
    settings.DOCUMENT_MAX_PIXELS = SMALL_PIXEL_LIMIT if code == "document_too_many_pixels" else 40_000_000
    files_before = stored_files(storage)

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(DocumentRefused) as refused:
        document_attach(
            binding=binding,
            kind=KIND,
            uploaded=SimpleUploadedFile(name, make(), content_type=content_type),
            user=citizen_a,
        )

    assert (refused.value.code, refused.value.status) == (code, 400)
    assert words in refused.value.title
    assert [(e.field, e.message) for e in refused.value.errors] == [("file", refused.value.title)]
    assert not BindingDocument.objects.exists()
    assert stored_files(storage) == files_before == []
    assert callbacks == [] and prechecks == []


def test_the_corpus_is_small_enough_to_reach_the_checks(settings):
    """A bomb is a small file: refused for what it would become, not for its size on the wire."""
    assert len(files.bomb_png()) < 200_000
    assert len(files.png_just_over(SMALL_PIXEL_LIMIT)) < 10_000
    assert len(files.pdf_with_image_bomb()) < 10_000


def test_dimensions_at_the_limit_are_accepted(attach, settings):
    settings.DOCUMENT_MAX_PIXELS = SMALL_PIXEL_LIMIT
    document = attach(files.png_of_pixels(SMALL_PIXEL_LIMIT), "scan.png", "image/png")
    assert Image.open(io.BytesIO(read(document.file))).size == (2000, 1000)


def test_pages_at_the_limit_are_accepted_and_the_limit_is_a_setting(attach, settings, binding, citizen_a):
    assert attach(files.pdf_blank(5), "a.pdf", "application/pdf").pages == 5
    settings.DOCUMENT_MAX_PAGES = 2
    with pytest.raises(DocumentRefused) as refused:
        document_attach(
            binding=binding,
            kind=DocumentKind.RELATIVE_HOUSEHOLD_REGISTER,
            uploaded=SimpleUploadedFile("b.pdf", files.pdf_scan(3)),
            user=citizen_a,
        )
    assert refused.value.code == "document_pdf_too_many_pages" and "at most 2" in refused.value.title


# --- Names: never used, never a problem --------------------------------------------------------------------------

NAMES = {
    "path-traversal": "../../etc/passwd.jpg",
    "absolute": "/var/www/html/shell.php.jpg",
    "windows": "..\\..\\Windows\\win.ini.jpg",
    "nul-byte": "photo.jpg\x00.exe",
    "very-long": "户" * 300 + ".jpg",
    "no-extension": "photo",
    "wrong-extension": "photo.exe",
}


@pytest.mark.parametrize("name", NAMES.values(), ids=NAMES.keys())
def test_a_tricky_name_changes_nothing_and_the_stored_name_is_generated(attach, binding, storage, name):
    document = attach(files.jpeg_photo(), name)
    assert re.fullmatch(rf"bindings/{binding.pk}/[0-9a-f]{{32}}\.jpg", document.file.name)
    assert re.fullmatch(rf"bindings/{binding.pk}/[0-9a-f]{{32}}\.jpg", document.thumbnail.name)
    assert stored_files(storage) == sorted([document.file.name, document.thumbnail.name])


# --- Accepted, and cleaned -----------------------------------------------------------------------------------------


def assert_thumbnail(document: BindingDocument) -> Image.Image:
    thumbnail = Image.open(io.BytesIO(read(document.thumbnail)))
    assert thumbnail.format == "JPEG" and max(thumbnail.size) <= 320
    return thumbnail


def assert_no_metadata(stored: bytes) -> None:
    image = Image.open(io.BytesIO(stored))
    assert dict(image.getexif()) == {}
    assert b"Exif" not in stored and files.CAMERA_MAKER.encode() not in stored
    assert not {"exif", "xmp", "icc_profile"} & set(image.info)


def test_a_photo_with_gps_is_stored_without_exif_or_gps(attach, prechecks):
    original = files.jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the set-up has a GPS position

    document = attach(original)

    stored = read(document.file)
    assert_no_metadata(stored)
    assert Image.open(io.BytesIO(stored)).getexif().get_ifd(0x8825) == {}
    assert (document.content_type, document.pages, document.size) == ("image/jpeg", 1, len(stored))
    assert_no_metadata(read(document.thumbnail))
    assert prechecks == [document.pk]


def test_a_photo_rotated_by_exif_is_stored_upright(attach):
    document = attach(files.jpeg_rotated_by_exif())
    image = Image.open(io.BytesIO(read(document.file)))
    # 600×400 stored sideways is 400×600 upright, the dark corner now top right.
    assert image.size == (400, 600)
    assert image.getpixel((390, 10))[0] < 60 and image.getpixel((10, 10))[0] > 150
    assert assert_thumbnail(document).size == (213, 320)
    assert_no_metadata(read(document.file))


def test_a_heic_photo_becomes_a_jpeg_without_its_exif(attach):
    original = files.heic_photo()
    assert original[4:12] == b"ftypheic"
    document = attach(original, "IMG_0001.HEIC", "image/heic")
    stored = read(document.file)
    assert document.content_type == "image/jpeg" and document.file.name.endswith(".jpg")
    assert Image.open(io.BytesIO(stored)).size == (600, 400)
    assert_no_metadata(stored)
    assert assert_thumbnail(document).size == (320, 213)


@pytest.mark.parametrize(
    ("make", "name", "content_type", "stored_type"),
    [
        (files.png_scan, "scan.pdf", "application/pdf", "image/png"),  # a PNG named .pdf: content decides
        (files.webp_photo, "photo.webp", "image/webp", "image/jpeg"),
        (files.jpeg_photo, "photo.png", "image/png", "image/jpeg"),
    ],
    ids=["png-named-pdf", "webp", "jpeg-named-png"],
)
def test_a_picture_is_accepted_by_its_content(attach, make, name, content_type, stored_type):
    document = attach(make(), name, content_type)
    assert document.content_type == stored_type
    assert document.file.name.endswith(".png" if stored_type == "image/png" else ".jpg")
    assert_no_metadata(read(document.file))
    assert_thumbnail(document)


def test_a_pdf_is_kept_as_sent_with_its_pages_counted_and_a_thumbnail(attach, prechecks):
    original = files.pdf_scan(3)
    document = attach(original, "scan.jpg", "image/jpeg")
    assert (document.content_type, document.pages) == ("application/pdf", 3)
    assert read(document.file) == original
    thumbnail = assert_thumbnail(document)
    assert thumbnail.height == 320 and thumbnail.width < 320  # A4 upright
    assert prechecks == [document.pk]

"""人脸识别 (R23, R50, R52): the local provider checks for one frontal face; only the outcome is kept."""

from __future__ import annotations

import datetime as dt
import io
import os
import tempfile

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import translation
from PIL import Image, ImageEnhance

from accounts.face import (
    FaceCheck,
    LocalFaceProvider,
    face_attempts_left,
    face_provider,
    face_verify,
)
from accounts.models import FaceVerification
from tests.face_images import make_blank_png, make_face_image, make_face_png
from tests.factories import InsuredPersonFactory


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture
def provider():
    return LocalFaceProvider()


@pytest.fixture
def person(db):
    return InsuredPersonFactory(name="李娜", birth="19820620", male=False)


def test_r23_the_drawn_face_passes_the_local_provider(provider):
    with translation.override("en"):
        result = provider.check(make_face_png())
    assert result == FaceCheck(True, result.score, "one_face", result.message)
    assert result.score is not None and result.score > 0
    # The words say what was checked, not that the person was identified.
    assert "single face" in result.message


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "BMP"])
def test_any_format_pillow_reads_is_checked(provider, fmt):
    assert provider.check(encoded(make_face_image(), fmt)).detail == "one_face"


def test_two_faces_are_refused(provider):
    result = provider.check(make_face_png(count=2))
    assert (result.passed, result.detail) == (False, "several_faces")


def test_a_picture_without_a_face_is_refused(provider):
    result = provider.check(make_blank_png())
    assert (result.passed, result.detail, result.score) == (False, "no_face", None)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"<svg xmlns='http://www.w3.org/2000/svg'><circle r='40'/></svg>",
        b"<html><body>face</body></html>",
        b"%PDF-1.7 not a picture",
        make_face_png()[:400],  # truncated
    ],
    ids=["empty", "svg", "html", "pdf", "truncated-png"],
)
def test_what_is_not_a_readable_picture_is_refused(provider, content):
    result = provider.check(content)
    assert (result.passed, result.detail) == (False, "not_an_image")


def test_a_dark_picture_gets_advice_about_light(provider):
    dark = ImageEnhance.Brightness(make_face_image()).enhance(0.15)
    with translation.override("en"):
        result = provider.check(encoded(dark))
    assert (result.passed, result.detail) == (False, "too_dark")
    assert "too dark" in result.message and "lamp" in result.message


def test_a_face_far_from_the_camera_is_too_small(provider):
    far = make_face_image(face_width=150, canvas=(1600, 1600))
    result = provider.check(encoded(far))
    assert (result.passed, result.detail) == (False, "too_small")


def test_a_tiny_picture_is_too_small(provider):
    tiny = make_face_image().resize((80, 96))
    assert provider.check(encoded(tiny)).detail == "too_small"


def test_exif_orientation_is_applied_before_detection(provider):
    lying = make_face_image().rotate(90, expand=True)  # as a phone held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    assert provider.check(encoded(lying, "JPEG", exif=exif)).detail == "one_face"
    # The same pixels without the tag are a face on its side, which a frontal check does not find.
    assert provider.check(encoded(lying, "JPEG")).detail == "no_face"


def test_a_large_photo_is_scaled_down_and_still_passes(provider):
    large = make_face_image().resize((1600, 1920))
    assert provider.check(encoded(large, "JPEG")).detail == "one_face"


def test_face_verify_records_the_outcome(person):
    verification = face_verify(person=person, purpose="binding_consent", reference="42", image_bytes=make_face_png())
    stored = FaceVerification.objects.get()
    assert stored.pk == verification.pk
    assert (stored.person, stored.purpose, stored.reference, stored.provider) == (
        person,
        "binding_consent",
        "42",
        "local",
    )
    assert (stored.decision, stored.detail) == ("passed", "one_face")
    assert stored.score == pytest.approx(verification.result.score)
    assert verification.result.passed


def test_face_verify_records_a_failure_with_its_code(person):
    verification = face_verify(person=person, purpose="ecard_claim", reference="", image_bytes=make_blank_png())
    verification.refresh_from_db()
    assert (verification.decision, verification.detail, verification.score) == ("failed", "no_face", None)


def test_r52_the_picture_is_stored_nowhere(person, settings, tmp_path, monkeypatch):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    for folder in ("private", "media", "tmp"):
        (tmp_path / folder).mkdir()
    picture = make_face_png()

    face_verify(person=person, purpose="binding_consent", reference="7", image_bytes=picture)
    face_verify(person=person, purpose="binding_consent", reference="7", image_bytes=make_face_png(2))

    written = [os.path.join(root, name) for root, _dirs, names in os.walk(tmp_path) for name in names]
    assert written == []
    # Only the outcome is in the database: no column holds anything like the picture.
    for row in FaceVerification.objects.values():
        assert all(not isinstance(value, bytes | memoryview) for value in row.values())
        assert all(len(str(value)) < 200 for value in row.values())


class VendorProvider:
    """Stands in for an outside face vendor (the only thing mocked here)."""

    name = "vendor-x"

    def __init__(self, passed: bool) -> None:
        self.passed = passed
        self.seen: list[bytes] = []

    def check(self, image_bytes: bytes) -> FaceCheck:
        self.seen.append(image_bytes)
        return FaceCheck(self.passed, 0.93 if self.passed else 0.12, "one_face" if self.passed else "no_face", "")


def test_face_verify_uses_the_given_provider(person):
    vendor = VendorProvider(passed=True)
    verification = face_verify(
        person=person, purpose="ecard_claim", reference="card", image_bytes=b"jpeg", provider=vendor
    )
    verification.refresh_from_db()
    assert vendor.seen == [b"jpeg"]
    assert (verification.provider, verification.decision, verification.score) == ("vendor-x", "passed", 0.93)


def test_face_provider_follows_the_setting(settings):
    settings.FACE_PROVIDER = "local"
    assert isinstance(face_provider(), LocalFaceProvider)
    settings.FACE_PROVIDER = "nobody"
    with pytest.raises(ImproperlyConfigured, match="nobody"):
        face_provider()


def test_face_provider_defaults_to_local(settings):
    del settings.FACE_PROVIDER
    assert face_provider().name == "local"


def test_attempts_left_counts_only_recent_failures_of_the_same_check(person, time_machine):
    time_machine.move_to(dt.datetime(2025, 3, 14, 9, 0, tzinfo=dt.UTC), tick=False)
    failing, passing = VendorProvider(passed=False), VendorProvider(passed=True)

    def attempt(provider, reference="42", purpose="binding_consent"):
        face_verify(person=person, purpose=purpose, reference=reference, image_bytes=b"x", provider=provider)

    attempt(failing)  # more than 24 hours before the count: no longer counts
    time_machine.move_to(dt.datetime(2025, 3, 15, 10, 0, tzinfo=dt.UTC), tick=False)
    attempt(failing)
    attempt(failing)
    attempt(passing)  # a pass is not a failed try
    attempt(failing, reference="43")  # another application
    attempt(failing, purpose="ecard_claim")  # another purpose

    assert face_attempts_left(person=person, purpose="binding_consent", reference="42") == 3
    assert face_attempts_left(person=person, purpose="binding_consent", reference="42", limit=2) == 0
    assert face_attempts_left(person=person, purpose="binding_consent", reference="44") == 5

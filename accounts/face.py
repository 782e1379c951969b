"""人脸识别: face verification behind one provider interface (R23, R40, R50, R52).

The local provider is honest about what it does: it checks that the picture shows exactly one
frontal face, large and bright enough. It does not compare the face with anyone's ID photo, so it
does not establish identity; a vendor that does is plugged in through ``FACE_PROVIDER``.
The picture itself is never stored (R52, retention 0): it lives in memory for the call only.

Two flows, chosen by ``FACE_PROVIDER`` and told to pages by ``face_flow()``:

- ``"upload"`` (provider ``local``): the page shows the consent text (R50) and a file/camera field,
  passes the bytes to ``face_verify()`` and shows the outcome at once. ``face_provider()`` serves it.
- ``"redirect"`` (provider ``vendor``, see ``accounts.face_vendor``): the page shows no file field; it
  links to ``/face/vendor/start/?purpose=...&reference=...&next=<this page>``, which shows the consent
  text and sends the person to the vendor. The vendor captures the face and tells us the outcome by a
  signed callback, recorded in the same ``FaceVerification`` table (provider ``vendor``); the person comes
  back to ``next``, where the page reads the latest ``FaceVerification`` for its purpose and reference.
  No picture passes through the portal. ``face_provider()`` refuses ``vendor``: a redirect flow has no
  ``check(image_bytes)``, and a provider that pretended to would fail at the worst moment.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from dataclasses import dataclass
from typing import Literal, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import FaceVerification, InsuredPerson

__all__ = [
    "FACE_FLOWS",
    "FACE_PROVIDERS",
    "FaceCheck",
    "FaceProvider",
    "LocalFaceProvider",
    "face_attempts_left",
    "face_flow",
    "face_message",
    "face_provider",
    "face_verify",
]


@dataclass(frozen=True)
class FaceCheck:
    """A provider's answer: passed or not, a score if the provider has one, a code and words for the person."""

    passed: bool
    score: float | None
    # One of: one_face, no_face, several_faces, not_an_image, too_dark, too_small.
    detail: str
    message: str


class FaceProvider(Protocol):
    """What every face-verification provider offers."""

    name: str

    def check(self, image_bytes: bytes) -> FaceCheck: ...


def face_message(detail: str) -> str:
    """The words for a check's code, in the user's language (also for an outcome read back from the database)."""
    messages = {
        "one_face": _("One face was found. This check only confirms that a single face is in the picture."),
        "no_face": _(
            "No face was found. Look straight at the camera in good light, without a mask or sunglasses, "
            "with your whole face in the picture."
        ),
        "several_faces": _("More than one face is in the picture. Only the person who confirms should be in it."),
        "not_an_image": _(
            "This file is not a picture we can read. Take a photo with the camera, or choose a JPEG or PNG picture."
        ),
        "too_dark": _(
            "The picture is too dark. Face a window or a lamp, take off tinted glasses, "
            "and hold the camera about an arm's length away."
        ),
        "too_small": _(
            "The face is too small. Hold the camera closer, about an arm's length, so your face fills the frame."
        ),
        # The outside verification service (provider "vendor"); its own reason codes are mapped to these.
        "vendor_passed": _("The verification service confirmed your face."),
        "vendor_failed": _("The verification service could not confirm your face."),
        "vendor_liveness_failed": _(
            "The verification service could not tell that a live person was in front of the camera. "
            "Follow the movements it asks for, in good light, looking straight at the camera."
        ),
        "vendor_cancelled": _("The verification was cancelled before it finished."),
    }
    return messages.get(detail, _("The face verification did not pass."))


# The Haar cascade is loaded once per process, on first use; detection shares it under a lock
# (OpenCV does not promise that one classifier may run in several threads at once).
_cascade = None
_cascade_lock = threading.Lock()


def _face_cascade():
    global _cascade
    if _cascade is None:
        import cv2

        classifier = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if classifier.empty():
            raise ImproperlyConfigured("OpenCV's haarcascade_frontalface_default.xml could not be loaded.")
        _cascade = classifier
    return _cascade


class LocalFaceProvider:
    """Checks that one frontal face of a reasonable size is in a readable, bright enough picture.

    It does not check identity: nothing here compares the face with an ID photo.
    """

    name = "local"
    max_side = 1024  # pictures are scaled down to this first: enough for detection, bounded work
    min_side = 120  # a smaller picture cannot show a face well enough
    max_pixels = 40_000_000  # refused before decoding: no decompression bombs
    min_brightness = 40  # mean grey level 0–255
    min_face_share = 0.2  # the face's width as a share of the picture's shorter side

    def check(self, image_bytes: bytes) -> FaceCheck:
        grey = self._grey_pixels(image_bytes)
        if grey is None:
            return FaceCheck(False, None, "not_an_image", face_message("not_an_image"))
        height, width = grey.shape
        if min(height, width) < self.min_side:
            return FaceCheck(False, None, "too_small", face_message("too_small"))
        if float(grey.mean()) < self.min_brightness:
            return FaceCheck(False, None, "too_dark", face_message("too_dark"))
        faces, weights = self._detect(grey)
        min_face = self.min_face_share * min(height, width)
        large = [i for i, (_x, _y, w, _h) in enumerate(faces) if w >= min_face]
        score = max((float(weights[i]) for i in large), default=None)
        if len(large) == 1:
            return FaceCheck(True, score, "one_face", face_message("one_face"))
        if len(large) > 1:
            return FaceCheck(False, score, "several_faces", face_message("several_faces"))
        if faces:
            # Faces were seen, all of them small: the person is too far from the camera.
            return FaceCheck(False, None, "too_small", face_message("too_small"))
        return FaceCheck(False, None, "no_face", face_message("no_face"))

    def _grey_pixels(self, image_bytes: bytes):
        """Decode with Pillow (any format it reads), upright by EXIF, at most ``max_side`` px, as grey numpy."""
        import numpy as np
        from PIL import Image, ImageOps, UnidentifiedImageError

        if not image_bytes:
            return None
        try:
            with Image.open(io.BytesIO(image_bytes)) as image:
                if image.width * image.height > self.max_pixels:
                    return None
                image.draft("L", (self.max_side, self.max_side))  # JPEG: decode at a reduced scale, cheaply
                image.load()
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((self.max_side, self.max_side))
                return np.asarray(upright.convert("L"))
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
            return None

    def _detect(self, grey):
        # No histogram equalisation: it lifts large plain backgrounds and costs detections; too dark
        # pictures are refused before this with advice instead.
        with _cascade_lock:
            faces, _levels, weights = _face_cascade().detectMultiScale3(
                grey, scaleFactor=1.1, minNeighbors=5, minSize=(48, 48), outputRejectLevels=True
            )
        import numpy as np

        return [tuple(int(v) for v in face) for face in faces], [float(w) for w in np.ravel(weights)]


FACE_PROVIDERS: dict[str, type] = {"local": LocalFaceProvider}

# How a page collects the face for each ``FACE_PROVIDER`` (see the module docstring).
FACE_FLOWS: dict[str, Literal["upload", "redirect"]] = {"local": "upload", "vendor": "redirect"}


def face_flow() -> Literal["upload", "redirect"]:
    """``"upload"`` when pages take the picture themselves (``face_verify``), ``"redirect"`` for the vendor."""
    name = getattr(settings, "FACE_PROVIDER", "local")
    try:
        return FACE_FLOWS[name]
    except KeyError:
        raise ImproperlyConfigured(f"FACE_PROVIDER={name!r} is not one of {', '.join(sorted(FACE_FLOWS))}.") from None


def face_provider() -> FaceProvider:
    """The upload provider named by ``settings.FACE_PROVIDER`` (default ``local``)."""
    name = getattr(settings, "FACE_PROVIDER", "local")
    if FACE_FLOWS.get(name) == "redirect":
        raise ImproperlyConfigured(
            f"FACE_PROVIDER={name!r} works by redirect, not by upload: check face_flow() and send the person "
            "to /face/vendor/start/ (accounts.face_vendor) instead of calling face_provider()."
        )
    try:
        return FACE_PROVIDERS[name]()
    except KeyError:
        raise ImproperlyConfigured(f"FACE_PROVIDER={name!r} is not one of {', '.join(sorted(FACE_FLOWS))}.") from None


def face_verify(
    *,
    person: InsuredPerson,
    purpose: str,
    reference: str,
    image_bytes: bytes,
    provider: FaceProvider | None = None,
) -> FaceVerification:
    """R23/R40: check the picture and record only the outcome; the picture is never stored (R52).

    The returned row carries the provider's answer as ``row.result`` (not stored) for the page to show.
    """
    provider = provider or face_provider()
    result = provider.check(image_bytes)
    del image_bytes  # R52: nothing of the picture outlives the call
    verification = FaceVerification.objects.create(
        person=person,
        purpose=purpose[:40],
        reference=str(reference)[:64],
        provider=provider.name[:20],
        decision=FaceVerification.Decision.PASSED if result.passed else FaceVerification.Decision.FAILED,
        score=result.score,
        detail=result.detail[:200],
    )
    verification.result = result
    return verification


def face_attempts_left(*, person: InsuredPerson, purpose: str, reference: str, limit: int = 5) -> int:
    """How many tries are left today: ``limit`` minus the failed attempts of the last 24 hours."""
    since = timezone.now() - dt.timedelta(hours=24)
    failed = FaceVerification.objects.filter(
        person=person,
        purpose=purpose,
        reference=str(reference),
        decision=FaceVerification.Decision.FAILED,
        created_at__gte=since,
    ).count()
    return max(0, limit - failed)

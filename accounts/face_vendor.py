"""人脸识别 at an outside verification service (provider ``vendor``; R23, R40, R50, R52).

The flow is a redirect, not an upload (see ``accounts.face``):

1. ``face_vendor_start`` asks the vendor for a session (``POST {FACE_VENDOR_BASE_URL}/sessions``) and
   gets back the address of the vendor's capture page (or a token for the vendor's app SDK).
2. The person is sent there; the vendor captures the face and checks it.
3. The vendor tells us the outcome by ``POST /face/vendor/callback/``, signed with HMAC-SHA256:
   ``X-Face-Signature: t=<unix seconds>,v1=<hex of HMAC(secret, "<t>." + body)>``. ``face_vendor_callback``
   refuses unsigned, badly signed, stale or future-dated callbacks, callbacks for unknown sessions and
   any second decision of a session (a replayed nonce or an already decided session), and records the
   outcome once in ``FaceVerification`` (provider ``vendor``).
4. The vendor sends the person back to ``/face/vendor/return/<id>/``, which shows what the callback
   recorded. Whatever the vendor appends to that address is ignored: only the signed callback counts.

What the vendor gets (R50, collect only for the purpose): our app id, an opaque reference (the session's
random id), the callback address, the return address and the retention we ask for (R52). Not the purpose,
not the application it belongs to, not the name or the ID number. A vendor that compares the face with
the ID photo needs name and ID number: only then set ``FACE_VENDOR_SEND_IDENTITY = True``, and the
consent page says so. The picture stays at the vendor; nothing of it reaches or is kept by the portal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from accounts.errors import DomainError
from accounts.face import face_attempts_left
from accounts.models import FaceVendorSession, FaceVerification, InsuredPerson

__all__ = [
    "APP_ID_HEADER",
    "PROVIDER_NAME",
    "SIGNATURE_HEADER",
    "FaceVendorRefused",
    "FaceVendorUnavailable",
    "VendorClient",
    "VendorStart",
    "face_vendor_callback",
    "face_vendor_local_path",
    "face_vendor_session_expired",
    "face_vendor_session_for_person",
    "face_vendor_sign",
    "face_vendor_start",
    "verify_callback_signature",
]

logger = logging.getLogger(__name__)

PROVIDER_NAME = "vendor"
SIGNATURE_HEADER = "X-Face-Signature"
APP_ID_HEADER = "X-Face-App-Id"
# Clocks differ a little: a callback stamped up to this far ahead of ours is still taken.
FUTURE_TOLERANCE_SECONDS = 60
# A signed body larger than this is not a callback (an outcome is a few hundred bytes).
MAX_CALLBACK_BYTES = 64 * 1024
_MAX_RESPONSE_BYTES = 64 * 1024
_DEBUG_SECRET = "insecure-local-face-vendor-secret-never-used-in-production"  # noqa: S105 - DEBUG only

_PURPOSE = re.compile(r"^[a-z0-9_]{1,40}$")
_REFERENCE = re.compile(r"^[A-Za-z0-9_.:-]{0,64}$")
_VENDOR_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_HEX_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")
# The vendor's reason codes that we show words for (face_message); any other becomes the plain outcome.
_VENDOR_REASONS = {
    "liveness_failed": "vendor_liveness_failed",
    "cancelled": "vendor_cancelled",
}


class FaceVendorRefused(DomainError):
    """A start or a callback that we refuse; ``status`` and ``code`` say why (problem+json for the vendor)."""


class FaceVendorUnavailable(DomainError):
    """The vendor could not be reached or answered something we cannot use."""


@dataclass(frozen=True)
class VendorStart:
    """The vendor's answer to a start: its session id and where the person goes (page or app SDK token)."""

    session_id: str
    redirect_url: str | None
    sdk_token: str | None


# --- settings -----------------------------------------------------------------------------------


def _secret() -> str:
    """The HMAC key shared with the vendor; production has no default (DEBUG gets a throw-away key)."""
    secret = getattr(settings, "FACE_VENDOR_SECRET", "")
    if secret:
        return secret
    if settings.DEBUG:
        return _DEBUG_SECRET
    raise ImproperlyConfigured(
        "FACE_VENDOR_SECRET is not set: the face vendor's callbacks cannot be verified, so no vendor check is "
        "started. Set it to the HMAC key agreed with the vendor (DJANGO_DEBUG=1 uses a throw-away key locally)."
    )


def _callback_max_age() -> int:
    return int(getattr(settings, "FACE_VENDOR_CALLBACK_MAX_AGE_SECONDS", 300))


def _session_max_age() -> int:
    return int(getattr(settings, "FACE_VENDOR_SESSION_MAX_AGE_SECONDS", 30 * 60))


# --- signatures ---------------------------------------------------------------------------------


def face_vendor_sign(*, body: bytes, secret: str, timestamp: int) -> str:
    """The ``X-Face-Signature`` value for a body: ``t=<timestamp>,v1=<hex HMAC-SHA256 of "<t>." + body>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _refused(status: int, code: str, title: str, detail: str = "") -> FaceVendorRefused:
    logger.warning("face vendor callback refused: %s", code)
    return FaceVendorRefused(title=title, detail=detail, status=status, code=code)


def _parse_signature(header: str) -> tuple[int, list[str]]:
    """``t=<digits>`` once and one or more ``v1=<64 hex>`` (several while the vendor rotates keys)."""
    if len(header) > 1024:
        raise ValueError("too long")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise ValueError("not key=value")
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit() or len(value) > 12:
                raise ValueError("bad timestamp")
            timestamp = int(value)
        elif key == "v1":
            value = value.lower()
            if not _HEX_SIGNATURE.fullmatch(value):
                raise ValueError("bad signature")
            signatures.append(value)
    if timestamp is None or not signatures:
        raise ValueError("incomplete")
    return timestamp, signatures


def verify_callback_signature(
    *, body: bytes, headers: Mapping[str, str], secret: str, now: dt.datetime, max_age: int
) -> dict[str, Any]:
    """Check the callback's HMAC and age; return its JSON object, or raise ``FaceVendorRefused`` (401/400)."""
    if not secret:
        raise ImproperlyConfigured("An empty key would let anyone sign a callback.")
    header = _header(headers, SIGNATURE_HEADER)
    if not header:
        raise _refused(401, "signature_missing", _("The callback is not signed."))
    try:
        timestamp, signatures = _parse_signature(header)
    except ValueError:
        raise _refused(401, "signature_malformed", _("The callback's signature cannot be read.")) from None
    expected = face_vendor_sign(body=body, secret=secret, timestamp=timestamp).partition(",v1=")[2]
    # Every candidate is compared, in constant time: no early exit tells how much matched.
    matches = [hmac.compare_digest(expected, candidate) for candidate in signatures]
    if not any(matches):
        raise _refused(401, "signature_invalid", _("The callback's signature is not valid."))
    now_seconds = int(now.timestamp())
    if timestamp < now_seconds - max_age:
        raise _refused(
            401,
            "signature_expired",
            _("The callback is too old."),
            _("It was signed more than %(seconds)d seconds ago.") % {"seconds": max_age},
        )
    if timestamp > now_seconds + FUTURE_TOLERANCE_SECONDS:
        raise _refused(401, "signature_in_future", _("The callback is dated in the future."))
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        payload = None
    if not isinstance(payload, dict):
        raise _refused(400, "body_invalid", _("The callback's body is not a JSON object."))
    return payload


# --- the vendor's API ---------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The vendor's API answers directly; a redirect there is not followed (no surprise hosts)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class VendorClient:
    """Talks to the vendor's API: starting a session is the only call; outcomes come by callback."""

    def __init__(self, *, base_url: str, app_id: str, secret: str, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ImproperlyConfigured(f"FACE_VENDOR_BASE_URL={base_url!r} is not an http(s) address.")
        if not app_id:
            raise ImproperlyConfigured("FACE_VENDOR_APP_ID is not set.")
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self.secret = secret
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    @classmethod
    def from_settings(cls) -> VendorClient:
        """The client for ``FACE_VENDOR_BASE_URL``, ``FACE_VENDOR_APP_ID`` and ``FACE_VENDOR_SECRET``."""
        base_url = getattr(settings, "FACE_VENDOR_BASE_URL", "")
        if not base_url:
            raise ImproperlyConfigured("FACE_VENDOR_BASE_URL is not set: where is the face vendor's API?")
        return cls(base_url=base_url, app_id=getattr(settings, "FACE_VENDOR_APP_ID", ""), secret=_secret())

    def start_session(
        self,
        *,
        client_reference: str,
        callback_url: str,
        return_url: str,
        image_retention_days: int,
        identity: dict[str, str] | None = None,
    ) -> VendorStart:
        """``POST {base}/sessions``, signed like the callbacks; the answer is the vendor's session and page or token."""
        document: dict[str, Any] = {
            "app_id": self.app_id,
            "client_reference": client_reference,
            "callback_url": callback_url,
            "return_url": return_url,
            "image_retention_days": image_retention_days,
        }
        if identity:
            document["identity"] = identity
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s) in __init__
            f"{self.base_url}/sessions",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                APP_ID_HEADER: self.app_id,
                SIGNATURE_HEADER: face_vendor_sign(body=body, secret=self.secret, timestamp=int(time.time())),
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
                raw = response.read(_MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as error:
            logger.warning("face vendor start failed: HTTP %s", error.code)
            raise self._unavailable() from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            logger.warning("face vendor start failed: %s", error)
            raise self._unavailable() from None
        if status not in (200, 201) or len(raw) > _MAX_RESPONSE_BYTES:
            logger.warning("face vendor start failed: HTTP %s, %d bytes", status, len(raw))
            raise self._unavailable()
        return self._parse_start(raw)

    def _parse_start(self, raw: bytes) -> VendorStart:
        try:
            answer = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            answer = None
        if not isinstance(answer, dict):
            raise self._unavailable("not a JSON object")
        session_id = answer.get("session_id")
        redirect_url = answer.get("redirect_url")
        sdk_token = answer.get("sdk_token")
        if not isinstance(session_id, str) or not _VENDOR_ID.fullmatch(session_id):
            raise self._unavailable("no usable session_id")
        if redirect_url is not None and not self._acceptable_redirect(redirect_url):
            raise self._unavailable("redirect_url is not an address we send people to")
        if sdk_token is not None and (not isinstance(sdk_token, str) or not 0 < len(sdk_token) <= 4096):
            raise self._unavailable("bad sdk_token")
        if redirect_url is None and sdk_token is None:
            raise self._unavailable("neither redirect_url nor sdk_token")
        return VendorStart(session_id=session_id, redirect_url=redirect_url, sdk_token=sdk_token)

    def _acceptable_redirect(self, url: object) -> bool:
        """HTTPS (or the scheme of the configured API, for a local test vendor), with a host, no credentials."""
        if not isinstance(url, str) or len(url) > 2000 or any(ord(c) < 33 for c in url):
            return False
        parts = urlsplit(url)
        allowed_schemes = {"https", urlsplit(self.base_url).scheme}
        return parts.scheme in allowed_schemes and bool(parts.hostname) and "@" not in parts.netloc

    @staticmethod
    def _unavailable(why: str = "") -> FaceVendorUnavailable:
        if why:
            logger.warning("face vendor start failed: %s", why)
        return FaceVendorUnavailable(
            title=_("The face verification service cannot be reached now."),
            detail=_("Please try again in a few minutes, or confirm in person at a medical-insurance service hall."),
            status=503,
            code="vendor_unavailable",
        )


# --- starting -----------------------------------------------------------------------------------


def face_vendor_local_path(url: str) -> str | None:
    """``url`` if it is a path on this site (``/...``, not ``//host`` or ``/\\host``), else ``None``."""
    if not url or len(url) > 300 or not url.startswith("/") or url[1:2] in {"/", "\\"}:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    return url if url_has_allowed_host_and_scheme(url, allowed_hosts=None) else None


def face_vendor_start(
    *,
    person: InsuredPerson,
    purpose: str,
    reference: str,
    return_url: str,
    portal_url: str,
    client: VendorClient | None = None,
) -> tuple[FaceVendorSession, str | None]:
    """Start a check at the vendor for ``person``; return the session and the vendor page to send them to.

    ``return_url`` is where the person goes after the result page (a local path); ``portal_url`` is this
    site's absolute address, for the callback and return addresses given to the vendor. When the vendor
    answers only with an app SDK token, the address is ``None`` and the token is ``session.sdk_token``
    (not stored).
    """
    if not _PURPOSE.fullmatch(purpose or ""):
        raise FaceVendorRefused(title=_("This verification has no valid purpose."), code="purpose_invalid")
    if not _REFERENCE.fullmatch(reference or ""):
        raise FaceVendorRefused(title=_("This verification has no valid reference."), code="reference_invalid")
    local_return = face_vendor_local_path(return_url)
    if local_return is None:
        raise FaceVendorRefused(title=_("The return address must be a page of this site."), code="return_not_local")
    if face_attempts_left(person=person, purpose=purpose, reference=reference) <= 0:
        # The same limit as the upload flow: failed outcomes of the last 24 hours, whoever checked them.
        raise FaceVendorRefused(
            title=_("No tries left today"), detail=_("You can try again tomorrow."), status=429, code="no_tries_left"
        )
    client = client or VendorClient.from_settings()
    session = FaceVendorSession(person=person, purpose=purpose, reference=reference, return_url=local_return)
    identity = None
    if getattr(settings, "FACE_VENDOR_SEND_IDENTITY", False):
        # Only for a vendor that compares the face with the ID photo; the consent page says so (R50).
        identity = {"name": person.name, "id_number": person.id_number}
    started = client.start_session(
        client_reference=str(session.pk),
        callback_url=urljoin(portal_url, reverse("face_vendor_callback")),
        return_url=urljoin(portal_url, reverse("face_vendor_return", args=[session.pk])),
        image_retention_days=int(getattr(settings, "FACE_IMAGE_RETENTION_DAYS", 0)),  # R52: default 0
        identity=identity,
    )
    session.vendor_session_id = started.session_id
    session.save(force_insert=True)
    session.sdk_token = started.sdk_token
    return session, started.redirect_url


# --- the outcome --------------------------------------------------------------------------------


def face_vendor_session_expired(session: FaceVendorSession, *, now: dt.datetime) -> bool:
    """Whether a session is older than ``FACE_VENDOR_SESSION_MAX_AGE_SECONDS``: its outcome comes too late."""
    return session.created_at + dt.timedelta(seconds=_session_max_age()) < now


@dataclass(frozen=True)
class _Outcome:
    vendor_session_id: str
    nonce: str
    passed: bool
    score: float | None
    detail: str


def _outcome(payload: dict[str, Any]) -> _Outcome:
    """Only the fields we keep are read; anything else the vendor sends (a picture included) is dropped (R52)."""
    session_id, nonce, decision = payload.get("session_id"), payload.get("nonce"), payload.get("decision")
    score, reason = payload.get("score"), payload.get("reason")
    problems = []
    if not isinstance(session_id, str) or not _VENDOR_ID.fullmatch(session_id):
        problems.append("session_id")
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        problems.append("nonce")
    if decision not in ("passed", "failed"):
        problems.append("decision")
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score)
    ):
        problems.append("score")
    if reason is not None and not isinstance(reason, str):
        problems.append("reason")
    if problems:
        raise _refused(
            400,
            "body_invalid",
            _("The callback's body has invalid fields."),
            _("Invalid: %(fields)s.") % {"fields": ", ".join(problems)},
        )
    passed = decision == "passed"
    detail = "vendor_passed" if passed else _VENDOR_REASONS.get(reason or "", "vendor_failed")
    return _Outcome(session_id, nonce, passed, None if score is None else float(score), detail)


def face_vendor_callback(
    *, body: bytes, headers: Mapping[str, str], now: dt.datetime | None = None
) -> FaceVerification:
    """Verify a vendor callback and record its outcome once; raise ``FaceVendorRefused`` for anything else.

    A session is decided by one callback. The nonce is stored with the decision (unique) and the session
    moves from ``started`` by a conditional update, so two copies of a callback racing each other decide
    it once: the loser's outcome row is rolled back with its transaction.
    """
    now = now or timezone.now()
    payload = verify_callback_signature(
        body=body, headers=headers, secret=_secret(), now=now, max_age=_callback_max_age()
    )
    outcome = _outcome(payload)
    session = FaceVendorSession.objects.filter(vendor_session_id=outcome.vendor_session_id).first()
    if session is None:
        raise _refused(404, "unknown_session", _("No verification with this session id was started here."))
    if FaceVendorSession.objects.filter(callback_nonce=outcome.nonce).exists():
        raise _refused(409, "replayed", _("This callback was already received."))
    if session.state != FaceVendorSession.State.STARTED:
        raise _refused(409, "already_decided", _("This verification is already decided."))
    if face_vendor_session_expired(session, now=now):
        FaceVendorSession.objects.filter(pk=session.pk, state=FaceVendorSession.State.STARTED).update(
            state=FaceVendorSession.State.EXPIRED, decided_at=now
        )
        raise _refused(409, "session_expired", _("This verification expired before its outcome arrived."))
    try:
        with transaction.atomic():
            verification = FaceVerification.objects.create(
                person_id=session.person_id,
                purpose=session.purpose,
                reference=session.reference,
                provider=PROVIDER_NAME,
                decision=FaceVerification.Decision.PASSED if outcome.passed else FaceVerification.Decision.FAILED,
                score=outcome.score,
                detail=outcome.detail,
            )
            decided = FaceVendorSession.objects.filter(pk=session.pk, state=FaceVendorSession.State.STARTED).update(
                state=FaceVendorSession.State.PASSED if outcome.passed else FaceVendorSession.State.FAILED,
                decided_at=now,
                verification=verification,
                callback_nonce=outcome.nonce,
            )
            if decided != 1:
                # Another copy of the callback decided it between our read and this update.
                raise _refused(409, "already_decided", _("This verification is already decided."))
    except IntegrityError:
        # The nonce was stored by another callback meanwhile (unique): the same message, replayed.
        raise _refused(409, "replayed", _("This callback was already received.")) from None
    return verification


def face_vendor_session_for_person(*, person_id: int, session_id: Any) -> FaceVendorSession | None:
    """The person's own session (with its outcome), or ``None``: nobody sees another person's."""
    return FaceVendorSession.objects.select_related("verification").filter(pk=session_id, person_id=person_id).first()

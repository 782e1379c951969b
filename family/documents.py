"""Documents of an application (R20, R24, R51): checked by content, re-encoded, kept in private storage.

The type is decided from the bytes, never from the client's file name or content type. Pictures
are decoded in full (so a truncated or malicious file is refused), turned upright and saved again
without their metadata (EXIF with GPS, text chunks). A refused file leaves nothing behind.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _

from accounts.errors import DomainError, FieldError
from accounts.models import User
from accounts.services import audit_record
from family.models import Binding, BindingDocument, BindingState, DocumentKind, DocumentStatus

__all__ = [
    "DocumentRefused",
    "StoredContent",
    "document_attach",
    "document_max_bytes",
    "document_open_for",
    "document_store",
    "read_document_content",
]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
# Applications take documents until a reviewer has decided (R24).
OPEN_FOR_DOCUMENTS = (BindingState.SUBMITTED, BindingState.UNDER_REVIEW)
# R4: the owner's register and the letter carry the owner's full ID number; the relative sees only
# the documents that are about the relative (their own register page, the marriage certificate).
RELATIVE_MAY_SEE = (DocumentKind.RELATIVE_HOUSEHOLD_REGISTER, DocumentKind.MARRIAGE_CERTIFICATE)


class DocumentRefused(DomainError):
    """An upload that is not an acceptable document; the message names the problem."""


@dataclass(frozen=True)
class StoredContent:
    """What is written to storage: the bytes we produced, their type and extension."""

    data: bytes
    content_type: str
    extension: str


def document_max_bytes() -> int:
    return int(getattr(settings, "DOCUMENT_MAX_BYTES", DEFAULT_MAX_BYTES))


def _refused(message: str, *, field: str = "file", code: str = "document_refused") -> DocumentRefused:
    return DocumentRefused(title=message, errors=[FieldError(field, message)], code=code)


def read_document_content(data: bytes) -> StoredContent:
    """Decide the type by content and produce the bytes to store, or raise ``DocumentRefused``."""
    if not data:
        raise _refused(_("The file is empty."))
    limit = document_max_bytes()
    if len(data) > limit:
        raise _refused(
            _("The file is larger than %(limit)d MB. Take the photo again at a lower resolution.")
            % {"limit": limit // (1024 * 1024)}
        )
    if data.startswith(b"%PDF-"):
        # A PDF is stored as sent (it is not rendered here); an incomplete one has no end marker.
        if b"%%EOF" not in data[-1024:]:
            raise _refused(_("The PDF file is incomplete; upload it again."))
        return StoredContent(data, "application/pdf", "pdf")
    return _reencoded_picture(data)


def _reencoded_picture(data: bytes) -> StoredContent:
    from PIL import Image, ImageOps, UnidentifiedImageError

    not_accepted = _("This file is not a JPEG, PNG or WebP picture or a PDF document.")
    unreadable = _("The picture cannot be read; it may be damaged or incomplete. Take the photo again.")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format
            # Checked on the header, before any decoding, whatever Pillow's own process-wide limit is.
            if probe.width * probe.height > MAX_PIXELS:
                raise _refused(
                    _("The picture has more than %(mp)d million pixels; take it at a lower resolution.")
                    % {"mp": MAX_PIXELS // 1_000_000}
                )
            if fmt not in {"JPEG", "PNG", "WEBP"}:
                raise _refused(not_accepted)
            probe.verify()
        # verify() leaves the image unusable: open again and decode every pixel (truncation shows here).
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
    except DocumentRefused:
        raise
    except UnidentifiedImageError:
        raise _refused(not_accepted) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refused(
            _("The picture has more than %(mp)d million pixels; take it at a lower resolution.")
            % {"mp": MAX_PIXELS // 1_000_000}
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise _refused(unreadable) from None

    buffer = io.BytesIO()
    # Saved again without exif/icc/text: the GPS position and camera data of the photo are dropped.
    # (Some encoders read ``info``; only a PNG's transparent colour is worth keeping from it.)
    transparency = upright.info.get("transparency")
    upright.info = {} if transparency is None else {"transparency": transparency}
    if fmt == "PNG":
        if upright.mode not in {"1", "L", "LA", "RGB", "RGBA"}:
            upright = upright.convert("RGBA" if "transparency" in upright.info else "RGB")
        upright.save(buffer, format="PNG", optimize=True)
        return StoredContent(buffer.getvalue(), "image/png", "png")
    if upright.mode in {"RGBA", "LA", "P", "PA"}:
        flattened = Image.new("RGB", upright.size, (255, 255, 255))
        rgba = upright.convert("RGBA")
        flattened.paste(rgba, mask=rgba.getchannel("A"))
        upright = flattened
    elif upright.mode not in {"L", "RGB"}:
        upright = upright.convert("RGB")
    upright.save(buffer, format="JPEG", quality=90)
    return StoredContent(buffer.getvalue(), "image/jpeg", "jpg")


def document_store(*, binding: Binding, kind: str, content: StoredContent, user: User | None) -> BindingDocument:
    """Save the checked bytes as the application's document of ``kind``, with a generated name.

    One live document per kind (R24): a rejected one may be replaced, a pending or accepted one not.
    The file is written inside the transaction and removed again if the row is not saved.
    """
    document = BindingDocument(
        binding=binding,
        kind=kind,
        content_type=content.content_type,
        size=len(content.data),
        status=DocumentStatus.PENDING,
        uploaded_by=user,
    )
    try:
        with transaction.atomic():
            # The binding row serialises uploads of one application.
            Binding.objects.select_for_update().filter(pk=binding.pk).first()
            live = BindingDocument.objects.filter(binding=binding, kind=kind).exclude(status=DocumentStatus.REJECTED)
            if live.exists():
                raise _already_uploaded(kind)
            # document_path() names the file: only our extension is kept, never the client's name.
            document.file.save(f"document.{content.extension}", ContentFile(content.data), save=False)
            document.save()
    except Exception as error:
        # The row is not there (this block rolled back): neither may the file be.
        if document.file.name:
            document.file.storage.delete(document.file.name)
        if isinstance(error, IntegrityError):
            # Two uploads of the same kind at once: the constraint let one through.
            raise _already_uploaded(kind) from None
        raise
    return document


def _already_uploaded(kind: str) -> DocumentRefused:
    label = DocumentKind(kind).label
    return DocumentRefused(
        title=_("The %(kind)s is already uploaded; it can be replaced only after it is rejected.") % {"kind": label},
        errors=[FieldError("kind", _("Already uploaded."))],
        status=409,
        code="document_already_uploaded",
    )


def document_attach(*, binding: Binding, kind: str, uploaded: UploadedFile, user: User) -> BindingDocument:
    """R20/R24: check an uploaded file by its content and keep it, re-encoded, for the reviewer."""
    if kind not in DocumentKind.values:
        raise _refused(_("Choose which document this is."), field="kind")
    if user.person_id != binding.owner_id and not user.is_staff_role:
        raise DocumentRefused(title=_("Only the account owner can upload documents for this application."), status=403)
    if binding.state not in OPEN_FOR_DOCUMENTS or binding.reviewed_at is not None:
        raise DocumentRefused(
            title=_("This application no longer takes documents."), status=409, code="documents_closed"
        )
    limit = document_max_bytes()
    if uploaded.size is not None and uploaded.size > limit:
        # Refused before reading: a huge upload is not pulled into memory.
        raise _refused(
            _("The file is larger than %(limit)d MB. Take the photo again at a lower resolution.")
            % {"limit": limit // (1024 * 1024)}
        )
    uploaded.seek(0)
    data = uploaded.read(limit + 1)
    content = read_document_content(data)
    return document_store(binding=binding, kind=kind, content=content, user=user)


def document_open_for(*, user: User, document_id: int, request: HttpRequest | None = None) -> BindingDocument:
    """R51 access helper: the owner, reviewers and admins see a document; others get 404.

    The relative sees only the documents about the relative (R4: the owner's register and the signed
    letter show the owner's full ID number). Every view by staff is audited (who, what, when, from where).
    """
    document = (
        BindingDocument.objects.select_related("binding").filter(pk=document_id).first()
        if str(document_id).isdigit()
        else None
    )
    if document is None or not user.is_authenticated:
        raise Http404
    binding = document.binding
    if user.person_id is not None and user.person_id == binding.owner_id:
        return document
    if user.person_id is not None and user.person_id == binding.relative_id and document.kind in RELATIVE_MAY_SEE:
        return document
    if user.role in (User.Role.REVIEWER, User.Role.ADMIN) or user.is_superuser:
        audit_record(
            actor=user,
            action="document.viewed",
            target=document,
            request=request,
            detail={"binding": binding.pk, "kind": document.kind},
        )
        return document
    raise Http404

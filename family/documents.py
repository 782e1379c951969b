"""Documents of an application (R20, R24, R51): checked by content, re-encoded, kept in private storage.

The type is decided from the bytes (magic number, then a full parse), never from the client's file
name or content type. Pictures (JPEG, PNG, WebP, and HEIC/HEIF from phones) are sized from their
header before any decoding, decoded in full (so a truncated or malicious file is refused), turned
upright and saved again without their metadata (EXIF with GPS, text chunks). A PDF is inspected with
pypdf (no encryption, no JavaScript, no program launch, no attached files, a bounded number of pages)
and rendered with pdfium; it is kept as sent. Each document gets a small thumbnail for the reviewer's
queue. A refused file leaves nothing behind: no row, no file.

Every refusal is a ``DocumentRefused`` whose ``code`` says which problem it is (the API's problem
``type`` is ``/api/problems/<code>/``): ``document_empty``, ``document_too_large``,
``document_type``, ``document_markup``, ``document_damaged``, ``document_too_many_pixels``,
``document_pdf_encrypted``, ``document_pdf_javascript``, ``document_pdf_launch``,
``document_pdf_attachment``, ``document_pdf_too_many_pages``, ``document_pdf_too_complex``,
``document_limit_reached``, ``document_already_uploaded``, ``document_kind``, ``documents_closed``.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import pillow_heif
import pypdfium2
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

from accounts.errors import DomainError, FieldError
from accounts.models import User
from accounts.queueing import enqueue_on_commit
from accounts.services import audit_record
from family.models import Binding, BindingDocument, BindingState, DocumentKind, DocumentStatus

__all__ = [
    "DocumentRefused",
    "StoredContent",
    "document_attach",
    "document_max_bytes",
    "document_max_pages",
    "document_max_per_binding",
    "document_max_pixels",
    "document_open_for",
    "document_page_image",
    "document_store",
    "read_document_content",
]

# Phones save HEIC (iPhone) or HEIF; Pillow reads them once this opener is registered (once, at import).
pillow_heif.register_heif_opener()

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_PAGES = 5
DEFAULT_MAX_PER_BINDING = 10
THUMBNAIL_SIDE = 320
# A scanned page is a few objects; an office export a few thousand. Beyond this the walk below is
# refused rather than let a small, heavily compressed file keep a worker busy.
PDF_MAX_OBJECTS = 50_000
PDF_CONTENT_TYPE = "application/pdf"
# Applications take documents until a reviewer has decided (R24).
OPEN_FOR_DOCUMENTS = (BindingState.SUBMITTED, BindingState.UNDER_REVIEW)
# R4: the owner's register and the letter carry the owner's full ID number; the relative sees only
# the documents that are about the relative (their own register page, the marriage certificate).
RELATIVE_MAY_SEE = (DocumentKind.RELATIVE_HOUSEHOLD_REGISTER, DocumentKind.MARRIAGE_CERTIFICATE)

# Brands of an ISO-BMFF ``ftyp`` box that announce a HEVC-coded HEIF picture.
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
# The Pillow formats a picture may turn out to be, for each magic number (a phone JPEG with a
# depth map or a second picture is opened as MPO).
PICTURE_FORMATS = {"JPEG": {"JPEG", "MPO"}, "PNG": {"PNG"}, "WEBP": {"WEBP"}, "HEIF": {"HEIF"}}
# PDF names that make a document active: scripts (XFA forms carry scripts too), starting a program,
# files carried inside. Found as a key (``/JS``) or as a value (``/S /JavaScript``, ``/Type /EmbeddedFile``).
PDF_JAVASCRIPT = {"/JS", "/JavaScript", "/XFA"}
PDF_LAUNCH = {"/Launch"}
PDF_ATTACHMENT = {"/EmbeddedFile", "/EmbeddedFiles", "/EF", "/FileAttachment", "/RichMedia"}

# pdfium is not thread-safe: one rendering at a time per process.
_PDFIUM_LOCK = threading.Lock()


class DocumentRefused(DomainError):
    """An upload that is not an acceptable document; the message names the problem, ``code`` which one."""


@dataclass(frozen=True)
class StoredContent:
    """What is written to storage: the bytes we produced, their type and extension, pages and thumbnail."""

    data: bytes
    content_type: str
    extension: str
    pages: int = 1
    thumbnail: bytes | None = None  # JPEG, at most THUMBNAIL_SIDE pixels on its longer side


def document_max_bytes() -> int:
    return int(getattr(settings, "DOCUMENT_MAX_BYTES", DEFAULT_MAX_BYTES))


def document_max_pixels() -> int:
    return int(getattr(settings, "DOCUMENT_MAX_PIXELS", DEFAULT_MAX_PIXELS))


def document_max_pages() -> int:
    return int(getattr(settings, "DOCUMENT_MAX_PAGES", DEFAULT_MAX_PAGES))


def document_max_per_binding() -> int:
    return int(getattr(settings, "DOCUMENT_MAX_PER_BINDING", DEFAULT_MAX_PER_BINDING))


def _refused(message: str, *, code: str, field: str = "file", status: int = 400) -> DocumentRefused:
    return DocumentRefused(title=message, errors=[FieldError(field, message)], code=code, status=status)


def _too_large() -> DocumentRefused:
    limit = document_max_bytes()
    return _refused(
        _("The file is larger than %(limit)d MB. Take the photo again at a lower resolution.")
        % {"limit": limit // (1024 * 1024)},
        code="document_too_large",
    )


def _too_many_pixels() -> DocumentRefused:
    return _refused(
        _("The picture has more than %(mp)d million pixels; take it at a lower resolution.")
        % {"mp": document_max_pixels() // 1_000_000},
        code="document_too_many_pixels",
    )


def _not_accepted() -> DocumentRefused:
    return _refused(_("This file is not a JPEG, PNG or WebP picture or a PDF document."), code="document_type")


def _picture_unreadable() -> DocumentRefused:
    return _refused(
        _("The picture cannot be read; it may be damaged or incomplete. Take the photo again."),
        code="document_damaged",
    )


def _pdf_unreadable() -> DocumentRefused:
    return _refused(_("The PDF cannot be read; it may be damaged. Save or scan it again."), code="document_damaged")


def _sniff(data: bytes) -> str | None:
    """The format the magic number announces; the parse that follows must agree."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "HEIF"
    if data.startswith(b"%PDF-"):
        return "PDF"
    return None


def _is_markup(data: bytes) -> bool:
    """HTML, SVG or other XML: a page a browser would run, never a document (named .jpg or not)."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n\x0c")
    return head.startswith(b"<")


def read_document_content(data: bytes) -> StoredContent:
    """Decide the type by content and produce the bytes to store, or raise ``DocumentRefused``."""
    if not data:
        raise _refused(_("The file is empty."), code="document_empty")
    if len(data) > document_max_bytes():
        raise _too_large()
    kind = _sniff(data)
    if kind == "PDF":
        return _checked_pdf(data)
    if kind is not None:
        return _reencoded_picture(data, kind)
    if _is_markup(data):
        raise _refused(
            _("This file is a web page or an SVG drawing, not a photo or a scan. Upload a picture or a PDF."),
            code="document_markup",
        )
    raise _not_accepted()


# --- Pictures ----------------------------------------------------------------------------------


def _reencoded_picture(data: bytes, kind: str) -> StoredContent:
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as probe:
            if probe.format not in PICTURE_FORMATS[kind]:
                raise _not_accepted()
            # From the header, before any decoding, whatever Pillow's own process-wide limit is.
            if probe.width * probe.height > document_max_pixels():
                raise _too_many_pixels()
            probe.verify()
        # verify() leaves the image unusable: open again and decode every pixel (truncation shows here).
        with Image.open(io.BytesIO(data), formats=[kind]) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
    except DocumentRefused:
        raise
    except UnidentifiedImageError:
        # The magic number said one thing, the parse did not follow: a disguised or broken file.
        raise _picture_unreadable() from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels() from None
    except (OSError, SyntaxError, ValueError, EOFError, RuntimeError):
        # RuntimeError: libheif's way of saying a HEIC file is damaged.
        raise _picture_unreadable() from None

    # Saved again without exif/icc/xmp/text: the GPS position and camera data of the photo are dropped.
    # (Some encoders read ``info``; only a PNG's transparent colour is worth keeping from it.)
    transparency = upright.info.get("transparency")
    upright.info = {} if transparency is None else {"transparency": transparency}
    thumbnail = _thumbnail_jpeg(upright)
    buffer = io.BytesIO()
    if kind == "PNG":
        # A scan sent as PNG stays lossless.
        if upright.mode not in {"1", "L", "LA", "RGB", "RGBA"}:
            upright = upright.convert("RGBA" if "transparency" in upright.info else "RGB")
        upright.save(buffer, format="PNG", optimize=True)
        return StoredContent(buffer.getvalue(), "image/png", "png", thumbnail=thumbnail)
    # JPEG, WebP and HEIC become JPEG: what every reviewer's browser shows.
    _flattened(upright).save(buffer, format="JPEG", quality=90)
    return StoredContent(buffer.getvalue(), "image/jpeg", "jpg", thumbnail=thumbnail)


def _flattened(image: Image.Image) -> Image.Image:
    """RGB or grey, transparency on white: what JPEG can hold."""
    if image.mode in {"RGBA", "LA", "P", "PA"}:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if image.mode not in {"L", "RGB"}:
        return image.convert("RGB")
    return image


def _thumbnail_jpeg(image: Image.Image) -> bytes:
    small = _flattened(image).copy()
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


# --- PDF ---------------------------------------------------------------------------------------


def _checked_pdf(data: bytes) -> StoredContent:
    """Inspect the structure with pypdf, then render the first page with pdfium; the bytes are kept as sent."""
    if b"%%EOF" not in data[-1024:]:
        # An upload cut short has no end marker (pypdf would repair what it can; we do not guess).
        raise _refused(_("The PDF file is incomplete; upload it again."), code="document_damaged")
    max_pages = document_max_pages()
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise _refused(
                _(
                    "The PDF is protected by a password or encryption. "
                    "Upload an unprotected copy, or photos of the pages."
                ),
                code="document_pdf_encrypted",
            )
        if (problem := _pdf_active_content(reader)) is not None:
            raise problem
        # pypdf walks the page tree (it does not trust /Count).
        pages = len(reader.pages)
    except DocumentRefused:
        raise
    except Exception:  # untrusted input: whatever the parser trips on, the file is unreadable
        raise _pdf_unreadable() from None
    if pages > max_pages:
        raise _too_many_pages(pages, max_pages)
    try:
        with _PDFIUM_LOCK:
            pdf = pypdfium2.PdfDocument(data)
            try:
                rendered_pages = len(pdf)
                if rendered_pages < 1:
                    raise _pdf_unreadable()
                first = _pdf_page_rendered(pdf, 0, THUMBNAIL_SIDE)
            finally:
                pdf.close()
    except pypdfium2.PdfiumError:
        raise _pdf_unreadable() from None
    # The two readers may disagree on a malformed page tree: the larger count decides.
    pages = max(pages, rendered_pages)
    if pages > max_pages:
        raise _too_many_pages(pages, max_pages)
    return StoredContent(data, PDF_CONTENT_TYPE, "pdf", pages=pages, thumbnail=_thumbnail_jpeg(first))


def _too_many_pages(pages: int, limit: int) -> DocumentRefused:
    return _refused(
        _("The PDF has %(pages)d pages; at most %(limit)d are accepted. Upload only the pages asked for.")
        % {"pages": pages, "limit": limit},
        code="document_pdf_too_many_pages",
    )


def _pdf_active_content(reader: PdfReader) -> DocumentRefused | None:
    """Walk every object reachable from the trailer once; the first active or oversized thing refuses.

    Looking everywhere, not only at the catalogue's /OpenAction and /Names, also finds scripts in
    page /AA, link and widget annotations, form fields and outline items.
    """
    max_pixels = document_max_pixels()
    stack: list = [reader.trailer]
    seen: set[tuple[int, int]] = set()
    visited = 0
    while stack:
        node = stack.pop()
        if isinstance(node, IndirectObject):
            reference = (node.idnum, node.generation)
            if reference in seen:
                continue
            seen.add(reference)
            node = node.get_object()
        if isinstance(node, DictionaryObject):
            # dict.items: the raw values, so references are followed (once) by the loop above.
            items = list(dict.items(node))
            names = {str(key) for key, _value in items}
            names |= {str(value) for _key, value in items if isinstance(value, NameObject)}
            if names & PDF_JAVASCRIPT:
                return _refused(
                    _(
                        "The PDF contains JavaScript. "
                        "Upload a plain copy (print it to a new PDF) or photos of the pages."
                    ),
                    code="document_pdf_javascript",
                )
            if names & PDF_LAUNCH:
                return _refused(
                    _(
                        "The PDF would start a program. "
                        "Upload a plain copy (print it to a new PDF) or photos of the pages."
                    ),
                    code="document_pdf_launch",
                )
            if names & PDF_ATTACHMENT:
                return _refused(
                    _(
                        "The PDF carries attached files. "
                        "Upload a plain copy (print it to a new PDF) or photos of the pages."
                    ),
                    code="document_pdf_attachment",
                )
            if node.get("/Subtype") == "/Image" and _pdf_image_pixels(node) > max_pixels:
                # A picture inside the PDF is decoded in full when the page is rendered.
                return _too_many_pixels()
            values = [value for _key, value in items]
        elif isinstance(node, ArrayObject):
            values = list(node)
        else:
            continue
        visited += 1 + len(values)
        if visited > PDF_MAX_OBJECTS:
            return _refused(
                _("The PDF is too complex to check. Print it to a new PDF, or upload photos of the pages."),
                code="document_pdf_too_complex",
            )
        stack.extend(values)
    return None


def _pdf_image_pixels(image: DictionaryObject) -> int:
    try:
        return int(image.get("/Width", 0)) * int(image.get("/Height", 0))
    except (TypeError, ValueError):
        return 0


def _pdf_page_rendered(pdf: pypdfium2.PdfDocument, index: int, max_side: int) -> Image.Image:
    """One page as a picture whose longer side is at most ``max_side`` (caller holds the pdfium lock)."""
    page = pdf[index]
    try:
        width, height = page.get_size()
        scale = max_side / max(width, height, 1.0)
        bitmap = page.render(scale=scale)
        try:
            # A copy: the bitmap's buffer goes when the bitmap is closed.
            image = bitmap.to_pil().convert("RGB")
        finally:
            bitmap.close()
    finally:
        page.close()
    if max(image.size) > max_side:  # pdfium rounds up
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def _pdf_preview(data: bytes) -> StoredContent:
    """Pages and thumbnail of a PDF we made ourselves (the commitment letter)."""
    with _PDFIUM_LOCK:
        pdf = pypdfium2.PdfDocument(data)
        try:
            pages = len(pdf)
            first = _pdf_page_rendered(pdf, 0, THUMBNAIL_SIDE)
        finally:
            pdf.close()
    return StoredContent(data, PDF_CONTENT_TYPE, "pdf", pages=pages, thumbnail=_thumbnail_jpeg(first))


def document_page_image(*, document: BindingDocument, page: int = 0, max_side: int = 2000) -> bytes:
    """PNG of one page, longer side at most ``max_side``: for OCR pre-check and the reviewer's screen.

    A picture has one page (the stored, re-encoded picture); a PDF page is rendered with pdfium.
    Raises ``ValueError`` for a page that is not there.
    """
    if page < 0:
        raise ValueError(f"page {page} is out of range")
    with document.file.open("rb") as handle:
        data = handle.read()
    if document.content_type == PDF_CONTENT_TYPE:
        with _PDFIUM_LOCK:
            pdf = pypdfium2.PdfDocument(data)
            try:
                if page >= len(pdf):
                    raise ValueError(f"page {page} is out of range: the PDF has {len(pdf)} pages")
                image = _pdf_page_rendered(pdf, page, max_side)
            finally:
                pdf.close()
    else:
        if page != 0:
            raise ValueError(f"page {page} is out of range: a picture has one page")
        with Image.open(io.BytesIO(data)) as stored:
            image = stored.copy()
        if max(image.size) > max_side:
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


# --- Storing -----------------------------------------------------------------------------------


def _room_check(*, binding: Binding, kind: str) -> None:
    """One live document per kind (R24: a rejected one may be replaced), and a bounded number in all."""
    documents = BindingDocument.objects.filter(binding=binding)
    if documents.filter(kind=kind).exclude(status=DocumentStatus.REJECTED).exists():
        raise _already_uploaded(kind)
    limit = document_max_per_binding()
    if documents.count() >= limit:
        raise _refused(
            _("This application has %(limit)d documents already, the most it can take.") % {"limit": limit},
            code="document_limit_reached",
            status=409,
        )


def document_store(*, binding: Binding, kind: str, content: StoredContent, user: User | None) -> BindingDocument:
    """Save the checked bytes as the application's document of ``kind``, with a generated name.

    The file is written inside the transaction and removed again if the row is not saved. The
    thumbnail is written once the transaction commits: a caller's transaction that rolls back later
    (several documents of one application, all or nothing) leaves no thumbnail behind.
    """
    if content.thumbnail is None and content.content_type == PDF_CONTENT_TYPE:
        content = _pdf_preview(content.data)
    document = BindingDocument(
        binding=binding,
        kind=kind,
        content_type=content.content_type,
        size=len(content.data),
        pages=content.pages,
        status=DocumentStatus.PENDING,
        uploaded_by=user,
    )
    try:
        with transaction.atomic():
            # The binding row serialises uploads of one application.
            Binding.objects.select_for_update().filter(pk=binding.pk).first()
            _room_check(binding=binding, kind=kind)
            # document_path() names the file: only our extension is kept, never the client's name.
            document.file.save(f"document.{content.extension}", ContentFile(content.data), save=False)
            document.save()
            if content.thumbnail is not None:
                _thumbnail_store_on_commit(document, content.thumbnail)
    except Exception as error:
        # The row is not there (this block rolled back): neither may the file be.
        if document.file.name:
            document.file.storage.delete(document.file.name)
        if isinstance(error, IntegrityError):
            # Two uploads of the same kind at once: the constraint let one through.
            raise _already_uploaded(kind) from None
        raise
    return document


def _thumbnail_store_on_commit(document: BindingDocument, thumbnail: bytes) -> None:
    def store() -> None:
        document.thumbnail.save("thumbnail.jpg", ContentFile(thumbnail), save=False)
        if not BindingDocument.objects.filter(pk=document.pk).update(thumbnail=document.thumbnail.name):
            document.thumbnail.storage.delete(document.thumbnail.name)  # the document went meanwhile

    # robust: the upload is committed; a thumbnail that cannot be written is logged, not an error.
    transaction.on_commit(store, robust=True)


def _already_uploaded(kind: str) -> DocumentRefused:
    label = DocumentKind(kind).label
    return DocumentRefused(
        title=_("The %(kind)s is already uploaded; it can be replaced only after it is rejected.") % {"kind": label},
        errors=[FieldError("kind", _("Already uploaded."))],
        status=409,
        code="document_already_uploaded",
    )


def document_attach(*, binding: Binding, kind: str, uploaded: UploadedFile, user: User) -> BindingDocument:
    """R20/R24: check an uploaded file by its content, keep it re-encoded, queue its automatic pre-check."""
    from family import tasks

    if kind not in DocumentKind.values:
        raise _refused(_("Choose which document this is."), field="kind", code="document_kind")
    if user.person_id != binding.owner_id and not user.is_staff_role:
        raise DocumentRefused(title=_("Only the account owner can upload documents for this application."), status=403)
    if binding.state not in OPEN_FOR_DOCUMENTS or binding.reviewed_at is not None:
        raise DocumentRefused(
            title=_("This application no longer takes documents."), status=409, code="documents_closed"
        )
    # Checked again under the lock when storing; here so that a doomed upload is not decoded first.
    _room_check(binding=binding, kind=kind)
    limit = document_max_bytes()
    if uploaded.size is not None and uploaded.size > limit:
        # Refused before reading: a huge upload is not pulled into memory.
        raise _too_large()
    uploaded.seek(0)
    # The client's name and content type are never looked at: the content decides.
    content = read_document_content(uploaded.read(limit + 1))
    document = document_store(binding=binding, kind=kind, content=content, user=user)
    enqueue_on_commit(tasks.document_precheck, document.pk)
    return document


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
            # owner/relative let the audit log find this view when searching by person (R51).
            detail={
                "binding": binding.pk,
                "kind": document.kind,
                "owner": binding.owner_id,
                "relative": binding.relative_id,
            },
        )
        return document
    raise Http404

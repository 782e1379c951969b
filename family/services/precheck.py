"""R24: the automatic pre-check of an uploaded document, run by the ``document_precheck`` task.

Each page is rendered (``family.documents.document_page_image``), judged for readability and, if
readable, read by Tesseract; the text is compared with what the owner claimed (``family.precheck``)
and the report stored on the document for the reviewer. The pre-check never approves (R24): a
reviewer decides every document. The one thing it decides alone is that a document none of whose
pages can be read goes back to the citizen at once, with what to fix, instead of waiting in the queue.
"""

from __future__ import annotations

import datetime as dt
import io
import logging

import pypdfium2
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import notification_send
from family.documents import OPEN_FOR_DOCUMENTS, document_page_image
from family.models import Binding, BindingDocument, DocumentKind, DocumentStatus, PrecheckStatus
from family.precheck import (
    Claim,
    ClaimedPerson,
    OcrError,
    PageResult,
    build_report,
    ocr_text,
    readability,
    readability_message,
)

__all__ = ["MAX_PAGES", "PAGE_MAX_SIDE", "document_precheck_run"]

logger = logging.getLogger(__name__)

MAX_PAGES = 5
PAGE_MAX_SIDE = 2000
REJECTION_REASON_MAX = 300  # BindingDocument.rejection_reason
# Documents the citizen can upload again (the letter is generated and signed in the portal, never sent back).
SENT_BACK_KINDS = tuple(kind for kind in DocumentKind.values if kind != DocumentKind.COMMITMENT_LETTER)


class PageUnavailable(Exception):
    """A page could not be rendered from the stored file."""


def document_claim(document: BindingDocument) -> Claim:
    """What the owner claimed that this document should show (R20, R21)."""
    binding = document.binding
    owner = ClaimedPerson(binding.owner.name, binding.owner.id_number)
    if binding.relative_id is not None:
        relative = ClaimedPerson(binding.relative.name, binding.relative.id_number)
    else:  # R21: a newborn without an ID number yet
        relative = ClaimedPerson(binding.newborn_name, "")
    certificate = binding.birth_certificate_number if document.kind == DocumentKind.BIRTH_CERTIFICATE else ""
    return Claim(
        kind=document.kind,
        relationship=binding.relationship,
        owner=owner,
        relative=relative,
        certificate_number=certificate,
    )


def _read_pages(document: BindingDocument) -> list[PageResult]:
    """Readability of each page (the first five) and the text of the readable ones."""
    from PIL import Image

    results = []
    for page in range(min(max(document.pages, 1), MAX_PAGES)):
        try:
            data = document_page_image(document=document, page=page, max_side=PAGE_MAX_SIDE)
            with Image.open(io.BytesIO(data)) as picture:
                picture.load()
                image = picture.convert("RGB")
        except (OSError, ValueError, pypdfium2.PdfiumError) as error:  # a missing file or page, damaged content
            raise PageUnavailable(f"page {page + 1}: {error}") from error
        quality = readability(image)
        results.append(PageResult(quality, ocr_text(image) if quality.ok else ""))
    return results


def document_precheck_run(*, document_id: int, today: dt.date | None = None) -> BindingDocument | None:
    """R24: pre-check a document once: readability and recognised text against the claim; never approves.

    Idempotent: only a document whose pre-check is ``pending`` is checked, and the result is written under
    the row lock after checking that again, so a redelivered message changes nothing. Pages are read
    outside the transaction (seconds of OCR hold no lock); locks are taken binding first, then document,
    in the order uploads and reviewers take them. A document whose every page is unreadable is sent back
    to the citizen with what to fix (status ``rejected``) unless a reviewer has decided already; an
    error of Tesseract or of rendering leaves the status ``failed`` with its code for the reviewer.
    Returns the document, or None when there was nothing to do.
    """
    document = (
        BindingDocument.objects.select_related("binding__owner", "binding__relative").filter(pk=document_id).first()
    )
    if document is None or document.precheck_status != PrecheckStatus.PENDING:
        return None
    today = today or timezone.localdate()
    claim = document_claim(document)
    reasons: list[str] = []
    try:
        pages = _read_pages(document)
    except OcrError as error:
        logger.warning("pre-check of document %s: OCR failed (%s)", document_id, error)
        status, report = PrecheckStatus.FAILED, _failure_report(error.code, error.detail)
    except PageUnavailable as error:
        logger.warning("pre-check of document %s: %s", document_id, error)
        status, report = PrecheckStatus.FAILED, _failure_report("page_unavailable", str(error))
    else:
        report = build_report(pages=pages, claim=claim, today=today)
        readable = any(page.readability.ok for page in pages)
        status = PrecheckStatus.DONE if readable else PrecheckStatus.UNREADABLE
        reasons = [] if readable else [reason for page in pages for reason in page.readability.reasons]

    with transaction.atomic():
        binding = Binding.objects.select_for_update().get(pk=document.binding_id)
        document = BindingDocument.objects.select_for_update().filter(pk=document_id).first()
        if document is None or document.precheck_status != PrecheckStatus.PENDING:
            return None  # another run wrote its report meanwhile
        document.precheck_status = status
        document.precheck = report
        fields = ["precheck_status", "precheck"]
        if (
            status == PrecheckStatus.UNREADABLE
            and document.status == DocumentStatus.PENDING
            and document.kind in SENT_BACK_KINDS
            and binding.state in OPEN_FOR_DOCUMENTS
            and binding.reviewed_at is None
        ):
            document.status = DocumentStatus.REJECTED
            document.rejection_reason = _unreadable_reason(reasons)
            document.decided_at = timezone.now()
            fields += ["status", "rejection_reason", "decided_at"]
            notification_send(
                person=binding.owner,
                kind="binding.document_unreadable",
                title=_("Please upload a document of your family-sharing application again"),
                body=f"{DocumentKind(document.kind).label}: {document.rejection_reason}",
                link=reverse("binding_detail", args=[binding.pk]),
                dedup_key=f"document:{document.pk}:unreadable",
            )
        document.save(update_fields=fields)
    return document


def documents_requeue_pending_precheck(*, older_than_seconds: int) -> int:
    """Queue again the pre-checks still pending after ``older_than_seconds`` (a broker that lost them).

    The pre-check is idempotent (it acts only on a pending document), so a duplicate costs nothing.
    """
    from family import tasks

    cutoff = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    pending = list(
        BindingDocument.objects.filter(precheck_status=PrecheckStatus.PENDING, created_at__lt=cutoff).values_list(
            "pk", flat=True
        )[:500]
    )
    for document_id in pending:
        tasks.document_precheck.delay(document_id)
    return len(pending)


def _unreadable_reason(reasons: list[str]) -> str:
    """What the citizen reads on the rejected document: that it could not be read, and what to fix."""
    text = _("The document cannot be read: %(what)s. Upload a new photo of the whole page.") % {
        "what": readability_message(reasons)
    }
    return text[:REJECTION_REASON_MAX]


def _failure_report(code: str, detail: str) -> dict:
    """The report of a pre-check that could not run: the reviewer looks at the document by eye."""
    return {
        "error": {"code": code, "detail": detail[:500]},
        "readability": {},
        "text": "",
        "checks": [],
        "highlights": [],
    }

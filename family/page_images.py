"""A page of a private document as an image answer, the same for every reviewer's screen (R51)."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.translation import gettext as _

from family import documents as family_documents

# The longest side of a page image on the review screens: enough to read a household register's stamp.
PAGE_IMAGE_MAX_SIDE = 2000


def document_page_response(*, document: object, page: int, filename: str) -> HttpResponse:
    """Page ``page`` (from 1) of a stored document as PNG; 422 in words when it cannot be drawn.

    The caller has checked who may see it, that the page exists, and written the audit row.
    """
    try:
        image = family_documents.document_page_image(document=document, page=page - 1, max_side=PAGE_IMAGE_MAX_SIDE)
    except (family_documents.DocumentRefused, OSError, ValueError):
        return HttpResponse(_("This page cannot be shown."), status=422, content_type="text/plain; charset=utf-8")
    response = HttpResponse(image, content_type="image/png")
    # A private file (R51): never kept by a shared cache or the browser's disk cache.
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response

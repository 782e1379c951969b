"""审核 of family card documents (R43 via R20/R21, R24), under /staff/family-cards/: the queue, the review
screen, the decisions and the page images.

Reviewers and admins only (others 403, anonymous users log in first; accounts.middleware asks staff for MFA
under /staff/). The review screen shows full names and ID numbers (R4's exception for the reviewer's
document view); every opening and every page image is audited (R51). The decisions are services of
cards.services, which audit them and tell the manager.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import role_required
from accounts.identity import age_on
from accounts.models import User
from accounts.services import audit_record
from cards.errors import FamilyCardRefused
from cards.forms import FamilyCardRejectForm
from cards.models import FamilyCardDocument, FamilyCardDocumentStatus, FamilyCardLinkState
from cards.selectors import (
    family_card_document_for_review,
    family_card_documents_of,
    family_card_documents_waiting,
    person_is_child,
)
from cards.services import (
    family_card_document_approve,
    family_card_document_held_by_other,
    family_card_document_reject,
    family_card_document_take_next,
)
from family.page_images import document_page_response
from family.selectors_review import claim_cutoff, review_reasons
from family.staff_views import document_view

REVIEW_ROLES = (User.Role.REVIEWER, User.Role.ADMIN)
QUEUE_PAGE_SIZE = 50


def _reject_form(data=None) -> FamilyCardRejectForm:
    return FamilyCardRejectForm(data, reasons=review_reasons(), language=get_language() or "zh-hans")


@require_GET
@role_required(*REVIEW_ROLES)
def family_card_review_queue(request: HttpRequest) -> HttpResponse:
    """审核队列 of family card documents: what waits, oldest first, with the count."""
    waiting = family_card_documents_waiting()
    page = Paginator(waiting, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "staff/family_card_queue.html",
        {
            "page": page,
            "total": page.paginator.count,
            "oldest": page.object_list[0] if page.object_list else None,
            "claim_cutoff": claim_cutoff(),
        },
    )


@require_POST
@role_required(*REVIEW_ROLES)
def family_card_review_take_next(request: HttpRequest) -> HttpResponse:
    """取下一份: hold the oldest waiting document for this reviewer and open it; two reviewers never get the same."""
    document = family_card_document_take_next(reviewer=request.user)
    if document is None:
        messages.info(request, _("Nothing left to review."))
        return redirect("staff_family_card_queue")
    return redirect("staff_family_card_review", document_id=document.pk)


def _render_review(request: HttpRequest, document: FamilyCardDocument, *, form=None, status: int = 200):
    link = document.link
    today = timezone.localdate()
    audit_record(
        actor=request.user,
        action="family_card.document_opened",
        target=document,
        request=request,
        detail={"link": link.pk, "manager": link.manager_id, "relative": link.relative_id},
    )
    return render(
        request,
        "staff/family_card_review.html",
        {
            "document": document,
            "view": document_view(document, page_url_name="staff_family_card_page_image"),
            "link": link,
            "history": [d for d in family_card_documents_of(link=link) if d.pk != document.pk],
            "ages": {
                "manager": age_on(link.manager.birth_date, today),
                "relative": age_on(link.relative.birth_date, today),
            },
            "is_child": person_is_child(person=link.relative, region_code=link.manager.region_id, on_date=today),
            "held_by_other": family_card_document_held_by_other(document, request.user),
            "can_decide": document.status == FamilyCardDocumentStatus.PENDING
            and link.state == FamilyCardLinkState.PENDING
            and not family_card_document_held_by_other(document, request.user),
            "reject_form": form or _reject_form(),
        },
        status=status,
    )


def _document_or_404(document_id: int) -> FamilyCardDocument:
    document = family_card_document_for_review(document_id=document_id)
    if document is None:
        raise Http404
    return document


@require_GET
@role_required(*REVIEW_ROLES)
def family_card_review(request: HttpRequest, document_id: int) -> HttpResponse:
    """审核: who asks to manage whose card, with full ID numbers (R4), the document, its pre-check; audited."""
    return _render_review(request, _document_or_404(document_id))


def _refused(request: HttpRequest, error: FamilyCardRefused, document_id: int) -> HttpResponse:
    if error.status == 404:
        raise Http404
    messages.error(request, error.title)
    return redirect("staff_family_card_review", document_id=document_id)


@require_POST
@role_required(*REVIEW_ROLES)
def family_card_review_approve(request: HttpRequest, document_id: int) -> HttpResponse:
    """Approve: the document proves the relationship; with the face or photo step done, the link is active."""
    try:
        document = family_card_document_approve(document_id=document_id, reviewer=request.user, request=request)
    except FamilyCardRefused as error:
        return _refused(request, error, document_id)
    messages.success(request, _("Document %(number)d approved; the manager is told.") % {"number": document.pk})
    return redirect("staff_family_card_queue")


@require_POST
@role_required(*REVIEW_ROLES)
def family_card_review_reject(request: HttpRequest, document_id: int) -> HttpResponse:
    """Reject with the reason the manager reads; they may upload the document again."""
    form = _reject_form(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            document = family_card_document_reject(
                document_id=document_id,
                reviewer=request.user,
                reason_id=data["reason"],
                note=data["note"],
                language=data["language"],
                request=request,
            )
        except FamilyCardRefused as error:
            if not error.errors:
                return _refused(request, error, document_id)
            for field_error in error.errors:
                form.add_error(field_error.field if field_error.field in form.fields else None, field_error.message)
        else:
            messages.success(
                request, _("Document %(number)d rejected; the manager is told why.") % {"number": document.pk}
            )
            return redirect("staff_family_card_queue")
    return _render_review(request, _document_or_404(document_id), form=form, status=400)


@require_GET
@role_required(*REVIEW_ROLES)
def family_card_page_image(request: HttpRequest, document_id: int, page: int) -> HttpResponse:
    """One page of a family card document as PNG (``page`` counts from 1); private and audited (R51)."""
    document = _document_or_404(document_id)
    if not 1 <= page <= max(1, document.pages):
        raise Http404
    audit_record(
        actor=request.user,
        action="document.viewed",
        target=document,
        request=request,
        # manager/relative let the audit log find this view when searching by person (R51).
        detail={
            "family_card_link": document.link_id,
            "kind": document.kind,
            "page": page,
            "manager": document.link.manager_id,
            "relative": document.link.relative_id,
        },
    )
    return document_page_response(
        document=document, page=page, filename=f"family-card-document-{document.pk}-page-{page}.png"
    )

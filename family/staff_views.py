"""审核 The reviewers' workbench (R24), under /staff/review/: the queue, the review screen, the decisions, page images.

Views parse a form, call one selector or service, and render or redirect. Reviewers and admins only
(others 403, anonymous users log in first). The review screen shows full names and ID numbers (R4's
exception), so it opens only for the reviewer holding the application (or an admin), and every opening
is audited; every page image is served through ``document_open_for``, which audits each view (R51).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import role_required
from accounts.identity import age_on
from accounts.models import User
from family import documents as family_documents
from family.models import Binding, BindingDocument, BindingMethod, BindingState, DocumentKind, Relation
from family.page_images import document_page_response
from family.precheck import readability_lines
from family.selectors_review import (
    QUEUE_FLAGS,
    QUEUE_METHODS,
    QueueCounts,
    ReviewFilters,
    claim_idle_minutes,
    is_review_admin,
    review_binding_get,
    review_document_binding,
    review_documents,
    review_events,
    review_is_waiting,
    review_may_open,
    review_queue,
    review_queue_counts,
    review_reasons,
)
from family.services.review import (
    ReviewRefused,
    review_approve,
    review_claim_next,
    review_open,
    review_refuse,
    review_release,
    review_send_back,
)

REVIEW_ROLES = (User.Role.REVIEWER, User.Role.ADMIN)
# The filters a reviewer took the last application with: the next one after a decision matches them too.
FILTERS_SESSION_KEY = "review_filters"
QUEUE_PAGE_SIZE = 50
FLAG_LABELS = {
    "doubt": gettext_lazy("Plausibility doubt (R16)"),
    "mismatch": gettext_lazy("Pre-check mismatch"),
    "unreadable": gettext_lazy("Unreadable document"),
}
LANGUAGE_CHOICES = [("zh-hans", "中文"), ("en", "English")]


# --- Forms: shape only; the services decide meaning --------------------------------------------


class QueueFilterForm(forms.Form):
    """The queue's filters (GET); the labels carry the counts once they are known."""

    region = forms.RegexField(
        label=gettext_lazy("Pooling region"), regex=r"^[0-9]{6}$", required=False, widget=forms.Select
    )
    method = forms.ChoiceField(label=gettext_lazy("Method"), required=False)
    relationship = forms.ChoiceField(label=gettext_lazy("Relationship"), required=False)
    flags = forms.MultipleChoiceField(
        label=gettext_lazy("Needs a closer look"),
        required=False,
        choices=[(flag, FLAG_LABELS[flag]) for flag in QUEUE_FLAGS],
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["method"].choices = [("", _("Any")), *[(m, BindingMethod(m).label) for m in QUEUE_METHODS]]
        self.fields["relationship"].choices = [("", _("Any")), *Relation.choices]
        self.fields["region"].widget.choices = [("", _("Any"))]

    def filters(self) -> ReviewFilters:
        """The valid filters (an invalid value filters nothing and shows its error)."""
        if not self.is_bound or not self.is_valid():
            return ReviewFilters()
        data = self.cleaned_data
        return ReviewFilters(
            region=data["region"] or "",
            method=data["method"] or "",
            relationship=data["relationship"] or "",
            flags=tuple(data["flags"]),
        )

    def show_counts(self, counts: QueueCounts) -> None:
        """Every choice says how many applications wait with it (over the whole queue)."""
        regions = [(code, f"{name} ({code}) · {count}") for code, name, count in counts.regions]
        chosen = self.data.get("region") if self.is_bound else ""
        if chosen and chosen not in {code for code, _label in regions} and re.fullmatch(r"[0-9]{6}", chosen):
            regions.append((chosen, f"{chosen} · 0"))
        self.fields["region"].widget.choices = [("", _("Any")), *regions]
        self.fields["method"].choices = [
            ("", _("Any")),
            *[(m, f"{BindingMethod(m).label} · {counts.methods.get(m, 0)}") for m in QUEUE_METHODS],
        ]
        self.fields["relationship"].choices = [
            ("", _("Any")),
            *[(r, f"{label} · {counts.relationships.get(r, 0)}") for r, label in Relation.choices],
        ]
        self.fields["flags"].choices = [
            (flag, f"{FLAG_LABELS[flag]} · {counts.flags.get(flag, 0)}") for flag in QUEUE_FLAGS
        ]


class _ReasonFields(forms.Form):
    """A canned reason (the list is edited in the admin) and a note; the citizen sees both."""

    reason = forms.TypedChoiceField(label=gettext_lazy("Reason"), coerce=int, required=False, empty_value=None)
    note = forms.CharField(
        label=gettext_lazy("Note for the citizen (optional)"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    language = forms.ChoiceField(
        label=gettext_lazy("Language of the reason"), choices=LANGUAGE_CHOICES, initial="zh-hans"
    )

    def __init__(self, *args, reasons, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].choices = [("", _("Choose a reason…")), *[(r.pk, _reason_label(r)) for r in reasons]]

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("reason") and not (cleaned.get("note") or "").strip():
            self.add_error("reason", _("Choose a reason or write one."))
        return cleaned


class SendBackForm(_ReasonFields):
    """Which documents the citizen must upload again, and why."""

    documents = forms.TypedMultipleChoiceField(
        label=gettext_lazy("Documents to upload again"), coerce=int, widget=forms.CheckboxSelectMultiple
    )
    field_order = ["documents", "reason", "note", "language"]

    def __init__(self, *args, documents: list[BindingDocument], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["documents"].choices = [(d.pk, DocumentKind(d.kind).label) for d in documents]


class RefuseForm(_ReasonFields):
    """The final rejection of the application; the owner sees why."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].widget.attrs["accesskey"] = "r"


def _reason_label(reason) -> str:
    """A canned reason in the reviewer's language (the stored text follows the language chosen in the form)."""
    return reason.text_for(get_language() or "zh-hans")


# --- The review screen's view of a document -----------------------------------------------------


class ReviewedDocument(Protocol):
    """What a review screen reads of a stored document: a binding's or a family card link's (cards app)."""

    pk: int
    pages: int
    precheck: dict


@dataclass
class DocumentView:
    """A document as the review screen shows it: its pages, and its pre-check report in plain parts."""

    document: ReviewedDocument
    pages: list[dict] = field(default_factory=list)
    text_html: SafeString = field(default_factory=SafeString)
    checks: list[dict] = field(default_factory=list)
    readability: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failed_checks(self) -> int:
        return sum(1 for check in self.checks if not check["ok"])


def marked_text(text: str, highlights) -> SafeString:
    """The recognised text, escaped, with each highlight wrapped in ``<mark>`` (R24 pre-check evidence).

    A highlight is a string (each occurrence is marked), a ``[start, end]`` pair, or an object with
    ``start``/``end`` or ``text``; overlapping ones merge.
    """
    text = text or ""
    spans: list[tuple[int, int]] = []
    needles: list[str] = []
    for item in highlights or ():
        if isinstance(item, str):
            needles.append(item)
        elif isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(i, int) for i in item):
            spans.append((item[0], item[1]))
        elif isinstance(item, dict):
            start, end = item.get("start"), item.get("end")
            if isinstance(start, int) and isinstance(end, int):
                spans.append((start, end))
            elif isinstance(item.get("text"), str):
                needles.append(item["text"])
    for needle in needles:
        if not needle:
            continue
        position = text.find(needle)
        while position != -1:
            spans.append((position, position + len(needle)))
            position = text.find(needle, position + len(needle))
    merged: list[list[int]] = []
    for start, end in sorted((max(0, s), min(len(text), e)) for s, e in spans):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts, cursor = [], 0
    for start, end in merged:
        parts.append(escape(text[cursor:start]))
        parts.append(f"<mark>{escape(text[start:end])}</mark>")
        cursor = end
    parts.append(escape(text[cursor:]))
    return mark_safe("".join(parts))  # noqa: S308 - every part is escaped above


def document_view(document: ReviewedDocument, *, page_url_name: str) -> DocumentView:
    """A stored document's pages (their private image URLs, named by ``page_url_name``) and its pre-check report
    in plain parts, as both review screens show them (bindings here, family cards in cards/staff_views.py)."""
    report = document.precheck if isinstance(document.precheck, dict) else {}
    checks = [
        {
            "code": str(check.get("code", "")),
            "ok": bool(check.get("ok")),
            "message": str(check.get("message", "")),
            "evidence": "" if check.get("evidence") is None else str(check.get("evidence")),
        }
        for check in report.get("checks") or ()
        if isinstance(check, dict)
    ]
    return DocumentView(
        document=document,
        pages=[
            {"number": number, "url": reverse(page_url_name, args=[document.pk, number])}
            for number in range(1, max(1, document.pages) + 1)
        ],
        text_html=marked_text(str(report.get("text") or ""), report.get("highlights")),
        checks=checks,
        readability=readability_lines(report.get("readability")),
    )


# --- Pages ---------------------------------------------------------------------------------------


def _session_filters(request: HttpRequest) -> ReviewFilters:
    return ReviewFilters.from_dict(request.session.get(FILTERS_SESSION_KEY))


def _queue_url(filters: ReviewFilters) -> str:
    query = urlencode({k: v for k, v in filters.as_dict().items() if v}, doseq=True)
    return reverse("staff_review_queue") + (f"?{query}" if query else "")


@require_GET
@role_required(*REVIEW_ROLES)
def review_queue_view(request: HttpRequest) -> HttpResponse:
    """审核队列: what waits, oldest first, with filters and their counts, and "take next"."""
    form = QueueFilterForm(request.GET if any(k in request.GET for k in QueueFilterForm.base_fields) else None)
    filters = form.filters()
    counts = review_queue_counts(filters=filters, reviewer=request.user)
    form.show_counts(counts)
    page = Paginator(review_queue(filters=filters), QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "staff/review_queue.html",
        {
            "form": form,
            "filters": filters,
            "counts": counts,
            "page": page,
            "query": query.urlencode(),
            "idle_minutes": claim_idle_minutes(),
            "is_admin": is_review_admin(request.user),
        },
    )


def _open_next(request: HttpRequest, filters: ReviewFilters, *, skip_ids=()) -> HttpResponse:
    binding = review_claim_next(reviewer=request.user, filters=filters, skip_ids=skip_ids)
    if binding is None:
        messages.info(request, _("Nothing left to review with these filters."))
        return redirect(_queue_url(filters))
    return redirect("staff_review_detail", pk=binding.pk)


@require_POST
@role_required(*REVIEW_ROLES)
def review_take_next(request: HttpRequest) -> HttpResponse:
    """Take the oldest waiting application that matches the filters; it is mine until I decide or release it."""
    filters = QueueFilterForm(request.POST).filters()
    request.session[FILTERS_SESSION_KEY] = filters.as_dict()
    return _open_next(request, filters)


def _refused(request: HttpRequest, error: ReviewRefused, pk: int) -> HttpResponse:
    """A refusal: the message, and back to the queue (not mine any more) or to the application."""
    if error.status == 404:
        raise Http404
    messages.error(request, error.title)
    if error.status == 403 or error.code == "not_under_review":
        return redirect(_queue_url(_session_filters(request)))
    return redirect("staff_review_detail", pk=pk)


def _render_review(
    request: HttpRequest,
    binding: Binding,
    *,
    send_back_form: SendBackForm | None = None,
    refuse_form: RefuseForm | None = None,
    status: int = 200,
) -> HttpResponse:
    documents = review_documents(binding=binding)
    reasons = review_reasons()
    waiting = review_is_waiting(binding_id=binding.pk)
    deciding = (
        binding.state == BindingState.UNDER_REVIEW
        and binding.reviewed_at is None
        and binding.method != BindingMethod.COUNTER
    )
    context = {
        "binding": binding,
        "documents": [document_view(d, page_url_name="staff_review_page_image") for d in documents.live],
        "replaced": documents.replaced,
        "awaiting_reupload": documents.awaiting_reupload,
        "events": [
            {
                "when": event.created_at,
                "who": event.actor_label,
                "from": BindingState(event.from_state).label if event.from_state else "",
                "to": BindingState(event.to_state).label,
                "why": event.reason,
            }
            for event in review_events(binding=binding)
        ],
        "ages": _ages(binding),
        "doubts": [r for r in binding.reasons if r.get("rule") == "R16"],
        "other_reasons": [r for r in binding.reasons if r.get("rule") != "R16"],
        "can_decide": deciding,
        "can_approve": deciding and waiting,
        "can_send_back": deciding and bool(documents.decidable),
        "send_back_form": send_back_form
        or SendBackForm(documents=documents.decidable, reasons=reasons, auto_id="send-back-%s"),
        "refuse_form": refuse_form or RefuseForm(reasons=reasons, auto_id="refuse-%s"),
        "holder_is_me": binding.claimed_by_id == request.user.pk,
        "idle_minutes": claim_idle_minutes(),
    }
    return render(request, "staff/review_detail.html", context, status=status)


def _ages(binding: Binding) -> dict:
    """Ages in full years on the decision date (R16, R23), to weigh against the documents."""
    on_date = binding.decision_date or timezone.localdate()
    return {
        "owner": age_on(binding.owner.birth_date, on_date),
        "relative": age_on(binding.relative.birth_date, on_date) if binding.relative_id else None,
    }


@require_GET
@role_required(*REVIEW_ROLES)
def review_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """审核: the claimed data with full ID numbers (R4), doubts, documents side by side, pre-check, history."""
    try:
        binding = review_open(binding_id=pk, reviewer=request.user, request=request)
    except ReviewRefused as error:
        return _refused(request, error, pk)
    return _render_review(request, binding)


def _next_after_decision(request: HttpRequest, message: str) -> HttpResponse:
    messages.success(request, message)
    return _open_next(request, _session_filters(request))


@require_POST
@role_required(*REVIEW_ROLES)
def review_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve: every document is accepted and the application goes on (R23 age branch); then the next one."""
    try:
        binding = review_approve(binding_id=pk, reviewer=request.user, request=request)
    except ReviewRefused as error:
        return _refused(request, error, pk)
    return _next_after_decision(
        request, _("Application %(number)d approved; it goes on to the age check (R23).") % {"number": binding.pk}
    )


def _form_errors(form: forms.Form, error: ReviewRefused) -> None:
    named = [e for e in error.errors if e.field in form.fields]
    for field_error in named:
        form.add_error(field_error.field, field_error.message)
    if not named:
        form.add_error(None, error.title)


def _rerender(request: HttpRequest, pk: int, **forms_) -> HttpResponse:
    """A form with errors: the review screen again (an opening like any other, audited)."""
    try:
        binding = review_open(binding_id=pk, reviewer=request.user, request=request)
    except ReviewRefused as error:
        return _refused(request, error, pk)
    return _render_review(request, binding, status=400, **forms_)


@require_POST
@role_required(*REVIEW_ROLES)
def review_send_back_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Send documents back: the citizen sees the reason and uploads them again; the application waits for that."""
    binding = review_binding_get(binding_id=pk)
    form = SendBackForm(
        request.POST,
        documents=review_documents(binding=binding).decidable,
        reasons=review_reasons(),
        auto_id="send-back-%s",
    )
    if form.is_valid():
        data = form.cleaned_data
        try:
            review_send_back(
                binding_id=pk,
                reviewer=request.user,
                document_ids=data["documents"],
                reason_id=data["reason"],
                free_text=data["note"],
                language=data["language"],
                request=request,
            )
        except ReviewRefused as error:
            if not error.errors:
                return _refused(request, error, pk)
            _form_errors(form, error)
        else:
            return _next_after_decision(
                request,
                _("Documents of application %(number)d sent back; the owner is asked to upload them again.")
                % {"number": pk},
            )
    return _rerender(request, pk, send_back_form=form)


@require_POST
@role_required(*REVIEW_ROLES)
def review_refuse_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Refuse the application for good, with the reason the owner sees (R24, R25)."""
    form = RefuseForm(request.POST, reasons=review_reasons(), auto_id="refuse-%s")
    if form.is_valid():
        data = form.cleaned_data
        try:
            review_refuse(
                binding_id=pk,
                reviewer=request.user,
                reason_id=data["reason"],
                free_text=data["note"],
                language=data["language"],
                request=request,
            )
        except ReviewRefused as error:
            if not error.errors:
                return _refused(request, error, pk)
            _form_errors(form, error)
        else:
            return _next_after_decision(
                request, _("Application %(number)d refused; the owner is told why.") % {"number": pk}
            )
    return _rerender(request, pk, refuse_form=form)


@require_POST
@role_required(*REVIEW_ROLES)
def review_release_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Put the application back in the queue; with ``skip``, take the next one instead of it."""
    review_release(binding_id=pk, reviewer=request.user)
    if request.POST.get("skip"):
        return _open_next(request, _session_filters(request), skip_ids=[pk])
    messages.info(request, _("Application %(number)d is back in the queue.") % {"number": pk})
    return redirect(_queue_url(_session_filters(request)))


@require_GET
@role_required(*REVIEW_ROLES)
def review_page_image(request: HttpRequest, document_id: int, page: int) -> HttpResponse:
    """One page of a document as PNG (``page`` counts from 1), for the claim holder or an admin; audited (R51)."""
    binding = review_document_binding(document_id=document_id)
    if binding is None or not review_may_open(binding=binding, user=request.user):
        raise Http404
    document = family_documents.document_open_for(user=request.user, document_id=document_id, request=request)
    if not 1 <= page <= max(1, document.pages):
        raise Http404
    return document_page_response(document=document, page=page, filename=f"document-{document.pk}-page-{page}.png")

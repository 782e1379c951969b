"""The reviewers' workbench (R24): claiming applications from the queue, and the reviewer's decisions.

A reviewer takes the oldest waiting application (a claim), looks at it, and approves it, sends documents
back for the citizen to upload again, or refuses it. Two reviewers never hold the same application: the
claim takes the row with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL) and sets it with a
compare-and-set ``UPDATE`` that holds on any database. A claim lapses after ``REVIEW_CLAIM_IDLE_MINUTES``
without activity; ``review_release_idle`` (beat) clears lapsed claims. Only the reviewer holding the
claim, or an admin, decides; every claim, release, opening and decision writes an audit row (R51).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.errors import DomainError, FieldError
from accounts.models import User
from accounts.services import audit_record, notification_send
from family.models import (
    Binding,
    BindingDocument,
    BindingMethod,
    BindingState,
    DocumentKind,
    DocumentStatus,
    ReviewReason,
)
from family.selectors_review import (
    REUPLOADABLE_KINDS,
    ReviewFilters,
    claim_cutoff,
    claim_idle_minutes,
    is_review_admin,
    review_is_waiting,
    review_may_open,
    review_waiting,
)
from family.services.bindings import binding_review_decide

__all__ = [
    "ReviewRefused",
    "review_approve",
    "review_claim_next",
    "review_open",
    "review_refuse",
    "review_release",
    "review_release_idle",
    "review_send_back",
]

# Where the reason is stored: BindingDocument.rejection_reason, Binding.end_reason.
SEND_BACK_TEXT_MAX = 300
REFUSAL_TEXT_MAX = 200
# A claim that lost a race (SQLite has no row locks) is retried on the next candidate this many times.
CLAIM_ATTEMPTS = 5


class ReviewRefused(DomainError):
    """The workbench refuses: not a reviewer, not the claim holder, not waiting, or a missing reason."""


def _require_reviewer(user: User) -> None:
    if user.role not in (User.Role.REVIEWER, User.Role.ADMIN) and not user.is_superuser:
        raise ReviewRefused(title=_("Only reviewers and administrators review applications."), status=403)


def _parties(binding: Binding) -> dict:
    """For the audit row: whose application it is (the audit log finds events by person, see accounts.staff_views)."""
    return {"owner": binding.owner_id, "relative": binding.relative_id}


def review_claim_next(
    *, reviewer: User, filters: ReviewFilters | None = None, skip_ids: Iterable[int] = ()
) -> Binding | None:
    """Take the oldest waiting application that matches ``filters`` for ``reviewer``; None when nothing is left.

    An application the reviewer already holds comes first (a reload does not lose it). A reviewer holds one
    application at a time: any other claim of theirs goes back to the queue. ``skip_ids`` are left out
    (the one the reviewer just skipped).
    """
    _require_reviewer(reviewer)
    filters = filters or ReviewFilters()
    skipped = set(skip_ids)
    for _attempt in range(CLAIM_ATTEMPTS):
        now = timezone.now()
        free = Q(claimed_by__isnull=True) | Q(claimed_at__lt=claim_cutoff(now)) | Q(claimed_by=reviewer)
        with transaction.atomic():
            candidate = (
                review_waiting()
                .filter(filters.as_q() & free)
                .exclude(pk__in=skipped)
                .order_by(
                    Case(When(claimed_by=reviewer, then=Value(0)), default=Value(1), output_field=IntegerField()),
                    "created_at",
                    "pk",
                )
                # PostgreSQL: rows another reviewer is claiming right now are passed over, not waited for.
                # SQLite ignores it (no row locks); the compare-and-set below still holds there.
                .select_for_update(skip_locked=True)
                .first()
            )
            if candidate is None:
                return None
            taken = Binding.objects.filter(Q(pk=candidate.pk) & free).update(claimed_by=reviewer, claimed_at=now)
            if not taken:
                skipped.add(candidate.pk)  # another reviewer was quicker
                continue
            _release_others(reviewer=reviewer, keep=candidate.pk)
            binding = Binding.objects.select_related("owner", "relative").get(pk=candidate.pk)
            audit_record(actor=reviewer, action="binding.review_claimed", target=binding, detail=_parties(binding))
            return binding
    return None


def _release_others(*, reviewer: User, keep: int) -> None:
    """One application per reviewer. Rows another reviewer is claiming at this moment are theirs already."""
    others = list(
        Binding.objects.select_for_update(skip_locked=True)
        .filter(claimed_by=reviewer)
        .exclude(pk=keep)
        .values_list("pk", flat=True)
    )
    if others:
        Binding.objects.filter(pk__in=others, claimed_by=reviewer).update(claimed_by=None, claimed_at=None)


def review_release(*, binding_id: int, reviewer: User) -> bool:
    """Put an application the reviewer holds back in the queue (an admin may release anyone's claim)."""
    _require_reviewer(reviewer)
    with transaction.atomic():
        claimed = Binding.objects.filter(pk=binding_id, claimed_by__isnull=False)
        if not is_review_admin(reviewer):
            claimed = claimed.filter(claimed_by=reviewer)
        released = claimed.update(claimed_by=None, claimed_at=None)
        if released:
            binding = Binding.objects.get(pk=binding_id)
            audit_record(actor=reviewer, action="binding.review_released", target=binding, detail=_parties(binding))
    return bool(released)


def review_release_idle(*, older_than_minutes: int | None = None) -> int:
    """Beat: claims without activity for ``older_than_minutes`` (default the setting) go back to the queue."""
    minutes = claim_idle_minutes() if older_than_minutes is None else older_than_minutes
    cutoff = timezone.now() - dt.timedelta(minutes=minutes)
    return Binding.objects.filter(claimed_by__isnull=False, claimed_at__lt=cutoff).update(
        claimed_by=None, claimed_at=None
    )


def review_open(*, binding_id: int, reviewer: User, request: HttpRequest | None = None) -> Binding:
    """The review screen opens: only for the claim holder or an admin; audited, since it shows full ID numbers (R4).

    Opening keeps the holder's claim alive (it counts as activity).
    """
    _require_reviewer(reviewer)
    binding = Binding.objects.select_related("owner", "relative", "region", "claimed_by").filter(pk=binding_id).first()
    if binding is None:
        raise ReviewRefused(title=_("There is no such application."), status=404, code="not_found")
    if not review_may_open(binding=binding, user=reviewer):
        raise ReviewRefused(
            title=_("Another reviewer has taken this application, or it is no longer yours. Take the next one."),
            status=403,
            code="not_claimed",
        )
    if binding.claimed_by_id == reviewer.pk:
        binding.claimed_at = timezone.now()
        Binding.objects.filter(pk=binding.pk, claimed_by=reviewer).update(claimed_at=binding.claimed_at)
    audit_record(
        actor=reviewer, action="binding.reviewed_opened", target=binding, request=request, detail=_parties(binding)
    )
    return binding


def _lock_for_decision(*, binding_id: int, reviewer: User) -> Binding:
    """Lock the application; it must be waiting for review and held by this reviewer (or the reviewer an admin)."""
    _require_reviewer(reviewer)
    binding = Binding.objects.select_for_update().filter(pk=binding_id).first()
    if binding is None:
        raise ReviewRefused(title=_("There is no such application."), status=404, code="not_found")
    if (
        binding.state != BindingState.UNDER_REVIEW
        or binding.reviewed_at is not None
        or binding.method == BindingMethod.COUNTER
    ):
        raise ReviewRefused(
            title=_("This application is not waiting for review any more."), status=409, code="not_under_review"
        )
    if not is_review_admin(reviewer) and binding.claimed_by_id != reviewer.pk:
        raise ReviewRefused(
            title=_("You no longer hold this application (another reviewer took it, or it was idle too long)."),
            status=403,
            code="not_claimed",
        )
    return binding


def _reason_text(*, reason_id: int | None, free_text: str, language: str | None, limit: int) -> str:
    """The words the citizen sees: the canned reason in the chosen language (Chinese by default), then the note."""
    reason = None
    if reason_id is not None:
        reason = ReviewReason.objects.filter(pk=reason_id, active=True).first()
        if reason is None:
            raise ReviewRefused(
                title=_("Choose one of the offered reasons."),
                errors=[FieldError("reason", _("Choose one of the offered reasons."))],
            )
    note = " ".join((free_text or "").split())
    canned = reason.text_for(language or settings.LANGUAGE_CODE) if reason is not None else ""
    text = " ".join(part for part in (canned, note) if part)
    if not text:
        raise ReviewRefused(
            title=_("Choose a reason or write one: the citizen sees it."),
            errors=[FieldError("reason", _("Choose a reason or write one."))],
            code="reason_required",
        )
    if len(text) > limit:
        raise ReviewRefused(
            title=_("The reason is too long: at most %(limit)d characters with the chosen reason.") % {"limit": limit},
            errors=[FieldError("note", _("Shorten the note by %(count)d characters.") % {"count": len(text) - limit})],
            code="reason_too_long",
        )
    return text


def _release(binding: Binding) -> None:
    binding.claimed_by = None
    binding.claimed_at = None
    binding.save(update_fields=["claimed_by", "claimed_at", "updated_at"])


def review_send_back(
    *,
    binding_id: int,
    reviewer: User,
    document_ids: Iterable[int],
    reason_id: int | None,
    free_text: str = "",
    language: str | None = None,
    request: HttpRequest | None = None,
) -> Binding:
    """R24: reject the chosen documents with a reason so the citizen uploads them again; the application waits.

    The binding stays ``under_review``; it leaves the queue until every rejected document is replaced, then
    comes back (oldest first, so near the front). The owner is told; the claim is released.
    """
    chosen = sorted({int(pk) for pk in document_ids})
    if not chosen:
        raise ReviewRefused(
            title=_("Choose the documents to send back."),
            errors=[FieldError("documents", _("Choose at least one document."))],
            code="documents_required",
        )
    text = _reason_text(reason_id=reason_id, free_text=free_text, language=language, limit=SEND_BACK_TEXT_MAX)
    with transaction.atomic():
        binding = _lock_for_decision(binding_id=binding_id, reviewer=reviewer)
        documents = list(BindingDocument.objects.filter(binding=binding, pk__in=chosen).order_by("kind"))
        if len(documents) != len(chosen) or any(
            d.status != DocumentStatus.PENDING or d.kind not in REUPLOADABLE_KINDS for d in documents
        ):
            # The letter is signed in the portal, not uploaded: a wrong letter is a reason to refuse.
            raise ReviewRefused(
                title=_("Only uploaded documents waiting for review can be sent back."),
                errors=[FieldError("documents", _("Choose documents of this application that wait for review."))],
                code="documents_invalid",
            )
        now = timezone.now()
        BindingDocument.objects.filter(pk__in=chosen).update(
            status=DocumentStatus.REJECTED, rejection_reason=text, decided_by=reviewer, decided_at=now
        )
        _release(binding)
        binding = Binding.objects.select_related("owner", "relative").get(pk=binding.pk)
        # The message is in the language the reviewer chose for the reason, so it reads as one.
        with translation.override(language or settings.LANGUAGE_CODE):
            kinds = "、".join(str(DocumentKind(d.kind).label) for d in documents)
            notification_send(
                person=binding.owner,
                kind="binding.documents_rejected",
                title=_("Please upload a document of your family-sharing application again"),
                body=f"{kinds}: {text}",
                link=reverse("binding_detail", args=[binding.pk]),
                dedup_key=f"binding:{binding.pk}:sent_back:{'-'.join(str(pk) for pk in chosen)}",
            )
        audit_record(
            actor=reviewer,
            action="binding.review_sent_back",
            target=binding,
            request=request,
            detail={**_parties(binding), "documents": chosen, "reason_id": reason_id, "reason": text},
        )
    return binding


def review_approve(*, binding_id: int, reviewer: User, request: HttpRequest | None = None) -> Binding:
    """R24: the reviewer accepts every document and the application; the pipeline goes on to the age branch (R23)."""
    with transaction.atomic():
        binding = _lock_for_decision(binding_id=binding_id, reviewer=reviewer)
        if not review_is_waiting(binding_id=binding.pk):
            raise ReviewRefused(
                title=_("A document sent back has not been uploaded again yet: wait for the citizen."),
                status=409,
                code="awaiting_reupload",
            )
        BindingDocument.objects.filter(binding=binding, status=DocumentStatus.PENDING).update(
            status=DocumentStatus.APPROVED, decided_by=reviewer, decided_at=timezone.now()
        )
        binding = binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)
        _release(binding)
        audit_record(
            actor=reviewer, action="binding.review_approved", target=binding, request=request, detail=_parties(binding)
        )
    return binding


def review_refuse(
    *,
    binding_id: int,
    reviewer: User,
    reason_id: int | None,
    free_text: str = "",
    language: str | None = None,
    request: HttpRequest | None = None,
) -> Binding:
    """R24, R25: the final rejection of the application, with the reason the owner sees."""
    text = _reason_text(reason_id=reason_id, free_text=free_text, language=language, limit=REFUSAL_TEXT_MAX)
    with transaction.atomic():
        binding = _lock_for_decision(binding_id=binding_id, reviewer=reviewer)
        with translation.override(language or settings.LANGUAGE_CODE):  # the owner's message, as the reason
            binding = binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=False, reason=text)
        _release(binding)
        audit_record(
            actor=reviewer,
            action="binding.review_refused",
            target=binding,
            request=request,
            detail={**_parties(binding), "reason_id": reason_id, "reason": text},
        )
    return binding

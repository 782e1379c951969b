"""Reads of the reviewers' workbench (R24): the review queue with its filters and counts, the review screen.

The queue is every online application a reviewer must decide: ``under_review``, not yet decided, not a
counter binding (R22: the clerk saw the originals), and not waiting for the citizen to upload a document
again. Oldest first: first come, first reviewed. Every read here costs a fixed number of queries,
however long the queue is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import BooleanField, Count, Exists, Func, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from family.models import (
    Binding,
    BindingDocument,
    BindingEvent,
    BindingMethod,
    BindingState,
    DocumentKind,
    DocumentStatus,
    PrecheckStatus,
    Relation,
    ReviewReason,
)

# Minutes after which a reviewer's claim on an application lapses and another reviewer may take it.
DEFAULT_CLAIM_IDLE_MINUTES = 15
# Documents the citizen can replace from the status page (the letter is generated and signed, not uploaded).
REUPLOADABLE_KINDS = tuple(kind for kind in DocumentKind.values if kind != DocumentKind.COMMITMENT_LETTER)
QUEUE_FLAGS = ("doubt", "mismatch", "unreadable")


def claim_idle_minutes() -> int:
    """How long a claim holds without activity (setting ``REVIEW_CLAIM_IDLE_MINUTES``)."""
    return int(getattr(settings, "REVIEW_CLAIM_IDLE_MINUTES", DEFAULT_CLAIM_IDLE_MINUTES))


def claim_cutoff(now: dt.datetime | None = None) -> dt.datetime:
    """Claims taken (or last touched) before this moment have lapsed."""
    return (now or timezone.now()) - dt.timedelta(minutes=claim_idle_minutes())


def is_review_admin(user: User) -> bool:
    """Admins may open and decide any application, whoever holds it."""
    return user.role == User.Role.ADMIN or user.is_superuser


class PrecheckHasFailedCheck(Func):
    """True when a pre-check report holds a check with ``"ok": false`` (R24: the recognised text contradicts the claim).

    The report is ``{"checks": [{"code", "ok", "message", "evidence"}, ...], ...}``; each database asks its
    own JSON functions, so the question stays inside the one query.
    """

    arity = 1
    output_field = BooleanField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="jsonb_path_exists(%(expressions)s, '$.checks[*] ? (@.ok == false)')",
            **extra_context,
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template=(
                "EXISTS (SELECT 1 FROM json_each(%(expressions)s, '$.checks') AS checks "
                "WHERE json_extract(checks.value, '$.ok') = 0)"
            ),
            **extra_context,
        )


def _live_documents() -> QuerySet[BindingDocument]:
    """The documents of the binding of the outer query that are not rejected (one live per kind)."""
    return BindingDocument.objects.filter(binding_id=OuterRef("pk")).exclude(status=DocumentStatus.REJECTED)


def awaiting_reupload() -> Exists:
    """The binding has a rejected document the citizen has not replaced yet (R24: it is the citizen's turn)."""
    replaced = BindingDocument.objects.filter(binding_id=OuterRef("binding_id"), kind=OuterRef("kind")).exclude(
        status=DocumentStatus.REJECTED
    )
    return Exists(
        BindingDocument.objects.filter(
            binding_id=OuterRef("pk"), status=DocumentStatus.REJECTED, kind__in=REUPLOADABLE_KINDS
        ).filter(~Exists(replaced))
    )


def _flag_expressions() -> dict[str, Exists]:
    return {
        "has_mismatch": Exists(_live_documents().filter(PrecheckHasFailedCheck("precheck"))),
        "is_unreadable": Exists(_live_documents().filter(precheck_status=PrecheckStatus.UNREADABLE)),
    }


# R24: online applications that passed eligibility and that no reviewer has decided yet.
WAITING_FOR_REVIEW = Q(state=BindingState.UNDER_REVIEW, reviewed_at__isnull=True) & ~Q(method=BindingMethod.COUNTER)


def review_waiting(*, annotate: bool = False) -> QuerySet[Binding]:
    """Applications waiting for a reviewer, with the pre-check flags (annotated to read, or aliased to filter)."""
    flags = _flag_expressions()
    queryset = Binding.objects.filter(WAITING_FOR_REVIEW).filter(~awaiting_reupload())
    return queryset.annotate(**flags) if annotate else queryset.alias(**flags)


@dataclass(frozen=True)
class ReviewFilters:
    """What a reviewer narrows the queue to; empty values mean "any"."""

    region: str = ""
    method: str = ""
    relationship: str = ""
    flags: tuple[str, ...] = ()

    def as_q(self) -> Q:
        """The filters as a condition on ``review_waiting()`` (which provides the flag aliases)."""
        condition = Q()
        if self.region:
            condition &= Q(region_id=self.region)
        if self.method:
            condition &= Q(method=self.method)
        if self.relationship:
            condition &= Q(relationship=self.relationship)
        if "doubt" in self.flags:
            condition &= Q(needs_review=True)  # R16
        if "mismatch" in self.flags:
            condition &= Q(has_mismatch=True)
        if "unreadable" in self.flags:
            condition &= Q(is_unreadable=True)
        return condition

    def as_dict(self) -> dict:
        """For the session and the hidden fields of "take next"."""
        return {
            "region": self.region,
            "method": self.method,
            "relationship": self.relationship,
            "flags": list(self.flags),
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> ReviewFilters:
        data = data or {}
        return cls(
            region=str(data.get("region") or ""),
            method=str(data.get("method") or ""),
            relationship=str(data.get("relationship") or ""),
            flags=tuple(flag for flag in data.get("flags") or () if flag in QUEUE_FLAGS),
        )


@dataclass
class QueueCounts:
    """How many applications wait, in all and for each filter value (over the whole queue)."""

    total: int = 0
    matching: int = 0
    claimable: int = 0
    mine: int = 0
    flags: dict[str, int] = field(default_factory=dict)
    methods: dict[str, int] = field(default_factory=dict)
    relationships: dict[str, int] = field(default_factory=dict)
    regions: list[tuple[str, str, int]] = field(default_factory=list)  # (code, name, count)


QUEUE_METHODS = (BindingMethod.ONLINE_ID, BindingMethod.NEWBORN)


def review_queue_counts(*, filters: ReviewFilters, reviewer: User) -> QueueCounts:
    """Counts per filter value, in two queries whatever the size of the queue or the number of regions."""
    cutoff = claim_cutoff()
    free = Q(claimed_by__isnull=True) | Q(claimed_at__lt=cutoff) | Q(claimed_by=reviewer)
    aggregates = {
        "total": Count("pk"),
        "matching": Count("pk", filter=filters.as_q()),
        "claimable": Count("pk", filter=filters.as_q() & free),
        "mine": Count("pk", filter=Q(claimed_by=reviewer, claimed_at__gte=cutoff)),
        "flag_doubt": Count("pk", filter=Q(needs_review=True)),
        "flag_mismatch": Count("pk", filter=Q(has_mismatch=True)),
        "flag_unreadable": Count("pk", filter=Q(is_unreadable=True)),
    }
    for method in QUEUE_METHODS:
        aggregates[f"method_{method}"] = Count("pk", filter=Q(method=method))
    for relation in Relation.values:
        aggregates[f"relationship_{relation}"] = Count("pk", filter=Q(relationship=relation))
    # Query 1: every count of a fixed set of values.
    row = review_waiting().aggregate(**aggregates)
    # Query 2: regions with applications waiting (regions are data: their number is not fixed).
    regions = [
        (item["region_id"], item["region__name"], item["count"])
        for item in review_waiting()
        .order_by()
        .values("region_id", "region__name")
        .annotate(count=Count("pk"))
        .order_by("region_id")
    ]
    return QueueCounts(
        total=row["total"],
        matching=row["matching"],
        claimable=row["claimable"],
        mine=row["mine"],
        flags={flag: row[f"flag_{flag}"] for flag in QUEUE_FLAGS},
        methods={method: row[f"method_{method}"] for method in QUEUE_METHODS},
        relationships={relation: row[f"relationship_{relation}"] for relation in Relation.values},
        regions=regions,
    )


def review_queue(*, filters: ReviewFilters) -> QuerySet[Binding]:
    """The queue as filtered, oldest first, with both persons, the region, the claim holder and the flags.

    One query for any slice of it (the persons' names are shown masked, R4).
    """
    return (
        review_waiting(annotate=True)
        .filter(filters.as_q())
        .select_related("owner", "relative", "region", "claimed_by")
        .order_by("created_at", "pk")
    )


def review_reasons() -> list[ReviewReason]:
    """The canned reasons offered to reviewers, in their order."""
    return list(ReviewReason.objects.filter(active=True).order_by("position", "pk"))


def review_binding_get(*, binding_id: int) -> Binding:
    """The application with what the review screen shows of it; 404 when there is none."""
    binding = (
        Binding.objects.select_related("owner", "relative", "region", "claimed_by", "reviewed_by")
        .filter(pk=binding_id)
        .first()
    )
    if binding is None:
        raise Http404
    return binding


def review_may_open(*, binding: Binding, user: User) -> bool:
    """The review screen shows full ID numbers (R4's exception): to the reviewer holding the claim, or an admin."""
    if is_review_admin(user):
        return True
    return user.role == User.Role.REVIEWER and binding.claimed_by_id == user.pk


def review_is_waiting(*, binding_id: int) -> bool:
    """Whether a reviewer must decide this application now (and the citizen is not re-uploading a document)."""
    return review_waiting().filter(pk=binding_id).exists()


@dataclass
class ReviewDocuments:
    """The documents of an application as a reviewer sees them."""

    live: list[BindingDocument]  # the current one of each kind, in kind order
    replaced: list[BindingDocument]  # rejected earlier (what was sent back, and why), newest first

    @property
    def awaiting_reupload(self) -> list[BindingDocument]:
        """Rejected documents the citizen has not replaced yet."""
        return [d for d in self.live if d.status == DocumentStatus.REJECTED]

    @property
    def decidable(self) -> list[BindingDocument]:
        """Documents a reviewer may send back: waiting for review and replaceable by the citizen."""
        return [d for d in self.live if d.status == DocumentStatus.PENDING and d.kind in REUPLOADABLE_KINDS]


def review_documents(*, binding: Binding) -> ReviewDocuments:
    """Every document of the application, current and replaced, with who decided (one query)."""
    live: dict[str, BindingDocument] = {}
    replaced: list[BindingDocument] = []
    for document in (
        BindingDocument.objects.filter(binding=binding)
        .select_related("decided_by")
        .order_by("kind", "-created_at", "-pk")
    ):
        if document.kind not in live:
            live[document.kind] = document
        else:
            replaced.append(document)
    replaced.sort(key=lambda d: d.decided_at or d.created_at, reverse=True)
    return ReviewDocuments(live=list(live.values()), replaced=replaced)


def review_events(*, binding: Binding) -> list[BindingEvent]:
    """R25: the application's history, oldest first, with who acted (one query)."""
    return list(BindingEvent.objects.filter(binding=binding).select_related("actor").order_by("created_at", "pk"))


def review_document_binding(*, document_id: int) -> Binding | None:
    """The application a document belongs to (for the claim check before the audited view), or None."""
    return Binding.objects.filter(documents__pk=document_id).first()

"""Reads of payments (R33–R35): a payment as its client may see it; the sharing records of a person."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, Count, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncMonth
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.errors import DomainError
from accounts.masking import mask_id_number, mask_name
from accounts.models import InsuredPerson, PersonalAccount, User, Wallet
from family.models import (
    Binding,
    BindingState,
    OfficeState,
    Payment,
    PaymentKind,
    PaymentPart,
    PaymentSource,
    PolicyVersion,
    Relation,
    SharingMode,
)
from family.rules import select_policy

# --- Who may pay: the candidates, in R33 order ----------------------------------------------------


@dataclass
class Candidate:
    """One source that may pay for the patient, or an owner who may not and why (``excluded``)."""

    source: str  # PaymentSource
    payer: InsuredPerson
    account: PersonalAccount | None = None
    wallet: Wallet | None = None
    binding: Binding | None = None
    excluded: dict[str, str] | None = None  # {"rule": "R36", "message": "..."} when this owner is not used


def _binding_in_force(on_date: dt.date) -> Q:
    # R27: an authorization period, where the owner chose one, covers the day.
    return (Q(authorized_from__isnull=True) | Q(authorized_from__lte=on_date)) & (
        Q(authorized_until__isnull=True) | Q(authorized_until__gte=on_date)
    )


def policies_in_force(region_codes: set[str], on_date: dt.date) -> dict[str, PolicyVersion | None]:
    """C2/R12: the policy in force on ``on_date`` for each region (one query for all of them)."""
    versions = list(
        PolicyVersion.objects.filter(
            Q(region_id__in=region_codes) | Q(region__isnull=True),
            Q(effective_to__isnull=True) | Q(effective_to__gt=on_date),
            effective_from__lte=on_date,
        )
    )
    return {code: select_policy(versions, code, on_date) for code in region_codes}


class PoliciesInForce:
    """C2/R12: the policies in force on one date, each region's read once for the length of one decision.

    A payment needs its settling region's policy and each owner's; they are usually the same city, so
    the second read costs no query.
    """

    def __init__(self, on_date: dt.date) -> None:
        self.on_date = on_date
        self._read: dict[str, PolicyVersion | None] = {}

    def of(self, region_codes: set[str]) -> dict[str, PolicyVersion | None]:
        missing = set(region_codes) - self._read.keys()
        if missing:
            self._read.update(policies_in_force(missing, self.on_date))
        return {code: self._read[code] for code in region_codes}


def _account_of(person: InsuredPerson) -> PersonalAccount | None:
    try:
        return person.account
    except PersonalAccount.DoesNotExist:
        return None


def _wallet_of(person: InsuredPerson) -> Wallet | None:
    try:
        return person.wallet
    except Wallet.DoesNotExist:
        return None


def payment_candidates(
    *,
    patient: InsuredPerson,
    on_date: dt.date,
    only_owner: InsuredPerson | None = None,
    policies: PoliciesInForce | None = None,
) -> list[Candidate]:
    """R33: the patient's own personal account (an employee's), their own wallet (R37), then the owners of
    their active bindings in force on ``on_date`` in the configured order (SHARING_PAYER_ORDER, default the
    oldest binding first). Owners who may not pay are listed with the rule that excludes them: a region
    that shares by transfer (R36), another province (R37: through the wallet), no personal account.

    ``only_owner`` (a contribution paid from the owner's page) keeps only that owner's binding.
    ``policies``: the decision's policy reader, when the caller read some already.
    Two queries (three with owners' policies not read yet) when the patient was loaded with its account and
    wallet.
    """
    candidates: list[Candidate] = []
    if only_owner is None:
        own = _account_of(patient) if patient.is_employee else None
        if own is not None:
            candidates.append(Candidate(source=PaymentSource.OWN, payer=patient, account=own))
        wallet = _wallet_of(patient)
        if wallet is not None:
            candidates.append(Candidate(source=PaymentSource.WALLET, payer=patient, wallet=wallet))
    bindings = Binding.objects.filter(_binding_in_force(on_date), relative=patient, state=BindingState.ACTIVE)
    if only_owner is not None:
        bindings = bindings.filter(owner=only_owner)
    bindings = list(bindings.select_related("owner__account", "owner__region").order_by())
    newest_first = getattr(settings, "SHARING_PAYER_ORDER", "oldest_binding_first") == "newest_binding_first"
    bindings.sort(key=lambda b: (b.activated_at or b.created_at, b.pk), reverse=newest_first)
    policies = policies or PoliciesInForce(on_date)
    owner_policies = policies.of({b.owner.region_id for b in bindings}) if bindings else {}
    patient_province = patient.region.province
    for binding in bindings:
        owner = binding.owner
        candidate = Candidate(source=PaymentSource.BINDING, payer=owner, account=_account_of(owner), binding=binding)
        policy = owner_policies.get(owner.region_id)
        if owner.region.province != patient_province:
            candidate.excluded = {
                "rule": "R37",
                "message": _(
                    "%(owner)s is insured in another province: sharing across provinces goes through the "
                    "relative's medical-insurance wallet."
                )
                % {"owner": mask_name(owner.name)},
            }
        elif policy is not None and policy.sharing_mode == SharingMode.TRANSFER:
            candidate.excluded = {
                "rule": "R36",
                "message": _(
                    "The region of %(owner)s shares by transfer (policy %(policy)s): the owner moves money "
                    "into the relative's account instead of paying."
                )
                % {"owner": mask_name(owner.name), "policy": policy.label},
            }
        elif candidate.account is None:
            candidate.excluded = {
                "rule": "R30",
                "message": _("%(owner)s has no personal account.") % {"owner": mask_name(owner.name)},
            }
        candidates.append(candidate)
    return candidates


def payment_visible_to(*, client: User, payment: Payment) -> bool:
    """Whose a payment is: the client that made it, or a clerk of its institution (reads and refunds)."""
    return payment.client_id == client.pk or bool(
        client.role == User.Role.CLERK and client.institution_id and client.institution_id == payment.institution_id
    )


def payment_for_client(*, client: User, payment_id: int) -> Payment:
    """The payment if ``client`` may see it (``payment_visible_to``); else the same 404 as for none."""
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None or not payment_visible_to(client=client, payment=payment):
        raise DomainError(title=_("No such payment."), status=404, code="not_found")
    return payment


# --- 共济使用明细 sharing records (R35) --------------------------------------------------------------
#
# A record is one part of a payment paid from a family member's account (source "binding"): the owner
# sees it as money that left their account for a relative, the relative as money paid for them. Every
# name and ID number leaves this module masked (R4), so no page, export or API can show more.

ROLE_OWNER = "owner"
ROLE_RELATIVE = "relative"
ROLES = (ROLE_OWNER, ROLE_RELATIVE)
RECORDS_MAX_LIMIT = 100


@dataclass(frozen=True)
class SharingRecord:
    """One payment part seen by one of its two parties: when, where, what, how much, from whose account."""

    part_id: int
    role: str  # ROLE_OWNER: paid from my account; ROLE_RELATIVE: paid for me
    payment_id: int
    reference: str
    time: dt.datetime
    kind: str
    kind_label: str
    institution_code: str
    institution_name: str  # empty: paid online, from the owner's page (contributions)
    patient_name: str
    patient_id_number: str
    owner_name: str
    owner_id_number: str
    relationship: str
    relationship_label: str
    amount: Decimal
    current_amount: Decimal
    historical_amount: Decimal
    refunded_amount: Decimal
    office_state: str

    @property
    def is_contribution(self) -> bool:
        return self.kind in (PaymentKind.RESIDENT_CONTRIBUTION, PaymentKind.LTC_CONTRIBUTION)


@dataclass
class RecordTotal:
    """What was paid and refunded back, over a month or the whole selection, in one role."""

    amount: Decimal = Decimal("0.00")
    refunded: Decimal = Decimal("0.00")
    count: int = 0

    @property
    def net(self) -> Decimal:
        return self.amount - self.refunded

    def add(self, *, amount: Decimal, refunded: Decimal, count: int) -> None:
        self.amount += amount
        self.refunded += refunded
        self.count += count


@dataclass
class RecordMonth:
    """A month heading: the whole month's totals per role (not only the rows on this page) and its rows here."""

    month: dt.date  # the first day of the month, Asia/Shanghai
    owner: RecordTotal = field(default_factory=RecordTotal)
    relative: RecordTotal = field(default_factory=RecordTotal)
    records: list[SharingRecord] = field(default_factory=list)

    def total(self, role: str) -> RecordTotal:
        return self.owner if role == ROLE_OWNER else self.relative


@dataclass
class SharingRecords:
    """One page of records, newest first, grouped by month, with the totals of the whole selection."""

    count: int
    offset: int
    limit: int
    owner: RecordTotal
    relative: RecordTotal
    months: list[RecordMonth]

    @property
    def records(self) -> list[SharingRecord]:
        return [record for month in self.months for record in month.records]

    @property
    def has_next(self) -> bool:
        return self.offset + self.limit < self.count

    @property
    def has_previous(self) -> bool:
        return self.offset > 0


def _day_start(day: dt.date) -> dt.datetime:
    # Dates are the citizen's (Asia/Shanghai) days; the filter compares instants so the index on
    # Payment.created_at can be used.
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _sharing_parts(
    *, person_id: int, role: str | None, date_from: dt.date | None, date_until: dt.date | None
) -> QuerySet[PaymentPart]:
    """R35: the parts paid from another person's account (source binding) in which ``person_id`` is a party."""
    parts = PaymentPart.objects.filter(source=PaymentSource.BINDING)
    if role == ROLE_OWNER:
        parts = parts.filter(payer_id=person_id)
    elif role == ROLE_RELATIVE:
        parts = parts.filter(payment__patient_id=person_id)
    else:
        parts = parts.filter(Q(payer_id=person_id) | Q(payment__patient_id=person_id))
    if date_from is not None:
        parts = parts.filter(payment__created_at__gte=_day_start(date_from))
    if date_until is not None:
        parts = parts.filter(payment__created_at__lt=_day_start(date_until + dt.timedelta(days=1)))
    # A binding never has the owner as relative (binding_not_self), so "payer is me" decides the role.
    return parts.annotate(
        role=Case(When(payer_id=person_id, then=Value(ROLE_OWNER)), default=Value(ROLE_RELATIVE)),
    )


def _month_of(value: dt.datetime) -> dt.date:
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return dt.date(local.year, local.month, 1)


def _record(part: PaymentPart) -> SharingRecord:
    payment = part.payment
    institution = payment.institution
    relationship = part.binding.relationship if part.binding_id else ""
    return SharingRecord(
        part_id=part.pk,
        role=part.role,
        payment_id=payment.pk,
        reference=payment.reference,
        time=payment.created_at,
        kind=payment.kind,
        kind_label=str(payment.get_kind_display()),
        institution_code=institution.code if institution else "",
        institution_name=institution.name if institution else "",
        patient_name=mask_name(payment.patient.name),
        patient_id_number=mask_id_number(payment.patient.id_number),
        owner_name=mask_name(part.payer.name),
        owner_id_number=mask_id_number(part.payer.id_number),
        relationship=relationship,
        relationship_label=str(Relation(relationship).label) if relationship in Relation.values else "",
        amount=part.amount,
        current_amount=part.current_amount,
        historical_amount=part.historical_amount,
        refunded_amount=part.refunded_amount,
        office_state=payment.office_state,
    )


def _rows(parts: QuerySet[PaymentPart]) -> QuerySet[PaymentPart]:
    return parts.select_related("payment__institution", "payment__patient", "payer", "binding").order_by(
        "-payment__created_at", "-payment_id", "position"
    )


def sharing_records(
    *,
    person_id: int,
    role: str | None = None,
    date_from: dt.date | None = None,
    date_until: dt.date | None = None,
    offset: int = 0,
    limit: int = 20,
) -> SharingRecords:
    """R35 共济使用明细: the parts paid from ``person_id``'s account for relatives (role owner) and paid for
    them from an owner's account (role relative), newest first, ``limit`` rows from ``offset``; each month
    on the page carries its whole-month totals, and the selection its grand totals.

    Two queries whatever the number of rows: the totals grouped by month and role, then the page's rows
    (only the first when the page is empty).
    """
    limit = max(1, min(limit, RECORDS_MAX_LIMIT))
    offset = max(0, offset)
    parts = _sharing_parts(person_id=person_id, role=role, date_from=date_from, date_until=date_until)
    grouped = (
        parts.annotate(month=TruncMonth("payment__created_at"))
        .order_by()
        .values("month", "role")
        .annotate(
            amount=Sum(F("current_amount") + F("historical_amount") + F("wallet_amount")),
            refunded=Sum("refunded_amount"),
            count=Count("pk"),
        )
    )
    owner_total, relative_total = RecordTotal(), RecordTotal()
    by_month: dict[dt.date, RecordMonth] = {}
    for row in grouped:
        key = _month_of(row["month"])
        month = by_month.setdefault(key, RecordMonth(month=key))
        amount, refunded = row["amount"] or Decimal(0), row["refunded"] or Decimal(0)
        for total in (month.total(row["role"]), owner_total if row["role"] == ROLE_OWNER else relative_total):
            total.add(amount=amount, refunded=refunded, count=row["count"])
    count = owner_total.count + relative_total.count
    months: list[RecordMonth] = []
    if offset < count:
        for part in _rows(parts)[offset : offset + limit]:
            record = _record(part)
            month = by_month[_month_of(record.time)]
            if not months or months[-1] is not month:
                months.append(month)
            month.records.append(record)
    return SharingRecords(
        count=count, offset=offset, limit=limit, owner=owner_total, relative=relative_total, months=months
    )


def sharing_records_all(
    *, person_id: int, role: str | None = None, date_from: dt.date | None = None, date_until: dt.date | None = None
) -> Iterator[SharingRecord]:
    """R35: every record of the selection, newest first, streamed in chunks (the CSV export)."""
    parts = _sharing_parts(person_id=person_id, role=role, date_from=date_from, date_until=date_until)
    for part in _rows(parts).iterator(chunk_size=500):
        yield _record(part)


# --- Contributions paid for a relative (R31) --------------------------------------------------------


def contribution_bindings(*, owner_id: int) -> QuerySet[Binding]:
    """R31: the owner's active bindings to a known relative: whom the owner may pay a contribution for."""
    return (
        Binding.objects.filter(owner_id=owner_id, state=BindingState.ACTIVE, relative__isnull=False)
        .select_related("relative")
        .order_by("activated_at", "pk")
    )


@dataclass
class ContributionProgress:
    """A contribution as its owner or relative sees it: the payment, for which year, who paid, for whom (R4)."""

    payment: Payment
    year: int | None
    owner_name: str
    relative_name: str
    viewer_is_owner: bool

    @property
    def confirmed(self) -> bool:
        return self.payment.office_state == OfficeState.CONFIRMED


def contribution_for_person(*, person_id: int, payment_id: int) -> ContributionProgress:
    """A contribution paid from ``person_id``'s account or for them; anyone else gets the 404 of none (2 queries)."""
    contribution_kinds = (PaymentKind.RESIDENT_CONTRIBUTION, PaymentKind.LTC_CONTRIBUTION)
    payment = (
        Payment.objects.select_related("patient")
        .filter(pk=payment_id, kind__in=contribution_kinds)
        .filter(Q(patient_id=person_id) | Q(parts__payer_id=person_id, parts__source=PaymentSource.BINDING))
        .distinct()
        .first()
    )
    if payment is None:
        raise Http404
    payers = list(
        PaymentPart.objects.filter(payment=payment, source=PaymentSource.BINDING)
        .select_related("payer")
        .order_by("position")
    )
    return ContributionProgress(
        payment=payment,
        year=payment.contribution_year,
        owner_name=", ".join(mask_name(part.payer.name) for part in payers),
        relative_name=mask_name(payment.patient.name),
        viewer_is_owner=any(part.payer_id == person_id for part in payers),
    )

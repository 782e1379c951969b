"""Sharing payments (R31–R35): who pays a patient's costs, in which order, all or nothing, once per key.

A payment is decided and written in one transaction: the candidate accounts are read, locked in one
fixed order (``accounts.services.accounts_lock``), split by ``family.rules.payment_split`` on the
locked balances, and posted to the ledger; the receipt is the payment row and its parts. A quote runs
the same decision without locks or writes, so it is the split a payment made at that moment would charge.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.errors import DomainError, FieldError
from accounts.masking import mask_name
from accounts.models import Institution, InsuredPerson, LedgerEntry, User, WalletEntry
from accounts.queueing import enqueue_on_commit
from accounts.services import (
    Posting,
    accounts_lock,
    audit_record,
    ledger_post_locked,
    notification_send,
    wallet_post_locked,
)
from family import rules
from family.models import (
    OfficeState,
    Payment,
    PaymentKind,
    PaymentPart,
    PaymentRefund,
    PaymentSource,
    PharmacyCategory,
)
from family.rules import Funds, Refundable
from family.selectors_payments import (
    Candidate,
    PoliciesInForce,
    payment_candidates,
    payment_visible_to,
    policies_in_force,
)
from family.services.keys import KeyedRequest


class PaymentRefused(DomainError):
    """R31–R34: a payment, quote or refund the rules refuse; nothing was charged."""


# --- What may be paid (R31) -----------------------------------------------------------------------


def _refused(title: str, *, code: str, status: int = 400, field: str = "", detail: str = "") -> PaymentRefused:
    errors = [FieldError(field, title)] if field else []
    return PaymentRefused(title=title, detail=detail, status=status, code=code, errors=errors)


def payment_kind_check(
    *, kind: str, category: str, institution: Institution | None, patient: InsuredPerson, on_date: dt.date
) -> None:
    """R31: the self-paid part at a designated clinic; drugs, devices and consumables at a designated
    pharmacy; a resident's own contribution; the long-term-care contribution where the region has it.
    Anything else is refused, naming R31."""
    if kind not in PaymentKind.values:
        raise _refused(
            _("R31: a personal account pays only medical costs, pharmacy purchases and insurance contributions."),
            code="kind_not_allowed",
            field="kind",
        )
    where = institution.kind if institution is not None else None
    if kind == PaymentKind.MEDICAL and where != Institution.Kind.CLINIC:
        raise _refused(
            _("R31: the self-paid part of medical costs is paid at a designated clinic."),
            code="kind_not_allowed_here",
            field="kind",
        )
    if kind == PaymentKind.PHARMACY:
        if where != Institution.Kind.PHARMACY:
            raise _refused(
                _("R31: pharmacy purchases are paid at a designated pharmacy."),
                code="kind_not_allowed_here",
                field="kind",
            )
        if category not in PharmacyCategory.values:
            raise _refused(
                _("R31: at a pharmacy the account pays only for drugs, medical devices and medical consumables."),
                code="category_not_allowed",
                field="category",
            )
    if kind == PaymentKind.RESIDENT_CONTRIBUTION and patient.is_employee:
        raise _refused(
            _("R31: the resident-insurance contribution is paid for a person insured as a resident."),
            code="not_a_resident",
            field="kind",
        )
    if kind in (PaymentKind.RESIDENT_CONTRIBUTION, PaymentKind.LTC_CONTRIBUTION) and where not in (
        None,
        Institution.Kind.BRANCH,
    ):
        raise _refused(
            _("R31: contributions are paid at a social-security branch or from the owner's page."),
            code="kind_not_allowed_here",
            field="kind",
        )
    if kind == PaymentKind.LTC_CONTRIBUTION:
        policy = policies_in_force({patient.region_id}, on_date)[patient.region_id]
        if policy is None or not policy.long_term_care:
            raise _refused(
                _("R31: the patient's region has no long-term-care insurance contribution."),
                code="no_long_term_care",
                field="kind",
            )


def payment_amount_check(amount: Decimal, *, field: str = "amount") -> None:
    problem = rules.amount_problem(amount)
    if problem is None:
        return
    messages = {
        "not_a_number": _("The amount must be a number of yuan."),
        "not_positive": _("The amount must be more than zero."),
        "too_precise": _("The amount has at most two decimals (fen)."),
        "too_large": _("The amount is too large."),
    }
    raise _refused(messages[problem], code=f"amount_{problem}", field=field)


# --- Quote and payment ----------------------------------------------------------------------------


@dataclass
class SplitLine:
    """One line of a quote or receipt: how much from whose account (R33, R35)."""

    position: int
    source: str
    payer: InsuredPerson
    relationship: str
    current: Decimal
    historical: Decimal
    wallet: Decimal
    refunded: Decimal = Decimal(0)

    @property
    def amount(self) -> Decimal:
        return self.current + self.historical + self.wallet


@dataclass
class Split:
    """A quote (``payment`` None) or a receipt: the lines, the cash part and why owners were not used."""

    patient: InsuredPerson
    amount: Decimal
    kind: str
    lines: list[SplitLine]
    cash: Decimal
    notes: list[dict[str, str]] = field(default_factory=list)
    payment: Payment | None = None
    replayed: bool = False


def _one_owner_per_payment(
    *, patient: InsuredPerson, institution: Institution | None, policies: PoliciesInForce
) -> bool:
    # R33: the settling region's choice: the institution's region, or the patient's for a page payment.
    region_code = institution.region_id if institution is not None else patient.region_id
    policy = policies.of({region_code})[region_code]
    return bool(policy and policy.one_owner_per_payment)


def _funds(candidate: Candidate) -> Funds:
    if candidate.excluded is not None:
        return Funds()
    if candidate.source == PaymentSource.WALLET:
        return Funds(wallet=candidate.wallet.balance)
    return Funds(
        current=candidate.account.current_balance,
        historical=candidate.account.historical_balance,
        is_owner=candidate.source == PaymentSource.BINDING,
    )


def _decide(
    *, candidates: Sequence[Candidate], amount: Decimal, one_owner: bool, patient: InsuredPerson, kind: str
) -> Split:
    takes, cash = rules.payment_split(
        amount=amount, funds=[_funds(c) for c in candidates], one_owner_per_payment=one_owner
    )
    used = {take.index for take in takes}
    lines = [
        SplitLine(
            position=position,
            source=candidates[take.index].source,
            payer=candidates[take.index].payer,
            relationship=candidates[take.index].binding.relationship if candidates[take.index].binding else "",
            current=take.current,
            historical=take.historical,
            wallet=take.wallet,
        )
        for position, take in enumerate(takes, start=1)
    ]
    notes = [c.excluded for c in candidates if c.excluded is not None]
    if one_owner and cash > 0:
        skipped = [
            c
            for i, c in enumerate(candidates)
            if c.source == PaymentSource.BINDING and not c.excluded and i not in used
        ]
        if any(_funds(c).total > 0 for c in skipped):
            notes.append(
                {
                    "rule": "R33",
                    "message": _("This region allows one owner's account per payment; the rest is paid in cash."),
                }
            )
    if not any(c.source == PaymentSource.BINDING for c in candidates) and cash > 0:
        notes.append(
            {
                "rule": "R33",
                "message": _(
                    "No family member's account pays for this person: that needs an active family-sharing "
                    "binding (the family card service gives no right to spend)."
                ),
            }
        )
    return Split(patient=patient, amount=amount, kind=kind, lines=lines, cash=cash, notes=notes)


def payment_quote(
    *,
    patient: InsuredPerson,
    institution: Institution | None,
    kind: str,
    amount: Decimal,
    category: str = "",
    on_date: dt.date | None = None,
) -> Split:
    """R33: the split a payment would make now (own account, which owners, cash), charging nothing."""
    on_date = on_date or timezone.localdate()
    payment_amount_check(amount)
    payment_kind_check(kind=kind, category=category, institution=institution, patient=patient, on_date=on_date)
    policies = PoliciesInForce(on_date)
    one_owner = _one_owner_per_payment(patient=patient, institution=institution, policies=policies)
    candidates = payment_candidates(patient=patient, on_date=on_date, policies=policies)
    return _decide(candidates=candidates, amount=amount, one_owner=one_owner, patient=patient, kind=kind)


def _new_reference(prefix: str) -> str:
    return f"{prefix}{timezone.localdate():%Y%m%d}{secrets.token_hex(5).upper()}"


def _payment_key_reused() -> PaymentRefused:
    return _refused(
        _("This Idempotency-Key was used for a different payment."),
        code="idempotency_key_reused",
        status=409,
        detail=_("Use a new key for a new payment; send the same body to get the first receipt again."),
    )


def _receipt_again(payment: Payment) -> Split:
    """R34: the same key and body again: the first receipt."""
    split = payment_receipt(payment_id=payment.pk)
    split.replayed = True
    return split


def payment_make(
    *,
    client: User,
    idempotency_key: str,
    request_hash: str,
    patient: InsuredPerson,
    card_number: str,
    institution: Institution | None,
    kind: str,
    amount: Decimal,
    category: str = "",
    only_owner: InsuredPerson | None = None,
    on_date: dt.date | None = None,
    qr_reference: str = "",
    contribution_year: int | None = None,
) -> Split:
    """R31–R34: charge a payment once per (client, key): own account, wallet, owners in order, cash for the
    rest; all or nothing, never an overdraft, every movement a ledger (or wallet) entry. Owners are told.

    ``only_owner``: a contribution paid from the owner's page, from that owner's account only; refused
    rather than split with cash when the account cannot cover it. ``qr_reference``: the QR code that
    identified the patient (R42); a second payment with the same code is refused (a unique constraint).
    ``contribution_year``: the year a contribution (R31) is for.
    """
    if not idempotency_key:
        raise _refused(_("An Idempotency-Key header is required."), code="idempotency_key_missing")
    keyed = KeyedRequest(
        find=lambda: Payment.objects.filter(client=client, idempotency_key=idempotency_key).first(),
        request_hash=request_hash,
        answer=_receipt_again,
        refused=_payment_key_reused,
    )
    if (replayed := keyed.replay()) is not None:
        return replayed
    on_date = on_date or timezone.localdate()
    payment_amount_check(amount)
    payment_kind_check(kind=kind, category=category, institution=institution, patient=patient, on_date=on_date)
    policies = PoliciesInForce(on_date)
    one_owner = _one_owner_per_payment(patient=patient, institution=institution, policies=policies)
    try:
        split = keyed.make(
            lambda: _charge(
                client=client,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                patient=patient,
                card_number=card_number,
                institution=institution,
                kind=kind,
                category=category,
                amount=amount,
                only_owner=only_owner,
                on_date=on_date,
                one_owner=one_owner,
                policies=policies,
                qr_reference=qr_reference,
                contribution_year=contribution_year,
            )
        )
    except IntegrityError:
        # Not this key: the QR code was spent by a payment that committed at the same moment (R42).
        if qr_reference and Payment.objects.filter(qr_reference=qr_reference).exists():
            raise _qr_spent() from None
        raise
    if not split.replayed:
        from family import tasks

        enqueue_on_commit(tasks.payment_notify_owners, split.payment.pk)
    return split


def _qr_spent() -> PaymentRefused:
    return _refused(
        _("This QR code has paid once already."),
        code="qr_reference_spent",
        status=409,
        detail=_("Each code pays once. Ask the patient to refresh the code and scan the new one."),
    )


def _charge(
    *,
    client: User,
    idempotency_key: str,
    request_hash: str,
    patient: InsuredPerson,
    card_number: str,
    institution: Institution | None,
    kind: str,
    category: str,
    amount: Decimal,
    only_owner: InsuredPerson | None,
    on_date: dt.date,
    one_owner: bool,
    policies: PoliciesInForce,
    qr_reference: str,
    contribution_year: int | None,
) -> Split:
    if qr_reference and Payment.objects.filter(qr_reference=qr_reference).exists():
        raise _qr_spent()
    candidates = payment_candidates(patient=patient, on_date=on_date, only_owner=only_owner, policies=policies)
    accounts, wallets = accounts_lock(
        account_ids=[c.account.pk for c in candidates if c.account is not None and not c.excluded],
        wallet_ids=[c.wallet.pk for c in candidates if c.wallet is not None],
    )
    # Decide on the locked (fresh) balances.
    for candidate in candidates:
        if candidate.account is not None and candidate.account.pk in accounts:
            candidate.account = accounts[candidate.account.pk]
        if candidate.wallet is not None:
            candidate.wallet = wallets[candidate.wallet.pk]
    split = _decide(candidates=candidates, amount=amount, one_owner=one_owner, patient=patient, kind=kind)
    if only_owner is not None and split.cash > 0:
        raise _refused(
            _("The account balance is not enough for this."),
            code="insufficient_balance",
            status=409,
            detail=_("Available: ¥%(available)s.") % {"available": f"{amount - split.cash:,.2f}"},
        )
    payment = Payment.objects.create(
        client=client,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        reference=_new_reference("P"),
        patient=patient,
        card_number=card_number,
        qr_reference=qr_reference,
        institution=institution,
        kind=kind,
        category=category,
        amount=amount,
        cash_amount=split.cash,
        notes=split.notes,
        contribution_year=contribution_year,
        office_state=OfficeState.PENDING
        if kind in (PaymentKind.RESIDENT_CONTRIBUTION, PaymentKind.LTC_CONTRIBUTION)
        else OfficeState.NONE,
    )
    by_payer = {(c.source, c.payer.pk): c for c in candidates}
    parts, postings = [], []
    where = institution.name if institution is not None else _("online")
    for line in split.lines:
        candidate = by_payer[(line.source, line.payer.pk)]
        parts.append(
            PaymentPart(
                payment=payment,
                position=line.position,
                source=line.source,
                payer=line.payer,
                binding=candidate.binding,
                account=candidate.account if line.source != PaymentSource.WALLET else None,
                wallet=candidate.wallet if line.source == PaymentSource.WALLET else None,
                current_amount=line.current,
                historical_amount=line.historical,
                wallet_amount=line.wallet,
            )
        )
        description = f"{payment.get_kind_display()} · {mask_name(patient.name)} · {where}"
        if line.wallet:
            wallet_post_locked(
                wallet=candidate.wallet,
                amount=-line.wallet,
                kind=WalletEntry.Kind.PAYMENT,
                description=description,
                reference=payment.reference,
                created_by=client,
            )
        for part, value in ((LedgerEntry.Part.CURRENT, line.current), (LedgerEntry.Part.HISTORICAL, line.historical)):
            if value:
                postings.append(
                    (
                        candidate.account.pk,
                        Posting(part, -value, LedgerEntry.Kind.PAYMENT, description, payment.reference),
                    )
                )
    PaymentPart.objects.bulk_create(parts)
    ledger_post_locked(accounts=accounts, postings=postings, created_by=client)
    # The receipt is the decision just written; owners are told after the commit, outside the locks.
    split.payment = payment
    return split


def payment_notify_owners(*, payment_id: int) -> int:
    """消息 (R35): tell each owner whose account paid; idempotent (one notification per part)."""
    payment = Payment.objects.select_related("patient", "institution").get(pk=payment_id)
    where = payment.institution.name if payment.institution_id else _("online")
    sent = 0
    for part in payment.parts.filter(source=PaymentSource.BINDING).select_related("payer"):
        line = SplitLine(
            position=part.position,
            source=part.source,
            payer=part.payer,
            relationship="",
            current=part.current_amount,
            historical=part.historical_amount,
            wallet=part.wallet_amount,
        )
        sent += _notify_owner(payment=payment, line=line, where=where) is not None
    return sent


def _notify_owner(*, payment: Payment, line: SplitLine, where: str):
    """消息 (R35): every payment from an owner's account: who, where, how much."""
    return notification_send(
        person=line.payer,
        kind="payment.from_account",
        title=_("¥%(amount)s paid from your account for %(patient)s")
        % {"amount": f"{line.amount:,.2f}", "patient": mask_name(payment.patient.name)},
        body=_("%(kind)s at %(where)s, payment %(reference)s.")
        % {"kind": payment.get_kind_display(), "where": where, "reference": payment.reference},
        link="/family/records/",
        dedup_key=f"payment:{payment.pk}:{line.position}",
        sms=True,
    )


def payment_receipt(*, payment_id: int) -> Split:
    """The receipt of a payment: each part and from whose account, the cash part, refunds, and the notes on
    why owners did not pay, in the words (and language) of the first answer (two queries)."""
    payment = Payment.objects.select_related("patient", "institution").get(pk=payment_id)
    parts = list(payment.parts.select_related("payer", "binding").order_by("position"))
    lines = [
        SplitLine(
            position=part.position,
            source=part.source,
            payer=part.payer,
            relationship=part.binding.relationship if part.binding else "",
            current=part.current_amount,
            historical=part.historical_amount,
            wallet=part.wallet_amount,
            refunded=part.refunded_amount,
        )
        for part in parts
    ]
    return Split(
        patient=payment.patient,
        amount=payment.amount,
        kind=payment.kind,
        lines=lines,
        cash=payment.cash_amount,
        notes=list(payment.notes),
        payment=payment,
    )


# --- Refunds (R34) --------------------------------------------------------------------------------


@dataclass
class RefundResult:
    refund: PaymentRefund
    receipt: Split
    replayed: bool = False


def payment_refund(
    *,
    client: User,
    payment_id: int,
    idempotency_key: str,
    request_hash: str,
    amount: Decimal | None = None,
    reason: str = "",
) -> RefundResult:
    """R34: refund all of what is left (``amount`` None) or part of it, as new entries back to the accounts
    that paid (cash first, then the parts in reverse deduction order); never an edit. Once per key.

    Only the client that took the payment (the same clinic's system or a clerk of the same institution)
    may refund it.
    """
    if not idempotency_key:
        raise _refused(_("An Idempotency-Key header is required."), code="idempotency_key_missing")
    keyed = KeyedRequest(
        find=lambda: PaymentRefund.objects.filter(client=client, idempotency_key=idempotency_key).first(),
        request_hash=request_hash,
        answer=_refund_again,
        refused=_refund_key_reused,
    )
    if (replayed := keyed.replay()) is not None:
        return replayed
    if amount is not None:
        payment_amount_check(amount)
    return keyed.make(
        lambda: RefundResult(
            refund=_refund(
                client=client,
                payment_id=payment_id,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                amount=amount,
                reason=reason,
            ),
            receipt=payment_receipt(payment_id=payment_id),
        )
    )


def _refund_key_reused() -> PaymentRefused:
    return _refused(
        _("This Idempotency-Key was used for a different refund."), code="idempotency_key_reused", status=409
    )


def _refund_again(refund: PaymentRefund) -> RefundResult:
    return RefundResult(refund=refund, receipt=payment_receipt(payment_id=refund.payment_id), replayed=True)


def _left(part: PaymentPart) -> Refundable:
    """What is left to refund of a part, per source part: refunds take the wallet, then previous years,
    then the current year (rules.refund_split), so the refunded total says where it went."""
    refunded = part.refunded_amount
    wallet_back = min(part.wallet_amount, refunded)
    historical_back = min(part.historical_amount, refunded - wallet_back)
    current_back = min(part.current_amount, refunded - wallet_back - historical_back)
    return Refundable(
        current=part.current_amount - current_back,
        historical=part.historical_amount - historical_back,
        wallet=part.wallet_amount - wallet_back,
    )


def _refund(
    *,
    client: User,
    payment_id: int,
    idempotency_key: str,
    request_hash: str,
    amount: Decimal | None,
    reason: str,
) -> PaymentRefund:
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None or not payment_visible_to(client=client, payment=payment):
        # The same answer for a payment of someone else's as for none: ids are not probed this way.
        raise _refused(_("No such payment."), code="not_found", status=404)
    parts = list(payment.parts.order_by("position"))
    accounts, wallets = accounts_lock(
        account_ids=[p.account_id for p in parts if p.account_id],
        wallet_ids=[p.wallet_id for p in parts if p.wallet_id],
    )
    # The payment row is locked after the accounts, as every writer does (R34 fixed order); its parts
    # are read again under that lock, so a refund that waited for another one splits on fresh figures.
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    parts = list(payment.parts.order_by("position"))
    left = payment.amount - payment.refunded_amount
    amount = left if amount is None else amount
    if left <= 0:
        raise _refused(_("This payment has been refunded in full already."), code="refunded_already", status=409)
    if amount > left:
        raise _refused(
            _("At most ¥%(left)s of this payment can still be refunded.") % {"left": f"{left:,.2f}"},
            code="refund_too_large",
            status=409,
            field="amount",
        )
    parts_left = [_left(part) for part in parts]
    # Refunds always take cash first (rules.refund_split), so what went back in cash follows from the total.
    cash_left = payment.cash_amount - min(payment.cash_amount, payment.refunded_amount)
    cash_back, takes = rules.refund_split(amount=amount, cash_left=cash_left, parts=parts_left)
    refund = PaymentRefund.objects.create(
        payment=payment,
        client=client,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        amount=amount,
        cash_amount=cash_back,
        reason=reason[:200],
    )
    postings = []
    description = _("Refund of payment %(reference)s") % {"reference": payment.reference}
    for take in takes:
        part = parts[take.index]
        if take.wallet:
            wallet_post_locked(
                wallet=wallets[part.wallet_id],
                amount=take.wallet,
                kind=WalletEntry.Kind.REVERSAL,
                description=description,
                reference=payment.reference,
                created_by=client,
            )
        for ledger_part, value in (
            (LedgerEntry.Part.CURRENT, take.current),
            (LedgerEntry.Part.HISTORICAL, take.historical),
        ):
            if value:
                postings.append(
                    (
                        part.account_id,
                        Posting(ledger_part, value, LedgerEntry.Kind.REVERSAL, description, payment.reference),
                    )
                )
        PaymentPart.objects.filter(pk=part.pk).update(refunded_amount=F("refunded_amount") + take.total)
    ledger_post_locked(accounts=accounts, postings=postings, created_by=client)
    Payment.objects.filter(pk=payment.pk).update(refunded_amount=F("refunded_amount") + amount)
    audit_record(actor=client, action="payment.refunded", target=payment, detail={"amount": str(amount)})
    return refund

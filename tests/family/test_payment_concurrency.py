"""R30, R33, R34 under concurrency: payments and refunds at the same moment on shared accounts.

PostgreSQL only: each thread has its own connection (closed when the thread ends), so the row locks
of ``accounts_lock`` really contend. Every connection has a lock and statement timeout, so a lock never
released fails the test instead of hanging it; PostgreSQL's own deadlock detection raises too, and any
exception that is not an expected refusal fails the test.

After each run the stored state is checked against itself and against a serial replay: payments that
share an account are serialized by its lock and numbered in that order, so replaying
``family.rules.payment_split`` over them in id order from the opening balances must give every stored part.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Institution, InsuranceType, InsuredPerson, LedgerEntry, PersonalAccount
from accounts.services import accounts_lock
from family import rules
from family.models import Binding, BindingState, Payment, PaymentPart, PaymentRefund
from family.services.keys import request_fingerprint
from family.services.payments import PaymentRefused, Split, payment_candidates, payment_make, payment_refund
from tests.concurrency import run_together
from tests.factories import InstitutionFactory, InsuredPersonFactory, UserFactory, give_account

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ZERO = Decimal(0)


# --- Set-up ---


@pytest.fixture
def clinic(region) -> Institution:
    return InstitutionFactory(code="C320500777", name="苏州社区诊所", region=region, kind=Institution.Kind.CLINIC)


@pytest.fixture
def clinic_system(clinic):
    return UserFactory(username="clinic-system", role="partner", institution=clinic, phone=None)


def guarded(job: Callable[[], object]) -> Callable[[], object]:
    """The job on this thread's own connection, with timeouts: a lock held forever fails, never hangs."""

    def run() -> object:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '15s'")
            cursor.execute("SET statement_timeout = '30s'")
        return job()

    return run


def pay_job(client, clinic, patient_id: int, amount: str, key: str) -> Callable[[], object]:
    def job() -> object:
        # Loaded in the thread, as the API loads it (card_identify): account, wallet and region along.
        patient = InsuredPerson.objects.select_related("account", "wallet", "region").get(pk=patient_id)
        return payment_make(
            client=client,
            idempotency_key=key,
            request_hash=request_fingerprint(patient=patient_id, amount=Decimal(amount)),
            patient=patient,
            card_number=patient.card_number or "",
            institution=clinic,
            kind="medical",
            amount=Decimal(amount),
        )

    return guarded(job)


def refund_job(client, payment_id: int, amount: str | None, key: str) -> Callable[[], object]:
    def job() -> object:
        return payment_refund(
            client=client,
            payment_id=payment_id,
            idempotency_key=key,
            request_hash=request_fingerprint(payment_id=payment_id, amount=amount),
            amount=None if amount is None else Decimal(amount),
        )

    return guarded(job)


def person(region, *, employee: bool, current: str = "0", historical: str = "0", **fields) -> InsuredPerson:
    insured = InsuredPersonFactory(
        region=region,
        insurance_type=InsuranceType.EMPLOYEE if employee else InsuranceType.RESIDENT,
        **fields,
    )
    if employee:
        give_account(insured, current=current, historical=historical)
    return insured


# --- What must hold after any run ---


def opening_balances() -> dict[int, tuple[Decimal, Decimal]]:
    return {a.pk: (a.current_balance, a.historical_balance) for a in PersonalAccount.objects.all()}


def unexpected(results: list[object], *refusal_codes: str) -> list[object]:
    """Results that are neither a receipt nor one of the expected refusals (a deadlock, a timeout, an overdraft)."""
    return [
        r
        for r in results
        if not isinstance(r, Split) and not (isinstance(r, PaymentRefused) and r.code in refusal_codes)
    ]


def assert_ledger_matches_balances() -> None:
    """R30: per account and part, the sum of the entries is the cached balance; no part is below zero."""
    sums = defaultdict(lambda: ZERO)
    for account_id, part, total in LedgerEntry.objects.values_list("account_id", "part").annotate(total=Sum("amount")):
        sums[(account_id, part)] = total
    for account in PersonalAccount.objects.all():
        assert sums[(account.pk, "current")] == account.current_balance, account
        assert sums[(account.pk, "historical")] == account.historical_balance, account
        assert account.current_balance >= 0 and account.historical_balance >= 0


def assert_payments_consistent() -> None:
    """Each payment: parts + cash = amount; its ledger entries are exactly its parts, one set, written once."""
    for payment in Payment.objects.prefetch_related("parts"):
        parts = list(payment.parts.all())
        assert sum((p.amount for p in parts), start=ZERO) + payment.cash_amount == payment.amount, payment
        entries = Counter(
            (e.account_id, e.part, -e.amount)
            for e in LedgerEntry.objects.filter(reference=payment.reference, kind=LedgerEntry.Kind.PAYMENT)
        )
        expected = Counter()
        for p in parts:
            if p.current_amount:
                expected[(p.account_id, "current", p.current_amount)] += 1
            if p.historical_amount:
                expected[(p.account_id, "historical", p.historical_amount)] += 1
        assert entries == expected, payment


def assert_money_conserved(opening: dict[int, tuple[Decimal, Decimal]]) -> None:
    """What left the accounts is what the payments took from them, less what refunds gave back."""
    before = sum((c + h for c, h in opening.values()), start=ZERO)
    after = PersonalAccount.objects.aggregate(total=Sum("current_balance") + Sum("historical_balance"))["total"]
    taken = sum((p.amount - p.cash_amount for p in Payment.objects.all()), start=ZERO)
    returned = sum((r.amount - r.cash_amount for r in PaymentRefund.objects.all()), start=ZERO)
    assert after == before - taken + returned


def payer_accounts(patient: InsuredPerson) -> list[tuple[int, bool]]:
    """R33 order of the patient's accounts as (account id, is an owner's): own account, owners oldest first."""
    accounts = []
    own = PersonalAccount.objects.filter(person=patient).first()
    if own is not None and patient.insurance_type == InsuranceType.EMPLOYEE:
        accounts.append((own.pk, False))
    bindings = Binding.objects.filter(relative=patient, state=BindingState.ACTIVE).order_by("activated_at", "pk")
    for binding in bindings.select_related("owner__account"):
        accounts.append((binding.owner.account.pk, True))
    return accounts


def assert_serializable(opening: dict[int, tuple[Decimal, Decimal]]) -> None:
    """The stored parts are what the payments would have taken one after another, in id (= lock) order."""
    balances = dict(opening)
    for payment in Payment.objects.order_by("pk").select_related("patient"):
        sources = payer_accounts(payment.patient)
        funds = [
            rules.Funds(current=balances[a][0], historical=balances[a][1], is_owner=is_owner) for a, is_owner in sources
        ]
        takes, cash = rules.payment_split(amount=payment.amount, funds=funds)
        expected = [(sources[t.index][0], t.current, t.historical) for t in takes]
        stored = [(p.account_id, p.current_amount, p.historical_amount) for p in payment.parts.order_by("position")]
        assert stored == expected and payment.cash_amount == cash, (payment.pk, stored, expected)
        for account_id, current, historical in expected:
            c, h = balances[account_id]
            balances[account_id] = (c - current, h - historical)
    assert balances == opening_balances()


# --- 32 payments at once on one owner's account ---


def test_r34_32_payments_at_once_never_overdraw_and_charge_each_key_once(region, clinic, clinic_system, binding_active):
    """Six relatives of one owner (three with small accounts of their own) pay 40.00 each, 26 times with a new
    key, 4 times replaying a key with the same body and twice reusing a key with another amount; the
    accounts hold 590.00 of the 1,040.00 asked, so the owner's account runs dry and the rest is cash."""
    owner = person(region, employee=True, current="400.00", historical="100.00", birth="19600101")
    relatives = [
        person(region, employee=n < 3, current="20.00", historical="10.00", birth=f"19{85 + n}0101") for n in range(6)
    ]
    now = timezone.now()
    for n, relative in enumerate(relatives):
        binding_active(owner, relative, since=now - dt.timedelta(days=30 - n))
    opening = opening_balances()

    submissions = [(relatives[n % 6].pk, "40.00", f"visit-{n:02d}") for n in range(26)]
    submissions += [submissions[n] for n in range(4)]  # the same request again (a client's retry)
    submissions += [(relatives[n % 6].pk, "41.00", f"visit-{n:02d}") for n in (4, 5)]  # a key reused: refused
    results = run_together([pay_job(clinic_system, clinic, *s) for s in submissions])

    assert unexpected(results, "idempotency_key_reused") == []
    refused = [r for r in results if isinstance(r, PaymentRefused)]
    assert len(refused) == 2
    by_key = defaultdict(set)
    for (_patient, _amount, key), result in zip(submissions, results, strict=True):
        if isinstance(result, Split):
            by_key[key].add(result.payment.pk)
    assert len(by_key) == 26 and all(len(ids) == 1 for ids in by_key.values())
    assert sum(1 for r in results if isinstance(r, Split) and r.replayed) == 4
    assert Payment.objects.count() == 26
    assert sorted(Payment.objects.values_list("idempotency_key", flat=True)) == sorted(by_key)
    # All the accounts' money was used, the rest in cash; nothing below zero.
    assert PersonalAccount.objects.aggregate(total=Sum("current_balance") + Sum("historical_balance"))["total"] == 0
    paid = Payment.objects.aggregate(amount=Sum("amount"), cash=Sum("cash_amount"))
    assert paid["amount"] - paid["cash"] == Decimal("590.00")
    assert_ledger_matches_balances()
    assert_payments_consistent()
    assert_money_conserved(opening)
    assert_serializable(opening)


# --- Two owners, two patients, crossing orders: the deadlock test ---


def test_r34_crossing_owner_orders_do_not_deadlock(region, clinic, clinic_system, binding_active):
    """P1's owners are O1 then O2, P2's are O2 then O1 (oldest binding first), so the two orders of R33
    cross; locks are taken in account id order whatever the R33 order, so 32 payments at once finish."""
    owner_1 = person(region, employee=True, current="300.00", historical="50.00", birth="19600101")
    owner_2 = person(region, employee=True, current="300.00", historical="50.00", birth="19610101")
    patient_1 = person(region, employee=False, birth="19300101")
    patient_2 = person(region, employee=False, birth="19310101")
    now = timezone.now()
    binding_active(owner_1, patient_1, since=now - dt.timedelta(days=10), relationship="parent")
    binding_active(owner_2, patient_1, since=now - dt.timedelta(days=5), relationship="parent")
    binding_active(owner_2, patient_2, since=now - dt.timedelta(days=10), relationship="parent")
    binding_active(owner_1, patient_2, since=now - dt.timedelta(days=5), relationship="parent")
    today = timezone.localdate()
    assert [c.payer for c in payment_candidates(patient=patient_1, on_date=today)] == [owner_1, owner_2]
    assert [c.payer for c in payment_candidates(patient=patient_2, on_date=today)] == [owner_2, owner_1]
    opening = opening_balances()

    patients = [patient_1, patient_2]
    submissions = [(patients[n % 2].pk, "25.00", f"cross-{n:02d}") for n in range(32)]
    started = time.monotonic()
    results = run_together([pay_job(clinic_system, clinic, *s) for s in submissions])

    assert unexpected(results) == []
    assert time.monotonic() - started < 30
    assert Payment.objects.count() == 32
    assert Payment.objects.aggregate(cash=Sum("cash_amount"))["cash"] == Decimal("100.00")  # 800 asked, 700 held
    assert_ledger_matches_balances()
    assert_payments_consistent()
    assert_money_conserved(opening)
    assert_serializable(opening)


# --- Refunds of one payment at once ---


@pytest.fixture
def paid_payment(region, clinic, clinic_system, binding_active):
    """1600.00 for a relative: 50.00 from her own account (30 + 20), 1500.50 from the owner's (1200 + 300.50),
    49.50 in cash."""
    owner = person(region, employee=True, current="1200.00", historical="300.50", birth="19800315")
    relative = person(region, employee=True, current="30.00", historical="20.00", birth="19820620", male=False)
    binding_active(owner, relative, relationship="spouse")
    opening = opening_balances()
    receipt = pay_job(clinic_system, clinic, relative.pk, "1600.00", "visit")()
    assert receipt.cash == Decimal("49.50")
    return receipt.payment, owner, relative, opening


def test_r34_refunds_at_once_never_refund_more_than_paid(paid_payment, clinic_system):
    payment, _owner, _relative, opening = paid_payment
    jobs = [refund_job(clinic_system, payment.pk, "300.00", f"refund-{n}") for n in range(8)]
    jobs += [refund_job(clinic_system, payment.pk, "300.00", "refund-0")] * 2  # a retry of one of them

    results = run_together(jobs)

    expected_refusals = ("refund_too_large", "refunded_already")
    errors = [r for r in results if not hasattr(r, "refund") and not isinstance(r, PaymentRefused)]
    assert errors == []
    assert all(r.code in expected_refusals for r in results if isinstance(r, PaymentRefused))
    refunds = PaymentRefund.objects.filter(payment=payment)
    assert refunds.count() == 5  # 5 x 300.00 fit in 1600.00; the sixth would not
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("1500.00") == refunds.aggregate(total=Sum("amount"))["total"]
    assert refunds.aggregate(cash=Sum("cash_amount"))["cash"] == Decimal("49.50")
    assert_ledger_matches_balances()
    assert_money_conserved(opening)
    # What went back to the accounts is what they paid, less what is still to refund (100.00).
    back = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REVERSAL).aggregate(total=Sum("amount"))["total"]
    assert back == Decimal("1450.50")


def test_r34_refunds_that_waited_for_a_lock_split_on_fresh_parts(paid_payment, clinic_system):
    """Four refunds of 300.00 arrive while the accounts are locked (by another payment or refund): they
    queue, then go through one by one. Each must give back the rest of the payment in reverse order: cash
    49.50, then the owner's previous years (300.50 in all), then the owner's current year. Never more to a
    part than it paid, and the parts' refunded amounts add up to the payment's."""
    payment, owner, relative, _opening = paid_payment
    account_ids = [owner.account.pk, relative.account.pk]
    locked = threading.Event()

    def hold_the_accounts() -> None:
        with transaction.atomic():
            accounts_lock(account_ids=account_ids)
            locked.set()
            time.sleep(1.5)

    def after_the_lock(job: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            assert locked.wait(timeout=10)
            return job()

        return run

    jobs = [guarded(hold_the_accounts)]
    jobs += [after_the_lock(refund_job(clinic_system, payment.pk, "300.00", f"refund-{n}")) for n in range(4)]
    results = run_together(jobs)

    assert results[0] is None and all(hasattr(r, "refund") for r in results[1:]), results
    payment.refresh_from_db()
    parts = list(PaymentPart.objects.filter(payment=payment).order_by("position"))
    refunds = PaymentRefund.objects.filter(payment=payment)
    cash_back = refunds.aggregate(cash=Sum("cash_amount"))["cash"]
    assert payment.refunded_amount == Decimal("1200.00") and cash_back == Decimal("49.50")
    assert_ledger_matches_balances()
    # Nothing was refunded from the relative's own part; the owner's previous years came back exactly.
    owner_account = PersonalAccount.objects.get(pk=owner.account.pk)
    assert (owner_account.current_balance, owner_account.historical_balance) == (Decimal("850.00"), Decimal("300.50"))
    assert [p.refunded_amount for p in parts] == [ZERO, Decimal("1150.50")]
    assert sum(p.refunded_amount for p in parts) + cash_back == payment.refunded_amount

"""Payments (R31–R34): deduction order, receipts, quotes, idempotency and refunds, through the service."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Institution, LedgerEntry, PersonalAccount
from family.models import Payment, PaymentKind, PaymentSource
from family.services.payments import PaymentRefused, payment_make, payment_quote, payment_refund
from tests.factories import InstitutionFactory, InsuredPersonFactory, RegionFactory, UserFactory, give_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinic(region):
    return InstitutionFactory(code="C320500009", name="苏州社区诊所", region=region, kind=Institution.Kind.CLINIC)


@pytest.fixture
def clinic_system(clinic):
    return UserFactory(username="clinic-system", role="partner", institution=clinic, phone=None)


@pytest.fixture
def spouse(citizen_a_family):
    person = citizen_a_family["spouse"]
    give_account(person, current="30.00", historical="20.00")
    return person


def pay(client, patient, amount, key, *, clinic, kind=PaymentKind.MEDICAL, **extra):
    return payment_make(
        client=client,
        idempotency_key=key,
        request_hash=f"{patient.pk}:{amount}:{kind}",
        patient=patient,
        card_number=patient.card_number or "",
        institution=clinic,
        kind=kind,
        amount=Decimal(amount),
        **extra,
    )


def balances(person) -> tuple[Decimal, Decimal]:
    account = PersonalAccount.objects.get(person=person)
    return account.current_balance, account.historical_balance


def assert_ledger_matches(*persons):
    for person in persons:
        account = PersonalAccount.objects.get(person=person)
        for part, cached in (("current", account.current_balance), ("historical", account.historical_balance)):
            total = sum(LedgerEntry.objects.filter(account=account, part=part).values_list("amount", flat=True))
            assert total == cached, (person, part)


def test_r33_own_account_first_then_owner_then_cash(citizen_a, spouse, binding_active, clinic, clinic_system):
    binding_active(citizen_a.person, spouse, relationship="spouse")
    receipt = pay(clinic_system, spouse, "1600.00", "k1", clinic=clinic)
    lines = [(line.source, line.payer, line.current, line.historical) for line in receipt.lines]
    assert lines == [
        (PaymentSource.OWN, spouse, Decimal("30.00"), Decimal("20.00")),
        (PaymentSource.BINDING, citizen_a.person, Decimal("1200.00"), Decimal("300.50")),
    ]
    assert receipt.cash == Decimal("49.50")
    assert balances(spouse) == (0, 0) and balances(citizen_a.person) == (0, 0)
    assert_ledger_matches(spouse, citizen_a.person)


def test_r33_quote_equals_the_charge_that_follows(citizen_a, spouse, binding_active, clinic, clinic_system):
    binding_active(citizen_a.person, spouse, relationship="spouse")
    quote = payment_quote(patient=spouse, institution=clinic, kind=PaymentKind.MEDICAL, amount=Decimal("120.00"))
    assert LedgerEntry.objects.filter(kind="payment").count() == 0
    receipt = pay(clinic_system, spouse, "120.00", "k1", clinic=clinic)
    assert [(line.payer, line.amount) for line in quote.lines] == [(line.payer, line.amount) for line in receipt.lines]
    assert quote.cash == receipt.cash == 0


def test_r33_oldest_binding_first_and_one_owner_per_payment(region, citizen_a, binding_active, clinic, clinic_system):
    from family.selectors import policy_in_force

    child = InsuredPersonFactory(region=region, birth="20150101", insurance_type="resident")
    father, mother = citizen_a.person, InsuredPersonFactory(region=region, birth="19830101", male=False)
    give_account(mother, current="100.00")
    now = timezone.now()
    binding_active(mother, child, since=now - dt.timedelta(days=30))
    binding_active(father, child, since=now - dt.timedelta(days=1))
    receipt = pay(clinic_system, child, "150.00", "k1", clinic=clinic)
    assert [(line.payer, line.amount) for line in receipt.lines] == [
        (mother, Decimal("100.00")),
        (father, Decimal("50.00")),
    ]
    policy = policy_in_force(region_code=region.code, on_date=timezone.localdate())
    policy.one_owner_per_payment = True
    policy.save()
    give_account(mother, current="100.00")  # the mother's account is topped up again
    quote = payment_quote(patient=child, institution=clinic, kind=PaymentKind.MEDICAL, amount=Decimal("150.00"))
    # Only the first owner in order pays; the father's money is not used, and the quote says why.
    assert [(line.payer, line.amount) for line in quote.lines] == [(mother, Decimal("100.00"))]
    assert quote.cash == Decimal("50.00")
    assert any(note["rule"] == "R33" for note in quote.notes)


def test_r34_same_key_charges_once_and_a_different_body_is_refused(
    citizen_a, spouse, binding_active, clinic, clinic_system
):
    binding_active(citizen_a.person, spouse, relationship="spouse")
    first = pay(clinic_system, spouse, "80.00", "same", clinic=clinic)
    again = pay(clinic_system, spouse, "80.00", "same", clinic=clinic)
    assert again.replayed and again.payment.pk == first.payment.pk
    assert Payment.objects.count() == 1 and LedgerEntry.objects.filter(kind="payment").count() == 3
    with pytest.raises(PaymentRefused) as refused:
        pay(clinic_system, spouse, "81.00", "same", clinic=clinic)
    assert refused.value.status == 409 and refused.value.code == "idempotency_key_reused"


def test_r34_partial_then_full_refund_goes_back_in_reverse_order(
    citizen_a, spouse, binding_active, clinic, clinic_system
):
    binding_active(citizen_a.person, spouse, relationship="spouse")
    receipt = pay(clinic_system, spouse, "1600.00", "k1", clinic=clinic)
    payment = receipt.payment
    result = payment_refund(
        client=clinic_system, payment_id=payment.pk, idempotency_key="r1", request_hash="a", amount=Decimal("100.00")
    )
    assert result.refund.cash_amount == Decimal("49.50")
    assert balances(citizen_a.person) == (0, Decimal("50.50"))  # previous years go back first
    again = payment_refund(
        client=clinic_system, payment_id=payment.pk, idempotency_key="r1", request_hash="a", amount=Decimal("100.00")
    )
    assert again.replayed and balances(citizen_a.person) == (0, Decimal("50.50"))
    with pytest.raises(PaymentRefused) as too_much:
        payment_refund(
            client=clinic_system,
            payment_id=payment.pk,
            idempotency_key="r2",
            request_hash="b",
            amount=Decimal("1600.00"),
        )
    assert too_much.value.code == "refund_too_large"
    payment_refund(client=clinic_system, payment_id=payment.pk, idempotency_key="r3", request_hash="c")
    assert balances(citizen_a.person) == (Decimal("1200.00"), Decimal("300.50"))
    assert balances(spouse) == (Decimal("30.00"), Decimal("20.00"))
    assert_ledger_matches(spouse, citizen_a.person)
    assert LedgerEntry.objects.filter(kind="reversal").count() >= 3


def test_r31_pharmacy_takes_only_drugs_devices_consumables(region, citizen_a, spouse, binding_active):
    pharmacy = InstitutionFactory(code="P3205001", region=region, kind=Institution.Kind.PHARMACY)
    with pytest.raises(PaymentRefused) as refused:
        payment_quote(
            patient=spouse, institution=pharmacy, kind=PaymentKind.PHARMACY, category="cosmetics", amount=Decimal(10)
        )
    assert refused.value.code == "category_not_allowed" and "R31" in refused.value.title
    with pytest.raises(PaymentRefused) as refused:
        payment_quote(patient=spouse, institution=pharmacy, kind="fitness", amount=Decimal(10))
    assert refused.value.code == "kind_not_allowed"
    quote = payment_quote(
        patient=spouse, institution=pharmacy, kind=PaymentKind.PHARMACY, category="drug", amount=Decimal(10)
    )
    assert quote.cash == 0


@pytest.mark.parametrize(
    "amount,code", [("0", "amount_not_positive"), ("-5", "amount_not_positive"), ("1.001", "amount_too_precise")]
)
def test_bad_amounts_charge_nothing(spouse, clinic, clinic_system, amount, code):
    with pytest.raises(PaymentRefused) as refused:
        pay(clinic_system, spouse, amount, "k", clinic=clinic)
    assert refused.value.code == code
    assert Payment.objects.count() == 0


def test_r33_cross_province_and_transfer_region_owners_do_not_pay(citizen_a, binding_active, clinic):
    wuhan = RegionFactory(code="420100", name="武汉市", province="420000")
    relative = InsuredPersonFactory(region=citizen_a.person.region, birth="19550101")
    far_owner = InsuredPersonFactory(region=wuhan, birth="19800101")
    give_account(far_owner, current="500.00")
    binding_active(far_owner, relative, relationship="parent")
    quote = payment_quote(patient=relative, institution=clinic, kind=PaymentKind.MEDICAL, amount=Decimal("50.00"))
    assert quote.lines == [] and quote.cash == Decimal("50.00")
    assert [note["rule"] for note in quote.notes] == ["R37"]


def test_r33_the_owners_order_is_configurable(region, citizen_a, binding_active, clinic, settings):
    child = InsuredPersonFactory(region=region, birth="20150101", insurance_type="resident")
    father, mother = citizen_a.person, InsuredPersonFactory(region=region, birth="19830101", male=False)
    give_account(mother, current="100.00")
    now = timezone.now()
    binding_active(mother, child, since=now - dt.timedelta(days=30))
    binding_active(father, child, since=now - dt.timedelta(days=1))
    quote = payment_quote(patient=child, institution=clinic, kind=PaymentKind.MEDICAL, amount=Decimal("50.00"))
    assert [line.payer for line in quote.lines] == [mother]  # default: the oldest binding first
    settings.SHARING_PAYER_ORDER = "newest_binding_first"
    quote = payment_quote(patient=child, institution=clinic, kind=PaymentKind.MEDICAL, amount=Decimal("50.00"))
    assert [line.payer for line in quote.lines] == [father]

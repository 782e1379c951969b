"""R31: contributions an owner pays for a bound relative from their own account, and the office's confirmation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from accounts.models import AuditEvent, LedgerEntry, Notification, PersonalAccount
from family import tasks
from family.insurance_office import LocalInsuranceOffice, OfficeAnswer, insurance_office
from family.models import Binding, BindingState, OfficeState, Payment, PaymentKind, PaymentSource
from family.selectors import policy_in_force
from family.services.contributions import contribution_confirm, contribution_pay
from family.services.payments import PaymentRefused

pytestmark = pytest.mark.django_db

RESIDENT = PaymentKind.RESIDENT_CONTRIBUTION
LTC = PaymentKind.LTC_CONTRIBUTION


@pytest.fixture
def owner(citizen_a):
    return citizen_a.person


@pytest.fixture
def child(citizen_a_family, binding_active, owner):
    """A's child, insured as a resident, bound to A."""
    child = citizen_a_family["child"]
    binding_active(owner, child, relationship="child")
    return child


@pytest.fixture
def office_not_yet(settings):
    settings.INSURANCE_OFFICE_BACKEND = "local_not_yet"


def pay(citizen_a, owner, relative, *, kind=RESIDENT, amount="380.00", key="key-1", year=2026):
    return contribution_pay(
        client=citizen_a,
        owner=owner,
        relative=relative,
        kind=kind,
        year=year,
        amount=Decimal(amount),
        idempotency_key=key,
    )


def balance(person) -> Decimal:
    return PersonalAccount.objects.get(person=person).balance


def test_r31_owner_pays_a_bound_residents_contribution_from_their_own_account(
    citizen_a, owner, child, office_not_yet, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        receipt = pay(citizen_a, owner, child)
    payment = receipt.payment
    assert (payment.kind, payment.amount, payment.cash_amount) == (RESIDENT, Decimal("380.00"), 0)
    assert payment.institution is None and payment.client == citizen_a and payment.patient == child
    assert payment.office_state == OfficeState.PENDING and payment.office_reference == ""
    assert [(line.source, line.payer) for line in receipt.lines] == [(PaymentSource.BINDING, owner)]
    assert balance(owner) == Decimal("1120.50")
    assert LedgerEntry.objects.filter(account__person=owner, kind="payment").count() == 1
    # The year is the payment's (the office needs it) and the audit row's, with who paid for whom.
    assert payment.contribution_year == 2026
    event = AuditEvent.objects.get(action="contribution.paid")
    assert event.detail == {"year": 2026, "kind": RESIDENT, "owner": owner.pk, "relative": child.pk}
    assert event.actor == citizen_a
    assert Notification.objects.filter(person=owner, kind="payment.from_account").count() == 1


def test_r31_progress_pending_then_confirmed_with_the_office_reference(citizen_a, owner, child, settings):
    settings.INSURANCE_OFFICE_BACKEND = "local_not_yet"
    payment = pay(citizen_a, owner, child).payment
    assert contribution_confirm(payment_id=payment.pk).office_state == OfficeState.PENDING
    payment.refresh_from_db()
    assert (payment.office_state, payment.office_reference, payment.office_confirmed_at) == ("pending", "", None)
    assert not Notification.objects.filter(kind="contribution.confirmed").exists()

    settings.INSURANCE_OFFICE_BACKEND = "local"
    confirmed = contribution_confirm(payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.office_state == OfficeState.CONFIRMED == confirmed.office_state
    assert payment.office_reference.startswith("YB") and payment.office_confirmed_at is not None
    notes = Notification.objects.filter(kind="contribution.confirmed")
    assert {n.person for n in notes} == {owner, child}
    assert all(payment.office_reference in n.body and "380.00" in n.body for n in notes)
    assert {n.link for n in notes} == {f"/family/records/contributions/{payment.pk}/"}


def test_r31_confirmation_is_idempotent(citizen_a, owner, child, office_not_yet, settings):
    payment = pay(citizen_a, owner, child).payment
    settings.INSURANCE_OFFICE_BACKEND = "local"
    first = contribution_confirm(payment_id=payment.pk)
    with time_machine.travel(timezone.now() + dt.timedelta(hours=1), tick=False):
        again = contribution_confirm(payment_id=payment.pk)
        tasks.contribution_confirm.delay(payment.pk)
    assert (again.office_reference, again.office_confirmed_at) == (first.office_reference, first.office_confirmed_at)
    assert Notification.objects.filter(kind="contribution.confirmed").count() == 2  # owner and relative, once
    assert AuditEvent.objects.filter(action="contribution.confirmed").count() == 1


def test_r31_the_office_answers_the_same_payment_the_same_way(citizen_a, owner, child, office_not_yet):
    payment = pay(citizen_a, owner, child).payment
    office = LocalInsuranceOffice()
    assert office.submit_contribution(payment) == office.submit_contribution(payment)
    assert LocalInsuranceOffice(confirms=False).submit_contribution(payment) == OfficeAnswer(confirmed=False)


def test_r31_an_unknown_office_backend_is_a_configuration_error(settings):
    settings.INSURANCE_OFFICE_BACKEND = "carrier-pigeon"
    with pytest.raises(ImproperlyConfigured, match="carrier-pigeon"):
        insurance_office()


def test_r31_beat_asks_again_about_pending_contributions_and_leaves_fresh_ones(
    citizen_a, owner, child, citizen_a_family, binding_active, settings
):
    settings.INSURANCE_OFFICE_BACKEND = "local_not_yet"
    parent = citizen_a_family["parent"]
    binding_active(owner, parent, relationship="parent")
    with time_machine.travel(timezone.now() - dt.timedelta(hours=2), tick=False):
        old = pay(citizen_a, owner, child, key="old").payment
    fresh = pay(citizen_a, owner, parent, key="fresh").payment
    assert tasks.contributions_confirm_pending.delay().get() == 0  # the office still says not yet
    settings.INSURANCE_OFFICE_BACKEND = "local"
    assert tasks.contributions_confirm_pending.delay().get() == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    # The fresh one is its own task's (queued on commit); the beat takes it only after the grace period.
    assert (old.office_state, fresh.office_state) == (OfficeState.CONFIRMED, OfficeState.PENDING)
    assert tasks.contributions_confirm_pending.delay().get() == 0


def test_r31_a_non_resident_is_refused_naming_r31(citizen_a, owner, citizen_a_family, binding_active):
    spouse = citizen_a_family["spouse"]  # employee insurance
    binding_active(owner, spouse, relationship="spouse")
    with pytest.raises(PaymentRefused) as refused:
        pay(citizen_a, owner, spouse)
    assert refused.value.code == "not_a_resident" and refused.value.title.startswith("R31")
    assert not Payment.objects.exists() and balance(owner) == Decimal("1500.50")


def test_r31_a_relative_not_bound_is_refused(citizen_a, owner, citizen_a_family, citizen_b):
    for stranger in (citizen_a_family["parent"], citizen_b.person):
        with pytest.raises(PaymentRefused) as refused:
            pay(citizen_a, owner, stranger, key=f"k{stranger.pk}")
        assert refused.value.code == "not_bound" and refused.value.title.startswith("R31")
        assert stranger.name not in refused.value.title  # R4: masked
    assert not Payment.objects.exists() and balance(owner) == Decimal("1500.50")


def test_r31_an_ended_or_pending_binding_does_not_pay(citizen_a, owner, citizen_a_family, binding_active):
    parent, spouse = citizen_a_family["parent"], citizen_a_family["spouse"]
    ended = binding_active(owner, parent, relationship="parent")
    pending = binding_active(owner, spouse, relationship="spouse")
    Binding.objects.filter(pk=ended.pk).update(state=BindingState.ENDED)
    Binding.objects.filter(pk=pending.pk).update(state=BindingState.UNDER_REVIEW)
    for relative in (parent, spouse):
        with pytest.raises(PaymentRefused) as refused:
            pay(citizen_a, owner, relative, key=f"k{relative.pk}")
        assert refused.value.code == "not_bound"


def test_r31_long_term_care_only_where_the_relatives_region_has_it(citizen_a, owner, child, region):
    with pytest.raises(PaymentRefused) as refused:
        pay(citizen_a, owner, child, kind=LTC, amount="90.00")
    assert refused.value.code == "no_long_term_care" and "R31" in refused.value.title
    policy = policy_in_force(region_code=region.code, on_date=timezone.localdate())
    policy.long_term_care = True
    policy.save()
    payment = pay(citizen_a, owner, child, kind=LTC, amount="90.00", key="ltc").payment
    assert payment.kind == LTC and payment.office_state == OfficeState.PENDING


def test_r31_only_contributions_are_paid_this_way(citizen_a, owner, child):
    with pytest.raises(PaymentRefused) as refused:
        pay(citizen_a, owner, child, kind=PaymentKind.MEDICAL)
    assert refused.value.code == "kind_not_allowed" and not Payment.objects.exists()


def test_r34_not_enough_balance_is_refused_and_never_topped_up_with_cash(citizen_a, owner, child):
    with pytest.raises(PaymentRefused) as refused:
        pay(citizen_a, owner, child, amount="1500.51")
    assert refused.value.code == "insufficient_balance"
    assert not Payment.objects.exists() and balance(owner) == Decimal("1500.50")


def test_r34_the_same_key_pays_once_and_another_body_is_refused(citizen_a, owner, child, office_not_yet):
    first = pay(citizen_a, owner, child)
    again = pay(citizen_a, owner, child)
    assert again.replayed and again.payment.pk == first.payment.pk
    assert Payment.objects.count() == 1 and AuditEvent.objects.filter(action="contribution.paid").count() == 1
    with pytest.raises(PaymentRefused) as refused:
        pay(citizen_a, owner, child, year=2027)
    assert refused.value.code == "idempotency_key_reused" and refused.value.status == 409
    assert balance(owner) == Decimal("1120.50")


@pytest.mark.django_db
def test_r31_only_a_contribution_has_a_year(owner, child, citizen_a):
    """The database refuses a year on a payment that is not a contribution (a constraint, not a convention)."""
    from django.db import IntegrityError, transaction

    receipt = pay(citizen_a, owner, child, year=2027)
    assert receipt.payment.contribution_year == 2027
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=receipt.payment.pk).update(kind="medical")

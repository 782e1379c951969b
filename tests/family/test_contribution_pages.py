"""R31 pages: the owner pays a relative's contribution through the real forms, then follows its progress."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from accounts.models import InsuranceType, Notification, PersonalAccount
from family.models import OfficeState, Payment, PaymentKind
from tests.factories import InsuredPersonFactory, UserFactory
from tests.page_forms import main_form, submit

pytestmark = pytest.mark.django_db

START = "/family/records/contribute/"


@pytest.fixture
def child_binding(citizen_a, citizen_a_family, binding_active):
    return binding_active(citizen_a.person, citizen_a_family["child"], relationship="child")


@pytest.fixture
def owner_client(client, citizen_a):
    client.force_login(citizen_a)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def details(binding, amount="380.00", kind=PaymentKind.RESIDENT_CONTRIBUTION, year=None) -> dict:
    from django.utils import timezone

    return {"binding": str(binding.pk), "kind": kind, "year": str(year or timezone.localdate().year), "amount": amount}


def steps(html: str) -> list[str]:
    return re.findall(r'data-state="(done|current|todo)"', html)


def pay_through_the_pages(client, binding, django_capture_on_commit_callbacks, **fields):
    """Fill the details, read the confirmation, press Pay as a browser would; the queued task runs on commit."""
    confirm = submit(client, START, details(binding, **fields))
    assert confirm.status_code == 200
    form = main_form(confirm.content.decode())
    assert {"binding", "kind", "year", "amount", "idempotency_key", "pay", "edit"} <= form.names
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(START, {**form.values, "pay": "1"})
    return confirm, form, response


def test_r31_owner_pays_then_sees_the_office_confirm_it(
    owner_client, citizen_a, child_binding, django_capture_on_commit_callbacks
):
    confirm, _form, response = pay_through_the_pages(owner_client, child_binding, django_capture_on_commit_callbacks)
    html = confirm.content.decode()
    assert "张*" in html and "¥380.00" in html and "Pay ¥380.00" in html
    assert child_binding.relative.name not in html  # R4
    assert steps(html) == ["done", "current", "todo"]
    payment = Payment.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("contribution_detail", args=[payment.pk])
    # The local office confirmed it in the task queued on commit.
    payment.refresh_from_db()
    assert payment.office_state == OfficeState.CONFIRMED
    assert PersonalAccount.objects.get(person=citizen_a.person).balance == Decimal("1120.50")
    progress = owner_client.get(response["Location"]).content.decode()
    assert steps(progress) == ["done", "done", "done"]
    assert payment.office_reference in progress and "Confirmed by the insurance office" in progress
    assert "¥380.00" in progress and payment.reference in progress


def test_r31_progress_waits_for_the_office_and_says_so(
    owner_client, child_binding, django_capture_on_commit_callbacks, settings
):
    settings.INSURANCE_OFFICE_BACKEND = "local_not_yet"
    _, _, response = pay_through_the_pages(owner_client, child_binding, django_capture_on_commit_callbacks)
    progress = owner_client.get(response["Location"]).content.decode()
    # paid ✓ → sent to the insurance office (under way) → confirmed (to do)
    assert steps(progress) == ["done", "current", "todo"]
    assert "has not confirmed it yet" in progress and "Check again" in progress
    assert 'data-testid="office-reference"' not in progress
    payment = Payment.objects.get()
    assert payment.office_state == OfficeState.PENDING
    # The records page links the contribution to its progress.
    records = owner_client.get(reverse("family_records")).content.decode()
    assert reverse("contribution_detail", args=[payment.pk]) in records
    assert "Waiting for the insurance office" in records


def test_r34_pressing_pay_twice_pays_once(owner_client, child_binding, django_capture_on_commit_callbacks):
    _, form, first = pay_through_the_pages(owner_client, child_binding, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        second = owner_client.post(START, {**form.values, "pay": "1"})
    assert second["Location"] == first["Location"] and Payment.objects.count() == 1


def test_r31_change_the_details_goes_back_with_what_was_entered(owner_client, child_binding):
    confirm = submit(owner_client, START, details(child_binding, amount="120.00"))
    form = main_form(confirm.content.decode())
    back = owner_client.post(START, {**form.values, "edit": "1"}).content.decode()
    assert 'data-testid="contribution-form"' in back and 'value="120.00"' in back
    assert form.values["idempotency_key"] in back  # the same request, not a new one
    assert not Payment.objects.exists()


def test_r31_a_non_resident_is_refused_on_the_page_naming_r31(
    owner_client, citizen_a, citizen_a_family, binding_active, django_capture_on_commit_callbacks
):
    spouse_binding = binding_active(citizen_a.person, citizen_a_family["spouse"], relationship="spouse")
    confirm = submit(owner_client, START, details(spouse_binding))
    form = main_form(confirm.content.decode())
    response = owner_client.post(START, {**form.values, "pay": "1"})
    html = response.content.decode()
    assert response.status_code == 200 and "R31: the resident-insurance contribution" in html
    assert not Payment.objects.exists()


def test_r31_a_binding_of_someone_else_cannot_be_chosen(
    owner_client, citizen_b, citizen_a_family, binding_active, child_binding
):
    foreign = binding_active(citizen_b.person, citizen_a_family["parent"], relationship="parent")
    page = owner_client.get(START).content.decode()
    assert f'value="{foreign.pk}"' not in page
    response = owner_client.post(START, {**details(foreign), "idempotency_key": "a" * 32, "pay": "1"})
    assert "Choose one of your family members listed here." in response.content.decode()
    assert not Payment.objects.exists()


def test_r31_the_relative_sees_the_progress_and_a_stranger_gets_404(
    client, owner_client, child_binding, citizen_b, django_capture_on_commit_callbacks
):
    _, _, response = pay_through_the_pages(owner_client, child_binding, django_capture_on_commit_callbacks)
    url = response["Location"]
    client.force_login(UserFactory(username="child", person=child_binding.relative))
    assert client.get(url).status_code == 200
    client.force_login(citizen_b)
    assert client.get(url).status_code == 404
    assert client.get(reverse("contribution_detail", args=[999999])).status_code == 404
    # A payment that is not a contribution has no progress page, even for its party.
    Payment.objects.update(kind=PaymentKind.MEDICAL, contribution_year=None)
    assert owner_client.get(url).status_code == 404


def test_r31_the_page_explains_when_there_is_nobody_to_pay_for_or_no_account(client, citizen_a, region):
    client.force_login(citizen_a)
    assert 'data-testid="no-relatives"' in client.get(START).content.decode()
    resident = InsuredPersonFactory(region=region, birth="19700101", insurance_type=InsuranceType.RESIDENT)
    client.force_login(UserFactory(username="resident", person=resident))
    assert 'data-testid="cannot-pay"' in client.get(START).content.decode()


def test_r31_the_form_offers_the_bound_relatives_masked_and_a_fresh_key_each_time(
    owner_client, child_binding, citizen_a
):
    first = main_form(owner_client.get(START).content.decode())
    second = main_form(owner_client.get(START).content.decode())
    assert re.fullmatch(r"[0-9a-f]{32}", first.values["idempotency_key"])
    assert first.values["idempotency_key"] != second.values["idempotency_key"]
    page = owner_client.get(START).content.decode()
    assert "张*" in page and child_binding.relative.name not in page and "¥1,500.50" in page


def test_r31_notifications_of_the_confirmation_link_to_the_progress(
    owner_client, citizen_a, child_binding, django_capture_on_commit_callbacks
):
    pay_through_the_pages(owner_client, child_binding, django_capture_on_commit_callbacks)
    payment = Payment.objects.get()
    page = owner_client.get(reverse("notifications")).content.decode()
    assert reverse("contribution_detail", args=[payment.pk]) in page
    assert payment.office_reference in page
    assert Notification.objects.filter(person=child_binding.relative, kind="contribution.confirmed").exists()

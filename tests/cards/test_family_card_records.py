"""R43 "see their records": the relative's family card page lists their latest personal account entries and
the payments made for them, newest first, masked (R4), read-only; the page does not grow with the rows."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import LedgerEntry
from cards.selectors import family_card_records_for
from family.models import Payment, PaymentPart, PaymentSource
from tests.cards.test_card_pages import client_for, text_of
from tests.factories import give_account


@pytest.fixture
def spouse(citizen_a_family):
    return citizen_a_family["spouse"]  # an employee


@pytest.fixture
def spouse_link(citizen_a, spouse, family_link_active):
    return family_link_active(citizen_a.person, spouse, relationship="spouse")


def pay(patient, payer, client_user, amount: str, number: int) -> Payment:
    payment = Payment.objects.create(
        client=client_user,
        idempotency_key=f"k{number}",
        request_hash="h",
        reference=f"P{number:08d}",
        patient=patient,
        kind="pharmacy",
        amount=Decimal(amount),
        cash_amount=Decimal("0"),
    )
    PaymentPart.objects.create(
        payment=payment, position=1, source=PaymentSource.BINDING, payer=payer, current_amount=Decimal(amount)
    )
    return payment


def entries(account, count: int) -> None:
    for number in range(count):
        LedgerEntry.objects.create(
            account=account, part="current", amount=Decimal(f"-{number + 1}.50"), kind="payment", reference=f"e{number}"
        )


def test_r43_the_page_shows_their_entries_and_payments_masked(citizen_a, spouse, spouse_link, clerk_x):
    account = give_account(spouse, current="300.00")
    entries(account, 2)
    pay(spouse, citizen_a.person, clerk_x, "12.30", 1)
    page = client_for(citizen_a).get(reverse("family_card_detail", args=[spouse_link.pk]))
    html, words = page.content.decode(), text_of(page)
    assert 'data-testid="records"' in html
    assert html.count('data-testid="ledger-entry"') == 3  # the opening balance and two payments
    assert html.count('data-testid="payment"') == 1 and "¥12.30" in words
    assert citizen_a.person.masked_name in words and citizen_a.person.name not in words  # R4
    assert "gives no right to spend" in words


def test_r43_only_the_latest_ten_and_the_query_count_does_not_grow(
    citizen_a, spouse, spouse_link, clerk_x, django_assert_max_num_queries
):
    account = give_account(spouse, current="300.00")
    entries(account, 3)
    for number in range(3):
        pay(spouse, citizen_a.person, clerk_x, "1.00", number)
    alice = client_for(citizen_a)
    url = reverse("family_card_detail", args=[spouse_link.pk])
    alice.get(url)  # warm: session, language
    with CaptureQueriesContext(connection) as few:
        alice.get(url)
    entries(account, 20)
    for number in range(3, 25):
        pay(spouse, citizen_a.person, clerk_x, "1.00", number)
    # The same queries with many rows: the records cost a fixed number (account, entries, payments, parts).
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = alice.get(url)
    html = page.content.decode()
    assert html.count('data-testid="ledger-entry"') == 10 and html.count('data-testid="payment"') == 10
    assert 'data-testid="more-entries"' in html and 'data-testid="more-payments"' in html
    records = family_card_records_for(relative=spouse)
    newest = Payment.objects.filter(patient=spouse).latest("created_at", "pk")
    assert records.payments[0].pk == newest.pk and records.entries[0].reference == "e19"  # newest first


def test_r43_a_resident_without_an_account_and_a_pending_link_show_no_records(
    citizen_a, citizen_a_family, family_link_active
):
    from cards.models import FamilyCardLink

    parent = citizen_a_family["parent"]  # a resident: no personal account
    link = family_link_active(citizen_a.person, parent)
    page = client_for(citizen_a).get(reverse("family_card_detail", args=[link.pk]))
    assert 'data-testid="no-account"' in page.content.decode()

    pending = FamilyCardLink.objects.create(
        manager=citizen_a.person, relative=citizen_a_family["child"], relationship="child"
    )
    page = client_for(citizen_a).get(reverse("family_card_detail", args=[pending.pk]))
    assert 'data-testid="records"' not in page.content.decode()

"""R35 共济使用明细: the sharing records of a person, as owner and as relative, by month, with totals.

``family_payments`` sets up A's family: A pays three times for relatives (two in March, one in April, the
April one partly refunded), and A's own mother pays once for A. Other modules of the records import it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from family.models import PaymentKind
from family.selectors_payments import ROLE_OWNER, ROLE_RELATIVE, sharing_records, sharing_records_all
from family.services.payments import payment_make, payment_refund
from tests.factories import InsuredPersonFactory, UserFactory, give_account

pytestmark = pytest.mark.django_db

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    """A moment in Asia/Shanghai, as the citizen reads it."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def make_payment(client, patient, amount: str, when: dt.datetime, *, institution, key: str, kind=PaymentKind.MEDICAL):
    """A payment at ``institution`` made at ``when`` (frozen time), through the payment service."""
    with time_machine.travel(when, tick=False):
        return payment_make(
            client=client,
            idempotency_key=key,
            request_hash=key,
            patient=patient,
            card_number=patient.card_number or "",
            institution=institution,
            kind=kind,
            amount=Decimal(amount),
        ).payment


@pytest.fixture
def family_payments(citizen_a, citizen_a_family, binding_active, institution_x, clerk_x, region):
    """A pays ¥100.00 (15 Mar) and ¥20.00 (2 Apr, ¥10.00 refunded) for the child, ¥50.50 (20 Mar) for the
    parent; A's mother pays ¥260.00 of a ¥1,600.00 bill for A on 25 Apr (A's own ¥1,340.00 pays first)."""
    owner = citizen_a.person
    child, parent = citizen_a_family["child"], citizen_a_family["parent"]
    binding_active(owner, child, relationship="child")
    binding_active(owner, parent, relationship="parent")
    march_child = make_payment(clerk_x, child, "100.00", at(2025, 3, 15), institution=institution_x, key="k1")
    march_parent = make_payment(clerk_x, parent, "50.50", at(2025, 3, 20), institution=institution_x, key="k2")
    april_child = make_payment(clerk_x, child, "20.00", at(2025, 4, 2, 9), institution=institution_x, key="k3")
    with time_machine.travel(at(2025, 4, 3), tick=False):
        payment_refund(
            client=clerk_x, payment_id=april_child.pk, idempotency_key="r1", request_hash="r1", amount=Decimal("10")
        )
    mother = InsuredPersonFactory(name="刘秀英", region=region, birth="19580202", male=False)
    give_account(mother, current="500.00")
    binding_active(mother, owner, relationship="child")
    for_a = make_payment(clerk_x, owner, "1600.00", at(2025, 4, 25), institution=institution_x, key="k4")
    return {
        "owner": owner,
        "mother": mother,
        "child": child,
        "parent": parent,
        "march_child": march_child,
        "march_parent": march_parent,
        "april_child": april_child,
        "for_a": for_a,
    }


def test_r35_owner_sees_what_left_their_account_by_month_newest_first(family_payments):
    records = sharing_records(person_id=family_payments["owner"].pk, role=ROLE_OWNER)
    assert records.count == 3
    assert [month.month for month in records.months] == [dt.date(2025, 4, 1), dt.date(2025, 3, 1)]
    assert [[r.payment_id for r in month.records] for month in records.months] == [
        [family_payments["april_child"].pk],
        [family_payments["march_parent"].pk, family_payments["march_child"].pk],
    ]
    april, march = records.months
    assert (march.owner.amount, march.owner.refunded, march.owner.count) == (Decimal("150.50"), 0, 2)
    assert (april.owner.amount, april.owner.refunded, april.owner.net) == (
        Decimal("20.00"),
        Decimal("10.00"),
        Decimal("10.00"),
    )
    assert (records.owner.amount, records.owner.refunded, records.owner.count) == (Decimal("170.50"), Decimal(10), 3)
    assert records.relative.count == 0


def test_r35_a_record_says_when_where_what_how_much_and_from_whose_account_masked(family_payments, institution_x):
    record = sharing_records(person_id=family_payments["owner"].pk, role=ROLE_OWNER).months[1].records[1]
    child, owner = family_payments["child"], family_payments["owner"]
    assert timezone.localtime(record.time).replace(tzinfo=None) == dt.datetime(2025, 3, 15, 10, 0)
    assert (record.institution_name, record.institution_code) == (institution_x.name, institution_x.code)
    assert record.kind == PaymentKind.MEDICAL and record.amount == Decimal("100.00")
    # R4: names show the family name, ID numbers the first 3 and last 4 characters.
    assert (record.patient_name, record.owner_name) == ("张*", "张*")
    assert record.patient_id_number == child.id_number[:3] + "*" * 11 + child.id_number[-4:]
    assert record.owner_id_number == owner.id_number[:3] + "*" * 11 + owner.id_number[-4:]
    assert record.relationship == "child" and record.role == ROLE_OWNER
    # The current year's part is spent first (family.rules.payment_split).
    assert (record.current_amount, record.historical_amount) == (Decimal("100.00"), 0)


def test_r35_relative_sees_what_was_paid_for_them_and_not_what_their_own_account_paid(family_payments):
    records = sharing_records(person_id=family_payments["owner"].pk, role=ROLE_RELATIVE)
    assert records.count == 1
    (record,) = records.records
    assert record.payment_id == family_payments["for_a"].pk
    assert (record.owner_name, record.amount, record.role) == ("刘*", Decimal("260.00"), ROLE_RELATIVE)
    assert records.relative.amount == Decimal("260.00") and records.owner.count == 0


def test_r35_both_roles_together_keep_their_totals_apart(family_payments):
    records = sharing_records(person_id=family_payments["owner"].pk)
    assert records.count == 4
    assert [r.role for r in records.records] == [ROLE_RELATIVE, ROLE_OWNER, ROLE_OWNER, ROLE_OWNER]
    april = records.months[0]
    assert (april.owner.amount, april.relative.amount) == (Decimal("20.00"), Decimal("260.00"))
    assert (records.owner.amount, records.relative.amount) == (Decimal("170.50"), Decimal("260.00"))


def test_r35_the_relative_of_a_payment_sees_it_from_their_side(family_payments):
    records = sharing_records(person_id=family_payments["child"].pk)
    assert [(r.role, r.amount, r.owner_name) for r in records.records] == [
        (ROLE_RELATIVE, Decimal("20.00"), "张*"),
        (ROLE_RELATIVE, Decimal("100.00"), "张*"),
    ]
    assert records.relative.amount == Decimal("120.00") and records.relative.refunded == Decimal("10.00")


def test_r35_a_stranger_has_no_records_of_the_family(family_payments, citizen_b):
    records = sharing_records(person_id=citizen_b.person_id)
    assert records.count == 0 and records.months == []


def test_r35_date_range_includes_both_days_in_shanghai_time(family_payments):
    owner = family_payments["owner"].pk
    march = sharing_records(person_id=owner, date_from=dt.date(2025, 3, 15), date_until=dt.date(2025, 3, 20))
    assert [r.payment_id for r in march.records] == [
        family_payments["march_parent"].pk,
        family_payments["march_child"].pk,
    ]
    assert march.owner.amount == Decimal("150.50")
    assert sharing_records(person_id=owner, date_from=dt.date(2025, 3, 16), date_until=dt.date(2025, 3, 19)).count == 0
    since_april = sharing_records(person_id=owner, date_from=dt.date(2025, 4, 1))
    assert since_april.count == 2 and since_april.relative.amount == Decimal("260.00")


def test_r35_shanghai_midnight_decides_the_month(citizen_a, citizen_a_family, binding_active, institution_x, clerk_x):
    child = citizen_a_family["child"]
    binding_active(citizen_a.person, child)
    # 31 Mar 16:30 UTC is 1 Apr 00:30 in Shanghai: an April record, on the 1st of April.
    late_utc = dt.datetime(2025, 3, 31, 16, 30, tzinfo=dt.UTC)
    make_payment(clerk_x, child, "5.00", late_utc, institution=institution_x, key="m")
    records = sharing_records(person_id=citizen_a.person_id)
    assert [month.month for month in records.months] == [dt.date(2025, 4, 1)]
    assert sharing_records(person_id=citizen_a.person_id, date_from=dt.date(2025, 4, 1)).count == 1
    assert sharing_records(person_id=citizen_a.person_id, date_until=dt.date(2025, 3, 31)).count == 0


def test_r35_pages_by_rows_keep_whole_month_totals(family_payments):
    owner = family_payments["owner"].pk
    first = sharing_records(person_id=owner, role=ROLE_OWNER, limit=2)
    second = sharing_records(person_id=owner, role=ROLE_OWNER, offset=2, limit=2)
    assert [len(m.records) for m in first.months] == [1, 1] and first.has_next and not first.has_previous
    assert [len(m.records) for m in second.months] == [1] and not second.has_next and second.has_previous
    # March is split over two pages; both show the whole month's total.
    assert first.months[1].owner.amount == second.months[0].owner.amount == Decimal("150.50")
    assert sharing_records(person_id=owner, offset=50).months == []


def test_r35_the_export_streams_every_record_of_the_selection(family_payments):
    records = list(sharing_records_all(person_id=family_payments["owner"].pk, role=ROLE_OWNER))
    assert [r.amount for r in records] == [Decimal("20.00"), Decimal("50.50"), Decimal("100.00")]


def test_r35_query_count_does_not_grow_with_the_rows(
    citizen_a, citizen_a_family, binding_active, institution_x, clerk_x, django_assert_num_queries
):
    child = citizen_a_family["child"]
    binding_active(citizen_a.person, child)
    make_payment(clerk_x, child, "1.00", at(2025, 1, 5), institution=institution_x, key="first")
    # 1: totals grouped by month and role; 2: the page's rows with payment, institution, patient, payer, binding.
    with django_assert_num_queries(2):
        one = sharing_records(person_id=citizen_a.person_id)
    for n in range(30):
        make_payment(clerk_x, child, "1.00", at(2025, 1 + n % 6, 6), institution=institution_x, key=f"k{n}")
    with django_assert_num_queries(2):
        many = sharing_records(person_id=citizen_a.person_id, limit=40)
    assert (one.count, many.count, len(many.records), len(many.months)) == (1, 31, 31, 6)
    # Nothing selected: the totals say so, and the rows are not asked for.
    with django_assert_num_queries(1):
        sharing_records(person_id=citizen_a.person_id, role=ROLE_RELATIVE)


def test_r35_a_login_of_the_relative_sees_the_same_from_their_side(family_payments):
    parent_user = UserFactory(username="parent", person=family_payments["parent"])
    records = sharing_records(person_id=parent_user.person_id)
    assert [(r.role, r.amount, r.patient_name) for r in records.records] == [(ROLE_RELATIVE, Decimal("50.50"), "张*")]

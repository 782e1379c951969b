"""R30/R34: the balance is the sum of the ledger's entries; entries are never edited or deleted."""

from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Sum

from accounts.errors import InsufficientBalance
from accounts.models import AuditEvent, LedgerEntry, PersonalAccount
from accounts.services import Posting, audit_record, ledger_post


def _sum(account, part):
    return LedgerEntry.objects.filter(account=account, part=part).aggregate(s=Sum("amount"))["s"] or Decimal(0)


def test_r30_balance_is_the_sum_of_entries(citizen_a):
    account = citizen_a.person.account
    ledger_post(account_id=account.pk, postings=[Posting("current", Decimal("-200.25"), "payment", "clinic")])
    account.refresh_from_db()
    assert account.current_balance == Decimal("999.75") == _sum(account, "current")
    assert account.historical_balance == Decimal("300.50") == _sum(account, "historical")


def test_r34_a_movement_that_would_overdraw_changes_nothing(citizen_a):
    account = citizen_a.person.account
    before = LedgerEntry.objects.count()
    with pytest.raises(InsufficientBalance):
        ledger_post(
            account_id=account.pk,
            postings=[
                Posting("historical", Decimal("-100"), "payment"),
                Posting("current", Decimal("-5000"), "payment"),
            ],
        )
    account.refresh_from_db()
    assert (account.current_balance, account.historical_balance) == (Decimal("1200.00"), Decimal("300.50"))
    assert LedgerEntry.objects.count() == before


def test_r30_entries_refuse_edit_and_delete_in_python(citizen_a):
    entry = LedgerEntry.objects.filter(account__person=citizen_a.person).first()
    entry.amount = Decimal("1")
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()
    with pytest.raises(ValueError):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=Decimal("1"))
    with pytest.raises(ValueError):
        LedgerEntry.objects.filter(pk=entry.pk).delete()


def test_r30_the_database_refuses_to_update_an_entry(citizen_a):
    entry = LedgerEntry.objects.filter(account__person=citizen_a.person).first()
    with pytest.raises(Exception) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_ledgerentry SET amount = 1 WHERE id = %s", [entry.pk])
    assert "append-only" in str(refused.value)


@pytest.mark.postgres
def test_r30_postgres_refuses_to_delete_an_entry(citizen_a):
    entry = LedgerEntry.objects.filter(account__person=citizen_a.person).first()
    with pytest.raises(Exception) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_ledgerentry WHERE id = %s", [entry.pk])
    assert "append-only" in str(refused.value)


def test_r51_audit_events_are_append_only_too(citizen_a):
    event = audit_record(actor=citizen_a, action="test.viewed", target=citizen_a.person)
    assert "***" in event.target_label  # R4: the label is masked
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_auditevent SET action = 'x' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "test.viewed"


def test_r34_the_database_refuses_a_negative_cached_balance(citizen_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        PersonalAccount.objects.filter(pk=citizen_a.person.account.pk).update(current_balance=Decimal("-1"))

"""R27 through C1: an import that suspends an owner, or moves them out of 职工医保, ends their bindings."""

import csv
import io

import pytest
from django.core.management import call_command
from django.utils import translation

from accounts.models import InsuranceType
from family.models import Binding, BindingState

HEADER = [
    "id_number", "name", "insurance_type", "status", "region_code", "card_number", "phone",
    "account_balance", "historical_balance",
]  # fmt: skip


def _row(person, **changes):
    account = person.account
    row = {
        "id_number": person.id_number,
        "name": person.name,
        "insurance_type": person.insurance_type,
        "status": person.status,
        "region_code": person.region_id,
        "card_number": "",
        "phone": "",
        "account_balance": f"{account.balance:.2f}",
        "historical_balance": f"{account.historical_balance:.2f}",
    }
    row.update(changes)
    return [row[name] for name in HEADER]


def _import(tmp_path, rows):
    path = tmp_path / "persons.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    out = io.StringIO()
    try:
        call_command("import_persons", str(path), stdout=out)
    except SystemExit as exit_:  # the command exits 1 when rows are rejected
        assert exit_.code == 0, out.getvalue()
    return out.getvalue()


@pytest.mark.parametrize(
    ("changes", "reason_word"),
    [
        ({"status": "suspended"}, "suspended"),
        ({"insurance_type": "resident", "account_balance": "0", "historical_balance": "0"}, "employee"),
    ],
)
def test_r27_an_import_that_stops_the_owner_sharing_ends_the_bindings(
    tmp_path, citizen_a, citizen_a_family, binding_insert, django_capture_on_commit_callbacks, changes, reason_word
):
    if changes.get("insurance_type") == InsuranceType.RESIDENT:
        # A resident row carries no balance (C1); the owner's money stays theirs (R30), so empty it first.
        from accounts.services import Posting, ledger_post

        account = citizen_a.person.account
        ledger_post(
            account_id=account.pk,
            postings=[
                Posting("current", -account.current_balance, "adjustment"),
                Posting("historical", -account.historical_balance, "adjustment"),
            ],
        )
        citizen_a.person.account.refresh_from_db()
    active = binding_insert(citizen_a.person, citizen_a_family["child"], state=BindingState.ACTIVE)
    pending = binding_insert(citizen_a.person, citizen_a_family["spouse"], state=BindingState.UNDER_REVIEW)
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        output = _import(tmp_path, [_row(citizen_a.person, **changes)])
    assert output.strip().splitlines()[-1] == "imported 0, updated 1, unchanged 0, rejected 0"
    active.refresh_from_db()
    pending.refresh_from_db()
    assert active.state == BindingState.ENDED
    assert pending.state == BindingState.REJECTED
    assert reason_word in active.events.last().reason.lower() or reason_word in active.end_reason.lower()


def test_r27_an_unchanged_owner_keeps_the_bindings(tmp_path, citizen_a, citizen_a_family, binding_insert):
    active = binding_insert(citizen_a.person, citizen_a_family["child"], state=BindingState.ACTIVE)
    _import(tmp_path, [_row(citizen_a.person)])
    assert Binding.objects.get(pk=active.pk).state == BindingState.ACTIVE

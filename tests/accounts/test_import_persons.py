"""C1 ``import_persons``: upsert by ID number, bad rows reported by line, ledger adjustments, batching."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.db.models import Sum
from django.utils import translation

from accounts.models import InsuranceStatus, InsuranceType, InsuredPerson, LedgerEntry, PersonalAccount
from accounts.person_import import (
    HEADER,
    ImportFileError,
    PersonRowError,
    _SeenIdNumbers,
    parse_person_row,
    persons_import,
)
from accounts.services import Posting, ledger_post
from tests.factories import InsuredPersonFactory, RegionFactory, give_account, make_id_number

NOW = dt.datetime(2025, 6, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TODAY = NOW.date()

WANG = make_id_number("320505", "19800315", 11)  # male
LI = make_id_number("320505", "19820620", 22)  # female
CHEN = make_id_number("420102", "20150101", 33)  # a resident child


@pytest.fixture(autouse=True)
def frozen_time(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def regions(db):
    return [
        RegionFactory(code="320500", name="苏州市", province="320000"),
        RegionFactory(code="420100", name="武汉市", province="420000"),
    ]


def person_row(id_number: str, **fields: str) -> dict[str, str]:
    """A good employee row unless told otherwise."""
    row = {
        "id_number": id_number,
        "name": "王五",
        "insurance_type": "employee",
        "status": "active",
        "region_code": "320500",
        "card_number": "",
        "phone": "",
        "account_balance": "",
        "historical_balance": "",
    }
    row.update(fields)
    return row


def write_csv(path: Path, rows: list[dict[str, str] | list[str]], *, header=HEADER, bom: bool = False) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row[column] for column in HEADER] if isinstance(row, dict) else row)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8"))
    return path


def run_import(path: Path) -> tuple[int, list[str], str]:
    """Run the command as a shell would: exit code, stdout lines, stderr. English reasons for the asserts."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with translation.override("en"):
        try:
            call_command("import_persons", str(path), stdout=out, stderr=err)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue().splitlines(), err.getvalue()


def ledger_sums(account: PersonalAccount) -> dict[str, Decimal]:
    sums = {"current": Decimal("0.00"), "historical": Decimal("0.00")}
    for part, total in account.entries.values_list("part").annotate(total=Sum("amount")):
        sums[part] = total
    return sums


def assert_ledger_explains(account: PersonalAccount) -> None:
    """R30: the sum of an account's entries per part is its cached balance."""
    account.refresh_from_db()
    assert ledger_sums(account) == {"current": account.current_balance, "historical": account.historical_balance}


# --- happy path ---------------------------------------------------------------------------------


def test_c1_imports_persons_with_accounts_for_employees(regions, tmp_path):
    path = write_csv(
        tmp_path / "persons.csv",
        [
            person_row(
                WANG,
                name="王五",
                card_number="B00000001",
                phone="13900000001",
                account_balance="2300.00",
                historical_balance="150.5",
            ),
            person_row(LI, name="李娜", card_number="B00000002"),
            person_row(CHEN, name="陈小明", insurance_type="resident", region_code="420100"),
        ],
    )

    code, lines, err = run_import(path)

    assert (code, lines, err) == (0, ["imported 3, updated 0, unchanged 0, rejected 0"], "")
    wang = InsuredPerson.objects.get(id_number=WANG)
    assert (wang.name, wang.insurance_type, wang.status, wang.region_id, wang.card_number, wang.phone) == (
        "王五",
        "employee",
        "active",
        "320500",
        "B00000001",
        "13900000001",
    )
    assert (wang.account.current_balance, wang.account.historical_balance) == (Decimal("2149.50"), Decimal("150.50"))
    assert set(wang.account.entries.values_list("part", "amount", "kind")) == {
        ("current", Decimal("2149.50"), "adjustment"),
        ("historical", Decimal("150.50"), "adjustment"),
    }
    assert_ledger_explains(wang.account)
    li = InsuredPerson.objects.get(id_number=LI)
    # Blank amounts mean 0: an employee still gets an (empty) account, with no zero entries.
    assert (li.account.current_balance, li.account.historical_balance) == (0, 0)
    assert not li.account.entries.exists()
    chen = InsuredPerson.objects.get(id_number=CHEN)
    assert chen.insurance_type == InsuranceType.RESIDENT
    assert chen.card_number is None
    assert not PersonalAccount.objects.filter(person=chen).exists()


def test_r2_birth_date_and_sex_come_from_the_id_number(regions, tmp_path):
    run_import(write_csv(tmp_path / "p.csv", [person_row(WANG), person_row(LI)]))

    assert InsuredPerson.objects.values_list("id_number", "birth_date", "sex").order_by("birth_date")[::1] == [
        (WANG, dt.date(1980, 3, 15), "M"),
        (LI, dt.date(1982, 6, 20), "F"),
    ]


def test_r1_lower_case_x_is_accepted_and_stored_upper_case(regions, tmp_path):
    with_x = next(
        id_number for seq in range(1000) if (id_number := make_id_number("320505", "19700101", seq)).endswith("X")
    )

    code, lines, _ = run_import(write_csv(tmp_path / "p.csv", [person_row(with_x.lower())]))

    assert (code, lines) == (0, ["imported 1, updated 0, unchanged 0, rejected 0"])
    assert InsuredPerson.objects.filter(id_number=with_x).exists()


def test_c1_bom_is_accepted(regions, tmp_path):
    code, lines, _ = run_import(write_csv(tmp_path / "p.csv", [person_row(WANG)], bom=True))

    assert (code, lines) == (0, ["imported 1, updated 0, unchanged 0, rejected 0"])
    assert InsuredPerson.objects.filter(id_number=WANG).exists()


# --- upsert -------------------------------------------------------------------------------------


def test_c1_second_run_changes_nothing(regions, tmp_path):
    rows = [
        person_row(WANG, card_number="B00000001", account_balance="2300", historical_balance="150.00"),
        person_row(LI, account_balance="0.10"),
        person_row(CHEN, insurance_type="resident", region_code="420100", account_balance="0.00"),
    ]
    path = write_csv(tmp_path / "p.csv", rows)
    run_import(path)
    entries = LedgerEntry.objects.count()
    stamps = dict(InsuredPerson.objects.values_list("id_number", "updated_at"))

    code, lines, _ = run_import(path)

    assert (code, lines) == (0, ["imported 0, updated 0, unchanged 3, rejected 0"])
    assert LedgerEntry.objects.count() == entries == 3
    assert dict(InsuredPerson.objects.values_list("id_number", "updated_at")) == stamps


def test_c1_changed_row_updates_the_person(regions, tmp_path, time_machine):
    run_import(write_csv(tmp_path / "p.csv", [person_row(WANG, phone="1"), person_row(LI)]))
    time_machine.move_to(NOW + dt.timedelta(days=1), tick=False)

    code, lines, _ = run_import(
        write_csv(
            tmp_path / "p2.csv", [person_row(WANG, name="王六", phone="2", card_number="B12345678"), person_row(LI)]
        )
    )

    assert (code, lines) == (0, ["imported 0, updated 1, unchanged 1, rejected 0"])
    wang = InsuredPerson.objects.get(id_number=WANG)
    assert (wang.name, wang.phone, wang.card_number) == ("王六", "2", "B12345678")
    assert wang.updated_at == NOW + dt.timedelta(days=1)
    assert InsuredPerson.objects.get(id_number=LI).updated_at == NOW


def test_c1_changed_balance_alone_is_updated_with_an_adjustment_entry(regions, tmp_path):
    run_import(write_csv(tmp_path / "p.csv", [person_row(WANG, account_balance="2300.00", historical_balance="150")]))

    code, lines, _ = run_import(
        write_csv(tmp_path / "p2.csv", [person_row(WANG, account_balance="2000.00", historical_balance="150")])
    )

    assert (code, lines) == (0, ["imported 0, updated 1, unchanged 0, rejected 0"])
    account = PersonalAccount.objects.get(person__id_number=WANG)
    assert (account.current_balance, account.historical_balance) == (Decimal("1850.00"), Decimal("150.00"))
    latest = account.entries.order_by("-id").first()
    assert (latest.part, latest.amount, latest.kind) == ("current", Decimal("-300.00"), "adjustment")
    assert account.entries.count() == 3
    assert_ledger_explains(account)


def test_r30_adjustment_moves_from_what_the_ledger_holds_never_overwrites(regions, tmp_path):
    person = InsuredPersonFactory(region=regions[0], birth="19800315", card_number=None)
    account = give_account(person, current="100.00")
    ledger_post(account_id=account.pk, postings=[Posting("current", Decimal("-30.00"), "payment", "pharmacy")])

    code, lines, _ = run_import(
        write_csv(
            tmp_path / "p.csv",
            [person_row(person.id_number, name=person.name, account_balance="120.50", historical_balance="50.50")],
        )
    )

    assert (code, lines) == (0, ["imported 0, updated 1, unchanged 0, rejected 0"])
    account.refresh_from_db()
    assert (account.current_balance, account.historical_balance) == (Decimal("70.00"), Decimal("50.50"))
    assert list(account.entries.filter(kind="adjustment").order_by("id").values_list("part", "amount"))[1:] == [
        ("historical", Decimal("50.50")),
    ]
    # The payment stays; the current part needed no adjustment (100 - 30 = 70 already).
    assert account.entries.filter(kind="payment").count() == 1
    assert_ledger_explains(account)


def test_r30_employee_who_becomes_resident_keeps_the_account(regions, tmp_path):
    run_import(write_csv(tmp_path / "p.csv", [person_row(WANG, account_balance="500.00", historical_balance="100")]))
    entries = LedgerEntry.objects.count()

    code, lines, _ = run_import(write_csv(tmp_path / "p2.csv", [person_row(WANG, insurance_type="resident")]))

    assert (code, lines) == (0, ["imported 0, updated 1, unchanged 0, rejected 0"])
    wang = InsuredPerson.objects.get(id_number=WANG)
    assert wang.insurance_type == InsuranceType.RESIDENT
    assert (wang.account.current_balance, wang.account.historical_balance) == (Decimal("400.00"), Decimal("100.00"))
    assert LedgerEntry.objects.count() == entries


def test_c1_resident_who_becomes_employee_gets_an_account(regions, tmp_path):
    run_import(write_csv(tmp_path / "p.csv", [person_row(WANG, insurance_type="resident")]))

    code, lines, _ = run_import(write_csv(tmp_path / "p2.csv", [person_row(WANG, account_balance="12.34")]))

    assert (code, lines) == (0, ["imported 0, updated 1, unchanged 0, rejected 0"])
    account = PersonalAccount.objects.get(person__id_number=WANG)
    assert account.current_balance == Decimal("12.34")
    assert_ledger_explains(account)


def test_c1_eligibility_changes_are_collected_for_r27(regions, tmp_path):
    first = write_csv(tmp_path / "p.csv", [person_row(WANG), person_row(LI), person_row(CHEN)])
    with first.open("rb") as source:
        persons_import(source=source, today=TODAY)
    second = write_csv(
        tmp_path / "p2.csv",
        [
            person_row(WANG, status="suspended"),
            person_row(LI, region_code="420100"),
            person_row(CHEN, name="陈七", phone="13900000000"),
        ],
    )

    with second.open("rb") as source:
        result = persons_import(source=source, today=TODAY)

    assert (result.imported, result.updated, result.unchanged, result.rejected) == (0, 3, 0, 0)
    assert sorted(result.changed_eligibility_person_ids) == sorted(
        InsuredPerson.objects.filter(id_number__in=[WANG, LI]).values_list("pk", flat=True)
    )
    assert InsuredPerson.objects.get(id_number=WANG).status == InsuranceStatus.SUSPENDED


# --- bad rows -----------------------------------------------------------------------------------

BAD_ROWS = {
    "r1_length": ({"id_number": WANG[:17]}, "id_number: An ID number has 18 characters; this one has 17."),
    "r1_characters": ({"id_number": WANG[:16] + "AB"}, "id_number: An ID number is 17 digits followed by"),
    "r1_date": (
        {"id_number": make_id_number("320505", "19790231", 75)},
        "id_number: The birth date in this ID number (19790231) does not exist.",
    ),
    "r1_future_date": (
        {"id_number": make_id_number("320505", "20250602", 75)},
        "id_number: The birth date in this ID number (20250602) is in the future.",
    ),
    "r1_check_character": (
        {"id_number": WANG[:17] + ("1" if WANG[17] != "1" else "2")},
        "id_number: The check character (the last one) of this ID number is wrong.",
    ),
    "unknown_region": ({"region_code": "000000"}, "region_code: unknown pooling region “000000”"),
    "malformed_region": ({"region_code": "3205"}, "region_code: unknown pooling region “3205”"),
    "unknown_insurance_type": ({"insurance_type": "retired"}, "insurance_type: unknown type “retired”"),
    "unknown_status": ({"status": "dead"}, "status: unknown status “dead”"),
    "empty_name": ({"name": "  "}, "name is empty"),
    "negative_amount": ({"account_balance": "-1.00"}, "account_balance: -1.00 is negative"),
    "malformed_amount": ({"account_balance": "1,000.00"}, "account_balance: “1,000.00” is not an amount"),
    "three_decimals": ({"historical_balance": "0.125"}, "historical_balance: 0.125 has more than 2 decimals"),
    "historical_above_total": (
        {"account_balance": "100", "historical_balance": "100.01"},
        "historical_balance (100.01) is greater than account_balance (100.00)",
    ),
    "resident_with_balance": (
        {"insurance_type": "resident", "historical_balance": "0", "account_balance": "0.01"},
        "a resident has no personal account",
    ),
    "card_number_pattern": ({"card_number": "12345678"}, "card_number: “12345678” does not match"),
}


@pytest.mark.parametrize("fields,reason", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_c1_bad_row_is_skipped_and_reported_with_its_line(regions, tmp_path, fields, reason):
    bad = {**person_row(make_id_number("320505", "19750505", 55)), **fields}
    path = write_csv(tmp_path / "p.csv", [person_row(LI), bad, person_row(WANG)])

    code, lines, _ = run_import(path)

    assert code == 1
    assert len(lines) == 2
    assert lines[0].startswith(f"line 3: {reason}")
    assert lines[-1] == "imported 2, updated 0, unchanged 0, rejected 1"
    assert set(InsuredPerson.objects.values_list("id_number", flat=True)) == {LI, WANG}


def test_c1_every_problem_of_a_row_is_named(regions, tmp_path):
    path = write_csv(tmp_path / "p.csv", [person_row(WANG, name="", status="gone", account_balance="x")])

    _, lines, _ = run_import(path)

    assert lines[0] == (
        "line 2: name is empty; status: unknown status “gone” (expected active or suspended); "
        "account_balance: “x” is not an amount"
    )


def test_c1_duplicate_id_number_first_occurrence_wins(regions, tmp_path):
    path = write_csv(
        tmp_path / "p.csv",
        [person_row(WANG, name="第一"), person_row(LI), person_row(WANG.lower(), name="第二"), person_row(WANG)],
    )

    code, lines, _ = run_import(path)

    assert code == 1
    assert lines == [
        "line 4: id_number: this ID number is already on an earlier line of the file (the first occurrence wins)",
        "line 5: id_number: this ID number is already on an earlier line of the file (the first occurrence wins)",
        "imported 2, updated 0, unchanged 0, rejected 2",
    ]
    assert InsuredPerson.objects.get(id_number=WANG).name == "第一"


def test_c1_duplicate_of_a_bad_row_is_still_a_duplicate(regions, tmp_path):
    path = write_csv(tmp_path / "p.csv", [person_row(WANG, region_code="000000"), person_row(WANG)])

    code, lines, _ = run_import(path)

    assert code == 1
    assert lines[0].startswith("line 2: region_code")
    assert lines[1].startswith("line 3: id_number: this ID number is already on an earlier line")
    assert not InsuredPerson.objects.exists()


def test_r3_card_number_used_earlier_in_the_file_is_refused(regions, tmp_path):
    path = write_csv(
        tmp_path / "p.csv", [person_row(WANG, card_number="B00000001"), person_row(LI, card_number="B00000001")]
    )

    code, lines, _ = run_import(path)

    assert code == 1
    assert lines == [
        "line 3: card_number: B00000001 is already used by another person",
        "imported 1, updated 0, unchanged 0, rejected 1",
    ]
    assert InsuredPerson.objects.get(card_number="B00000001").id_number == WANG


def test_r3_card_number_used_earlier_in_the_file_across_batches_is_refused(regions, tmp_path):
    path = write_csv(
        tmp_path / "p.csv",
        [person_row(WANG, card_number="B00000001"), person_row(CHEN), person_row(LI, card_number="B00000001")],
    )

    with path.open("rb") as source:
        rejected = []
        result = persons_import(source=source, today=TODAY, batch_size=1, on_rejected=lambda *r: rejected.append(r))

    assert (result.imported, result.rejected) == (2, 1)
    assert [line for line, _ in rejected] == [4]


def test_r3_card_number_held_by_another_person_in_the_database_is_refused(regions, tmp_path):
    InsuredPersonFactory(region=regions[0], card_number="B00000001")

    code, lines, _ = run_import(write_csv(tmp_path / "p.csv", [person_row(WANG, card_number="B00000001")]))

    assert code == 1
    assert lines[0] == "line 2: card_number: B00000001 is already used by another person"
    assert not InsuredPerson.objects.filter(id_number=WANG).exists()


def test_r3_card_number_pattern_is_configurable(regions, tmp_path, settings):
    settings.CARD_NUMBER_PATTERN = r"^[0-9]{10}$"
    path = write_csv(
        tmp_path / "p.csv", [person_row(WANG, card_number="0123456789"), person_row(LI, card_number="B00000001")]
    )

    code, lines, _ = run_import(path)

    assert code == 1
    assert lines[0] == "line 3: card_number: “B00000001” does not match the card number pattern ^[0-9]{10}$"
    assert InsuredPerson.objects.get(id_number=WANG).card_number == "0123456789"


def test_c1_row_with_wrong_number_of_fields_is_bad(regions, tmp_path):
    path = write_csv(tmp_path / "p.csv", [person_row(WANG), [LI, "李娜", "employee"]])

    code, lines, _ = run_import(path)

    assert (code, lines) == (
        1,
        ["line 3: expected 9 fields, found 3", "imported 1, updated 0, unchanged 0, rejected 1"],
    )


def test_c1_row_that_is_not_utf8_is_bad(regions, tmp_path):
    path = write_csv(tmp_path / "p.csv", [person_row(WANG), person_row(LI, name="李娜")])
    path.write_bytes(path.read_bytes().replace("李娜".encode(), "李娜".encode("gbk")))

    code, lines, _ = run_import(path)

    assert code == 1
    assert lines[0] == "line 3: the row is not valid UTF-8"


def test_c1_line_numbers_count_file_lines(regions, tmp_path):
    """A quoted field may span lines; N is the line the bad row starts on in the file."""
    path = write_csv(
        tmp_path / "p.csv",
        [person_row(LI, name="李\n娜"), person_row(WANG, status="x"), person_row(CHEN, name="陈七")],
    )
    path.write_bytes(path.read_bytes() + b"\r\n")  # a trailing blank line is not a row

    code, lines, _ = run_import(path)

    assert code == 1
    assert lines == [
        "line 2: name contains a line break or another control character",
        "line 4: status: unknown status “x” (expected active or suspended)",
        "imported 1, updated 0, unchanged 0, rejected 2",
    ]


def test_c1_row_that_is_not_valid_csv_is_bad(regions, tmp_path):
    path = write_csv(tmp_path / "p.csv", [person_row(WANG)])
    path.write_bytes(path.read_bytes() + b'"' + b"x" * 200_000 + b'"\r\n')

    code, lines, _ = run_import(path)

    assert code == 1
    assert lines[0].startswith("line 3: the row is not valid CSV: field larger than field limit")
    assert lines[-1] == "imported 1, updated 0, unchanged 0, rejected 1"


def test_c1_bad_rows_are_reported_in_line_order(regions, tmp_path):
    path = write_csv(
        tmp_path / "p.csv",
        [
            person_row(WANG, card_number="B00000001"),
            person_row(LI, card_number="B00000001"),  # found when the batch is written
            person_row(CHEN, status="x"),  # found while reading
        ],
    )

    _, lines, _ = run_import(path)

    assert [line.split(":")[0] for line in lines[:-1]] == ["line 3", "line 4"]


def test_c1_seen_id_numbers_remember_every_number_as_they_grow():
    seen = _SeenIdNumbers(bits=4)
    numbers = [make_id_number("320505", dt.date(1950, 1, 1) + dt.timedelta(days=n), n % 1000) for n in range(3000)]

    assert all(seen.add(number) for number in numbers)
    assert not any(seen.add(number) for number in numbers)
    assert seen.add(make_id_number("320505", "20000101", 1))


# --- the file as a whole ------------------------------------------------------------------------


def test_c1_wrong_header_imports_nothing_and_exits_1(regions, tmp_path):
    header = [*HEADER[:-1], "history"]
    path = write_csv(tmp_path / "p.csv", [person_row(WANG)], header=header)

    code, lines, err = run_import(path)

    assert code == 1
    assert "Wrong header" in err
    assert ",".join(HEADER) in err
    assert lines == ["imported 0, updated 0, unchanged 0, rejected 0"]
    assert not InsuredPerson.objects.exists()


def test_c1_empty_file_is_an_error(regions, tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"")

    code, lines, err = run_import(path)

    assert code == 1
    assert "empty" in err
    assert lines == ["imported 0, updated 0, unchanged 0, rejected 0"]


def test_c1_missing_file_is_an_error(regions, tmp_path):
    code, lines, err = run_import(tmp_path / "missing.csv")

    assert code == 1
    assert "missing.csv" in err
    assert lines[-1] == "imported 0, updated 0, unchanged 0, rejected 0"


def test_c1_exit_code_0_only_without_rejected_rows(regions, tmp_path):
    good = write_csv(tmp_path / "good.csv", [person_row(WANG)])
    bad = write_csv(tmp_path / "bad.csv", [person_row(LI), person_row(CHEN, region_code="999999")])

    assert run_import(good)[0] == 0
    code, lines, _ = run_import(bad)

    assert code == 1
    assert lines[-1] == "imported 1, updated 0, unchanged 0, rejected 1"


def test_c1_summary_is_the_last_line_in_chinese_too(regions, tmp_path):
    path = write_csv(tmp_path / "p.csv", [person_row(WANG), person_row(LI, status="x")])
    out = io.StringIO()

    with translation.override("zh-hans"), pytest.raises(SystemExit) as exit_:
        call_command("import_persons", str(path), stdout=out)

    assert exit_.value.code == 1
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("line 3: ")
    assert lines[-1] == "imported 1, updated 0, unchanged 0, rejected 1"


def test_c1_parse_person_row_is_pure(regions):
    row = parse_person_row(
        person_row(WANG.lower(), name=" 王五 ", card_number=" B00000001 ", account_balance="10", historical_balance=""),
        today=TODAY,
        region_codes={"320500"},
    )

    assert (row.id_number, row.name, row.card_number, row.birth_date, row.sex) == (
        WANG,
        "王五",
        "B00000001",
        dt.date(1980, 3, 15),
        "M",
    )
    assert (row.account_balance, row.historical_balance, row.current_balance) == (
        Decimal("10.00"),
        Decimal("0.00"),
        Decimal("10.00"),
    )
    with pytest.raises(PersonRowError) as error:
        parse_person_row(person_row(WANG, region_code="420100"), today=TODAY, region_codes={"320500"})
    assert error.value.id_number == WANG


def test_c1_persons_import_refuses_a_wrong_header_before_writing(regions, tmp_path):
    path = write_csv(tmp_path / "p.csv", [person_row(WANG)], header=["id", "name"])

    with path.open("rb") as source, pytest.raises(ImportFileError):
        persons_import(source=source, today=TODAY)

    assert not InsuredPerson.objects.exists()


# --- batching (PostgreSQL) ----------------------------------------------------------------------


def many_rows(count: int, *, balance: str = "100.00") -> list[dict[str, str]]:
    rows = []
    for n in range(count):
        birth = dt.date(1960, 1, 1) + dt.timedelta(days=n // 500)
        id_number = make_id_number("320505", birth, (n % 500) * 2 + 1)
        if n % 10 < 7:
            rows.append(
                person_row(id_number, card_number=f"B{n:08d}", account_balance=balance, historical_balance="40.00")
            )
        else:
            rows.append(person_row(id_number, insurance_type="resident", card_number=f"B{n:08d}"))
    return rows


@pytest.mark.postgres
def test_c1_import_runs_a_bounded_number_of_queries_per_batch(regions, tmp_path, django_assert_max_num_queries):
    rows = many_rows(5000)
    first = write_csv(tmp_path / "p.csv", rows)

    # 1 region query, CREATE and DROP of the staging table, then per batch of 1000 at most: SAVEPOINT,
    # persons, card holders, TRUNCATE the staging table (its COPY is not a query Django sees), INSERT
    # persons, UPDATE persons, INSERT accounts with their entries, lock accounts, UPDATE accounts with
    # their entries, RELEASE = 10; a batch runs only the writes it needs (here at most 8).
    with first.open("rb") as source, django_assert_max_num_queries(1 + 5 * 10):
        result = persons_import(source=source, today=TODAY, batch_size=1000)
    assert (result.imported, result.rejected) == (5000, 0)
    assert PersonalAccount.objects.count() == 3500
    assert LedgerEntry.objects.count() == 7000

    # A second run where every row changes a balance or a name: still bounded per batch.
    for n, row in enumerate(rows):
        if row["insurance_type"] == "employee":
            row["account_balance"] = "90.00"
        else:
            row["name"] = f"居民{n}"
    second = write_csv(tmp_path / "p2.csv", rows)
    with second.open("rb") as source, django_assert_max_num_queries(1 + 5 * 10):
        result = persons_import(source=source, today=TODAY, batch_size=1000)
    assert (result.imported, result.updated, result.unchanged) == (0, 5000, 0)
    account = PersonalAccount.objects.order_by("pk").first()
    assert (account.current_balance, account.historical_balance) == (Decimal("50.00"), Decimal("40.00"))
    assert_ledger_explains(account)


@pytest.mark.postgres
def test_c1_the_staging_copy_keeps_backslashes_and_tabs(regions, tmp_path):
    """The PostgreSQL path COPYs rows as text: what COPY would read as escapes is stored as it was."""
    path = write_csv(tmp_path / "p.csv", [person_row(WANG, phone="139\\N\t\\t")])

    with path.open("rb") as source:
        result = persons_import(source=source, today=TODAY)

    assert (result.imported, result.rejected) == (1, 0)
    assert InsuredPerson.objects.get(id_number=WANG).phone == "139\\N\t\\t"


@pytest.mark.postgres
def test_c1_a_failing_batch_leaves_earlier_batches_whole(regions, tmp_path):
    """A crash mid-file (here: the database refuses a row) leaves whole batches only."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION refuse_crash() RETURNS trigger AS $$
            BEGIN IF NEW.name = 'crash' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END;
            $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_crash BEFORE INSERT ON accounts_insuredperson
                FOR EACH ROW EXECUTE FUNCTION refuse_crash();
            """
        )
    rows = many_rows(5)
    rows[3]["name"] = "crash"
    path = write_csv(tmp_path / "p.csv", rows)

    with path.open("rb") as source, pytest.raises(DatabaseError, match="refused"):
        persons_import(source=source, today=TODAY, batch_size=2)

    assert InsuredPerson.objects.count() == 2
    assert LedgerEntry.objects.count() == 4
    for account in PersonalAccount.objects.all():
        assert_ledger_explains(account)

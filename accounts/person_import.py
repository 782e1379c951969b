"""C1: load insured persons from the insurance core system's CSV, streaming, in batches.

``parse_person_row`` checks one row and is pure (no database, clock or settings: the caller
passes them). ``persons_import`` reads the file line by line and writes each batch of rows in
its own transaction with a fixed number of queries, whatever the batch holds, so a file of a
million rows imports in bounded memory and a crash leaves whole batches only.

On PostgreSQL a batch is written set-based: its rows are COPYed into a temporary staging table and
moved from there by a few INSERT … SELECT / UPDATE … FROM statements, with no model instance per
row (Django's per-value work in ``bulk_create`` was most of the import's time). Other databases
(SQLite in development) take the ORM path. Both make the same rows, accounts and ledger entries.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from array import array
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.identity import InvalidIdNumber, parse_id_number
from accounts.models import (
    InsuranceStatus,
    InsuranceType,
    InsuredPerson,
    LedgerEntry,
    PersonalAccount,
    Region,
)
from accounts.services import Posting, adjustment_postings

HEADER = (
    "id_number",
    "name",
    "insurance_type",
    "status",
    "region_code",
    "card_number",
    "phone",
    "account_balance",
    "historical_balance",
)
# R3: a letter and 8 digits in most provinces; settings.CARD_NUMBER_PATTERN overrides it.
DEFAULT_CARD_NUMBER_PATTERN = r"^[A-Z][0-9]{8}$"
BATCH_SIZE = 1000

ZERO = Decimal("0.00")
# The largest amount a DecimalField(max_digits=12, decimal_places=2) holds, plus one fen.
_AMOUNT_LIMIT = Decimal("10000000000")
_AMOUNT = re.compile(r"(-?)(\d+)(?:\.(\d+))?")
_BOM = b"\xef\xbb\xbf"
# Lone surrogates stand for bytes that are not UTF-8 (decoded with "surrogateescape").
_NOT_UTF8 = re.compile("[\udc80-\udcff]")

_INSURANCE_TYPES = frozenset(InsuranceType.values)
_STATUSES = frozenset(InsuranceStatus.values)
_REGION_CODE = re.compile(r"[0-9]{6}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAME_MAX = InsuredPerson._meta.get_field("name").max_length
_PHONE_MAX = InsuredPerson._meta.get_field("phone").max_length
_CARD_MAX = InsuredPerson._meta.get_field("card_number").max_length
# Written by bulk_update; updated_at is set by hand because bulk_update skips auto_now.
_PERSON_FIELDS = [
    "name",
    "birth_date",
    "sex",
    "insurance_type",
    "status",
    "region",
    "card_number",
    "phone",
    "updated_at",
]


class PersonRowError(ValueError):
    """C1: a bad row. ``reason`` says what is wrong; ``id_number`` is set when the row's ID number is valid."""

    def __init__(self, reasons: list[str], id_number: str | None = None) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
        self.id_number = id_number

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


class ImportFileError(Exception):
    """C1: the file as a whole cannot be imported (wrong header, empty file); nothing was written."""


@dataclass(frozen=True, slots=True)
class PersonRow:
    """One good row: the person as the core system knows them, birth date and sex derived (R2)."""

    id_number: str
    name: str
    birth_date: dt.date
    sex: str
    insurance_type: str
    status: str
    region_code: str
    card_number: str | None
    phone: str
    account_balance: Decimal
    historical_balance: Decimal

    @property
    def current_balance(self) -> Decimal:
        return self.account_balance - self.historical_balance


@dataclass
class ImportResult:
    """What a run did, counted per row (C1)."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    # R27 (later): persons whose status, region or insurance type changed; their bindings may have to end.
    changed_eligibility_person_ids: list[int] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """The contract's last line, in English whatever the language."""
        return f"imported {self.imported}, updated {self.updated}, unchanged {self.unchanged}, rejected {self.rejected}"


def _parse_amount(raw: str, column: str, problems: list[str]) -> Decimal:
    """C1: yuan with at most 2 decimals, not negative; blank means 0."""
    text = raw.strip()
    if not text:
        return ZERO
    match = _AMOUNT.fullmatch(text)
    if match is None:
        problems.append(_("%(column)s: “%(value)s” is not an amount") % {"column": column, "value": text})
        return ZERO
    if len((match[3] or "").rstrip("0")) > 2:
        problems.append(_("%(column)s: %(value)s has more than 2 decimals") % {"column": column, "value": text})
        return ZERO
    value = Decimal(text)
    if value < 0:
        problems.append(_("%(column)s: %(value)s is negative") % {"column": column, "value": text})
        return ZERO
    if value >= _AMOUNT_LIMIT:
        problems.append(_("%(column)s: %(value)s is too large") % {"column": column, "value": text})
        return ZERO
    return value.quantize(ZERO)


def parse_person_row(
    row: dict[str, str],
    *,
    today: dt.date,
    region_codes: AbstractSet[str] | None = None,
    card_number_pattern: str | re.Pattern[str] = DEFAULT_CARD_NUMBER_PATTERN,
) -> PersonRow:
    """C1, R1, R2, R3: check one CSV row and return the person it describes, or raise PersonRowError.

    ``region_codes`` are the known pooling regions (None: only their shape is checked here).
    Every problem of the row is named, not only the first.
    """
    row = {column: row.get(column) or "" for column in HEADER}
    if _NOT_UTF8.search("".join(row.values())):
        raise PersonRowError([_("the row is not valid UTF-8")])
    problems: list[str] = []
    try:
        identity = parse_id_number(row["id_number"], today=today)
    except InvalidIdNumber as error:
        identity = None
        problems.append(_("id_number: %(message)s") % {"message": error.message})

    name = row["name"].strip()
    if not name:
        problems.append(_("name is empty"))
    elif _CONTROL.search(name):
        problems.append(_("name contains a line break or another control character"))
    elif len(name) > _NAME_MAX:
        problems.append(_("name is longer than %(max)d characters") % {"max": _NAME_MAX})

    insurance_type = row["insurance_type"].strip()
    if insurance_type not in _INSURANCE_TYPES:
        problems.append(
            _("insurance_type: unknown type “%(value)s” (expected employee or resident)") % {"value": insurance_type}
        )
    status = row["status"].strip()
    if status not in _STATUSES:
        problems.append(_("status: unknown status “%(value)s” (expected active or suspended)") % {"value": status})

    region_code = row["region_code"].strip()
    if not _REGION_CODE.fullmatch(region_code) or (region_codes is not None and region_code not in region_codes):
        problems.append(_("region_code: unknown pooling region “%(value)s”") % {"value": region_code})

    card_number = row["card_number"].strip() or None
    if card_number is not None:
        pattern = re.compile(card_number_pattern) if isinstance(card_number_pattern, str) else card_number_pattern
        if len(card_number) > _CARD_MAX or not pattern.search(card_number):
            problems.append(
                _("card_number: “%(value)s” does not match the card number pattern %(pattern)s")
                % {"value": card_number, "pattern": pattern.pattern}
            )

    phone = row["phone"].strip()
    if len(phone) > _PHONE_MAX:
        problems.append(_("phone is longer than %(max)d characters") % {"max": _PHONE_MAX})

    balance_problems: list[str] = []
    account_balance = _parse_amount(row["account_balance"], "account_balance", balance_problems)
    historical_balance = _parse_amount(row["historical_balance"], "historical_balance", balance_problems)
    problems += balance_problems
    if not balance_problems and historical_balance > account_balance:
        problems.append(
            _("historical_balance (%(historical)s) is greater than account_balance (%(total)s)")
            % {"historical": historical_balance, "total": account_balance}
        )
    if insurance_type == InsuranceType.RESIDENT and (account_balance or historical_balance):
        problems.append(_("a resident has no personal account, so the balances must be blank or 0"))

    if problems:
        raise PersonRowError(problems, identity.value if identity else None)
    assert identity is not None
    return PersonRow(
        id_number=identity.value,
        name=name,
        birth_date=identity.birth_date,
        sex=identity.sex,
        insurance_type=insurance_type,
        status=status,
        region_code=region_code,
        card_number=card_number,
        phone=phone,
        account_balance=account_balance,
        historical_balance=historical_balance,
    )


class _SeenIdNumbers:
    """The ID numbers met so far in the file (C1: a later duplicate is a bad row), in 8 bytes each.

    An open-addressing hash set over an array of unsigned 64-bit keys, at most half full: a million
    ID numbers take 16 MB, where a Python set of ints takes about 60 MB and would be most of the import's
    memory. The key is the first 17 digits plus one (the 18th follows from them, R1; 0 marks a free slot).
    """

    # Fibonacci hashing: spreads ID numbers that differ only in their last digits.
    _MULTIPLIER = 0x9E3779B97F4A7C15
    _MASK64 = (1 << 64) - 1

    def __init__(self, bits: int = 16) -> None:
        self._bits = bits
        self._slots = array("Q", bytes(8 << bits))
        self._count = 0

    def add(self, id_number: str) -> bool:
        """Remember the ID number; False if it was already there."""
        if not self._insert(int(id_number[:17]) + 1):
            return False
        self._count += 1
        if self._count * 2 > len(self._slots):
            self._grow()
        return True

    def _insert(self, key: int) -> bool:
        slots = self._slots
        mask = len(slots) - 1
        index = ((key * self._MULTIPLIER) & self._MASK64) >> (64 - self._bits)
        while True:
            found = slots[index]
            if found == 0:
                slots[index] = key
                return True
            if found == key:
                return False
            index = (index + 1) & mask

    def _grow(self) -> None:
        old = self._slots
        self._bits += 1
        self._slots = array("Q", bytes(8 << self._bits))
        for key in old:
            if key:
                self._insert(key)


def _decoded_lines(source: BinaryIO) -> Iterator[str]:
    """The file's lines as text; a BOM is dropped, bytes that are not UTF-8 are kept as lone surrogates."""
    first = True
    for raw in source:
        if first:
            first = False
            if raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
        yield raw.decode("utf-8", "surrogateescape")


def _read_header(reader: Iterator[list[str]]) -> None:
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(
            _("The file is empty; expected the header: %(header)s") % {"header": ",".join(HEADER)}
        ) from None
    if tuple(header) != HEADER:
        found = ",".join(header).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise ImportFileError(
            _("Wrong header; nothing was imported. Expected: %(header)s; found: %(found)s")
            % {"header": ",".join(HEADER), "found": found}
        )


def persons_import(
    *,
    source: BinaryIO,
    today: dt.date | None = None,
    on_rejected: Callable[[int, str], None] | None = None,
    batch_size: int = BATCH_SIZE,
    after_batch: Callable[[], None] | None = None,
    reference: str = "",
) -> ImportResult:
    """C1: upsert insured persons by ID number from the CSV ``source`` (a binary file), batch by batch.

    Bad rows are skipped and passed to ``on_rejected(line, reason)`` in line order, batch by batch,
    the header being line 1. Raises ImportFileError, before writing anything, when the header is wrong.
    """
    if today is None:
        # R1: a birth date after today in Asia/Shanghai is refused.
        today = timezone.localdate(timezone=ZoneInfo("Asia/Shanghai"))
    reference = (reference or f"import_persons {timezone.now():%Y-%m-%dT%H:%M:%S}")[:64]
    reader = csv.reader(_decoded_lines(source))
    _read_header(reader)
    region_codes = frozenset(Region.objects.values_list("code", flat=True))
    card_number_pattern = re.compile(getattr(settings, "CARD_NUMBER_PATTERN", DEFAULT_CARD_NUMBER_PATTERN))
    result = ImportResult()
    seen = _SeenIdNumbers()

    rows: list[tuple[int, PersonRow]] = []
    rejections: list[tuple[int, str]] = []
    records = 0

    # PostgreSQL: the set-based path through a staging table (see the module's docstring).
    write_batch = _write_batch_copy if connection.vendor == "postgresql" else _write_batch
    if write_batch is _write_batch_copy:
        _stage_create()

    def flush() -> None:
        nonlocal records
        if rows:
            write_batch(rows, rejections, result=result, reference=reference)
        result.rejected += len(rejections)
        if on_rejected is not None:
            for line, reason in sorted(rejections):
                on_rejected(line, reason)
        rows.clear()
        rejections.clear()
        records = 0
        if after_batch is not None:
            after_batch()

    for line, fields, unreadable in _numbered_records(reader):
        records += 1
        if fields is None:
            rejections.append((line, _("the row is not valid CSV: %(error)s") % {"error": unreadable}))
        elif len(fields) != len(HEADER):
            rejections.append(
                (
                    line,
                    _("expected %(expected)d fields, found %(found)d")
                    % {"expected": len(HEADER), "found": len(fields)},
                )
            )
        else:
            try:
                person_row = parse_person_row(
                    dict(zip(HEADER, fields, strict=True)),
                    today=today,
                    region_codes=region_codes,
                    card_number_pattern=card_number_pattern,
                )
            except PersonRowError as error:
                if error.id_number is not None and not seen.add(error.id_number):
                    rejections.append((line, _duplicate_reason()))
                else:
                    rejections.append((line, error.reason))
            else:
                if seen.add(person_row.id_number):
                    rows.append((line, person_row))
                else:
                    rejections.append((line, _duplicate_reason()))
        if records >= batch_size:
            flush()
    flush()
    if write_batch is _write_batch_copy:
        _stage_drop()
    return result


def _duplicate_reason() -> str:
    return _("id_number: this ID number is already on an earlier line of the file (the first occurrence wins)")


def _numbered_records(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str] | None, str]]:
    """Each non-blank record with the file line it starts on (a quoted field may span lines).

    A record that CSV cannot read comes as ``(line, None, why)``; reading goes on with the next line.
    """
    line = reader.line_num  # type: ignore[attr-defined]
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            start, line = line + 1, reader.line_num  # type: ignore[attr-defined]
            yield start, None, str(error)
            continue
        start, line = line + 1, reader.line_num  # type: ignore[attr-defined]
        if fields:
            yield start, fields, ""


def _write_batch(
    rows: list[tuple[int, PersonRow]],
    rejections: list[tuple[int, str]],
    *,
    result: ImportResult,
    reference: str,
) -> None:
    """Write one batch in one transaction: at most 8 queries, whatever the number of rows."""
    now = timezone.now()
    with transaction.atomic():
        # 1. The persons already known, with their accounts.
        existing = {
            person.id_number: person
            for person in InsuredPerson.objects.filter(id_number__in=[row.id_number for _, row in rows]).select_related(
                "account"
            )
        }
        # 2. Who holds the card numbers this batch names (R3: one card, one person).
        card_numbers = {row.card_number for _, row in rows if row.card_number}
        card_holders = (
            dict(InsuredPerson.objects.filter(card_number__in=card_numbers).values_list("card_number", "id_number"))
            if card_numbers
            else {}
        )

        new_persons: list[InsuredPerson] = []
        changed_persons: list[InsuredPerson] = []
        # Accounts to open (employees without one) and existing accounts whose balances moved.
        new_accounts: list[tuple[InsuredPerson, PersonRow]] = []
        balance_targets: dict[int, PersonRow] = {}

        for line, row in rows:
            if row.card_number:
                holder = card_holders.get(row.card_number)
                if holder is not None and holder != row.id_number:
                    rejections.append(
                        (
                            line,
                            _("card_number: %(value)s is already used by another person") % {"value": row.card_number},
                        )
                    )
                    continue
                card_holders[row.card_number] = row.id_number

            person = existing.get(row.id_number)
            if person is None:
                person = InsuredPerson(
                    id_number=row.id_number,
                    name=row.name,
                    birth_date=row.birth_date,
                    sex=row.sex,
                    insurance_type=row.insurance_type,
                    status=row.status,
                    region_id=row.region_code,
                    card_number=row.card_number,
                    phone=row.phone,
                )
                new_persons.append(person)
                # Residents have no personal account (C1).
                if row.insurance_type == InsuranceType.EMPLOYEE:
                    new_accounts.append((person, row))
                result.imported += 1
                continue

            if _person_apply(person, row, result=result):
                person.updated_at = now
                changed_persons.append(person)
                changed = True
            else:
                changed = False
            # R30: an account, once open, stays with the person, even one who became a resident;
            # only an employee row says what its balance is.
            if row.insurance_type == InsuranceType.EMPLOYEE:
                try:
                    account = person.account
                except PersonalAccount.DoesNotExist:
                    new_accounts.append((person, row))
                    changed = True
                else:
                    if (account.current_balance, account.historical_balance) != (
                        row.current_balance,
                        row.historical_balance,
                    ):
                        balance_targets[account.pk] = row
                        changed = True
            if changed:
                result.updated += 1
            else:
                result.unchanged += 1

        # 3, 4. The persons.
        if new_persons:
            InsuredPerson.objects.bulk_create(new_persons)
        if changed_persons:
            InsuredPerson.objects.bulk_update(changed_persons, _PERSON_FIELDS)

        entries: list[LedgerEntry] = []
        # 5. New accounts: the entries are reckoned from 0, the account is written at the balances they make (R30).
        if new_accounts:
            opening: list[tuple[PersonalAccount, list[Posting]]] = []
            for person, row in new_accounts:
                account = PersonalAccount(person=person)
                postings = _adjustment(account, row, reference)
                account.current_balance = row.current_balance
                account.historical_balance = row.historical_balance
                opening.append((account, postings))
            PersonalAccount.objects.bulk_create([account for account, _postings in opening])
            for account, postings in opening:
                entries += _entries(account, postings)

        # 6, 7. Balances that moved: lock the accounts (payments may run meanwhile), then adjust (C1, R34).
        if balance_targets:
            locked = list(
                PersonalAccount.objects.select_for_update()
                .filter(pk__in=balance_targets)
                .only("pk", "current_balance", "historical_balance")
            )
            for account in locked:
                row = balance_targets[account.pk]
                entries += _entries(account, _adjustment(account, row, reference))
                account.current_balance = row.current_balance
                account.historical_balance = row.historical_balance
                account.updated_at = now
            PersonalAccount.objects.bulk_update(locked, ["current_balance", "historical_balance", "updated_at"])

        # 8. The ledger entries that explain every balance written above (sum of entries == balance).
        if entries:
            LedgerEntry.objects.bulk_create(entries)


def _person_apply(person: InsuredPerson, row: PersonRow, *, result: ImportResult) -> bool:
    """Copy the row onto a known person; True if anything changed. Notes eligibility changes (R27)."""
    changed = False
    for attr, value in (
        ("name", row.name),
        ("birth_date", row.birth_date),
        ("sex", row.sex),
        ("card_number", row.card_number),
        ("phone", row.phone),
    ):
        if getattr(person, attr) != value:
            setattr(person, attr, value)
            changed = True
    eligibility_changed = False
    for attr, value in (
        ("insurance_type", row.insurance_type),
        ("status", row.status),
        ("region_id", row.region_code),
    ):
        if getattr(person, attr) != value:
            setattr(person, attr, value)
            eligibility_changed = True
    if eligibility_changed:
        result.changed_eligibility_person_ids.append(person.pk)
    return changed or eligibility_changed


def _adjustment(account: PersonalAccount, row: PersonRow, reference: str) -> list[Posting]:
    """C1: the adjustments that move the account to the row's balances, never an overwrite."""
    return adjustment_postings(
        account=account, total=row.account_balance, historical=row.historical_balance, reference=reference
    )


def _entries(account: PersonalAccount, postings: list[Posting]) -> list[LedgerEntry]:
    return [
        LedgerEntry(
            account_id=account.pk,
            part=posting.part,
            amount=posting.amount,
            kind=posting.kind,
            description=posting.description,
            reference=posting.reference,
        )
        for posting in postings
    ]


# --- PostgreSQL: COPY into a staging table, then set-based writes ----------------------------------

# One staged row per row of the batch that writes anything: a new person (person_id NULL), a known
# person whose fields changed (write_person), an account to open, or an account whose balance moved.
_STAGE_COLUMNS = (
    "line",
    "person_id",
    "write_person",
    "id_number",
    "name",
    "birth_date",
    "sex",
    "insurance_type",
    "status",
    "region_id",
    "card_number",
    "phone",
    "open_account",
    "account_id",
    "current_balance",
    "historical_balance",
)
# The known persons of a batch, with their account: what a row is compared with.
_KNOWN_PERSONS = """
    SELECT p.id, p.id_number, p.name, p.birth_date, p.sex, p.insurance_type, p.status, p.region_id,
           p.card_number, p.phone, a.id, a.current_balance, a.historical_balance
    FROM accounts_insuredperson p LEFT JOIN accounts_personalaccount a ON a.person_id = p.id
    WHERE p.id_number = ANY(%s)
"""
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _stage_create() -> None:
    """The session's staging table (temporary: other sessions never see it, it goes with the connection)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE TEMPORARY TABLE IF NOT EXISTS import_persons_stage (
                line integer NOT NULL,
                person_id bigint,
                write_person boolean NOT NULL,
                id_number varchar(18) NOT NULL,
                name varchar(50) NOT NULL,
                birth_date date NOT NULL,
                sex varchar(1) NOT NULL,
                insurance_type varchar(16) NOT NULL,
                status varchar(16) NOT NULL,
                region_id varchar(6) NOT NULL,
                card_number varchar(20),
                phone varchar(20) NOT NULL,
                open_account boolean NOT NULL,
                account_id bigint,
                current_balance numeric(12, 2) NOT NULL,
                historical_balance numeric(12, 2) NOT NULL
            )
            """
        )


def _stage_drop() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS import_persons_stage")


def _copy_text(value: str | None) -> str:
    """A text field in COPY's text format: NULL is \\N; backslash, tab and line breaks are escaped."""
    return "\\N" if value is None else value.translate(_COPY_ESCAPES)


def _stage_copy(cursor, staged: list[str]) -> None:
    """COPY the staged rows into the staging table (psycopg2, or psycopg 3 if Django runs on it)."""
    text = "".join(staged)
    statement = f"COPY import_persons_stage ({', '.join(_STAGE_COLUMNS)}) FROM STDIN"
    raw = cursor.cursor
    with connection.wrap_database_errors:
        if hasattr(raw, "copy_expert"):
            raw.copy_expert(statement, io.StringIO(text))
        else:  # pragma: no cover - psycopg 3
            with raw.copy(statement) as copy:
                copy.write(text)


def _write_batch_copy(
    rows: list[tuple[int, PersonRow]],
    rejections: list[tuple[int, str]],
    *,
    result: ImportResult,
    reference: str,
) -> None:
    """Write one batch in one transaction, set-based (PostgreSQL): at most 8 statements and one COPY.

    The same decisions as ``_write_batch``, row by row in Python on plain tuples; only the rows that
    write something are staged.
    """
    now = timezone.now()
    with transaction.atomic():
        # 1. The persons already known, with their accounts (tuples: no model instance per row).
        # ``= ANY(array)``: one parameter, where ``id_number__in`` makes Django prepare a thousand.
        with connection.cursor() as cursor:
            cursor.execute(_KNOWN_PERSONS, [[row.id_number for _, row in rows]])
            known = {values[1]: values for values in cursor.fetchall()}
        # 2. Who holds the card numbers this batch names (R3: one card, one person).
        card_numbers = [row.card_number for _, row in rows if row.card_number]
        card_holders: dict[str, str] = {}
        if card_numbers:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT card_number, id_number FROM accounts_insuredperson WHERE card_number = ANY(%s)",
                    [card_numbers],
                )
                card_holders = dict(cursor.fetchall())

        staged: list[str] = []
        new_persons = changed_persons = open_accounts = moved_accounts = 0
        for line, row in rows:
            if row.card_number:
                holder = card_holders.get(row.card_number)
                if holder is not None and holder != row.id_number:
                    rejections.append(
                        (
                            line,
                            _("card_number: %(value)s is already used by another person") % {"value": row.card_number},
                        )
                    )
                    continue
                card_holders[row.card_number] = row.id_number

            person = known.get(row.id_number)
            employee = row.insurance_type == InsuranceType.EMPLOYEE
            if person is None:
                # Residents have no personal account (C1).
                staged.append(_staged(line, row, person_id=None, write_person=True, open_account=employee))
                new_persons += 1
                open_accounts += employee
                result.imported += 1
                continue

            person_id, _id, name, birth_date, sex, insurance_type, status, region_id, card, phone = person[:10]
            account_id, current_balance, historical_balance = person[10:]
            write_person = (name, birth_date, sex, card, phone) != (
                row.name,
                row.birth_date,
                row.sex,
                row.card_number,
                row.phone,
            )
            if (insurance_type, status, region_id) != (row.insurance_type, row.status, row.region_code):
                # R27 (later): their bindings may have to end.
                result.changed_eligibility_person_ids.append(person_id)
                write_person = True
            # R30: an account, once open, stays with the person, even one who became a resident;
            # only an employee row says what its balance is.
            open_account = employee and account_id is None
            moved = (
                employee
                and account_id is not None
                and (current_balance, historical_balance) != (row.current_balance, row.historical_balance)
            )
            if write_person or open_account or moved:
                staged.append(
                    _staged(
                        line,
                        row,
                        person_id=person_id,
                        write_person=write_person,
                        open_account=open_account,
                        account_id=account_id if moved else None,
                    )
                )
                changed_persons += write_person
                open_accounts += open_account
                moved_accounts += moved
                result.updated += 1
            else:
                result.unchanged += 1

        if not staged:
            return
        with connection.cursor() as cursor:
            # 3. The staging table holds this batch only.
            cursor.execute("TRUNCATE import_persons_stage")
            _stage_copy(cursor, staged)
            if new_persons:
                # 4. New persons, in file order.
                cursor.execute(_INSERT_PERSONS, {"now": now})
            if changed_persons:
                # 5. Known persons whose fields changed.
                cursor.execute(_UPDATE_PERSONS, {"now": now})
            if open_accounts:
                # 6. New accounts at the row's balances, and the entries that explain them, reckoned from 0 (R30).
                cursor.execute(_OPEN_ACCOUNTS, _entry_params(now, reference))
            if moved_accounts:
                # 7. Lock the accounts whose balance moved (payments may run meanwhile, R34) ...
                cursor.execute(_LOCK_MOVED_ACCOUNTS)
                # 8. ... then adjust them from the balances as locked: entries, never an overwrite (C1).
                cursor.execute(_ADJUST_MOVED_ACCOUNTS, _entry_params(now, reference))


# The statements of ``_write_batch_copy``. The tables are the models' (accounts_*); the staging table is
# ``_stage_create``'s. The entries are those of ``adjustment_postings``: one per part whose amount moves.
_INSERT_PERSONS = """
    INSERT INTO accounts_insuredperson (id_number, name, birth_date, sex, insurance_type, status, region_id,
                                        card_number, phone, created_at, updated_at)
    SELECT id_number, name, birth_date, sex, insurance_type, status, region_id, card_number, phone,
           %(now)s, %(now)s
    FROM import_persons_stage WHERE person_id IS NULL ORDER BY line
"""
_UPDATE_PERSONS = """
    UPDATE accounts_insuredperson p
    SET name = s.name, birth_date = s.birth_date, sex = s.sex, insurance_type = s.insurance_type,
        status = s.status, region_id = s.region_id, card_number = s.card_number, phone = s.phone,
        updated_at = %(now)s
    FROM import_persons_stage s
    WHERE s.write_person AND s.person_id IS NOT NULL AND p.id = s.person_id
"""
_OPEN_ACCOUNTS = """
    WITH opened AS (
        INSERT INTO accounts_personalaccount (person_id, current_balance, historical_balance, updated_at)
        SELECT p.id, s.current_balance, s.historical_balance, %(now)s
        FROM import_persons_stage s JOIN accounts_insuredperson p ON p.id_number = s.id_number
        WHERE s.open_account ORDER BY s.line
        RETURNING id, current_balance, historical_balance
    )
    INSERT INTO accounts_ledgerentry (account_id, part, amount, kind, description, reference, created_at)
    SELECT id, %(current)s, current_balance, %(kind)s, %(description)s, %(reference)s, %(now)s
    FROM opened WHERE current_balance <> 0
    UNION ALL
    SELECT id, %(historical)s, historical_balance, %(kind)s, %(description)s, %(reference)s, %(now)s
    FROM opened WHERE historical_balance <> 0
"""
_LOCK_MOVED_ACCOUNTS = """
    SELECT count(*) FROM (
        SELECT a.id FROM accounts_personalaccount a JOIN import_persons_stage s ON s.account_id = a.id
        ORDER BY a.id FOR UPDATE OF a
    ) locked
"""
# Every part of one statement sees the same snapshot, taken after the locks: ``moved`` reads the balances
# before ``written`` changes them, and no payment can come in between.
_ADJUST_MOVED_ACCOUNTS = """
    WITH moved AS (
        SELECT a.id, s.current_balance - a.current_balance AS current_change,
               s.historical_balance - a.historical_balance AS historical_change
        FROM accounts_personalaccount a JOIN import_persons_stage s ON s.account_id = a.id
    ), written AS (
        UPDATE accounts_personalaccount a
        SET current_balance = s.current_balance, historical_balance = s.historical_balance, updated_at = %(now)s
        FROM import_persons_stage s WHERE s.account_id = a.id
        RETURNING a.id
    )
    INSERT INTO accounts_ledgerentry (account_id, part, amount, kind, description, reference, created_at)
    SELECT id, %(current)s, current_change, %(kind)s, %(description)s, %(reference)s, %(now)s
    FROM moved WHERE current_change <> 0
    UNION ALL
    SELECT id, %(historical)s, historical_change, %(kind)s, %(description)s, %(reference)s, %(now)s
    FROM moved WHERE historical_change <> 0
"""


def _entry_params(now: dt.datetime, reference: str) -> dict[str, object]:
    return {
        "now": now,
        "current": LedgerEntry.Part.CURRENT.value,
        "historical": LedgerEntry.Part.HISTORICAL.value,
        "kind": LedgerEntry.Kind.ADJUSTMENT.value,
        "description": "core system balance",
        "reference": reference,
    }


def _staged(
    line: int,
    row: PersonRow,
    *,
    person_id: int | None,
    write_person: bool,
    open_account: bool,
    account_id: int | None = None,
) -> str:
    """The row as one line of COPY text for the staging table, in ``_STAGE_COLUMNS`` order.

    ID number, sex, type, status and region code are checked values (R1, C1) that need no escaping.
    """
    person = _copy_text(None if person_id is None else str(person_id))
    account = _copy_text(None if account_id is None else str(account_id))
    return (
        f"{line}\t{person}\t{'t' if write_person else 'f'}\t"
        f"{row.id_number}\t{_copy_text(row.name)}\t{row.birth_date.isoformat()}\t{row.sex}\t"
        f"{row.insurance_type}\t{row.status}\t{row.region_code}\t{_copy_text(row.card_number)}\t"
        f"{_copy_text(row.phone)}\t{'t' if open_account else 'f'}\t"
        f"{account}\t{row.current_balance}\t{row.historical_balance}\n"
    )

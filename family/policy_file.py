"""C2: read and check a policy file (regions and policy versions) without touching the database.

``policy_document_parse`` turns the decoded JSON into dataclasses or raises ``PolicyFileError`` naming
every problem as ``entry.field: what is wrong``. Whether a region code exists in the database is the
loader's question (``family.services.policy_load``), not this module's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from accounts.errors import DomainError, FieldError
from family.models import Relation, SharingMode
from family.rules import overlapping_periods

NATIONAL = "*"
REGION_CODE = re.compile(r"^[0-9]{6}$")
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# The columns' limits (Region.name, PolicyVersion.max_members / face_age / min_owner_balance).
NAME_MAX_LENGTH = 60
MAX_MEMBERS_LIMIT = 2_147_483_647
FACE_AGE_LIMIT = 150
BALANCE_LIMIT = Decimal("9999999999.99")

REGION_FIELDS = ("code", "name", "province")
POLICY_REQUIRED = (
    "region",
    "effective_from",
    "effective_to",
    "relations",
    "cross_province",
    "max_members",
    "multiple_owners",
    "sharing_mode",
    "face_age",
)
# R15, R33: optional, with the defaults they take when absent.
POLICY_OPTIONAL = {
    "min_owner_balance": None,
    "one_owner_per_payment": False,
    "long_term_care": False,  # R31
    "family_card_max": None,  # R43
}
FAMILY_CARD_MAX_LIMIT = 100


@dataclass(frozen=True)
class RegionEntry:
    """One entry of ``regions``: a pooling region to create or update."""

    code: str
    name: str
    province: str


@dataclass(frozen=True)
class PolicyEntry:
    """One entry of ``policies``, with the same field names as ``PolicyVersion``.

    ``region_id`` is the region's code, or ``None`` for the national default (``*`` in the file).
    """

    region_id: str | None
    effective_from: date
    effective_to: date | None
    relations: tuple[str, ...]
    cross_province: bool
    max_members: int | None
    multiple_owners: bool
    sharing_mode: str
    face_age: int
    min_owner_balance: Decimal | None
    one_owner_per_payment: bool
    long_term_care: bool = False
    family_card_max: int | None = None

    @property
    def region_label(self) -> str:
        return self.region_id or NATIONAL

    @property
    def label(self) -> str:
        """As ``PolicyVersion.label``: ``320500@2024-07-01`` or ``*@2021-04-13``."""
        return f"{self.region_label}@{self.effective_from.isoformat()}"


@dataclass(frozen=True)
class PolicyDocument:
    """A checked C2 document."""

    regions: tuple[RegionEntry, ...]
    policies: tuple[PolicyEntry, ...]

    @property
    def policy_region_ids(self) -> list[str | None]:
        """The regions whose versions the file replaces, in file order; ``None`` is the national default."""
        return list(dict.fromkeys(policy.region_id for policy in self.policies))


class PolicyFileError(DomainError):
    """C2: a policy file that cannot be loaded; ``errors`` names each entry and field at fault."""

    @property
    def problems(self) -> list[str]:
        """One line per problem: ``policies[0].effective_from: '2021-13-01' is not a date YYYY-MM-DD``."""
        return [f"{error.field}: {error.message}" if error.field else error.message for error in self.errors]


def policy_file_error(errors: list[FieldError]) -> PolicyFileError:
    """The error for a file with these problems (at least one)."""
    return PolicyFileError(
        title=_("The policy file was not loaded."),
        detail="\n".join(f"{error.field}: {error.message}" if error.field else error.message for error in errors),
        code="policy_file_invalid",
        errors=errors,
    )


def policy_document_decode(raw: bytes) -> Any:
    """C2: decode a policy file's bytes (UTF-8, a BOM accepted); amounts are read as ``Decimal``, never float."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise policy_file_error(
            [FieldError("", _("the file is not UTF-8 (byte %(position)d)") % {"position": error.start})]
        ) from error
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise policy_file_error(
            [
                FieldError(
                    "",
                    _("the file is not valid JSON: %(reason)s at line %(line)d, column %(column)d")
                    % {"reason": error.msg, "line": error.lineno, "column": error.colno},
                )
            ]
        ) from error


def policy_document_parse(document: Any) -> PolicyDocument:
    """C2: check a decoded policy document and return its regions and versions, or raise ``PolicyFileError``."""
    return _Parser().parse(document)


def _show(value: Any) -> str:
    """A value as the message quotes it: strings in single quotes, the rest as JSON."""
    if isinstance(value, str):
        shown = f"'{value}'"
    elif isinstance(value, Decimal | float):
        shown = str(value)
    else:
        try:
            shown = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _is_whole_number(value: Any) -> bool:
    # bool is an int in Python, never in a policy file.
    return isinstance(value, int) and not isinstance(value, bool)


class _Parser:
    """Collects every problem of one document instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def problem(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def parse(self, document: Any) -> PolicyDocument:
        if not isinstance(document, dict):
            self.problem("", _("the document must be a JSON object with 'regions' and 'policies'"))
            raise policy_file_error(self.errors)
        for key in document:
            if key not in ("regions", "policies"):
                self.problem(str(key), _("unknown field; a policy file has only 'regions' and 'policies'"))
        if "regions" not in document and "policies" not in document:
            self.problem("", _("the document has neither 'regions' nor 'policies'"))
        regions = self.entries(document, "regions", self.region)
        policies = self.entries(document, "policies", self.policy)
        self.check_duplicate_regions(regions)
        self.check_overlaps(policies)
        if self.errors:
            raise policy_file_error(self.errors)
        return PolicyDocument(
            regions=tuple(entry for _index, entry in regions), policies=tuple(entry for _index, entry in policies)
        )

    def entries(self, document: dict, key: str, parse_entry) -> list[tuple[int, Any]]:
        """The good entries of one list, with their indexes; problems of the others are recorded."""
        items = document.get(key, [])
        if not isinstance(items, list):
            self.problem(key, _("must be a list, not %(value)s") % {"value": _show(items)})
            return []
        parsed = []
        for index, item in enumerate(items):
            where = f"{key}[{index}]"
            if not isinstance(item, dict):
                self.problem(where, _("must be an object, not %(value)s") % {"value": _show(item)})
                continue
            entry = parse_entry(where, item)
            if entry is not None:
                parsed.append((index, entry))
        return parsed

    def unknown_fields(self, where: str, item: dict, known) -> None:
        for key in item:
            if key not in known:
                self.problem(f"{where}.{key}", _("unknown field"))

    def required(self, where: str, item: dict, fields) -> bool:
        missing = [name for name in fields if name not in item]
        for name in missing:
            self.problem(f"{where}.{name}", _("missing (required)"))
        return not missing

    # regions[i]

    def region(self, where: str, item: dict) -> RegionEntry | None:
        before = len(self.errors)
        self.unknown_fields(where, item, REGION_FIELDS)
        self.required(where, item, REGION_FIELDS)
        code = item.get("code")
        if "code" in item and not (isinstance(code, str) and REGION_CODE.match(code)):
            self.problem(f"{where}.code", _("%(value)s is not a 6-digit division code") % {"value": _show(code)})
        name = item.get("name")
        if "name" in item:
            if not isinstance(name, str) or not name.strip():
                self.problem(f"{where}.name", _("must be a non-empty text, not %(value)s") % {"value": _show(name)})
            elif len(name.strip()) > NAME_MAX_LENGTH:
                self.problem(f"{where}.name", _("is longer than %(limit)d characters") % {"limit": NAME_MAX_LENGTH})
        province = item.get("province")
        if "province" in item:
            if not (isinstance(province, str) and REGION_CODE.match(province) and province.endswith("0000")):
                self.problem(
                    f"{where}.province",
                    _("%(value)s is not a province code (6 digits ending in 0000)") % {"value": _show(province)},
                )
            elif isinstance(code, str) and REGION_CODE.match(code) and province[:2] != code[:2]:
                # R14 compares provinces: a region filed under another province would open or close it wrongly.
                self.problem(
                    f"{where}.province",
                    _("%(value)s is not the province of region %(code)s (expected %(expected)s)")
                    % {"value": _show(province), "code": code, "expected": code[:2] + "0000"},
                )
        if len(self.errors) > before:
            return None
        return RegionEntry(code=code, name=name.strip(), province=province)

    def check_duplicate_regions(self, regions: list[tuple[int, RegionEntry]]) -> None:
        first_seen: dict[str, int] = {}
        for index, entry in regions:
            if entry.code in first_seen:
                self.problem(
                    f"regions[{index}].code",
                    _("%(value)s is listed twice (also regions[%(first)d])")
                    % {"value": _show(entry.code), "first": first_seen[entry.code]},
                )
            else:
                first_seen[entry.code] = index

    # policies[i]

    def policy(self, where: str, item: dict) -> PolicyEntry | None:
        before = len(self.errors)
        self.unknown_fields(where, item, (*POLICY_REQUIRED, *POLICY_OPTIONAL))
        self.required(where, item, POLICY_REQUIRED)
        region_id = self.policy_region(where, item)
        effective_from = self.date_field(where, item, "effective_from", nullable=False)
        effective_to = self.date_field(where, item, "effective_to", nullable=True)
        if effective_from and effective_to and effective_to <= effective_from:
            self.problem(
                f"{where}.effective_to",
                _("%(to)s is not after effective_from %(from)s (effective_to is exclusive)")
                % {"to": effective_to.isoformat(), "from": effective_from.isoformat()},
            )
        relations = self.relations(where, item)
        cross_province = self.boolean(where, item, "cross_province")
        max_members = self.max_members(where, item)
        multiple_owners = self.boolean(where, item, "multiple_owners")
        sharing_mode = self.sharing_mode(where, item)
        face_age = self.face_age(where, item)
        min_owner_balance = self.min_owner_balance(where, item)
        one_owner_per_payment = self.boolean(where, item, "one_owner_per_payment")
        long_term_care = self.boolean(where, item, "long_term_care")
        family_card_max = self.family_card_max(where, item)
        if len(self.errors) > before:
            return None
        return PolicyEntry(
            region_id=region_id,
            effective_from=effective_from,
            effective_to=effective_to,
            relations=relations,
            cross_province=cross_province,
            max_members=max_members,
            multiple_owners=multiple_owners,
            sharing_mode=sharing_mode,
            face_age=face_age,
            min_owner_balance=min_owner_balance,
            one_owner_per_payment=one_owner_per_payment,
            long_term_care=long_term_care,
            family_card_max=family_card_max,
        )

    def policy_region(self, where: str, item: dict) -> str | None:
        value = item.get("region")
        if "region" not in item or value == NATIONAL:
            return None
        if not (isinstance(value, str) and REGION_CODE.match(value)):
            self.problem(
                f"{where}.region",
                _("%(value)s is neither a 6-digit division code nor '*' (national)") % {"value": _show(value)},
            )
            return None
        return value

    def date_field(self, where: str, item: dict, name: str, *, nullable: bool) -> date | None:
        if name not in item:
            return None
        value = item[name]
        if value is None and nullable:
            return None
        if isinstance(value, str) and ISO_DATE.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        if nullable:
            message = _("%(value)s is not a date YYYY-MM-DD or null")
        else:
            message = _("%(value)s is not a date YYYY-MM-DD")
        self.problem(f"{where}.{name}", message % {"value": _show(value)})
        return None

    def relations(self, where: str, item: dict) -> tuple[str, ...]:
        value = item.get("relations")
        if "relations" not in item:
            return ()
        if not isinstance(value, list):
            self.problem(
                f"{where}.relations", _("must be a list of relation names, not %(value)s") % {"value": _show(value)}
            )
            return ()
        seen = set()
        for index, name in enumerate(value):
            if name not in Relation.values:
                self.problem(
                    f"{where}.relations[{index}]",
                    _("unknown relation %(value)s; known: %(known)s")
                    % {"value": _show(name), "known": ", ".join(Relation.values)},
                )
            elif name in seen:
                self.problem(f"{where}.relations[{index}]", _("%(value)s is listed twice") % {"value": _show(name)})
            else:
                seen.add(name)
        # Stored in C3's order, so that the same set written in another order is the same policy.
        return tuple(name for name in Relation.values if name in seen)

    def boolean(self, where: str, item: dict, name: str) -> bool:
        if name not in item:
            return bool(POLICY_OPTIONAL.get(name, False))
        value = item[name]
        if not isinstance(value, bool):
            self.problem(f"{where}.{name}", _("must be true or false, not %(value)s") % {"value": _show(value)})
            return False
        return value

    def max_members(self, where: str, item: dict) -> int | None:
        value = item.get("max_members")
        if value is None:
            return None
        if not (_is_whole_number(value) and 1 <= value <= MAX_MEMBERS_LIMIT):
            self.problem(
                f"{where}.max_members",
                _("must be null (no limit) or a whole number of at least 1, not %(value)s") % {"value": _show(value)},
            )
            return None
        return value

    def family_card_max(self, where: str, item: dict) -> int | None:
        value = item.get("family_card_max")
        if value is None:
            return None
        if not (_is_whole_number(value) and 1 <= value <= FAMILY_CARD_MAX_LIMIT):
            self.problem(
                f"{where}.family_card_max",
                _("must be null (the default) or a whole number from 1 to %(limit)d, not %(value)s")
                % {"limit": FAMILY_CARD_MAX_LIMIT, "value": _show(value)},
            )
            return None
        return value

    def sharing_mode(self, where: str, item: dict) -> str:
        value = item.get("sharing_mode")
        if "sharing_mode" in item and value not in SharingMode.values:
            self.problem(
                f"{where}.sharing_mode",
                _("unknown sharing mode %(value)s; known: %(known)s")
                % {"value": _show(value), "known": ", ".join(SharingMode.values)},
            )
        return value

    def face_age(self, where: str, item: dict) -> int:
        value = item.get("face_age")
        if "face_age" in item and not (_is_whole_number(value) and 0 <= value <= FACE_AGE_LIMIT):
            self.problem(
                f"{where}.face_age",
                _("must be a whole number of years from 0 to %(limit)d, not %(value)s")
                % {"limit": FACE_AGE_LIMIT, "value": _show(value)},
            )
        return value

    def min_owner_balance(self, where: str, item: dict) -> Decimal | None:
        value = item.get("min_owner_balance")
        if value is None:
            return None
        field = f"{where}.min_owner_balance"
        amount = None
        if isinstance(value, Decimal | str | float) or _is_whole_number(value):
            try:
                # str() keeps what the file wrote: 2000.1 stays 2000.1, never its binary approximation.
                amount = Decimal(str(value).strip())
            except InvalidOperation:
                amount = None
        if amount is None or not amount.is_finite():
            self.problem(field, _("%(value)s is not an amount in yuan, nor null") % {"value": _show(value)})
            return None
        if amount < 0:
            self.problem(field, _("%(value)s is negative") % {"value": _show(value)})
            return None
        if amount.as_tuple().exponent < -2:
            self.problem(field, _("%(value)s has more than 2 decimal places (fen)") % {"value": _show(value)})
            return None
        if amount > BALANCE_LIMIT:
            self.problem(field, _("%(value)s is more than %(limit)s") % {"value": _show(value), "limit": BALANCE_LIMIT})
            return None
        return amount.quantize(Decimal("0.01"))

    def check_overlaps(self, policies: list[tuple[int, PolicyEntry]]) -> None:
        by_region: dict[str | None, list[tuple[int, PolicyEntry]]] = {}
        for index, entry in policies:
            by_region.setdefault(entry.region_id, []).append((index, entry))
        found = []
        for entries in by_region.values():
            periods = [(entry.effective_from, entry.effective_to) for _index, entry in entries]
            for earlier, later in overlapping_periods(periods):
                found.append((entries[later], entries[earlier]))
        for (index, entry), (other_index, other) in sorted(found, key=lambda pair: pair[0][0]):
            self.problem(
                f"policies[{index}].effective_from",
                _("%(label)s overlaps policies[%(other)d] (%(other_label)s until %(until)s) of the same region")
                % {
                    "label": entry.label,
                    "other": other_index,
                    "other_label": other.label,
                    "until": other.effective_to.isoformat() if other.effective_to else _("open-ended"),
                },
            )

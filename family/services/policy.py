"""Writes for family sharing: loading policy (C2); bindings and payments will join here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from accounts.errors import FieldError
from accounts.models import Region
from family.models import PolicyVersion, Relation
from family.policy_file import NATIONAL, PolicyDocument, PolicyEntry, policy_document_parse, policy_file_error

# The PolicyVersion columns a C2 entry sets, besides the region.
POLICY_VALUE_FIELDS = (
    "effective_from",
    "effective_to",
    "relations",
    "cross_province",
    "max_members",
    "multiple_owners",
    "sharing_mode",
    "face_age",
    "min_owner_balance",
    "one_owner_per_payment",
    "long_term_care",
    "family_card_max",
)


@dataclass(frozen=True)
class PolicyLoadResult:
    """What ``policy_load`` changed.

    ``policies_replaced`` lists the regions (``*`` for the national default) whose versions were
    replaced: R17 re-evaluates the applications pending there.
    """

    regions_created: tuple[str, ...]
    regions_updated: tuple[str, ...]
    regions_unchanged: int
    policies_replaced: tuple[str, ...]
    policies_unchanged: tuple[str, ...]
    versions_deleted: int
    versions_created: int

    @property
    def changed(self) -> bool:
        return bool(self.regions_created or self.regions_updated or self.policies_replaced)


def policy_load(*, document: dict, region_model=Region, policy_model=PolicyVersion) -> PolicyLoadResult:
    """C2: upsert the file's regions and replace the versions of every region its policies name, all or nothing.

    A region whose versions already equal the file's is left untouched (same rows, same ids), so loading a
    file twice changes nothing. ``region_model`` and ``policy_model`` let a data migration pass its
    historical models. Raises ``PolicyFileError`` (nothing written) for a malformed document.
    """
    parsed = policy_document_parse(document)
    with transaction.atomic():
        file_codes = {region.code for region in parsed.regions}
        named_codes = {policy.region_id for policy in parsed.policies if policy.region_id is not None}
        known = region_model.objects.in_bulk(sorted(file_codes | named_codes))
        _check_policy_regions(parsed, file_codes | set(known))
        created, updated, unchanged = _regions_upsert(parsed, region_model, known)
        replaced, kept, deleted, added = _policies_replace(parsed, policy_model)
    return PolicyLoadResult(
        regions_created=created,
        regions_updated=updated,
        regions_unchanged=unchanged,
        policies_replaced=replaced,
        policies_unchanged=kept,
        versions_deleted=deleted,
        versions_created=added,
    )


def _check_policy_regions(parsed: PolicyDocument, available_codes: set[str]) -> None:
    """C2: every region a policy names is in the file's regions or already in the database."""
    errors = [
        FieldError(
            f"policies[{index}].region",
            _("'%(code)s' is neither in the file's regions nor a known pooling region") % {"code": policy.region_id},
        )
        for index, policy in enumerate(parsed.policies)
        if policy.region_id is not None and policy.region_id not in available_codes
    ]
    if errors:
        raise policy_file_error(errors)


def _regions_upsert(parsed: PolicyDocument, region_model, known: dict) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    created, updated, unchanged = [], [], 0
    new_regions = []
    for entry in parsed.regions:
        region = known.get(entry.code)
        if region is None:
            new_regions.append(region_model(code=entry.code, name=entry.name, province=entry.province))
            created.append(entry.code)
        elif (region.name, region.province) != (entry.name, entry.province):
            region.name, region.province = entry.name, entry.province
            region.save(update_fields=["name", "province"])
            updated.append(entry.code)
        else:
            unchanged += 1
    region_model.objects.bulk_create(new_regions)
    return tuple(created), tuple(updated), unchanged


def _policies_replace(parsed: PolicyDocument, policy_model) -> tuple[tuple[str, ...], tuple[str, ...], int, int]:
    region_ids = parsed.policy_region_ids
    fields = _value_fields(policy_model)
    wanted: dict[str | None, list[PolicyEntry]] = {region_id: [] for region_id in region_ids}
    for entry in parsed.policies:
        wanted[entry.region_id].append(entry)
    scope = Q(region_id__in=[region_id for region_id in region_ids if region_id is not None])
    if None in wanted:
        scope |= Q(region__isnull=True)
    # Locked so that two loads at once replace one after the other instead of colliding.
    current: dict[str | None, list] = {region_id: [] for region_id in region_ids}
    for version in policy_model.objects.select_for_update().filter(scope).order_by("effective_from"):
        current[version.region_id].append(version)

    replaced, kept, deleted, added = [], [], 0, 0
    for region_id in region_ids:
        label = region_id or NATIONAL
        if _version_values(current[region_id], fields) == _version_values(wanted[region_id], fields):
            kept.append(label)
            continue
        if region_id is None:
            policy_model.objects.filter(region__isnull=True).delete()
        else:
            policy_model.objects.filter(region_id=region_id).delete()
        policy_model.objects.bulk_create(
            policy_model(region_id=region_id, **{name: _column_value(entry, name) for name in fields})
            for entry in wanted[region_id]
        )
        replaced.append(label)
        deleted += len(current[region_id])
        added += len(wanted[region_id])
    return tuple(replaced), tuple(kept), deleted, added


def _column_value(entry: PolicyEntry, name: str) -> Any:
    value = getattr(entry, name)
    return list(value) if name == "relations" else value


_RELATION_ORDER = {name: position for position, name in enumerate(Relation.values)}


def _value_fields(policy_model) -> tuple[str, ...]:
    # The data migration passes the historical model, which lacks the columns added after it.
    columns = {field.name for field in policy_model._meta.get_fields()}
    return tuple(name for name in POLICY_VALUE_FIELDS if name in columns)


def _version_values(versions: Iterable, fields: tuple[str, ...] = POLICY_VALUE_FIELDS) -> list[tuple]:
    """The comparable content of a region's versions (rows or file entries), by start date."""
    values = []
    for version in versions:
        row = []
        for name in fields:
            value = getattr(version, name)
            if name == "relations":
                # The set matters, not the order it was written in.
                value = tuple(sorted(value, key=lambda rel: (_RELATION_ORDER.get(rel, len(_RELATION_ORDER)), rel)))
            row.append(value)
        values.append(tuple(row))
    return sorted(values, key=lambda row: row[0])

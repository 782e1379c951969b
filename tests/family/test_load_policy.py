"""C2: ``manage.py load_policy FILE.json`` and the ``policy_load`` service behind it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import translation

from accounts.models import Region
from family.models import PolicyVersion
from family.policy_file import PolicyFileError, policy_document_parse
from family.services import policy_load

CORE = ["spouse", "parent", "child"]
CLOSE = [*CORE, "sibling", "grandparent", "grandchild"]
DEFAULT_POLICY = Path(settings.BASE_DIR) / "family" / "data" / "default_policy.json"
NANNING = {"code": "450100", "name": "南宁市", "province": "450000"}


def version(region: str, start: str, end: str | None, relations=CORE, **fields) -> dict:
    """A C2 policy entry with the national defaults, without the optional fields unless given."""
    entry = {
        "region": region,
        "effective_from": start,
        "effective_to": end,
        "relations": relations,
        "cross_province": False,
        "max_members": None,
        "multiple_owners": False,
        "sharing_mode": "payment",
        "face_age": 16,
    }
    entry.update(fields)
    return entry


def write(tmp_path: Path, document, *, encoding: str = "utf-8") -> Path:
    path = tmp_path / "policy.json"
    text = document if isinstance(document, str) else json.dumps(document, ensure_ascii=False)
    path.write_bytes(text.encode(encoding))
    return path


def load(path: Path) -> tuple[str, str]:
    """Run the command in English; returns (stdout, stderr)."""
    stdout, stderr = StringIO(), StringIO()
    with translation.override("en"):
        call_command("load_policy", str(path), stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def load_refused(path: Path) -> str:
    """Run the command on a bad file: it must fail with status 1; returns stderr."""
    stdout, stderr = StringIO(), StringIO()
    with translation.override("en"), pytest.raises(CommandError) as refused:
        call_command("load_policy", str(path), stdout=stdout, stderr=stderr)
    assert refused.value.returncode == 1
    assert stdout.getvalue() == ""
    return stderr.getvalue()


def stored_state() -> tuple[list[dict], list[dict]]:
    """Every region and policy version row, ids included."""
    return (
        list(Region.objects.order_by("code").values()),
        list(PolicyVersion.objects.order_by("id").values()),
    )


def rows_of(region_code: str | None) -> list[dict]:
    scope = {"region__isnull": True} if region_code is None else {"region_id": region_code}
    return list(PolicyVersion.objects.filter(**scope).order_by("effective_from").values())


# Loading


def test_c2_load_creates_regions_and_versions(db, tmp_path):
    path = write(
        tmp_path,
        {
            "regions": [NANNING],
            "policies": [
                version("450100", "2021-04-13", "2024-07-01"),
                version(
                    "450100",
                    "2024-07-01",
                    None,
                    CLOSE,
                    cross_province=True,
                    max_members=5,
                    multiple_owners=True,
                    sharing_mode="transfer",
                    face_age=18,
                    min_owner_balance=2000.50,
                    one_owner_per_payment=True,
                ),
            ],
        },
    )

    out, err = load(path)

    assert err == ""
    assert "regions 1 created, 0 updated, 0 unchanged" in out
    assert "replaced for 450100 (0 removed, 2 added)" in out
    region = Region.objects.get(code="450100")
    assert (region.name, region.province) == ("南宁市", "450000")
    first, second = PolicyVersion.objects.filter(region_id="450100").order_by("effective_from")
    assert (first.label, first.effective_to, first.relations, first.cross_province) == (
        "450100@2021-04-13",
        date(2024, 7, 1),
        CORE,
        False,
    )
    # Absent optional fields take their defaults (R15: no minimum balance; R33: several owners may pay).
    assert (first.min_owner_balance, first.one_owner_per_payment) == (None, False)
    assert second.label == "450100@2024-07-01"
    assert second.effective_to is None
    assert second.relations == CLOSE
    assert (second.cross_province, second.max_members, second.multiple_owners) == (True, 5, True)
    assert (second.sharing_mode, second.face_age) == ("transfer", 18)
    assert (second.min_owner_balance, second.one_owner_per_payment) == (Decimal("2000.50"), True)


def test_c2_second_load_changes_nothing(db, tmp_path):
    path = write(
        tmp_path,
        {
            "regions": [NANNING],
            "policies": [
                version("450100", "2021-04-13", None, min_owner_balance="100.00"),
                version("*", "2021-04-13", "2024-07-01"),
                version("*", "2024-07-01", None, CLOSE),
            ],
        },
    )
    load(path)
    before = stored_state()

    out, err = load(path)

    assert err == ""
    assert "no change" in out
    assert stored_state() == before  # same rows, same ids


def test_c2_relations_in_another_order_are_the_same_policy(db, tmp_path):
    load(write(tmp_path, {"regions": [NANNING], "policies": [version("450100", "2021-04-13", None, CORE)]}))
    before = stored_state()

    out, _err = load(
        write(tmp_path, {"policies": [version("450100", "2021-04-13", None, ["child", "spouse", "parent"])]})
    )

    assert "no change" in out
    assert stored_state() == before


def test_c2_load_replaces_all_versions_of_a_named_region(db, tmp_path):
    assert len(rows_of("320500")) == 3  # the shipped default
    national, chengdu, regions = rows_of(None), rows_of("510100"), list(Region.objects.order_by("code").values())

    out, _err = load(write(tmp_path, {"policies": [version("320500", "2022-01-01", None, CLOSE, max_members=5)]}))

    assert "replaced for 320500 (3 removed, 1 added)" in out
    (only,) = rows_of("320500")
    assert (only["effective_from"], only["effective_to"], only["max_members"]) == (date(2022, 1, 1), None, 5)
    # Regions the file does not name keep their versions, row for row.
    assert rows_of(None) == national
    assert rows_of("510100") == chengdu
    assert list(Region.objects.order_by("code").values()) == regions


def test_c2_star_replaces_the_national_versions_only(db, tmp_path):
    suzhou = rows_of("320500")

    out, _err = load(write(tmp_path, {"policies": [version("*", "2021-04-13", None, CLOSE)]}))

    assert "replaced for * (3 removed, 1 added)" in out
    (national,) = rows_of(None)
    assert (national["effective_from"], national["effective_to"], national["relations"]) == (
        date(2021, 4, 13),
        None,
        CLOSE,
    )
    assert rows_of("320500") == suzhou


def test_c2_changed_region_name_is_updated_and_versions_left_alone(db, tmp_path):
    versions = list(PolicyVersion.objects.order_by("id").values())

    out, _err = load(write(tmp_path, {"regions": [{"code": "320500", "name": "苏州", "province": "320000"}]}))

    assert "regions 0 created, 1 updated, 0 unchanged" in out
    assert Region.objects.get(code="320500").name == "苏州"
    assert list(PolicyVersion.objects.order_by("id").values()) == versions


def test_c2_policy_may_name_a_region_already_in_the_database(db, tmp_path):
    load(write(tmp_path, {"policies": [version("330100", "2024-07-01", None, CLOSE)]}))

    assert [row["effective_from"] for row in rows_of("330100")] == [date(2024, 7, 1)]


def test_c2_result_names_the_regions_whose_versions_changed(db):
    """R17 re-evaluates pending applications in the regions whose versions were replaced."""
    document = {
        "regions": [NANNING],
        "policies": [
            version("450100", "2021-04-13", None),
            *json.loads(DEFAULT_POLICY.read_text(encoding="utf-8"))["policies"][:3],  # national, unchanged
        ],
    }

    first = policy_load(document=document)
    second = policy_load(document=document)

    assert (first.changed, first.regions_created, first.policies_replaced) == (True, ("450100",), ("450100",))
    assert first.policies_unchanged == ("*",)
    assert (second.changed, second.policies_replaced, second.regions_unchanged) == (False, (), 1)


def test_c2_utf8_bom_is_accepted(db, tmp_path):
    path = write(tmp_path, {"regions": [NANNING], "policies": []}, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")

    load(path)

    assert Region.objects.get(code="450100").name == "南宁市"


# Malformed files change nothing and name the entry and field.

GOOD_REGION = {"code": "450100", "name": "南宁市", "province": "450000"}
MALFORMED = [
    pytest.param(
        {"policies": [version("*", "2021-13-01", None)]},
        ["policies[0].effective_from", "'2021-13-01' is not a date YYYY-MM-DD"],
        id="impossible-date",
    ),
    pytest.param(
        {"policies": [version("*", "13/04/2021", None)]},
        ["policies[0].effective_from", "'13/04/2021'"],
        id="date-not-iso",
    ),
    pytest.param(
        {"policies": [version("*", "2024-07-01", "2024-07-01")]},
        ["policies[0].effective_to", "2024-07-01 is not after effective_from 2024-07-01"],
        id="empty-period",
    ),
    pytest.param(
        {"policies": [version("*", "2021-04-13", None, [*CORE, "cousin"])]},
        ["policies[0].relations[3]", "unknown relation 'cousin'"],
        id="unknown-relation",
    ),
    pytest.param(
        {"policies": [version("*", "2021-04-13", None, "spouse")]},
        ["policies[0].relations", "must be a list"],
        id="relations-not-a-list",
    ),
    pytest.param(
        {"regions": [{"code": "32050", "name": "苏州市", "province": "320000"}]},
        ["regions[0].code", "'32050' is not a 6-digit division code"],
        id="region-code-5-digits",
    ),
    pytest.param(
        {"regions": [{"code": "450100", "name": "南宁市", "province": "320000"}]},
        ["regions[0].province", "not the province of region 450100"],
        id="province-of-another-region",
    ),
    pytest.param(
        {"regions": [GOOD_REGION, GOOD_REGION]},
        ["regions[1].code", "listed twice"],
        id="region-twice",
    ),
    pytest.param(
        {"policies": [version("32050A", "2021-04-13", None)]},
        ["policies[0].region", "'32050A' is neither a 6-digit division code nor '*'"],
        id="policy-region-code-malformed",
    ),
    pytest.param(
        {"policies": [version("*", "2021-04-13", None, sharing_mode="cash")]},
        ["policies[0].sharing_mode", "unknown sharing mode 'cash'"],
        id="unknown-sharing-mode",
    ),
    pytest.param(
        {"policies": [{k: v for k, v in version("*", "2021-04-13", None).items() if k != "face_age"}]},
        ["policies[0].face_age", "missing"],
        id="missing-field",
    ),
    pytest.param(
        {"policies": [version("*", "2021-04-13", None, cross_province="yes")]},
        ["policies[0].cross_province", "must be true or false"],
        id="boolean-as-text",
    ),
    pytest.param(
        {"policies": [version("*", "2021-04-13", None, face_age="16")]},
        ["policies[0].face_age", "whole number"],
        id="face-age-as-text",
    ),
    pytest.param(
        {"policies": [version("*", "2021-04-13", None, max_members=0)]},
        ["policies[0].max_members", "at least 1"],
        id="max-members-zero",
    ),
    pytest.param(
        {"policies": [version("*", "2021-04-13", None, min_owner_balance=-1)]},
        ["policies[0].min_owner_balance", "negative"],
        id="balance-negative",
    ),
    pytest.param(
        {"policies": [version("*", "2021-04-13", None, min_owner_balance=2000.001)]},
        ["policies[0].min_owner_balance", "2000.001 has more than 2 decimal places"],
        id="balance-over-precise",
    ),
    pytest.param(
        {"policies": [version("*", "2021-04-13", None, min_owner_balance="lots")]},
        ["policies[0].min_owner_balance", "'lots' is not an amount"],
        id="balance-not-a-number",
    ),
    pytest.param(
        {"policies": [version("*", "2021-04-13", None, cross_provice=True)]},
        ["policies[0].cross_provice", "unknown field"],
        id="misspelt-field",
    ),
    pytest.param(
        {
            "policies": [
                version("*", "2021-04-13", "2024-07-01"),
                version("*", "2024-06-01", None, CLOSE),
            ]
        },
        ["policies[1].effective_from", "*@2024-06-01 overlaps policies[0]"],
        id="overlapping-versions",
    ),
    pytest.param(
        {"policies": [version("*", "2021-04-13", None), version("*", "2021-04-13", None)]},
        ["policies[1].effective_from", "overlaps policies[0]"],
        id="same-start-twice",
    ),
    pytest.param(
        {"regions": [GOOD_REGION], "policies": [version("460100", "2021-04-13", None)]},
        ["policies[0].region", "'460100' is neither in the file's regions nor a known pooling region"],
        id="region-unknown-to-file-and-database",
    ),
    pytest.param(
        [version("*", "2021-04-13", None)],
        ["must be a JSON object"],
        id="document-is-a-list",
    ),
    pytest.param(
        {"policies": {"region": "*"}},
        ["policies: must be a list"],
        id="policies-not-a-list",
    ),
]


@pytest.mark.parametrize(("document", "expected"), MALFORMED)
def test_c2_malformed_file_changes_nothing_and_names_entry_and_field(db, tmp_path, document, expected):
    # Each bad file also carries a good new region and a good replacement, which must not be written either.
    if isinstance(document, dict) and isinstance(document.get("policies", []), list):
        document = {
            "regions": [*document.get("regions", []), {"code": "530100", "name": "昆明市", "province": "530000"}],
            "policies": [*document.get("policies", []), version("320500", "2023-01-01", None, CLOSE)],
            **{k: v for k, v in document.items() if k not in ("regions", "policies")},
        }
    before = stored_state()

    err = load_refused(write(tmp_path, document))

    for fragment in expected:
        assert fragment in err
    assert stored_state() == before


def test_c2_every_problem_is_reported_one_per_line(db, tmp_path):
    path = write(
        tmp_path,
        {
            "regions": [{"code": "1234567", "name": "", "province": "320000"}],
            "policies": [version("*", "2021-13-01", None, ["brother"], sharing_mode="cash")],
        },
    )

    err = load_refused(path)

    problem_lines = [line for line in err.splitlines() if line.startswith(str(path))]
    fields = sorted(line.split(": ")[1] for line in problem_lines)
    assert fields == [
        "policies[0].effective_from",
        "policies[0].relations[0]",
        "policies[0].sharing_mode",
        "regions[0].code",
        "regions[0].name",
    ]


def test_c2_malformed_json_changes_nothing(db, tmp_path):
    before = stored_state()

    err = load_refused(write(tmp_path, '{"policies": [{"region": "*",}]}'))

    assert "not valid JSON" in err
    assert "line 1, column 30" in err
    assert stored_state() == before


def test_c2_file_not_utf8_is_refused(db, tmp_path):
    err = load_refused(write(tmp_path, {"regions": [NANNING]}, encoding="gb18030"))

    assert "not UTF-8" in err
    assert not Region.objects.filter(code="450100").exists()


def test_c2_missing_file_is_refused(db, tmp_path):
    with translation.override("en"), pytest.raises(CommandError) as refused:
        call_command("load_policy", str(tmp_path / "nowhere.json"))
    assert "cannot be read" in str(refused.value)


def test_c2_service_refuses_a_malformed_document_without_writing(db):
    before = stored_state()

    with pytest.raises(PolicyFileError) as refused:
        policy_load(document={"regions": [NANNING], "policies": [version("*", "2021-04-13", "2020-01-01")]})

    assert [error.field for error in refused.value.errors] == ["policies[0].effective_to"]
    assert stored_state() == before


def test_c2_command_exits_1_with_problems_on_stderr(tmp_path):
    """The real process, as partners run it: a malformed file is refused before the database is touched."""
    path = write(tmp_path, {"policies": [version("*", "2021-13-01", None)]})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(DJANGO_SETTINGS_MODULE="portal.test_settings", DATABASE_URL=f"sqlite:///{tmp_path}/unused.sqlite3")

    done = subprocess.run(
        [sys.executable, "manage.py", "load_policy", str(path)],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1
    assert done.stdout == ""
    assert "policies[0].effective_from" in done.stderr
    assert "2021-13-01" in done.stderr


# The shipped default policy


def test_c2_shipped_default_policy_is_valid_and_already_loaded_by_migration(db):
    document = policy_document_parse(json.loads(DEFAULT_POLICY.read_text(encoding="utf-8")))
    assert len(document.regions) == 35

    # The data migration loaded exactly this file: loading it again changes nothing.
    out, _err = load(DEFAULT_POLICY)

    assert "no change" in out

"""审计日志 for administrators (R51): filters by person, actor, action and day; pages; the CSV export.

Labels in the log are masked (R4), so a person is found by the full ID number or full name: the rows
about that person (as the object, or named in ``detail`` as owner or relative) are shown.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import translation

from accounts.models import AuditEvent
from accounts.services import audit_record
from tests.factories import InsuredPersonFactory, UserFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOG = "/staff/audit/"
EXPORT = "/staff/audit/export.csv"
BOM = b"\xef\xbb\xbf"


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def at(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, 0, tzinfo=SHANGHAI)


@pytest.fixture
def log(time_machine, citizen_a, citizen_a_family, reviewer, admin_user):
    """A few days of the log: views of a person, a review opening that names the person in ``detail``, others."""
    spouse = citizen_a_family["spouse"]
    rows = {}

    def write(name, when, **kwargs):
        time_machine.move_to(when, tick=False)
        rows[name] = audit_record(**kwargs)

    write("linked", at(1), actor=citizen_a, action="person.linked", target=citizen_a.person)
    write(
        "opened",
        at(2),
        actor=reviewer,
        action="binding.reviewed_opened",
        target=citizen_a_family["child"],  # any object: what matters is the detail
        detail={"owner": citizen_a.person.pk, "relative": spouse.pk},
    )
    write("viewed_spouse", at(3, 23), actor=admin_user, action="person.viewed", target=spouse)
    write("other", at(4, 0), actor=reviewer, action="document.viewed", detail={"binding": 1})
    return rows


def logged_in(client, user):
    client.force_login(user)
    return client


def row_ids(response) -> list[str]:
    return re.findall(r'data-testid="audit-row" data-action="([^"]+)"', response.content.decode())


@pytest.mark.parametrize("persona", ["citizen_a", "reviewer", "clerk_x"])
def test_only_admins_open_the_log_and_the_export(client, persona, request):
    logged_in(client, request.getfixturevalue(persona))
    assert client.get(LOG).status_code == 403
    assert client.get(EXPORT).status_code == 403
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_anonymous_users_are_sent_to_log_in(client):
    for url in (LOG, EXPORT):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


def test_the_log_is_newest_first_with_masked_labels(client, admin_user, log, citizen_a):
    response = logged_in(client, admin_user).get(LOG)

    assert response.status_code == 200
    assert row_ids(response) == ["document.viewed", "person.viewed", "binding.reviewed_opened", "person.linked"]
    page = response.content.decode()
    assert citizen_a.person.masked_id_number in page and citizen_a.person.id_number not in page
    for name in ("person", "actor", "action", "date_from", "date_to"):
        assert f'name="{name}"' in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # By the full ID number: the person as object, and the rows whose detail names them.
        (lambda people: {"person": people["owner"].id_number}, ["binding.reviewed_opened", "person.linked"]),
        (lambda people: {"person": people["spouse"].id_number.lower()}, ["person.viewed", "binding.reviewed_opened"]),
        (lambda people: {"person": people["spouse"].name}, ["person.viewed", "binding.reviewed_opened"]),
        # A masked label finds nobody: the log is not searched by what it shows.
        (lambda people: {"person": people["owner"].masked_id_number}, []),
        (lambda people: {"person": "110105194912310029"}, []),
        (lambda people: {"actor": "REVIEWER"}, ["document.viewed", "binding.reviewed_opened"]),
        (lambda people: {"action": "person.viewed"}, ["person.viewed"]),
        # Whole local days, both ends included (23:00 on the 3rd is the 3rd in Shanghai).
        (
            lambda people: {"date_from": "2026-03-02", "date_to": "2026-03-03"},
            ["person.viewed", "binding.reviewed_opened"],
        ),
        (lambda people: {"date_from": "2026-03-04"}, ["document.viewed"]),
        (
            lambda people: {"person": people["owner"].id_number, "actor": "reviewer", "date_to": "2026-03-02"},
            ["binding.reviewed_opened"],
        ),
    ],
)
def test_filters(client, admin_user, log, citizen_a, citizen_a_family, query, expected):
    people = {"owner": citizen_a.person, "spouse": citizen_a_family["spouse"]}
    response = logged_in(client, admin_user).get(LOG, query(people))
    assert response.status_code == 200
    assert row_ids(response) == expected


def test_a_period_that_ends_before_it_starts_is_refused_next_to_the_field(client, admin_user, log):
    response = logged_in(client, admin_user).get(LOG, {"date_from": "2026-03-04", "date_to": "2026-03-01"})
    assert "Choose a date on or after the start date." in response.content.decode()


def test_the_log_is_paginated_and_keeps_the_filters(client, admin_user, reviewer, time_machine):
    time_machine.move_to(at(5), tick=False)
    for _ in range(60):
        audit_record(actor=reviewer, action="document.viewed")
    logged_in(client, admin_user)

    first = client.get(LOG, {"action": "document.viewed"})
    assert len(row_ids(first)) == 50
    assert "?action=document.viewed&amp;page=2" in first.content.decode()
    second = client.get(LOG, {"action": "document.viewed", "page": 2})
    assert len(row_ids(second)) == 10


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    assert body.startswith(BOM)
    return list(csv.reader(io.StringIO(body[len(BOM) :].decode("utf-8"))))


def test_the_csv_export_has_the_filtered_rows_in_utf8_with_a_bom(client, admin_user, log, citizen_a_family):
    spouse = citizen_a_family["spouse"]
    response = logged_in(client, admin_user).get(EXPORT, {"person": spouse.id_number})

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="audit-log-\d{8}-\d{4}\.csv"', response["Content-Disposition"])
    rows = read_csv(response)
    assert rows[0] == ["time", "actor", "action", "object_type", "object_id", "object", "ip_address", "detail"]
    assert [row[2] for row in rows[1:]] == ["person.viewed", "binding.reviewed_opened"]
    viewed = rows[1]
    assert viewed[0] == "2026-03-03T23:00:00+08:00"
    assert viewed[1] == "admin" and viewed[3:5] == ["accounts.insuredperson", str(spouse.pk)]
    assert viewed[5] == f"{spouse.masked_name} {spouse.masked_id_number}"  # Chinese, readable, still masked
    assert rows[2][7] == f'{{"owner": {log["opened"].detail["owner"]}, "relative": {spouse.pk}}}'
    # The export is itself audited, without copying the ID number searched for.
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor == admin_user and exported.detail["person_given"] is True
    assert spouse.id_number not in str(exported.detail)


def test_a_cell_that_looks_like_a_formula_stays_text(client, admin_user, reviewer):
    person = InsuredPersonFactory(name="=HYPERLINK(1)")
    audit_record(actor=reviewer, action="person.viewed", target=person)
    rows = read_csv(logged_in(client, admin_user).get(EXPORT, {"action": "person.viewed"}))
    assert rows[1][5].startswith("'=")


def test_the_export_streams_every_row(client, admin_user, time_machine):
    actor = UserFactory(username="batch")
    time_machine.move_to(at(6), tick=False)
    AuditEvent.objects.bulk_create(
        AuditEvent(actor=actor, actor_label="batch", action="document.viewed") for _ in range(2500)
    )
    rows = read_csv(logged_in(client, admin_user).get(EXPORT, {"actor": "batch"}))
    assert len(rows) == 1 + 2500

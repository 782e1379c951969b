"""R35 共济使用明细 page and its CSV export: both sides, months with totals, masked names, the page's language."""

from __future__ import annotations

import csv
import io

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.family import test_records_selectors as records_setup
from tests.family.test_records_selectors import at, make_payment

# A's family and its payments (see test_records_selectors), shared as a fixture.
family_payments = records_setup.family_payments

pytestmark = pytest.mark.django_db

RECORDS = "/family/records/"
EXPORT = "/family/records/export.csv"


def in_language(client, language: str):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def text(response) -> str:
    return response.content.decode()


def section(html: str, role: str) -> str:
    """The HTML of one side of the page (owner or relative)."""
    start = html.index(f'data-testid="records-{role}"')
    return html[start : html.index("</section>", start)]


def exported(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    assert body.startswith("\ufeff".encode()), "Excel needs the BOM to read UTF-8"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_r35_urls_are_where_the_notifications_link(db):
    assert reverse("family_records") == RECORDS
    assert reverse("family_records_export") == EXPORT


def test_r35_owner_sees_both_sides_by_month_with_totals_in_chinese(client, citizen_a, family_payments):
    client.force_login(citizen_a)
    response = client.get(RECORDS)
    assert response.status_code == 200
    html = text(response)
    owner = section(html, "owner")
    # Months newest first, each with its total; the grand total of the side; dates as 2025年3月15日.
    assert owner.index("2025年4月") < owner.index("2025年3月")
    assert "¥150.50" in owner and "¥170.50" in owner and "¥10.00" in owner
    assert "2025年3月15日 10:00" in owner and "2025年3月20日" in owner
    assert "苏州市立医院" in owner
    relative = section(html, "relative")
    assert "刘*" in relative and "¥260.00" in relative and "2025年4月25日" in relative
    # R4: no full name and no full ID number of anyone.
    for person in ("child", "parent", "mother"):
        assert family_payments[person].name not in html
        assert family_payments[person].id_number not in html
    assert family_payments["child"].id_number[-4:] in owner


def test_r35_the_page_in_english_shows_english_dates(client, citizen_a, family_payments):
    client.force_login(citizen_a)
    html = text(in_language(client, "en").get(RECORDS))
    assert "Paid from my account for my family" in html and "Paid for me by my family" in html
    assert "15 Mar 2025" in html and "Apr 2025" in html
    assert "month total ¥150.50" in html


def test_r35_filter_by_role_and_dates(client, citizen_a, family_payments):
    client.force_login(citizen_a)
    only_owner = text(client.get(RECORDS, {"role": "owner"}))
    assert 'data-testid="records-owner"' in only_owner and 'data-testid="records-relative"' not in only_owner
    march = text(client.get(RECORDS, {"from": "2025-03-01", "until": "2025-03-31"}))
    assert "¥150.50" in section(march, "owner") and "2025年4月" not in march
    assert "¥260.00" not in march
    # The download link keeps the filters.
    assert f"{EXPORT}?from=2025-03-01&amp;until=2025-03-31" in march


def test_r35_a_bad_filter_says_which_field_and_shows_no_records(client, citizen_a, family_payments):
    client.force_login(citizen_a)
    in_language(client, "en")
    html = text(client.get(RECORDS, {"from": "2025-04-01", "until": "2025-03-01"}))
    assert "Choose an end date after the start date." in html
    assert 'data-testid="records-owner"' not in html
    assert "Enter a valid date." in text(client.get(RECORDS, {"from": "yesterday"}))
    assert "Select a valid choice." in text(client.get(RECORDS, {"role": "admin"}))


def test_r35_stranger_sees_nothing_of_a_family(client, citizen_b, family_payments):
    client.force_login(citizen_b)
    html = text(client.get(RECORDS))
    assert "¥170.50" not in html and "¥260.00" not in html and "苏州市立医院" not in html
    rows = exported(client.get(EXPORT))
    assert len(rows) == 1  # the header only
    # Query parameters never choose whose records: there is none to pass.
    html = text(client.get(RECORDS, {"person": family_payments["owner"].pk, "person_id": family_payments["owner"].pk}))
    assert "¥170.50" not in html


def test_r35_the_relative_sees_the_payment_for_them_from_their_side(client, family_payments):
    from tests.factories import UserFactory

    parent_user = UserFactory(username="parent", person=family_payments["parent"])
    client.force_login(parent_user)
    html = text(client.get(RECORDS))
    assert "¥50.50" in section(html, "relative") and "张*" in section(html, "relative")
    assert "¥50.50" not in section(html, "owner")
    assert "¥170.50" not in html and "¥100.00" not in html


def test_r35_login_and_real_name_are_needed(client, db):
    response = client.get(RECORDS)
    assert response.status_code == 302 and "/login/" in response["Location"]
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="unlinked"))
    response = client.get(EXPORT)
    assert response.status_code == 302 and response["Location"].startswith(reverse("real_name"))


def test_r35_csv_has_a_bom_headers_in_the_page_language_masked_names_and_numbers(client, citizen_a, family_payments):
    client.force_login(citizen_a)
    response = client.get(EXPORT)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="sharing-records-')
    rows = exported(response)
    header, *records = rows
    assert len(records) == 4
    assert len(header) == len(records[0]) == 14
    # Chinese is the default language: the header follows the page (English until the catalogue has it).
    by_name = {name: [row[i] for row in records] for i, name in enumerate(header)}
    amounts = [row[10] for row in records]
    assert amounts == ["260.00", "20.00", "50.50", "100.00"]  # numbers: no ¥, no thousands separator
    assert [row[11] for row in records] == ["0.00", "10.00", "0.00", "0.00"]
    assert records[0][0] == "2025-04-25 10:00"
    patient_ids = [row[6] for row in records]
    assert all("*" * 11 in value for value in patient_ids)
    assert {row[5] for row in records} == {"张*"} and records[0][7] == "刘*"
    everything = "".join("".join(row) for row in rows)
    for person in ("owner", "child", "parent", "mother"):
        assert family_payments[person].id_number not in everything
        assert family_payments[person].name not in everything
    assert by_name  # every column has a header


def test_r35_csv_in_english_and_filtered(client, citizen_a, family_payments):
    client.force_login(citizen_a)
    in_language(client, "en")
    header, *records = exported(client.get(EXPORT, {"role": "owner", "from": "2025-04-01"}))
    assert header[:4] == ["Date and time", "Record", "What", "Where"]
    assert header[10] == "Amount (yuan)"
    assert [(row[1], row[10]) for row in records] == [("Paid from my account", "20.00")]


def test_r35_csv_defuses_spreadsheet_formulas_in_names(
    client, citizen_a, citizen_a_family, binding_active, clerk_x, institution_x
):
    institution_x.name = "=HYPERLINK(1)"
    institution_x.save()
    binding_active(citizen_a.person, citizen_a_family["child"])
    make_payment(clerk_x, citizen_a_family["child"], "3.00", at(2025, 5, 1), institution=institution_x, key="f")
    client.force_login(citizen_a)
    _, record = exported(client.get(EXPORT))
    assert record[3] == "'=HYPERLINK(1)"


def test_r35_the_family_page_links_to_the_records(client, citizen_a):
    client.force_login(citizen_a)
    html = text(client.get(reverse("family_home")))
    assert f'href="{RECORDS}"' in html


def _count_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(RECORDS).status_code == 200
    return len(queries)


def test_r35_page_query_count_does_not_grow_with_rows_and_pages_by_twenty(
    client, citizen_a, citizen_a_family, binding_active, institution_x, clerk_x, django_assert_num_queries
):
    child = citizen_a_family["child"]
    binding_active(citizen_a.person, child)
    make_payment(clerk_x, child, "1.00", at(2025, 1, 2), institution=institution_x, key="first")
    client.force_login(citizen_a)
    # session, user; owner side: totals, rows; relative side: totals (no rows to fetch).
    with django_assert_num_queries(5):
        client.get(RECORDS)
    for n in range(24):
        make_payment(clerk_x, child, "1.00", at(2025, 1 + n % 3, 3, 8, n), institution=institution_x, key=f"k{n}")
    with django_assert_num_queries(5):
        html = text(client.get(RECORDS))
    owner = section(html, "owner")
    assert owner.count('data-testid="record"') == 20
    assert "¥25.00" in owner  # the grand total counts every record, not only the page's
    assert "owner_page=2" in owner
    second = section(text(client.get(RECORDS, {"owner_page": "2"})), "owner")
    assert second.count('data-testid="record"') == 5
    assert "owner_page=1" in second
    assert section(text(client.get(RECORDS, {"owner_page": "x"})), "owner").count('data-testid="record"') == 20

"""GET /api/v1/sharing-records/ (R35): the caller's own records, paginated, filtered, masked; bad filters 400."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.masking import mask_id_number
from accounts.models import User
from tests.family import test_records_selectors as records_setup
from tests.family.test_records_selectors import at, make_payment

pytestmark = pytest.mark.django_db

URL = "/api/v1/sharing-records/"
family_payments = records_setup.family_payments


def as_user(user: User) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_authenticate(user)
    return client


def test_r35_api_lists_both_sides_with_totals_months_and_masked_people(citizen_a, family_payments, institution_x):
    response = as_user(citizen_a).get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4 and body["next"] is None and body["previous"] is None
    assert body["totals"] == {
        "owner": {"amount": "170.50", "refunded": "10.00", "net": "160.50", "count": 3},
        "relative": {"amount": "260.00", "refunded": "0.00", "net": "260.00", "count": 1},
    }
    assert [m["month"] for m in body["months"]] == ["2025-04", "2025-03"]
    assert body["months"][1]["owner"]["amount"] == "150.50"
    first, *_, last = body["results"]
    assert first["role"] == "relative" and first["owner_name"] == "刘*" and first["amount"] == "260.00"
    assert first["time"] == "2025-04-25T10:00:00+08:00" and first["month"] == "2025-04"
    assert last == {
        "id": last["id"],
        "role": "owner",
        "payment_reference": family_payments["march_child"].reference,
        "time": "2025-03-15T10:00:00+08:00",
        "month": "2025-03",
        "kind": "medical",
        "kind_label": "self-paid part of medical costs",
        "institution_code": institution_x.code,
        "institution_name": institution_x.name,
        "patient_name": "张*",
        "patient_id_number": mask_id_number(family_payments["child"].id_number),
        "owner_name": "张*",
        "owner_id_number": mask_id_number(family_payments["owner"].id_number),
        "relationship": "child",
        "amount": "100.00",
        "current_amount": "100.00",
        "historical_amount": "0.00",
        "refunded_amount": "0.00",
        "office_state": "",
    }
    assert "*" * 11 in last["patient_id_number"]  # R4: first 3 and last 4 characters
    for person in ("owner", "child", "parent", "mother"):
        assert family_payments[person].id_number not in response.content.decode()


def test_r35_api_filters_by_role_and_dates(citizen_a, family_payments):
    client = as_user(citizen_a)
    owner = client.get(URL, {"role": "owner"}).json()
    assert {r["role"] for r in owner["results"]} == {"owner"} and owner["count"] == 3
    relative = client.get(URL, {"role": "relative"}).json()
    assert [r["amount"] for r in relative["results"]] == ["260.00"]
    march = client.get(URL, {"from": "2025-03-15", "until": "2025-03-20"}).json()
    assert [r["amount"] for r in march["results"]] == ["50.50", "100.00"]
    assert march["totals"]["owner"]["amount"] == "150.50" and march["totals"]["relative"]["count"] == 0


def test_r35_api_pages_with_limit_and_offset(citizen_a, family_payments):
    client = as_user(citizen_a)
    first = client.get(URL, {"limit": 3}).json()
    assert len(first["results"]) == 3 and first["previous"] is None
    assert first["next"] == "http://testserver/api/v1/sharing-records/?limit=3&offset=3"
    second = client.get(first["next"]).json()
    assert [r["amount"] for r in second["results"]] == ["100.00"] and second["next"] is None
    assert second["previous"] == "http://testserver/api/v1/sharing-records/?limit=3"
    # The months of a page carry whole-month totals: March is split over both pages.
    assert second["months"] == [
        {
            "month": "2025-03",
            "owner": {"amount": "150.50", "refunded": "0.00", "net": "150.50", "count": 2},
            "relative": {"amount": "0.00", "refunded": "0.00", "net": "0.00", "count": 0},
        }
    ]


@pytest.mark.parametrize(
    "query,field",
    [
        ({"role": "admin"}, "role"),
        ({"from": "15/03/2025"}, "from"),
        ({"until": "2025-02-30"}, "until"),
        ({"from": "2025-04-01", "until": "2025-03-01"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"offset": "-1"}, "offset"),
    ],
)
def test_r35_api_bad_filters_answer_problem_json_naming_the_field(citizen_a, query, field):
    response = as_user(citizen_a).get(URL, query)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == 400
    assert [error["field"] for error in body["errors"]] == [field]


def test_r35_api_stranger_sees_nothing_of_a_family(citizen_b, family_payments):
    body = as_user(citizen_b).get(URL, {"owner": family_payments["owner"].pk}).json()
    assert body["count"] == 0 and body["results"] == [] and body["months"] == []


def test_r35_api_works_with_a_citizen_token_and_refuses_others(client, citizen_a, family_payments, partner_token):
    token = Token.objects.create(user=citizen_a).key
    response = APIClient().get(URL, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200 and response.json()["count"] == 4
    assert APIClient().get(URL).status_code == 401
    partner = APIClient().get(URL, HTTP_AUTHORIZATION=f"Token {partner_token}")
    assert partner.status_code == 403 and partner["Content-Type"].startswith("application/problem+json")


def test_r35_api_query_count_does_not_grow_with_rows(
    citizen_a, citizen_a_family, binding_active, institution_x, clerk_x, django_assert_num_queries
):
    child = citizen_a_family["child"]
    binding_active(citizen_a.person, child)
    client = as_user(citizen_a)
    make_payment(clerk_x, child, "1.00", at(2025, 2, 1), institution=institution_x, key="first")
    # totals by month and role; the page's rows (force_authenticate: no session or token query).
    with django_assert_num_queries(2):
        assert client.get(URL).json()["count"] == 1
    for n in range(12):
        make_payment(clerk_x, child, "1.00", at(2025, 2 + n % 4, 2), institution=institution_x, key=f"k{n}")
    with django_assert_num_queries(2):
        assert len(client.get(URL, {"limit": 50}).json()["results"]) == 13


def test_r35_api_is_in_the_schema(client, db):
    schema = client.get("/api/schema/").content.decode()
    assert "/api/v1/sharing-records/" in schema and "sharing_records_list" in schema
    assert "SharingRecordsPage" in schema

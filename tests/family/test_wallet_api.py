"""/api/v1/transfers/ (R36) and /api/v1/wallet/ (R37): shapes, Idempotency-Key, problem+json, who may do what."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.masking import mask_id_number
from accounts.models import User, Wallet
from accounts.services import wallet_open
from family.models import AccountTransfer, Relation, WalletTransfer
from tests.factories import UserFactory
from tests.family.wallet_setup import NOW, balances, bind, cross_province_parent, local, send, transfer_region_people

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


def as_user(user: User | None) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    if user is not None:
        client.force_authenticate(user)
    return client


def post(client: APIClient, url: str, body: dict | None = None, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(url, body or {}, format="json", **headers)


def assert_problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(PROBLEM)
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    if code:
        assert body["type"] == f"/api/problems/{code}/"
    return body


@pytest.fixture
def father(db):
    person, user = cross_province_parent()
    wallet_open(person=person, opened_by=user)
    return user


@pytest.fixture
def binding(citizen_a, father):
    return bind(citizen_a.person, father.person, relationship=Relation.PARENT)


WALLET_TRANSFERS = "/api/v1/wallet/transfers/"


def accept_url(transfer_id: int) -> str:
    return f"/api/v1/wallet/transfers/{transfer_id}/accept/"


# --- POST /api/v1/wallet/transfers/ -------------------------------------------------------------------


def test_r37_send_answers_201_then_200_for_the_same_request(citizen_a, father, binding):
    body = {"binding_id": binding.pk, "amount": "88.00"}

    created = post(as_user(citizen_a), WALLET_TRANSFERS, body, key="abc")
    again = post(as_user(citizen_a), WALLET_TRANSFERS, body, key="abc")

    assert created.status_code == 201, created.content
    data = created.json()
    assert data["amount"] == "88.00"
    assert (data["from_current"], data["from_historical"]) == ("88.00", "0.00")
    assert data["state"] == "pending" and data["my_side"] == "owner"
    assert data["relative"] == {"name": "张*", "id_number": mask_id_number(father.person.id_number)}
    assert data["return_due_at"].startswith("2026-03-11T06:00:00")
    assert again.status_code == 200 and again.json()["id"] == data["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert WalletTransfer.objects.count() == 1


def test_r34_the_same_key_with_another_body_is_a_409_problem(citizen_a, binding):
    post(as_user(citizen_a), WALLET_TRANSFERS, {"binding_id": binding.pk, "amount": "1.00"}, key="abc")

    response = post(as_user(citizen_a), WALLET_TRANSFERS, {"binding_id": binding.pk, "amount": "2.00"}, key="abc")

    assert_problem(response, 409, "idempotency_key_reused")
    assert balances(citizen_a.person) == (Decimal("1199.00"), Decimal("300.50"))


def test_r34_without_an_idempotency_key_it_is_a_400_naming_the_header(citizen_a, binding):
    response = post(as_user(citizen_a), WALLET_TRANSFERS, {"binding_id": binding.pk, "amount": "1.00"})

    body = assert_problem(response, 400, "idempotency_key_missing")
    assert [e["field"] for e in body["errors"]] == ["Idempotency-Key"]
    assert not WalletTransfer.objects.exists()


def test_r34_an_overlong_idempotency_key_is_refused(citizen_a, binding):
    response = post(as_user(citizen_a), WALLET_TRANSFERS, {"binding_id": binding.pk, "amount": "1.00"}, key="k" * 65)

    assert_problem(response, 400, "idempotency_key_missing")


def test_r37_limit_refusals_are_problems_naming_the_limit(citizen_a, binding, frozen):
    too_much = post(as_user(citizen_a), WALLET_TRANSFERS, {"binding_id": binding.pk, "amount": "2000.01"}, key="a")
    body = assert_problem(too_much, 400, "wallet_amount_limit")
    assert "R37" in body["title"] and body["errors"][0]["field"] == "amount"

    frozen.move_to(local(10, 23), tick=False)
    quiet = post(as_user(citizen_a), WALLET_TRANSFERS, {"binding_id": binding.pk, "amount": "1.00"}, key="b")
    assert "22:00" in assert_problem(quiet, 409, "wallet_quiet_hours")["title"]


def test_r37_bad_fields_are_listed(citizen_a):
    response = post(as_user(citizen_a), WALLET_TRANSFERS, {"binding_id": "x", "amount": "1.001"}, key="a")

    body = assert_problem(response, 400)
    assert {e["field"] for e in body["errors"]} == {"binding_id", "amount"}


def test_r37_someone_elses_binding_is_not_found(citizen_b, binding):
    response = post(as_user(citizen_b), WALLET_TRANSFERS, {"binding_id": binding.pk, "amount": "1.00"}, key="a")

    assert_problem(response, 400, "binding_not_found")


# --- POST /api/v1/wallet/transfers/{id}/accept/ ----------------------------------------------------------


def test_r37_the_relative_accepts_and_again_answers_the_same(citizen_a, father, binding):
    transfer = send(citizen_a, binding, "50.00")

    first = post(as_user(father), accept_url(transfer.pk))
    again = post(as_user(father), accept_url(transfer.pk))

    assert first.status_code == 200 and again.status_code == 200
    assert first.json()["state"] == again.json()["state"] == "accepted"
    assert first.json()["my_side"] == "relative"
    assert Wallet.objects.get(person=father.person).balance == Decimal("50.00")


def test_r37_a_stranger_gets_404_the_owner_403_and_nobody_401(citizen_a, citizen_b, binding, partner_token):
    transfer = send(citizen_a, binding, "50.00")

    assert_problem(post(as_user(citizen_b), accept_url(transfer.pk)), 404)
    assert_problem(post(as_user(citizen_a), accept_url(transfer.pk)), 403, "not_wallet_holder")
    assert_problem(post(as_user(None), accept_url(transfer.pk)), 401)
    partner = APIClient(HTTP_AUTHORIZATION=f"Token {partner_token}")
    assert_problem(post(partner, accept_url(transfer.pk)), 403)
    assert_problem(post(as_user(citizen_b), accept_url(999999)), 404)
    assert WalletTransfer.objects.get().state == "pending"


def test_r37_a_returned_transfer_is_a_409(citizen_a, father, binding, frozen):
    from family.services.wallet import wallet_transfers_return_due

    transfer = send(citizen_a, binding, "50.00")
    frozen.move_to(local(11, 6, 1), tick=False)
    wallet_transfers_return_due(now=local(11, 6, 1))

    assert_problem(post(as_user(father), accept_url(transfer.pk)), 409, "wallet_transfer_returned")


# --- GET and POST /api/v1/wallet/ --------------------------------------------------------------------------


def test_r37_my_wallet_shows_the_balance_what_waits_and_the_limits(citizen_a, father, binding):
    send(citizen_a, binding, "30.00")

    data = as_user(father).get("/api/v1/wallet/").json()

    assert data["opened"] is True and data["balance"] == "0.00"
    assert [(t["amount"], t["owner"]["name"]) for t in data["waiting"]] == [("30.00", "张*")]
    assert data["limits"]["per_day"] == 3 and data["limits"]["max_amount"] == "2000.00"
    owner_view = as_user(citizen_a).get("/api/v1/wallet/").json()
    assert owner_view["opened"] is False
    assert [t["my_side"] for t in owner_view["sent"]] == ["owner"]
    assert owner_view["limits"]["left_today"] == 2


def test_r37_opening_a_wallet_is_201_then_200(citizen_a):
    first = as_user(citizen_a).post("/api/v1/wallet/")
    again = as_user(citizen_a).post("/api/v1/wallet/")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["opened"] is True
    assert Wallet.objects.filter(person=citizen_a.person).count() == 1


def test_wallet_api_is_for_citizens_linked_to_a_person(partner_token):
    unlinked = UserFactory(username="nobody")

    assert_problem(as_user(unlinked).get("/api/v1/wallet/"), 403)
    assert_problem(APIClient(HTTP_AUTHORIZATION=f"Token {partner_token}").get("/api/v1/wallet/"), 403)
    assert_problem(as_user(None).get("/api/v1/wallet/"), 401)


# --- POST /api/v1/transfers/ (R36) -------------------------------------------------------------------------


def test_r36_transfer_by_token_answers_the_transfer_with_the_receiver_masked(db):
    people = transfer_region_people()
    token = Token.objects.create(user=people["owner_user"]).key
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token}", HTTP_ACCEPT_LANGUAGE="en")
    daughter = people["daughter"]
    body = {"relative_name": daughter.name, "relative_id_number": daughter.id_number, "amount": "20"}

    created = post(client, "/api/v1/transfers/", body, key="t-1")
    again = post(client, "/api/v1/transfers/", {**body, "amount": "20.00"}, key="t-1")

    assert created.status_code == 201, created.content
    data = created.json()
    assert data["relative"] == {"name": "赵*", "id_number": mask_id_number(daughter.id_number)}
    assert (data["amount"], data["part"]) == ("20.00", "historical")
    assert again.status_code == 200 and again.json()["reference"] == data["reference"]
    assert AccountTransfer.objects.count() == 1
    assert balances(people["owner"]) == (Decimal("1000.00"), Decimal("480.00"))


def test_r36_transfer_needs_an_idempotency_key(db):
    people = transfer_region_people()
    daughter = people["daughter"]
    body = {"relative_name": daughter.name, "relative_id_number": daughter.id_number, "amount": "20"}

    assert_problem(post(as_user(people["owner_user"]), "/api/v1/transfers/", body), 400, "idempotency_key_missing")


def test_r36_transfer_in_a_payment_region_is_a_problem_naming_r36(citizen_a, citizen_a_family):
    spouse = citizen_a_family["spouse"]
    bind(citizen_a.person, spouse, relationship=Relation.SPOUSE)
    body = {"relative_name": spouse.name, "relative_id_number": spouse.id_number, "amount": "20"}

    response = post(as_user(citizen_a), "/api/v1/transfers/", body, key="t")

    assert "R36" in assert_problem(response, 409, "transfer_mode_off")["title"]


def test_r36_mismatch_and_bad_fields_are_400_problems_naming_the_fields(db):
    people = transfer_region_people()
    daughter = people["daughter"]
    client = as_user(people["owner_user"])

    mismatch = post(
        client,
        "/api/v1/transfers/",
        {"relative_name": "赵小黑", "relative_id_number": daughter.id_number, "amount": "20"},
        key="a",
    )
    bad = post(client, "/api/v1/transfers/", {"relative_name": "", "relative_id_number": "123", "amount": "x"}, key="b")

    body = assert_problem(mismatch, 400, "receiver_mismatch")
    assert {e["field"] for e in body["errors"]} == {"relative_name", "relative_id_number"}
    assert {e["field"] for e in assert_problem(bad, 400)["errors"]} == {"relative_name", "relative_id_number", "amount"}
    assert not AccountTransfer.objects.exists()


def test_the_schema_lists_the_idempotency_key_header(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    parameters = schema["paths"]["/api/v1/wallet/transfers/"]["post"]["parameters"]
    assert {"in": "header", "name": "Idempotency-Key"}.items() <= parameters[0].items()
    assert "/api/v1/transfers/" in schema["paths"]
    assert "/api/v1/wallet/transfers/{transfer_id}/accept/" in schema["paths"]

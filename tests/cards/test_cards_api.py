"""The e-card API: claim, my card, my QR code, verification by clerks and partners; problem+json errors."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import User
from cards.models import ECard, QrToken
from cards.services import card_suspend
from tests.factories import UserFactory

CLAIM = "/api/v1/cards/claim/"
ME = "/api/v1/cards/me/"
QR = "/api/v1/cards/me/qr/"
VERIFY = "/api/v1/cards/verify/"


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def as_citizen_a(api, citizen_a) -> APIClient:
    api.force_authenticate(citizen_a)
    return api


@pytest.fixture
def as_partner(partner_token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {partner_token}")
    return client


def assert_problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    if code is not None:
        assert body["type"] == f"/api/problems/{code}/"
    return body


def test_r40_claim_starts_once_and_claiming_again_shows_the_card(as_citizen_a, citizen_a, claim_card):
    first = as_citizen_a.post(CLAIM, {"region_code": "320500"}, format="json")
    assert first.status_code == 201
    body = first.json()
    assert (body["state"], body["next_step"], body["channel"]) == ("pending", "agreement", "portal")
    assert body["region"] == {"code": "320500", "name": "苏州市"}
    assert body["holder"]["name"] == "张*"
    assert body["holder"]["id_number"].count("*") == 11

    again = as_citizen_a.post(CLAIM, {"region_code": "320500", "channel": "wechat"}, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]

    ECard.objects.all().delete()
    card = claim_card(citizen_a.person)
    active = as_citizen_a.post(CLAIM, {"region_code": "320500"}, format="json")
    assert active.status_code == 200
    assert (active.json()["id"], active.json()["state"], active.json()["next_step"]) == (card.pk, "active", "done")
    assert ECard.objects.count() == 1


def test_r40_claim_refuses_bad_and_unknown_regions(as_citizen_a):
    bad = assert_problem(as_citizen_a.post(CLAIM, {"region_code": "32"}, format="json"), 400)
    assert [e["field"] for e in bad["errors"]] == ["region_code"]
    unknown = assert_problem(as_citizen_a.post(CLAIM, {"region_code": "999999"}, format="json"), 400, "unknown_region")
    assert unknown["errors"][0]["field"] == "region_code"
    wrong_channel = assert_problem(as_citizen_a.post(CLAIM, {"region_code": "320500", "channel": "fax"}), 400)
    assert wrong_channel["errors"][0]["field"] == "channel"
    assert not ECard.objects.exists()


def test_card_endpoints_are_for_citizens_with_a_person(api, as_partner, clerk_x, db):
    for method, path in (("post", CLAIM), ("get", ME), ("get", QR)):
        assert_problem(getattr(api, method)(path), 401)
        assert_problem(getattr(as_partner, method)(path), 403)
    api.force_authenticate(clerk_x)
    assert_problem(api.get(ME), 403)


def test_me_shows_my_card_masked(as_citizen_a, card_a):
    body = as_citizen_a.get(ME).json()
    assert (body["state"], body["next_step"], body["locked_until"]) == ("active", "done", None)
    assert body["holder"] == {"name": "张*", "id_number": card_a.person.masked_id_number}


def test_me_without_a_card_is_a_404_problem(as_citizen_a):
    assert_problem(as_citizen_a.get(ME), 404)
    assert_problem(as_citizen_a.get(QR), 404)


def test_r42_my_qr_is_fresh_every_time_and_never_cached(as_citizen_a, card_a):
    first = as_citizen_a.get(QR)
    second = as_citizen_a.get(QR)
    assert first.status_code == second.status_code == 200
    assert first["Cache-Control"] == "no-store"
    assert first.json()["ttl_seconds"] == 60
    assert first.json()["token"] != second.json()["token"]
    assert QrToken.objects.filter(card=card_a).count() == 2


def test_r42_a_pending_card_has_no_qr(as_citizen_a):
    as_citizen_a.post(CLAIM, {"region_code": "320500"}, format="json")
    assert_problem(as_citizen_a.get(QR), 409, "card_not_active")


def test_r42_a_partner_verifies_once_and_sees_masked_holder_and_payers(as_citizen_a, as_partner, card_a):
    token = as_citizen_a.get(QR).json()["token"]
    response = as_partner.post(VERIFY, {"token": token}, format="json")
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["holder"] == {"name": "张*", "id_number": card_a.person.masked_id_number}
    assert body["card"] == {"state": "active", "region_code": "320500", "region_name": "苏州市"}
    assert [(p["kind"], p["name"]) for p in body["payers"]] == [("own", "张*")]
    assert body["reference"] == QrToken.objects.get(card=card_a).nonce

    replay = assert_problem(as_partner.post(VERIFY, {"token": token}, format="json"), 409, "replayed")
    assert replay["detail"]


def test_r42_a_clerk_verifies_too_a_citizen_may_not(as_citizen_a, api, card_a, clerk_x, citizen_b):
    token = as_citizen_a.get(QR).json()["token"]
    stranger = APIClient()
    stranger.force_authenticate(citizen_b)
    assert_problem(stranger.post(VERIFY, {"token": token}, format="json"), 403)
    assert_problem(as_citizen_a.post(VERIFY, {"token": token}, format="json"), 403)
    assert QrToken.objects.get().used_at is None
    clerk = APIClient()
    clerk.force_authenticate(clerk_x)
    assert clerk.post(VERIFY, {"token": token}, format="json").status_code == 200


def test_r42_verify_refusals_name_their_reason(as_citizen_a, as_partner, card_a, clerk_wuhan):
    missing = assert_problem(as_partner.post(VERIFY, {}, format="json"), 400)
    assert missing["errors"][0]["field"] == "token"
    assert_problem(as_partner.post(VERIFY, {"token": "abc:def:ghi"}, format="json"), 400, "forged")

    foreign = APIClient()
    foreign.force_authenticate(clerk_wuhan)
    token = as_citizen_a.get(QR).json()["token"]
    assert_problem(foreign.post(VERIFY, {"token": token}, format="json"), 403, "foreign_region")

    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    with time_machine.travel(start, tick=False) as clock:
        token = as_citizen_a.get(QR).json()["token"]
        clock.shift(60)
        assert_problem(as_partner.post(VERIFY, {"token": token}, format="json"), 410, "expired")

    token = as_citizen_a.get(QR).json()["token"]
    card_suspend(card_id=card_a.pk, actor=UserFactory(role=User.Role.ADMIN), reason="reported lost")
    assert_problem(as_partner.post(VERIFY, {"token": token}, format="json"), 409, "card_not_active")


def test_the_card_endpoints_are_in_the_schema_with_operation_ids(client, db):
    schema = client.get(reverse("api_schema"), {"format": "json"}).json()
    expected = {
        CLAIM: ("post", "cards_claim"),
        ME: ("get", "cards_me_retrieve"),
        QR: ("get", "cards_me_qr_retrieve"),
        VERIFY: ("post", "cards_verify"),
    }
    for path, (method, operation_id) in expected.items():
        assert schema["paths"][path][method]["operationId"] == operation_id
    verify = schema["paths"][VERIFY]["post"]["responses"]
    assert {"200", "400", "403", "409", "410"} <= set(verify)

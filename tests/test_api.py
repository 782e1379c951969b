"""The API's shape: /api/v1/me/, problem+json errors, the schema, throttling and token issue."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import User


@pytest.fixture
def api():
    return APIClient()


def test_me_answers_masked(api, citizen_a):
    api.force_authenticate(citizen_a)
    body = api.get("/api/v1/me/").json()
    assert body["person"]["id_number"].count("*") == 11  # R4
    assert body["person"]["name"] == "张*"
    assert body["account"]["balance"] == "1500.50"


def test_me_without_credentials_is_problem_json(api, db):
    response = api.get("/api/v1/me/")
    assert response.status_code in (401, 403)
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == response.status_code


def test_unknown_api_url_is_problem_json(api, db):
    response = api.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")


def test_schema_and_docs_are_served(client, db):
    schema = client.get(reverse("api_schema"))
    assert schema.status_code == 200
    assert b"/api/v1/me/" in schema.content
    docs = client.get(reverse("api_docs"))
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()  # served from our own static files


def test_issue_token_prints_only_the_token_and_creates_a_partner(db):
    out = io.StringIO()
    call_command("issue_token", "pharmacy-x", stdout=out)
    token = out.getvalue().strip()
    user = User.objects.get(username="pharmacy-x")
    assert user.role == User.Role.PARTNER
    assert Token.objects.get(user=user).key == token
    again = io.StringIO()
    call_command("issue_token", "pharmacy-x", stdout=again)
    assert again.getvalue().strip() == token


def test_issue_token_refuses_a_citizen_login(citizen_a):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("issue_token", citizen_a.username, stdout=io.StringIO())
    assert not Token.objects.filter(user=citizen_a).exists()


def test_token_auth_works(api, partner_token):
    api.credentials(HTTP_AUTHORIZATION=f"Token {partner_token}")
    assert api.get("/api/v1/me/").json()["role"] == "partner"


def test_healthz_reports_the_database(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"

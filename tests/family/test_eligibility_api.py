"""C3 ``POST /api/v1/eligibility/``: the partner API over the eligibility rules (R10–R16, R23)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation
from django.utils.translation import gettext
from rest_framework.test import APIClient

from accounts.models import InsuranceStatus, User
from family.models import BindingState, PolicyVersion
from tests.factories import InsuredPersonFactory, make_id_number

URL = "/api/v1/eligibility/"
ANSWER_KEYS = {"eligible", "needs_face_verification", "needs_review", "policy_version", "reasons"}
PROBLEM_KEYS = {"type", "title", "status", "detail", "errors"}


@pytest.fixture
def api(partner_token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {partner_token}")
    return client


def ask(api: APIClient, language: str = "en", **body):
    return api.post(URL, body, format="json", HTTP_ACCEPT_LANGUAGE=language)


def ask_for(api, owner, relative, relationship: str, on_date: str | None = "2026-03-10", language: str = "en"):
    body = {"owner_id_number": owner.id_number, "relative_id_number": relative.id_number, "relationship": relationship}
    if on_date is not None:
        body["on_date"] = on_date
    return ask(api, language, **body)


def row_counts() -> dict[str, int]:
    """Rows of every model of the two apps the check reads (and must never write)."""
    models = [*apps.get_app_config("accounts").get_models(), *apps.get_app_config("family").get_models()]
    return {model._meta.label: model._default_manager.count() for model in models}


def problem_fields(response) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


# The answer.


def test_c3_answer_has_exactly_the_contract_shape(api, citizen_a, citizen_a_family):
    response = ask_for(api, citizen_a.person, citizen_a_family["spouse"], "spouse")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == ANSWER_KEYS
    assert body == {
        "eligible": True,
        "needs_face_verification": True,
        "needs_review": False,
        "policy_version": "320500@2024-12-02",
        "reasons": [],
    }


def test_c3_reasons_are_rule_and_message_strings(api, citizen_a, citizen_a_family):
    parent = citizen_a_family["parent"]
    parent.status = InsuranceStatus.SUSPENDED
    parent.save(update_fields=["status"])

    body = ask_for(api, citizen_a.person, parent, "parent").json()

    assert body["eligible"] is False
    assert isinstance(body["needs_face_verification"], bool)
    assert isinstance(body["needs_review"], bool)
    assert isinstance(body["policy_version"], str)
    assert [reason["rule"] for reason in body["reasons"]] == ["R11"]
    for reason in body["reasons"]:
        assert set(reason) == {"rule", "message"}
        assert isinstance(reason["message"], str) and reason["message"]


def test_c3_under_16_needs_no_face_and_a_doubt_only_asks_for_review(api, citizen_a, citizen_a_family):
    child = citizen_a_family["child"]  # born 2015-01-01
    young_spouse = InsuredPersonFactory(region=citizen_a.person.region, birth="20080101", male=True)

    child_body = ask_for(api, citizen_a.person, child, "child").json()
    doubt_body = ask_for(api, citizen_a.person, young_spouse, "spouse").json()

    assert child_body["eligible"] is True
    assert child_body["needs_face_verification"] is False
    assert doubt_body["eligible"] is True  # R16 never refuses
    assert doubt_body["needs_review"] is True
    assert {reason["rule"] for reason in doubt_body["reasons"]} == {"R16"}


def test_c3_policy_version_is_null_when_no_policy_is_in_force(api, citizen_a, citizen_a_family):
    body = ask_for(api, citizen_a.person, citizen_a_family["spouse"], "spouse", on_date="2020-01-01").json()

    assert body["policy_version"] is None
    assert body["eligible"] is False
    assert [reason["rule"] for reason in body["reasons"]] == ["R12"]


def test_c3_refusal_names_rule_version_and_date(api, citizen_a, citizen_a_family):
    sibling = InsuredPersonFactory(region=citizen_a.person.region, birth="19830101")

    body = ask_for(api, citizen_a.person, sibling, "sibling", on_date="2024-06-15").json()

    assert body["eligible"] is False
    assert body["policy_version"] == "320500@2021-04-13"
    assert body["reasons"] == [
        {
            "rule": "R12",
            "message": "sibling is not allowed by policy 320500@2021-04-13. Region 320500 allows it from 2024-07-01.",
        }
    ]


def test_c3_unknown_persons_are_refusals_not_request_errors(api, db):
    owner_number = make_id_number("110105", "19800101", 11)
    relative_number = make_id_number("110105", "19820202", 22)

    response = ask(
        api,
        owner_id_number=owner_number,
        relative_id_number=relative_number,
        relationship="spouse",
        on_date="2026-03-10",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["eligible"] is False
    assert [reason["rule"] for reason in body["reasons"]] == ["R10", "R11"]


def test_c3_lower_case_x_is_accepted(api, citizen_a, db):
    # The first even (female) sequence whose check character is X.
    number = next(
        candidate
        for candidate in (make_id_number("320505", "19820620", seq) for seq in range(2, 1000, 2))
        if candidate.endswith("X")
    )
    relative = InsuredPersonFactory(region=citizen_a.person.region, id_number=number)

    response = ask(
        api,
        owner_id_number=citizen_a.person.id_number,
        relative_id_number=relative.id_number.lower(),
        relationship="spouse",
        on_date="2026-03-10",
    )

    assert response.status_code == 200
    assert response.json()["eligible"] is True  # found: the X was read upper-case (R1)


@pytest.mark.parametrize("case", ["eligible", "refused", "unknown", "no_policy"])
def test_c3_writes_nothing(api, citizen_a, citizen_a_family, case):
    owner, relative = citizen_a.person, citizen_a_family["spouse"]
    body = {
        "eligible": (owner.id_number, relative.id_number, "spouse", "2026-03-10"),
        "refused": (relative.id_number, citizen_a_family["child"].id_number, "sibling", "2024-01-01"),
        "unknown": (
            make_id_number("110105", "19800101", 11),
            make_id_number("110105", "19820202", 22),
            "spouse",
            "2026-03-10",
        ),
        "no_policy": (owner.id_number, relative.id_number, "spouse", "2019-01-01"),
    }[case]
    before = row_counts()

    response = ask(api, owner_id_number=body[0], relative_id_number=body[1], relationship=body[2], on_date=body[3])

    assert response.status_code == 200
    assert row_counts() == before


# Malformed bodies: 400 problem+json naming each bad field once.


def assert_problem(response, status: int = 400) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    return body


def test_c3_bad_checksum_names_the_field(api, citizen_a, citizen_a_family):
    good = citizen_a.person.id_number
    bad = good[:17] + ("0" if good[17] != "0" else "1")

    response = ask(
        api, owner_id_number=bad, relative_id_number=citizen_a_family["spouse"].id_number, relationship="spouse"
    )

    body = assert_problem(response)
    assert set(body) == PROBLEM_KEYS
    assert problem_fields(response) == ["owner_id_number"]
    assert "check character" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        ({"relative_id_number": "32050519800231001X"}, "relative_id_number", "does not exist"),
        ({"relative_id_number": "3205051980"}, "relative_id_number", "18 characters"),
        ({"relationship": "cousin"}, "relationship", "cousin"),
        ({"on_date": "2026-02-30"}, "on_date", ""),
        ({"on_date": "10/03/2026"}, "on_date", ""),
    ],
)
def test_c3_each_malformed_field_is_named(api, citizen_a, citizen_a_family, override, field, words):
    body = {
        "owner_id_number": citizen_a.person.id_number,
        "relative_id_number": citizen_a_family["spouse"].id_number,
        "relationship": "spouse",
        "on_date": "2026-03-10",
        **override,
    }

    response = ask(api, **body)

    assert_problem(response)
    assert problem_fields(response) == [field]
    assert words in response.json()["errors"][0]["message"]


def test_c3_missing_fields_give_one_error_each(api, db):
    response = ask(api)

    assert_problem(response)
    assert sorted(problem_fields(response)) == ["owner_id_number", "relationship", "relative_id_number"]


def test_c3_several_bad_fields_give_one_error_per_field(api, db):
    response = ask(
        api, owner_id_number="123", relative_id_number="32050519800231001X", relationship="friend", on_date="yesterday"
    )

    assert_problem(response)
    fields = problem_fields(response)
    assert sorted(fields) == ["on_date", "owner_id_number", "relationship", "relative_id_number"]


def test_c3_birth_date_in_the_future_is_refused(api, citizen_a):
    unborn = make_id_number("320505", "20990101", 11)

    response = ask(api, owner_id_number=citizen_a.person.id_number, relative_id_number=unborn, relationship="child")

    assert_problem(response)
    assert problem_fields(response) == ["relative_id_number"]


# Who may ask.


def test_c3_without_a_token_is_401_problem_json(citizen_a, citizen_a_family):
    response = APIClient().post(
        URL,
        {
            "owner_id_number": citizen_a.person.id_number,
            "relative_id_number": citizen_a_family["spouse"].id_number,
            "relationship": "spouse",
        },
        format="json",
    )

    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Token")


def test_c3_with_a_wrong_token_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert_problem(client.post(URL, {}, format="json"), 401)


def test_c3_citizen_session_is_403(citizen_a, citizen_a_family):
    client = APIClient()
    client.force_login(citizen_a)

    response = client.post(
        URL,
        {
            "owner_id_number": citizen_a.person.id_number,
            "relative_id_number": citizen_a_family["spouse"].id_number,
            "relationship": "spouse",
        },
        format="json",
    )

    assert_problem(response, 403)


def test_c3_staff_session_may_ask(reviewer, citizen_a, citizen_a_family):
    client = APIClient()
    client.force_login(reviewer)

    response = client.post(
        URL,
        {
            "owner_id_number": citizen_a.person.id_number,
            "relative_id_number": citizen_a_family["spouse"].id_number,
            "relationship": "spouse",
            "on_date": "2026-03-10",
        },
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["eligible"] is True


def test_c3_partner_token_of_a_deactivated_account_is_refused(api, partner_token, citizen_a, citizen_a_family):
    User.objects.filter(auth_token__key=partner_token).update(is_active=False)

    response = ask_for(api, citizen_a.person, citizen_a_family["spouse"], "spouse")

    assert_problem(response, 401)


# The decision date.


def test_c3_on_date_defaults_to_today_in_asia_shanghai(api, time_machine, region_policy):
    # 2026-06-30 17:00 UTC is already 2026-07-01 01:00 in Shanghai.
    time_machine.move_to(datetime(2026, 6, 30, 17, 0, tzinfo=UTC), tick=False)
    first = region_policy(code="330100", effective_to=date(2026, 7, 1))
    PolicyVersion.objects.create(region=first.region, effective_from=date(2026, 7, 1), relations=first.relations)
    owner = InsuredPersonFactory(region=first.region, birth="19800101")
    turning_16 = InsuredPersonFactory(region=first.region, birth="20100701", insurance_type="resident")
    born_today = make_id_number("330106", "20260701", 11)

    body = ask_for(api, owner, turning_16, "child", on_date=None).json()
    newborn = ask(api, owner_id_number=owner.id_number, relative_id_number=born_today, relationship="child")

    assert body["policy_version"] == "330100@2026-07-01"
    assert body["needs_face_verification"] is True  # R23: the 16th birthday is today in Shanghai
    assert body["eligible"] is True
    # R1: a birth date of today (Shanghai) is not in the future.
    assert newborn.status_code == 200
    assert [reason["rule"] for reason in newborn.json()["reasons"]] == ["R11"]


def test_c3_explicit_on_date_is_used(api, citizen_a, citizen_a_family):
    early = ask_for(api, citizen_a.person, citizen_a_family["spouse"], "spouse", on_date="2022-01-01").json()
    later = ask_for(api, citizen_a.person, citizen_a_family["spouse"], "spouse", on_date="2024-07-01").json()

    assert early["policy_version"] == "320500@2021-04-13"
    assert later["policy_version"] == "320500@2024-07-01"


# Languages.


def test_c3_messages_follow_accept_language(api, citizen_a):
    sibling = InsuredPersonFactory(region=citizen_a.person.region, birth="19830101")

    english = ask_for(api, citizen_a.person, sibling, "sibling", on_date="2024-06-15", language="en-US,en;q=0.9")
    chinese = ask_for(api, citizen_a.person, sibling, "sibling", on_date="2024-06-15", language="zh-CN,zh;q=0.9")

    assert english["Content-Language"] == "en"
    assert chinese["Content-Language"] == "zh-hans"
    english_message = english.json()["reasons"][0]["message"]
    chinese_message = chinese.json()["reasons"][0]["message"]
    assert english_message.startswith("sibling is not allowed by policy 320500@2021-04-13.")
    assert "兄弟姐妹" in chinese_message and "sibling" not in chinese_message
    # Whatever the catalogue says today, the answer is the Chinese text of the same message.
    with translation.override("zh-hans"):
        expected = gettext("%(relation)s is not allowed by policy %(policy)s.") % {
            "relation": "兄弟姐妹",
            "policy": "320500@2021-04-13",
        }
        expected += " " + gettext("Region %(region)s allows it from %(date)s.") % {
            "region": "320500",
            "date": "2024-07-01",
        }
    assert chinese_message == expected


def test_c3_errors_follow_accept_language(api, db):
    english = ask(api, "en")
    chinese = ask(api, "zh-CN")

    assert english.json()["title"] == "The request has invalid fields."
    with translation.override("zh-hans"):
        assert chinese.json()["title"] == gettext("The request has invalid fields.")


# Cost: a fixed number of queries, however many persons and bindings exist.


def test_c3_query_count_does_not_grow_with_the_data(
    api, citizen_a, citizen_a_family, binding_insert, django_assert_max_num_queries
):
    owner, relative = citizen_a.person, citizen_a_family["spouse"]

    def crowd(count: int) -> None:
        """Other persons, each in the owner's network and each an owner of the relative (not exclusive)."""
        for _ in range(count):
            other = InsuredPersonFactory(region=owner.region, birth="19900101")
            binding_insert(owner, other, state=BindingState.ACTIVE, relationship="sibling")
            binding_insert(other, relative, state=BindingState.ACTIVE, relationship="sibling", exclusive=False)
            binding_insert(other, citizen_a_family["child"], state=BindingState.SUBMITTED)

    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            response = ask_for(api, owner, relative, "spouse")
        assert response.status_code == 200
        return [query["sql"] for query in captured.captured_queries]

    crowd(5)
    with django_assert_max_num_queries(4):
        # 1. the token and its user (TokenAuthentication)
        # 2. the two insured persons with their region and personal account
        # 3. the policy versions of the two regions and the national ones
        # 4. one aggregate over bindings: the owner's members, the relative's other networks
        small = ask_for(api, owner, relative, "spouse")
    assert small.status_code == 200
    small_queries = queries()

    crowd(45)
    large_queries = queries()

    assert len(small_queries) == len(large_queries) <= 4
    assert owner.bindings_owned.count() == 50

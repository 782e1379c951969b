"""/api/v1/bindings/ for citizens (R4, R20, R25, R26): apply, list, see, cancel, end; strangers get 404."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation
from rest_framework.test import APIClient

from accounts.masking import mask_id_number
from accounts.models import Notification, User
from family.documents import document_attach
from family.models import Binding, BindingEvent, BindingState, DocumentKind, DocumentStatus, Relation
from tests.attack_files import pdf_scan
from tests.factories import InsuredPersonFactory, UserFactory

S = BindingState
NOW = dt.datetime(2026, 3, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
LIST = "/api/v1/bindings/"


def detail_url(binding_id: int, action: str = "") -> str:
    return f"/api/v1/bindings/{binding_id}/" + (f"{action}/" if action else "")


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def api() -> APIClient:
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


def as_user(user: User) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_authenticate(user)
    return client


@pytest.fixture
def spouse(citizen_a_family):
    return citizen_a_family["spouse"]


@pytest.fixture
def child(citizen_a_family):
    return citizen_a_family["child"]


@pytest.fixture
def spouse_user(spouse):
    return UserFactory(username="lina", person=spouse)


def application(relative, **overrides) -> dict:
    body = {
        "relative_name": relative.name,
        "relative_id_number": relative.id_number,
        "relationship": "spouse",
        "letter_signed_name": "张伟",
    }
    body.update(overrides)
    return body


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    return body


def assert_masked(response, *persons) -> None:
    """R4: no full name or ID number of anyone in the answer."""
    text = response.content.decode()
    for person in persons:
        assert person.id_number not in text
        assert person.name not in text


# Apply (R20).


def test_r20_owner_applies_and_gets_the_new_binding(citizen_a, spouse, pipeline):
    client = as_user(citizen_a)
    with pipeline():
        response = client.post(
            LIST,
            application(spouse, authorized_from="2026-03-10", authorized_until="2027-03-09"),
            format="json",
        )

    assert response.status_code == 201, response.content
    body = response.json()
    binding = Binding.objects.get()
    assert response["Location"] == detail_url(binding.pk)
    assert body["id"] == binding.pk
    assert (body["my_side"], body["relationship"], body["method"]) == ("owner", "spouse", "online_id")
    assert body["owner"] == {"name": "张*", "id_number": mask_id_number(citizen_a.person.id_number)}
    assert body["relative"] == {"name": "李*", "id_number": mask_id_number(spouse.id_number)}
    assert (body["authorized_from"], body["authorized_until"]) == ("2026-03-10", "2027-03-09")
    assert [e["to_state"] for e in body["events"]] == ["submitted"]
    assert body["events"][0]["actor_label"] == "张* (account owner)"
    assert body["documents"] == []
    assert_masked(response, citizen_a.person, spouse)
    # Stored as the service made it; the pipeline (eligibility) ran after the commit.
    assert (binding.owner, binding.relative, binding.submitted_by) == (citizen_a.person, spouse, citizen_a)
    assert binding.letter_signed_name == "张伟" and binding.letter_signed_at is not None
    assert binding.state == S.UNDER_REVIEW
    assert list(binding.events.values_list("from_state", "to_state")) == [
        ("", S.SUBMITTED),
        (S.SUBMITTED, S.UNDER_REVIEW),
    ]


def test_duplicate_application_answers_409_with_the_existing_id(citizen_a, spouse):
    client = as_user(citizen_a)
    first = client.post(LIST, application(spouse), format="json").json()["id"]

    response = client.post(LIST, application(spouse), format="json")

    body = assert_problem(response, 409)
    assert body["existing_id"] == first
    assert body["errors"] == []
    assert Binding.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"relative_name": ""}, ["relative_name"]),
        ({"relative_id_number": "320505198206201125"}, ["relative_id_number"]),  # wrong check character
        ({"relationship": "cousin"}, ["relationship"]),
        ({"authorized_until": "2026-02-30"}, ["authorized_until"]),
        ({"letter_signed_name": "王芳"}, ["letter_signed_name"]),
        (
            {"relationship": "uncle", "relative_id_number": "12345", "letter_signed_name": ""},
            ["letter_signed_name", "relationship", "relative_id_number"],
        ),
    ],
    ids=["name", "checksum", "relationship", "date", "signed-by-another", "several"],
)
def test_bad_input_answers_400_naming_every_bad_field(citizen_a, spouse, overrides, fields):
    response = as_user(citizen_a).post(LIST, application(spouse, **overrides), format="json")
    body = assert_problem(response, 400)
    assert sorted(error["field"] for error in body["errors"]) == fields
    assert all(error["message"] for error in body["errors"])
    assert not Binding.objects.exists()


def test_missing_fields_are_named(citizen_a):
    body = assert_problem(as_user(citizen_a).post(LIST, {}, format="json"), 400)
    assert sorted(error["field"] for error in body["errors"]) == [
        "letter_signed_name",
        "relationship",
        "relative_id_number",
        "relative_name",
    ]


def test_r11_a_name_that_does_not_match_is_refused_by_the_service(citizen_a, spouse):
    response = as_user(citizen_a).post(LIST, application(spouse, relative_name="李四"), format="json")
    body = assert_problem(response, 400)
    assert [error["field"] for error in body["errors"]] == ["relative_id_number"]
    assert "R11" in body["title"]
    assert not Binding.objects.exists()


def test_an_authorization_that_ends_before_it_starts_is_refused(citizen_a, spouse):
    response = as_user(citizen_a).post(
        LIST, application(spouse, authorized_from="2026-05-01", authorized_until="2026-04-01"), format="json"
    )
    body = assert_problem(response, 400)
    assert [error["field"] for error in body["errors"]] == ["authorized_until"]


def test_citizen_without_an_insured_person_gets_403(db, spouse):
    client = as_user(UserFactory(username="unlinked"))
    assert_problem(client.post(LIST, application(spouse), format="json"), 403)
    assert_problem(client.get(LIST), 403)
    assert not Binding.objects.exists()


def test_partners_and_staff_get_403_for_create(partner_token, clerk_x, reviewer, admin_user, spouse):
    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Token {partner_token}")
    for client in (token_client, as_user(clerk_x), as_user(reviewer), as_user(admin_user)):
        assert_problem(client.post(LIST, application(spouse), format="json"), 403)
    assert not Binding.objects.exists()


def test_anonymous_gets_401(api, db):
    response = api.get(LIST)
    assert_problem(response, 401)


# List and detail.


def test_list_has_the_bindings_i_own_and_those_i_am_in_and_no_others(
    citizen_a, citizen_b, spouse, child, binding_insert
):
    mine = binding_insert(citizen_a.person, child, state=S.ACTIVE)
    joined = binding_insert(citizen_b.person, citizen_a.person, state=S.UNDER_REVIEW, relationship=Relation.SIBLING)
    binding_insert(citizen_b.person, spouse, state=S.ACTIVE, relationship=Relation.SIBLING)  # not A's

    response = as_user(citizen_a).get(LIST)

    assert response.status_code == 200
    body = response.json()
    assert [(b["id"], b["my_side"], b["state"]) for b in body] == [
        (joined.pk, "relative", "under_review"),
        (mine.pk, "owner", "active"),
    ]
    assert body[0]["owner"]["name"] == "王*"
    assert_masked(response, citizen_a.person, citizen_b.person, child)


def test_detail_shows_the_history_oldest_first(citizen_a, child, binding_activate, reviewer):
    binding = binding_activate(citizen_a, child, "child")

    response = as_user(citizen_a).get(detail_url(binding.pk))

    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["state_label"], body["my_side"]) == ("active", "active", "owner")
    assert [(e["from_state"], e["to_state"]) for e in body["events"]] == [
        ("", "submitted"),
        ("submitted", "under_review"),
        ("under_review", "active"),
    ]
    assert [e["actor_label"] for e in body["events"]] == ["张* (account owner)", "system", "system"]
    assert all(e["reason"] and e["created_at"] for e in body["events"])
    assert_masked(response, citizen_a.person, child)


def test_staff_in_the_history_are_named_by_their_role_not_their_login(citizen_a, child, binding_insert):
    reviewer = UserFactory(username="wang.jing", role=User.Role.REVIEWER, is_staff=True)
    binding = binding_insert(citizen_a.person, child, state=S.UNDER_REVIEW)
    BindingEvent.objects.create(
        binding=binding, actor=reviewer, actor_label=reviewer.username, from_state="under_review", to_state="rejected"
    )
    response = as_user(citizen_a).get(detail_url(binding.pk))
    assert [e["actor_label"] for e in response.json()["events"]] == ["system", "reviewer"]
    assert "wang.jing" not in response.content.decode()


def test_detail_shows_the_current_document_of_each_kind(citizen_a, child, binding_insert, tmp_path, monkeypatch):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.storage import PrivateStorage
    from family.models import BindingDocument

    monkeypatch.setattr(
        BindingDocument._meta.get_field("file"), "storage", PrivateStorage(location=tmp_path / "private")
    )
    binding = binding_insert(citizen_a.person, child, state=S.UNDER_REVIEW)

    def attach(kind):
        return document_attach(
            binding=binding, kind=kind, uploaded=SimpleUploadedFile("x.pdf", pdf_scan(1)), user=citizen_a
        )

    rejected = attach(DocumentKind.OWNER_HOUSEHOLD_REGISTER)
    BindingDocument.objects.filter(pk=rejected.pk).update(status=DocumentStatus.REJECTED, rejection_reason="blurred")
    relative_page = attach(DocumentKind.RELATIVE_HOUSEHOLD_REGISTER)

    documents = as_user(citizen_a).get(detail_url(binding.pk)).json()["documents"]

    assert [{k: d[k] for k in ("id", "kind", "kind_label", "status", "rejection_reason")} for d in documents] == [
        {
            "id": rejected.pk,
            "kind": "owner_register",
            "kind_label": "household register page of the owner",
            "status": "rejected",
            "rejection_reason": "blurred",
        },
        {
            "id": relative_page.pk,
            "kind": "relative_register",
            "kind_label": "household register page of the relative",
            "status": "pending",
            "rejection_reason": "",
        },
    ]
    # A re-upload replaces the rejected one in the answer.
    replacement = attach(DocumentKind.OWNER_HOUSEHOLD_REGISTER)
    documents = as_user(citizen_a).get(detail_url(binding.pk)).json()["documents"]
    assert [(d["id"], d["status"]) for d in documents] == [(replacement.pk, "pending"), (relative_page.pk, "pending")]


def test_the_relative_sees_the_binding_too(citizen_a, spouse, spouse_user, binding_insert):
    binding = binding_insert(citizen_a.person, spouse, state=S.AWAITING_FACE, relationship=Relation.SPOUSE)
    response = as_user(spouse_user).get(detail_url(binding.pk))
    assert response.status_code == 200
    assert response.json()["my_side"] == "relative"
    assert_masked(response, citizen_a.person, spouse)


# Cancel (R25) and end (R26).


def test_owner_cancels_a_pending_application(citizen_a, spouse, binding_insert):
    binding = binding_insert(citizen_a.person, spouse, state=S.UNDER_REVIEW, relationship=Relation.SPOUSE)

    response = as_user(citizen_a).post(detail_url(binding.pk, "cancel"))

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "cancelled"
    binding.refresh_from_db()
    assert binding.state == S.CANCELLED
    event = binding.events.last()
    assert (event.from_state, event.to_state, event.actor, event.reason) == (
        S.UNDER_REVIEW,
        S.CANCELLED,
        citizen_a,
        "Cancelled by the owner.",
    )


def test_the_relative_cannot_cancel(citizen_a, spouse, spouse_user, binding_insert):
    binding = binding_insert(citizen_a.person, spouse, state=S.UNDER_REVIEW, relationship=Relation.SPOUSE)
    assert_problem(as_user(spouse_user).post(detail_url(binding.pk, "cancel")), 403)
    binding.refresh_from_db()
    assert binding.state == S.UNDER_REVIEW


def test_an_active_binding_cannot_be_cancelled(citizen_a, child, binding_insert):
    binding = binding_insert(citizen_a.person, child, state=S.ACTIVE)
    assert_problem(as_user(citizen_a).post(detail_url(binding.pk, "cancel")), 409)
    binding.refresh_from_db()
    assert binding.state == S.ACTIVE


def test_r26_owner_unbinds_with_a_reason_and_both_are_told(citizen_a, child, binding_insert):
    binding = binding_insert(citizen_a.person, child, state=S.ACTIVE)

    response = as_user(citizen_a).post(detail_url(binding.pk, "end"), {"reason": "  moving abroad "}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["end_reason"]) == ("ended", "moving abroad")
    binding.refresh_from_db()
    assert (binding.state, binding.end_reason) == (S.ENDED, "moving abroad")
    assert binding.events.last().actor == citizen_a
    told = set(Notification.objects.filter(kind="binding.ended").values_list("person", flat=True))
    assert told == {citizen_a.person.pk, child.pk}


def test_r26_the_relative_leaves_the_network(citizen_a, spouse, spouse_user, binding_insert):
    binding = binding_insert(citizen_a.person, spouse, state=S.ACTIVE, relationship=Relation.SPOUSE)

    response = as_user(spouse_user).post(detail_url(binding.pk, "end"))

    assert response.status_code == 200, response.content
    binding.refresh_from_db()
    assert (binding.state, binding.end_reason) == (S.ENDED, "The relative left the family network.")
    assert binding.events.last().actor == spouse_user
    assert response.json()["events"][-1]["actor_label"] == "李* (relative)"


def test_only_an_active_binding_can_be_ended(citizen_a, spouse, binding_insert):
    binding = binding_insert(citizen_a.person, spouse, state=S.AWAITING_FACE, relationship=Relation.SPOUSE)
    assert_problem(as_user(citizen_a).post(detail_url(binding.pk, "end")), 409)
    binding.refresh_from_db()
    assert binding.state == S.AWAITING_FACE


def test_an_overlong_reason_is_refused(citizen_a, child, binding_insert):
    binding = binding_insert(citizen_a.person, child, state=S.ACTIVE)
    body = assert_problem(as_user(citizen_a).post(detail_url(binding.pk, "end"), {"reason": "x" * 201}), 400)
    assert [error["field"] for error in body["errors"]] == ["reason"]
    binding.refresh_from_db()
    assert binding.state == S.ACTIVE


# Strangers.


@pytest.mark.parametrize(("method", "action"), [("get", ""), ("post", "cancel"), ("post", "end")])
def test_a_stranger_gets_404_on_every_object_url(citizen_a, citizen_b, spouse, binding_insert, method, action):
    pending = binding_insert(citizen_a.person, spouse, state=S.UNDER_REVIEW, relationship=Relation.SPOUSE)
    active = binding_insert(citizen_a.person, InsuredPersonFactory(birth="20160101"), state=S.ACTIVE)
    client = as_user(citizen_b)
    for binding in (pending, active):
        body = assert_problem(getattr(client, method)(detail_url(binding.pk, action)), 404)
        assert str(binding.pk) not in body["detail"]
    missing = assert_problem(getattr(client, method)(detail_url(999_999, action)), 404)
    assert missing["title"] == body["title"]  # the same answer whether it exists or not
    assert sorted(Binding.objects.values_list("state", flat=True)) == sorted([S.UNDER_REVIEW, S.ACTIVE])


# Schema.


def test_the_schema_has_the_binding_paths_and_operations(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/bindings/"])
    assert paths["/api/v1/bindings/"]["post"]["operationId"] == "bindings_create"
    assert paths["/api/v1/bindings/{binding_id}/"]["get"]["operationId"] == "bindings_retrieve"
    assert paths["/api/v1/bindings/{binding_id}/cancel/"]["post"]["operationId"] == "bindings_cancel"
    assert paths["/api/v1/bindings/{binding_id}/end/"]["post"]["operationId"] == "bindings_end"
    conflict = paths["/api/v1/bindings/"]["post"]["responses"]["409"]["content"]["application/problem+json"]
    assert conflict["schema"]["$ref"].endswith("/DuplicateProblem")
    assert "existing_id" in schema["components"]["schemas"]["DuplicateProblem"]["properties"]


def test_a_login_without_an_insured_person_cannot_end_a_newborns_binding(citizen_a, admin_user, binding_insert):
    """Service guard behind the API: a newborn's binding has no relative yet (R21), which is no one's person."""
    from family.services import InvalidTransition, binding_end

    binding = binding_insert(
        citizen_a.person, None, state=S.ACTIVE, method="newborn", newborn_name="张宝宝", mother_name="李娜"
    )
    with pytest.raises(InvalidTransition) as refused:
        binding_end(binding_id=binding.pk, user=admin_user)
    assert refused.value.status == 403
    binding.refresh_from_db()
    assert binding.state == S.ACTIVE

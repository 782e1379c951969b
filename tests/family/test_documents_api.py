"""POST /api/v1/bindings/{id}/documents/ (R20, R24): the owner uploads; strangers get 404, the relative 403;
a bad file answers 400 problem+json naming ``file`` and stores nothing."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts.models import User
from family.models import BindingDocument, BindingState, DocumentKind, DocumentStatus, Relation
from tests import attack_files as files
from tests.factories import UserFactory
from tests.family.conftest import stored_files

KIND = DocumentKind.OWNER_HOUSEHOLD_REGISTER


pytestmark = pytest.mark.usefixtures("storage", "english", "prechecks")


def as_user(user: User) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_authenticate(user)
    return client


def documents_url(binding_id: int) -> str:
    return f"/api/v1/bindings/{binding_id}/documents/"


def upload_body(content: bytes, name: str = "户口本.jpg", kind: str = KIND) -> dict:
    return {"kind": kind, "file": SimpleUploadedFile(name, content, content_type="image/jpeg")}


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    return body


@pytest.fixture
def spouse(citizen_a_family):
    return citizen_a_family["spouse"]


@pytest.fixture
def binding(citizen_a, spouse, binding_insert):
    return binding_insert(citizen_a.person, spouse, state=BindingState.UNDER_REVIEW, relationship=Relation.SPOUSE)


def test_the_owner_uploads_a_document_and_sees_it_in_the_binding(
    binding, citizen_a, storage, prechecks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(citizen_a).post(
            documents_url(binding.pk), upload_body(files.pdf_scan(2), "scan.jpg"), format="multipart"
        )

    assert response.status_code == 201, response.content
    document = BindingDocument.objects.get()
    body = response.json()
    assert {k: body[k] for k in ("id", "kind", "status", "pages", "precheck_status")} == {
        "id": document.pk,
        "kind": "owner_register",
        "status": "pending",
        "pages": 2,
        "precheck_status": "pending",
    }
    assert body["precheck_status_label"] == "waiting for the automatic check"
    assert (document.binding, document.uploaded_by, document.content_type) == (binding, citizen_a, "application/pdf")
    assert stored_files(storage) == sorted([document.file.name, document.thumbnail.name])
    assert prechecks == [document.pk]

    listed = as_user(citizen_a).get(f"/api/v1/bindings/{binding.pk}/").json()["documents"]
    assert [(d["id"], d["pages"], d["precheck_status"]) for d in listed] == [(document.pk, 2, "pending")]


def test_a_stranger_gets_404_and_nothing_is_stored(binding, citizen_b, storage):
    response = as_user(citizen_b).post(documents_url(binding.pk), upload_body(files.jpeg_photo()), format="multipart")
    assert_problem(response, 404)
    assert_problem(
        as_user(citizen_b).post(documents_url(999_999), upload_body(files.jpeg_photo()), format="multipart"), 404
    )
    assert not BindingDocument.objects.exists() and stored_files(storage) == []


def test_the_relative_sees_the_binding_but_may_not_upload(binding, spouse, storage):
    """The relative is a party (the detail answers 200), so 403 tells them nothing new; only the owner uploads."""
    relative = UserFactory(username="lina", person=spouse)
    assert as_user(relative).get(f"/api/v1/bindings/{binding.pk}/").status_code == 200
    response = as_user(relative).post(documents_url(binding.pk), upload_body(files.jpeg_photo()), format="multipart")
    assert_problem(response, 403)
    assert not BindingDocument.objects.exists() and stored_files(storage) == []


@pytest.mark.parametrize("role", [User.Role.REVIEWER, User.Role.CLERK, User.Role.PARTNER])
def test_other_roles_get_403(binding, institution_x, role):
    staff = UserFactory(
        role=role, is_staff=role == User.Role.REVIEWER, institution=institution_x if role == User.Role.CLERK else None
    )
    response = as_user(staff).post(documents_url(binding.pk), upload_body(files.jpeg_photo()), format="multipart")
    assert_problem(response, 403)


def test_anonymous_gets_401_or_403(binding):
    response = APIClient().post(documents_url(binding.pk), upload_body(files.jpeg_photo()), format="multipart")
    assert response.status_code in (401, 403)
    assert response["Content-Type"].startswith("application/problem+json")


BAD = {
    "empty": (files.zero_bytes, "document_empty"),
    "html-as-jpg": (files.html_page, "document_markup"),
    "exe": (files.executable, "document_type"),
    "svg-with-script": (files.svg_with_script, "document_markup"),
    "truncated-jpeg": (files.truncated_jpeg, "document_damaged"),
    "bomb-png": (files.bomb_png, "document_too_many_pixels"),
    "pdf-javascript": (files.pdf_with_open_action_javascript, "document_pdf_javascript"),
    "pdf-encrypted": (files.pdf_encrypted, "document_pdf_encrypted"),
    "pdf-too-many-pages": (lambda: files.pdf_blank(6), "document_pdf_too_many_pages"),
}


@pytest.mark.parametrize(("make", "code"), BAD.values(), ids=BAD.keys())
def test_a_bad_file_answers_400_naming_file(binding, citizen_a, storage, make, code):
    response = as_user(citizen_a).post(documents_url(binding.pk), upload_body(make()), format="multipart")
    body = assert_problem(response, 400)
    assert body["type"] == f"/api/problems/{code}/"
    assert [e["field"] for e in body["errors"]] == ["file"]
    assert body["errors"][0]["message"] == body["title"]
    assert not BindingDocument.objects.exists() and stored_files(storage) == []


def test_a_path_trick_in_the_name_is_harmless(binding, citizen_a, storage):
    body = upload_body(files.jpeg_photo(), name="../../etc/passwd.jpg")
    assert as_user(citizen_a).post(documents_url(binding.pk), body, format="multipart").status_code == 201
    document = BindingDocument.objects.get()
    assert document.file.name.startswith(f"bindings/{binding.pk}/") and "passwd" not in document.file.name


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": KIND}, "file"),
        ({"file": SimpleUploadedFile("a.jpg", b"x")}, "kind"),
        ({"kind": "selfie", "file": SimpleUploadedFile("a.jpg", b"x")}, "kind"),
        ({"kind": KIND, "file": "not a file"}, "file"),
    ],
    ids=["no-file", "no-kind", "unknown-kind", "file-as-text"],
)
def test_a_missing_or_malformed_field_answers_400_naming_it(binding, citizen_a, body, field):
    response = as_user(citizen_a).post(documents_url(binding.pk), body, format="multipart")
    assert [e["field"] for e in assert_problem(response, 400)["errors"]] == [field]


def test_json_is_not_an_upload(binding, citizen_a):
    response = as_user(citizen_a).post(documents_url(binding.pk), {"kind": KIND, "file": "AAAA"}, format="json")
    assert_problem(response, 415)


def test_a_live_document_of_the_same_kind_answers_409_and_a_rejected_one_is_replaced(binding, citizen_a):
    client = as_user(citizen_a)
    first = client.post(documents_url(binding.pk), upload_body(files.jpeg_photo()), format="multipart").json()
    again = client.post(documents_url(binding.pk), upload_body(files.jpeg_photo()), format="multipart")
    body = assert_problem(again, 409)
    assert body["type"] == "/api/problems/document_already_uploaded/"
    assert [e["field"] for e in body["errors"]] == ["kind"]

    BindingDocument.objects.filter(pk=first["id"]).update(status=DocumentStatus.REJECTED, rejection_reason="blurred")
    replacement = client.post(documents_url(binding.pk), upload_body(files.heic_photo()), format="multipart")
    assert replacement.status_code == 201
    listed = client.get(f"/api/v1/bindings/{binding.pk}/").json()["documents"]
    assert [(d["id"], d["status"]) for d in listed] == [(replacement.json()["id"], "pending")]


def test_too_many_documents_answers_409_naming_file(binding, citizen_a, settings, storage):
    settings.DOCUMENT_MAX_PER_BINDING = 1
    client = as_user(citizen_a)
    assert (
        client.post(documents_url(binding.pk), upload_body(files.jpeg_photo()), format="multipart").status_code == 201
    )
    files_before = stored_files(storage)
    response = client.post(
        documents_url(binding.pk),
        upload_body(files.jpeg_photo(), kind=DocumentKind.MARRIAGE_CERTIFICATE),
        format="multipart",
    )
    body = assert_problem(response, 409)
    assert body["type"] == "/api/problems/document_limit_reached/"
    assert [e["field"] for e in body["errors"]] == ["file"]
    assert BindingDocument.objects.count() == 1 and stored_files(storage) == files_before


@pytest.mark.parametrize("state", [BindingState.ACTIVE, BindingState.CANCELLED])
def test_a_closed_application_answers_409(citizen_a, citizen_a_family, binding_insert, state):
    binding = binding_insert(citizen_a.person, citizen_a_family["child"], state=state)
    response = as_user(citizen_a).post(documents_url(binding.pk), upload_body(files.jpeg_photo()), format="multipart")
    assert assert_problem(response, 409)["type"] == "/api/problems/documents_closed/"


def test_the_schema_has_the_upload_as_multipart(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/bindings/{binding_id}/documents/"]["post"]
    assert operation["operationId"] == "bindings_documents_create"
    reference = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    upload = schema["components"]["schemas"][reference.rsplit("/", 1)[-1]]
    assert set(upload["required"]) == {"kind", "file"}
    assert (upload["properties"]["file"]["type"], upload["properties"]["file"]["format"]) == ("string", "binary")
    assert {"201", "400", "403", "404", "409"} <= set(operation["responses"])
    assert "application/problem+json" in operation["responses"]["400"]["content"]
    document = schema["components"]["schemas"]["BindingDocument"]["properties"]
    assert {"pages", "precheck_status"} <= set(document)

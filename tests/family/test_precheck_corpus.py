"""R24: the pre-check of the drawn corpus (tests/documents_corpus.py) through the real service and Tesseract.

Each document is stored as an upload is (``read_document_content`` + ``document_store``), pre-checked by
``document_precheck_run`` with the real page rendering and OCR, and must get its expected outcome. The
last test uploads two documents through ``document_attach`` and lets a real Celery worker pre-check them.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from accounts.models import Notification
from accounts.storage import PrivateStorage
from family import tasks
from family.documents import document_attach, document_store, read_document_content
from family.models import (
    Binding,
    BindingDocument,
    DocumentStatus,
    PrecheckStatus,
)
from family.services.precheck import document_precheck_run
from tests.documents_corpus import TODAY, CorpusDocument, application_for, by_slug, corpus
from tests.factories import UserFactory

# The celery_worker_factory fixture: real workers on this test's database (the last test only).
pytest_plugins = ["tests.worker"]

PRECHECK_TASK = "family.tasks.document_precheck"


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def storage(tmp_path, monkeypatch) -> PrivateStorage:
    """Documents go to a private folder of this test (the fields' storage is built at import)."""
    private = PrivateStorage(location=tmp_path / "private")
    for field in ("file", "thumbnail"):
        monkeypatch.setattr(BindingDocument._meta.get_field(field), "storage", private)
    return private


def uploaded(document: CorpusDocument, binding: Binding | None = None) -> BindingDocument:
    """Store the document as an upload is stored: checked by content, re-encoded, pages counted."""
    return document_store(
        binding=binding or application_for(document),
        kind=document.kind,
        content=read_document_content(document.data),
        user=None,
    )


def assert_outcome(stored: BindingDocument, document: CorpusDocument) -> None:
    """The stored report and state are what the corpus expects for this document."""
    expected = document.expected
    report = stored.precheck
    assert stored.precheck_status == expected.status, report["readability"]
    assert {check["code"]: check["ok"] for check in report["checks"]} == expected.checks, report["text"]
    assert expected.reasons <= set(report["readability"]["reasons"])
    assert len(report["readability"]["pages"]) == document.pages
    assert all(highlight in report["text"] for highlight in report["highlights"])
    notified = Notification.objects.filter(dedup_key=f"document:{stored.pk}:unreadable")
    if expected.status == PrecheckStatus.UNREADABLE:
        # Sent back at once with what to fix (R24 allows it; a reviewer never sees an unreadable page).
        assert stored.status == DocumentStatus.REJECTED
        # In the language the pipeline ran in: English in-process here, Chinese (the default) on a worker.
        assert stored.rejection_reason.startswith(("The document cannot be read", "这份材料看不清"))
        assert stored.decided_by is None and stored.decided_at is not None
        assert [n.person_id for n in notified] == [stored.binding.owner_id]
    else:
        # R24: automation never approves.
        assert stored.status == DocumentStatus.PENDING
        assert stored.rejection_reason == ""
        assert not notified.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("slug", [document.slug for document in corpus()])
def test_r24_each_corpus_document_gets_its_expected_precheck(slug, storage):
    document = by_slug(slug)
    stored = uploaded(document)
    assert stored.precheck_status == PrecheckStatus.PENDING

    assert document_precheck_run(document_id=stored.pk, today=TODAY) is not None

    stored.refresh_from_db()
    assert_outcome(stored, document)


@pytest.mark.django_db
def test_r24_the_precheck_runs_once_however_often_it_is_asked(storage):
    document = by_slug("owner-register-dark")
    stored = uploaded(document)
    document_precheck_run(document_id=stored.pk, today=TODAY)
    stored.refresh_from_db()
    report = stored.precheck

    assert document_precheck_run(document_id=stored.pk, today=TODAY) is None
    assert tasks.document_precheck.delay(stored.pk).get() is None  # eager in tests: the task, as redelivered

    stored.refresh_from_db()
    assert stored.precheck == report
    assert Notification.objects.filter(person=stored.binding.owner).count() == 1


@pytest.mark.django_db
def test_r24_an_upload_is_prechecked_once_it_commits(storage, django_capture_on_commit_callbacks):
    document = by_slug("relative-register-photo")
    binding = application_for(document)
    owner_login = UserFactory(person=binding.owner)
    with django_capture_on_commit_callbacks(execute=True):
        stored = document_attach(
            binding=binding,
            kind=document.kind,
            uploaded=SimpleUploadedFile("户口本.jpg", document.data, content_type="image/jpeg"),
            user=owner_login,
        )
    stored.refresh_from_db()
    assert stored.precheck_status == PrecheckStatus.DONE
    assert {check["code"] for check in stored.precheck["checks"]} == set(document.expected.checks)


@pytest.mark.django_db
def test_r24_a_tesseract_failure_leaves_the_document_to_the_reviewers_eye(storage, monkeypatch):
    import pytesseract

    def broken(*args, **kwargs):
        raise pytesseract.TesseractError(1, "Error opening data file chi_sim.traineddata")

    monkeypatch.setattr(pytesseract, "image_to_string", broken)
    stored = uploaded(by_slug("relative-register-photo"))

    document_precheck_run(document_id=stored.pk, today=TODAY)

    stored.refresh_from_db()
    assert stored.precheck_status == PrecheckStatus.FAILED
    assert stored.precheck["error"]["code"] == "tesseract_error"
    assert "chi_sim" in stored.precheck["error"]["detail"]
    assert stored.precheck["checks"] == []
    assert stored.status == DocumentStatus.PENDING
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_r24_a_page_that_cannot_be_rendered_fails_the_precheck(storage):
    stored = uploaded(by_slug("relative-register-photo"))
    storage.delete(stored.file.name)

    document_precheck_run(document_id=stored.pk, today=TODAY)

    stored.refresh_from_db()
    assert stored.precheck_status == PrecheckStatus.FAILED
    assert stored.precheck["error"]["code"] == "page_unavailable"
    assert stored.status == DocumentStatus.PENDING


@pytest.mark.django_db
def test_r24_a_document_decided_meanwhile_is_not_sent_back(storage, reviewer):
    stored = uploaded(by_slug("relative-register-low-resolution"))
    BindingDocument.objects.filter(pk=stored.pk).update(status=DocumentStatus.APPROVED, decided_by=reviewer)

    document_precheck_run(document_id=stored.pk, today=TODAY)

    stored.refresh_from_db()
    assert stored.precheck_status == PrecheckStatus.UNREADABLE  # the reviewer still sees why
    assert stored.status == DocumentStatus.APPROVED and stored.decided_by == reviewer
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_r24_an_unreadable_letter_is_not_sent_back_since_the_citizen_cannot_upload_it(storage):
    # The letter is generated and signed in the portal: the reviewer decides what to do with it.
    dark_page = by_slug("owner-register-dark")
    letter = replace(dark_page, slug="dark-letter", kind="commitment_letter")
    stored = uploaded(letter)

    document_precheck_run(document_id=stored.pk, today=TODAY)

    stored.refresh_from_db()
    assert stored.precheck_status == PrecheckStatus.UNREADABLE
    assert stored.status == DocumentStatus.PENDING
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_r24_a_missing_document_is_nothing_to_do():
    assert document_precheck_run(document_id=987654, today=TODAY) is None


# --- on a real worker -----------------------------------------------------------------------------


def _wait_for(condition, *, timeout: float, what: str, workers) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached in {timeout:.0f} s\n{workers.logs()}")
        time.sleep(0.1)


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r24_a_real_worker_prechecks_two_uploads(celery_worker_factory):
    """Two uploads through ``document_attach``: their pre-check is queued on commit and run by a real worker."""
    # OCR of a page takes about a second: a generous visibility timeout keeps messages from coming back.
    worker = celery_worker_factory(visibility_timeout=120)
    readable, unreadable = by_slug("relative-register-photo"), by_slug("owner-register-dark")
    binding = application_for(readable)
    owner_login = UserFactory(person=binding.owner)
    stored = []
    try:
        for document in (readable, unreadable):
            stored.append(
                document_attach(
                    binding=binding,
                    kind=document.kind,
                    uploaded=SimpleUploadedFile(f"{document.slug}.jpg", document.data, content_type="image/jpeg"),
                    user=owner_login,
                )
            )
        ids = [document.pk for document in stored]
        _wait_for(
            lambda: not BindingDocument.objects.filter(pk__in=ids, precheck_status=PrecheckStatus.PENDING).exists(),
            timeout=90,
            what="both pre-check reports written",
            workers=celery_worker_factory,
        )
        for document, expected in zip(stored, (readable, unreadable), strict=True):
            document.refresh_from_db()
            assert_outcome(document, expected)
        # The work was done in the worker, once per upload.
        assert worker.received_count(PRECHECK_TASK) == 2
        _wait_for(
            lambda: worker.succeeded_count(PRECHECK_TASK) == 2,
            timeout=10,
            what="both tasks logged as succeeded",
            workers=celery_worker_factory,
        )
    finally:
        for document in stored:
            document.refresh_from_db()
            for field in (document.file, document.thumbnail):
                if field.name:
                    field.storage.delete(field.name)


def test_the_corpus_expectations_name_only_known_checks():
    """Every check code the corpus expects is one the rules produce (a typo would make a test vacuous)."""
    known = {
        "owner_name_found",
        "owner_id_found",
        "relative_name_found",
        "relative_id_found",
        "id_numbers_valid",
        "certificate_number_found",
        "relation_matches_claim",
    }
    assert {code for document in corpus() for code in document.expected.checks} <= known
    assert {document.expected.status for document in corpus()} == {PrecheckStatus.DONE, PrecheckStatus.UNREADABLE}

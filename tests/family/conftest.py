"""Fixtures of family sharing: the pipeline run as after a commit, the SMS outbox, bindings made for a test."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date

import pytest

from accounts.messaging import MemorySmsSender
from accounts.models import InsuredPerson, User
from accounts.storage import PrivateStorage
from family import tasks
from family.models import Binding, BindingDocument, BindingEvent, BindingMethod, BindingState, PolicyVersion, Relation
from family.services import binding_face_verified, binding_review_decide, binding_submit
from tests.factories import RegionFactory

CLOSE_RELATIONS = [r.value for r in Relation]


@pytest.fixture
def pipeline(django_capture_on_commit_callbacks):
    """``with pipeline():`` runs what a service queued on commit (Celery is eager in tests), as a real commit would.

    Callbacks queued while running (the next pipeline step, an SMS) run too.
    """

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


@pytest.fixture
def sms_outbox() -> list:
    """The memory SMS sender's outbox, empty at the start and the end of the test."""
    MemorySmsSender.outbox.clear()
    yield MemorySmsSender.outbox
    MemorySmsSender.outbox.clear()


@pytest.fixture
def binding_insert() -> Callable[..., Binding]:
    """Insert a binding in any state directly, with its creation event: set-up for tests not about getting there."""

    def insert(
        owner: InsuredPerson,
        relative: InsuredPerson,
        *,
        state: str = BindingState.ACTIVE,
        relationship: str = Relation.CHILD,
        **fields,
    ) -> Binding:
        binding = Binding.objects.create(
            owner=owner,
            relative=relative,
            relationship=relationship,
            method=fields.pop("method", BindingMethod.ONLINE_ID),
            state=state,
            region_id=owner.region_id,
            **fields,
        )
        BindingEvent.objects.create(binding=binding, actor_label="test set-up", from_state="", to_state=state)
        return binding

    return insert


@pytest.fixture
def binding_activate(pipeline, reviewer) -> Callable[..., Binding]:
    """Take an application all the way to ``active`` through the services: submit, review, face if 16 or over."""

    def activate(owner_user: User, relative: InsuredPerson, relationship: str, **submit_fields) -> Binding:
        with pipeline():
            binding = binding_submit(
                owner=owner_user.person,
                relative_id_number=relative.id_number,
                relative_name=relative.name,
                relationship=relationship,
                submitted_by=owner_user,
                **submit_fields,
            )
        binding.refresh_from_db()
        assert binding.state == BindingState.UNDER_REVIEW, binding.reasons
        with pipeline():
            binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)
        binding.refresh_from_db()
        if binding.state == BindingState.AWAITING_FACE:
            with pipeline():
                binding_face_verified(binding_id=binding.pk, person=relative, passed=True, actor=None)
            binding.refresh_from_db()
        assert binding.state == BindingState.ACTIVE, binding.end_reason
        return binding

    return activate


@pytest.fixture
def region_policy() -> Callable[..., PolicyVersion]:
    """A pooling region with a single open-ended policy version of its own (set-up, not C2 loading)."""

    def make(code: str = "330100", name: str = "杭州市", **values) -> PolicyVersion:
        region = RegionFactory(code=code, name=name, province=code[:2] + "0000")
        values.setdefault("effective_from", date(2021, 4, 13))
        values.setdefault("relations", CLOSE_RELATIONS)
        return PolicyVersion.objects.create(region=region, **values)

    return make


# --- Documents: private files in a folder of the test's own, English messages, the pre-check queue recorded ---


@pytest.fixture
def storage(tmp_path, monkeypatch) -> PrivateStorage:
    """Documents and thumbnails go to a private folder of this test (the fields' storage is built at import)."""
    private = PrivateStorage(location=tmp_path / "private")
    for field in ("file", "thumbnail"):
        monkeypatch.setattr(BindingDocument._meta.get_field(field), "storage", private)
    return private


@pytest.fixture
def prechecks(monkeypatch) -> list[int]:
    """The ids the automatic pre-check was queued for (the queue is not what document tests are about)."""
    queued: list[int] = []
    monkeypatch.setattr(tasks.document_precheck, "delay", queued.append)
    return queued


def stored_files(storage: PrivateStorage) -> list[str]:
    """Every file under the test's private folder, relative to it."""
    root = storage.location
    return sorted(
        os.path.relpath(os.path.join(folder, name), root) for folder, _dirs, names in os.walk(root) for name in names
    )


@pytest.fixture
def binding(citizen_a, citizen_a_family, binding_insert):
    """A's application for the spouse, waiting for review: the documents' application."""
    return binding_insert(
        citizen_a.person, citizen_a_family["spouse"], state=BindingState.UNDER_REVIEW, relationship=Relation.SPOUSE
    )

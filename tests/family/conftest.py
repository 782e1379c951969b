"""Fixtures of family sharing: the pipeline run as after a commit, the SMS outbox, bindings made for a test."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from accounts.messaging import MemorySmsSender
from accounts.models import InsuredPerson, User
from family.models import Binding, BindingEvent, BindingMethod, BindingState, PolicyVersion, Relation
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

"""R15, R25 under concurrency, and the database constraints that hold the invariants whatever the code path.

PostgreSQL only: real transactions (each thread has its own connection), real row locks, real triggers.
The tests use a region of their own (杭州 330100, with its own policy version) so that they do not depend
on the shipped policy still being in the database after an earlier transactional test flushed it.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from accounts.models import InsuredPerson
from family.models import Binding, BindingEvent, BindingMethod, BindingState, PolicyVersion
from family.services import (
    DuplicateApplication,
    binding_face_verified,
    binding_review_decide,
    binding_submit,
)
from tests.concurrency import run_together
from tests.factories import InsuredPersonFactory, UserFactory, give_account

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

S = BindingState
CLOSE = ["spouse", "parent", "child", "sibling", "grandparent", "grandchild"]


@pytest.fixture
def hangzhou(region_policy) -> PolicyVersion:
    return region_policy(code="330100", name="杭州市", relations=CLOSE)


@pytest.fixture
def owner(hangzhou) -> InsuredPerson:
    person = InsuredPersonFactory(name="赵刚", region=hangzhou.region, birth="19700101", male=True)
    give_account(person, current="3000.00")
    return person


@pytest.fixture
def owner_user(owner):
    return UserFactory(username="zhao", person=owner)


# (a) Two submissions of the same pair at the same moment.


@pytest.mark.parametrize("submissions", [2, 6])
def test_same_pair_submitted_at_once_makes_one_binding(owner, owner_user, hangzhou, submissions):
    """Two (and, to make the race likelier, six) submissions of one pair released by one barrier."""
    spouse = InsuredPersonFactory(name="钱芳", region=hangzhou.region, birth="19720202", male=False)

    def submit():
        return binding_submit(
            owner=owner,
            relative_id_number=spouse.id_number,
            relative_name=spouse.name,
            relationship="spouse",
            submitted_by=owner_user,
        )

    results = run_together([submit] * submissions)

    made = [r for r in results if isinstance(r, Binding)]
    duplicates = [r for r in results if isinstance(r, DuplicateApplication)]
    assert len(made) == 1, results
    assert len(duplicates) == submissions - 1, results
    binding = Binding.objects.get(owner=owner, relative=spouse)
    assert binding.pk == made[0].pk
    assert {duplicate.existing.pk for duplicate in duplicates} == {binding.pk}
    # The pipeline ran once, after the commit: one event per transition.
    assert list(BindingEvent.objects.filter(binding=binding).values_list("from_state", "to_state")) == [
        ("", S.SUBMITTED),
        (S.SUBMITTED, S.UNDER_REVIEW),
    ]


# (b) The database itself refuses what must never be, even past the services.


def test_db_refuses_a_second_active_exclusive_network_for_a_relative(owner, hangzhou):
    other_owner = InsuredPersonFactory(region=hangzhou.region, birth="19680303")
    child = InsuredPersonFactory(region=hangzhou.region, birth="20150505", insurance_type="resident")
    Binding.objects.create(
        owner=owner,
        relative=child,
        relationship="child",
        method=BindingMethod.ONLINE_ID,
        state=S.ACTIVE,
        region=hangzhou.region,
    )

    with pytest.raises(IntegrityError, match="binding_one_exclusive_network"), transaction.atomic():
        Binding.objects.create(
            owner=other_owner,
            relative=child,
            relationship="child",
            method=BindingMethod.ONLINE_ID,
            state=S.ACTIVE,
            region=hangzhou.region,
        )

    # A region that allows several owners marks the binding not exclusive: that one is allowed.
    Binding.objects.create(
        owner=other_owner,
        relative=child,
        relationship="child",
        method=BindingMethod.ONLINE_ID,
        state=S.ACTIVE,
        exclusive=False,
        region=hangzhou.region,
    )
    assert Binding.objects.filter(relative=child, state=S.ACTIVE).count() == 2


def test_db_refuses_a_second_open_binding_for_the_same_pair(owner, hangzhou):
    spouse = InsuredPersonFactory(region=hangzhou.region, birth="19720202", male=False)
    Binding.objects.create(
        owner=owner,
        relative=spouse,
        relationship="spouse",
        method=BindingMethod.ONLINE_ID,
        state=S.UNDER_REVIEW,
        region=hangzhou.region,
    )

    with pytest.raises(IntegrityError, match="binding_one_open_per_pair"), transaction.atomic():
        Binding.objects.create(
            owner=owner,
            relative=spouse,
            relationship="spouse",
            method=BindingMethod.ONLINE_ID,
            state=S.SUBMITTED,
            region=hangzhou.region,
        )

    assert Binding.objects.filter(owner=owner, relative=spouse).count() == 1


def test_db_refuses_an_owner_as_his_own_relative(owner, hangzhou):
    with pytest.raises(IntegrityError, match="binding_not_self"), transaction.atomic():
        Binding.objects.create(
            owner=owner,
            relative=owner,
            relationship="spouse",
            method=BindingMethod.ONLINE_ID,
            state=S.SUBMITTED,
            region=hangzhou.region,
        )

    assert Binding.objects.count() == 0


def test_db_refuses_to_update_or_delete_a_binding_event(owner, hangzhou):
    spouse = InsuredPersonFactory(region=hangzhou.region, birth="19720202", male=False)
    binding = Binding.objects.create(
        owner=owner, relative=spouse, relationship="spouse", method=BindingMethod.ONLINE_ID, region=hangzhou.region
    )
    event = BindingEvent.objects.create(binding=binding, actor_label="zhao", from_state="", to_state=S.SUBMITTED)

    for sql in (
        "UPDATE family_bindingevent SET reason = 'rewritten' WHERE id = %s",
        "UPDATE family_bindingevent SET to_state = 'active' WHERE id = %s",
        "DELETE FROM family_bindingevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])

    stored = BindingEvent.objects.get(pk=event.pk)
    assert (stored.reason, stored.to_state) == ("", S.SUBMITTED)


def test_db_refuses_a_second_event_for_the_same_transition(owner, hangzhou):
    spouse = InsuredPersonFactory(region=hangzhou.region, birth="19720202", male=False)
    binding = Binding.objects.create(
        owner=owner, relative=spouse, relationship="spouse", method=BindingMethod.ONLINE_ID, region=hangzhou.region
    )
    BindingEvent.objects.create(binding=binding, actor_label="system", from_state="", to_state=S.SUBMITTED)

    with pytest.raises(IntegrityError, match="binding_event_once_per_transition"), transaction.atomic():
        BindingEvent.objects.create(binding=binding, actor_label="system", from_state="", to_state=S.SUBMITTED)

    assert BindingEvent.objects.filter(binding=binding).count() == 1


# (c) R15: a region's member limit holds when activations race.


def test_r15_max_members_holds_when_four_relatives_confirm_at_once(owner, owner_user, hangzhou, reviewer):
    children = [
        InsuredPersonFactory(region=hangzhou.region, birth=date(1995 + n, 1, 1), insurance_type="resident")
        for n in range(4)
    ]
    bindings = []
    for child in children:
        # No limit while they apply (committed step by step: the pipeline runs for real on commit).
        binding = binding_submit(
            owner=owner,
            relative_id_number=child.id_number,
            relative_name=child.name,
            relationship="child",
            submitted_by=owner_user,
        )
        binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)
        binding.refresh_from_db()
        assert binding.state == S.AWAITING_FACE  # adults: each must confirm with their own face (R23)
        bindings.append(binding)
    # Then the region sets a limit of two relatives per owner.
    PolicyVersion.objects.filter(pk=hangzhou.pk).update(max_members=2)

    results = run_together(
        [
            (lambda b=binding, c=child: binding_face_verified(binding_id=b.pk, person=c, passed=True, actor=None))
            for binding, child in zip(bindings, children, strict=True)
        ]
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    states = sorted(Binding.objects.filter(owner=owner).values_list("state", flat=True))
    assert states == [S.ACTIVE, S.ACTIVE, S.REJECTED, S.REJECTED]
    for binding in Binding.objects.filter(owner=owner, state=S.REJECTED):
        event = BindingEvent.objects.filter(binding=binding).latest("pk")
        assert (event.from_state, event.to_state) == (S.AWAITING_FACE, S.REJECTED)
        assert "R15" in event.reason
    for binding in Binding.objects.filter(owner=owner, state=S.ACTIVE):
        assert BindingEvent.objects.filter(binding=binding, to_state=S.ACTIVE).count() == 1

"""R24 under concurrency: two reviewers taking from the queue at the same moment never hold the same application.

PostgreSQL only: real transactions (each thread has its own connection) and real row locks, so that
``SELECT … FOR UPDATE SKIP LOCKED`` and the compare-and-set of the claim are what is tested. The region
is 杭州 330100 with its own policy version, so the tests do not depend on the shipped policy.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import pytest
from django.db import connections, transaction
from django.utils import timezone

from accounts.models import AuditEvent, InsuranceType, User
from family.models import Binding, BindingEvent, BindingState, PolicyVersion, Relation
from family.services.review import ReviewRefused, review_approve, review_claim_next, review_release_idle
from tests.concurrency import run_together
from tests.factories import InsuredPersonFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

S = BindingState
CLOSE = ["spouse", "parent", "child", "sibling", "grandparent", "grandchild"]


@pytest.fixture
def hangzhou(region_policy) -> PolicyVersion:
    return region_policy(code="330100", name="杭州市", relations=CLOSE)


@pytest.fixture
def waiting(hangzhou) -> Callable[[int], list[Binding]]:
    """``count`` applications waiting for review, a minute apart (oldest first), children under 16."""

    def make(count: int) -> list[Binding]:
        owner = InsuredPersonFactory(name="赵刚", region=hangzhou.region, birth="19700101", male=True)
        made = []
        start = timezone.now() - dt.timedelta(hours=1)
        for index in range(count):
            child = InsuredPersonFactory(
                region=hangzhou.region, birth="20150101", insurance_type=InsuranceType.RESIDENT
            )
            binding = Binding.objects.create(
                owner=owner,
                relative=child,
                relationship=Relation.CHILD,
                method="online_id",
                state=S.UNDER_REVIEW,
                region=hangzhou.region,
            )
            Binding.objects.filter(pk=binding.pk).update(created_at=start + dt.timedelta(minutes=index))
            BindingEvent.objects.create(
                binding=binding, actor_label="test set-up", from_state="", to_state=S.UNDER_REVIEW
            )
            made.append(binding)
        return made

    return make


def reviewers(count: int) -> list[User]:
    return [UserFactory(username=f"reviewer{i}", role=User.Role.REVIEWER, is_staff=True) for i in range(count)]


@pytest.mark.parametrize("rounds", [8])
def test_two_reviewers_claiming_at_once_never_get_the_same_application(waiting, rounds):
    applications = waiting(2 * rounds)
    first, second = reviewers(2)
    taken: list[int] = []
    for _round in range(rounds):
        # Each round: both take at the same moment, then both put theirs aside (decided elsewhere).
        results = run_together([lambda: review_claim_next(reviewer=first), lambda: review_claim_next(reviewer=second)])
        assert all(isinstance(result, Binding) for result in results), results
        one, other = results
        assert one.pk != other.pk
        taken += [one.pk, other.pk]
        Binding.objects.filter(pk__in=[one.pk, other.pk]).update(reviewed_at=timezone.now())
    # Oldest first, each exactly once.
    assert sorted(taken) == sorted(b.pk for b in applications)
    assert len(set(taken)) == len(taken)


def test_the_last_application_goes_to_one_reviewer_the_other_gets_nothing(waiting):
    (only,) = waiting(1)
    first, second = reviewers(2)

    results = run_together([lambda: review_claim_next(reviewer=first), lambda: review_claim_next(reviewer=second)])

    assert [r.pk for r in results if isinstance(r, Binding)] == [only.pk]
    assert results.count(None) == 1
    only.refresh_from_db()
    assert only.claimed_by in (first, second)
    assert AuditEvent.objects.filter(action="binding.review_claimed").count() == 1


def test_five_applications_two_reviewers_each_decided_exactly_once(waiting):
    applications = waiting(5)
    team = reviewers(2)

    def work(reviewer: User) -> list[int]:
        decided = []
        while (binding := review_claim_next(reviewer=reviewer)) is not None:
            review_approve(binding_id=binding.pk, reviewer=reviewer)
            decided.append(binding.pk)
        return decided

    results = run_together([lambda r=r: work(r) for r in team])

    assert not [r for r in results if isinstance(r, Exception)], results
    decided = [pk for result in results for pk in result]
    assert sorted(decided) == sorted(b.pk for b in applications)
    assert len(set(decided)) == 5
    for binding in Binding.objects.filter(pk__in=decided):
        # R23: children under 16 are active once a reviewer approved; each approved by whoever held it.
        assert binding.state == S.ACTIVE and binding.claimed_by is None
        assert binding.pk in results[team.index(binding.reviewed_by)]
    assert AuditEvent.objects.filter(action="binding.review_claimed").count() == 5
    assert AuditEvent.objects.filter(action="binding.review_approved").count() == 5


def test_an_application_being_claimed_is_passed_over_not_waited_for(waiting):
    oldest, newer = waiting(2)
    (second,) = reviewers(1)
    locked, release = threading.Event(), threading.Event()

    def hold_the_oldest() -> None:
        # Another reviewer's claim in progress: the row is locked until that transaction ends.
        try:
            with transaction.atomic():
                Binding.objects.select_for_update().get(pk=oldest.pk)
                locked.set()
                release.wait(timeout=10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_oldest)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        started = time.monotonic()
        taken = review_claim_next(reviewer=second)
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join(timeout=10)
    assert taken.pk == newer.pk
    assert waited < 2, f"waited {waited:.1f}s for a locked row (SKIP LOCKED)"


def test_idle_claims_are_released_and_the_lapsed_holder_cannot_decide(waiting, settings):
    settings.REVIEW_CLAIM_IDLE_MINUTES = 15
    (binding,) = waiting(1)
    first, second = reviewers(2)
    assert review_claim_next(reviewer=first).pk == binding.pk
    assert review_claim_next(reviewer=second) is None  # held, not lapsed

    Binding.objects.filter(pk=binding.pk).update(claimed_at=timezone.now() - dt.timedelta(minutes=20))
    assert review_release_idle() == 1
    binding.refresh_from_db()
    assert (binding.claimed_by, binding.claimed_at) == (None, None)

    assert review_claim_next(reviewer=second).pk == binding.pk
    with pytest.raises(ReviewRefused) as refused:
        review_approve(binding_id=binding.pk, reviewer=first)
    assert refused.value.code == "not_claimed"
    binding.refresh_from_db()
    assert binding.reviewed_at is None and binding.claimed_by == second

"""The binding pipeline on a real Celery worker (R23, R24, R25): queued steps, a killed worker, lost messages.

Every application must reach its state exactly once: one ``BindingEvent`` per transition and one
notification per dedup key, however often the broker delivers a step.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from django.utils import timezone

from accounts.models import InsuranceStatus, InsuranceType, InsuredPerson, Notification, User
from family import services, tasks
from family.models import Binding, BindingEvent, BindingState, Relation
from tests.factories import InsuredPersonFactory, RegionFactory, UserFactory, give_account

if TYPE_CHECKING:
    from tests.worker import WorkerFactory

# The celery_worker_factory fixture: real workers on this test's database.
pytest_plugins = ["tests.worker"]

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

S = BindingState
ELIGIBILITY_TASK = "family.tasks.binding_check_eligibility"
AGE_BRANCH_TASK = "family.tasks.binding_age_branch"


@dataclass(frozen=True)
class Case:
    """One application and what must become of it."""

    binding_id: int
    outcome: str  # "young" (under 16), "adult" (16 or over) or "refused"

    @property
    def after_eligibility(self) -> str:
        return S.REJECTED if self.outcome == "refused" else S.UNDER_REVIEW

    @property
    def final_state(self) -> str:
        return {"young": S.ACTIVE, "adult": S.AWAITING_FACE, "refused": S.REJECTED}[self.outcome]

    @property
    def transitions(self) -> list[tuple[str, str]]:
        """R25: the one path through the states, one event per step."""
        if self.outcome == "refused":
            return [("", S.SUBMITTED), (S.SUBMITTED, S.REJECTED)]
        return [("", S.SUBMITTED), (S.SUBMITTED, S.UNDER_REVIEW), (S.UNDER_REVIEW, self.final_state)]

    @property
    def notifications(self) -> set[str]:
        """The dedup keys the pipeline notifies under (family.services.bindings)."""
        pk = self.binding_id
        return {
            "young": {f"binding:{pk}:active:owner", f"binding:{pk}:active:relative"},
            "adult": {f"binding:{pk}:consent"},  # R23: the relative is asked for their face
            "refused": {f"binding:{pk}:rejected:owner"},
        }[self.outcome]


def _owner(birth: dt.date) -> InsuredPerson:
    region = RegionFactory(code="320500", name="苏州市", province="320000")
    owner = InsuredPersonFactory(region=region, birth=birth, male=True)
    give_account(owner, current="800.00")
    return owner


# One owner's five relatives: (outcome, relationship, birth date, factory options).
FAMILY = [
    # R23: under 16 on the decision date (ten years old whenever the test runs).
    ("young", Relation.CHILD, None, {"insurance_type": InsuranceType.RESIDENT}),
    ("adult", Relation.SPOUSE, dt.date(1977, 5, 1), {"male": False}),
    ("adult", Relation.PARENT, dt.date(1948, 7, 1), {"insurance_type": InsuranceType.RESIDENT}),
    ("adult", Relation.SIBLING, dt.date(1979, 9, 1), {}),
    # R11: a relative whose insurance is suspended is refused.
    ("refused", Relation.GRANDCHILD, dt.date(2010, 11, 1), {"status": InsuranceStatus.SUSPENDED}),
]


def _submit_family(owner: InsuredPerson, *, offset: int = 0) -> list[Case]:
    """The owner applies for the five relatives of ``FAMILY`` (births shifted by ``offset`` days)."""
    ten_years_old = timezone.localdate() - dt.timedelta(days=3653)
    cases = []
    for outcome, relationship, birth, options in FAMILY:
        relative = InsuredPersonFactory(
            region=owner.region, birth=(birth or ten_years_old) - dt.timedelta(days=offset), **options
        )
        binding = services.binding_submit(
            owner=owner, relative_id_number=relative.id_number, relative_name=relative.name, relationship=relationship
        )
        cases.append(Case(binding.pk, outcome))
    return cases


def _states(cases: list[Case]) -> dict[int, str]:
    return dict(Binding.objects.filter(pk__in=[c.binding_id for c in cases]).values_list("pk", "state"))


def _count_in(cases: list[Case], states: set[str]) -> int:
    return Binding.objects.filter(pk__in=[c.binding_id for c in cases], state__in=states).count()


def _wait_for(
    condition: Callable[[], bool], *, timeout: float, what: str, workers: WorkerFactory, interval: float = 0.05
) -> None:
    """Poll ``condition`` until it holds; fail with the workers' logs when it does not in time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached in {timeout:.0f} s\n{workers.logs()}")
        time.sleep(interval)


def _approve_all(cases: list[Case], reviewer: User) -> None:
    """R24: a reviewer approves every application waiting for review; each approval queues the age branch."""
    for case in cases:
        if case.outcome != "refused":
            services.binding_review_decide(binding_id=case.binding_id, reviewer=reviewer, approve=True)


def _assert_exactly_once(cases: list[Case]) -> None:
    """Final states, one event per transition in order, and exactly the expected notifications."""
    assert _states(cases) == {c.binding_id: c.final_state for c in cases}
    events: dict[int, list[tuple[str, str]]] = {c.binding_id: [] for c in cases}
    for binding_id, from_state, to_state in BindingEvent.objects.order_by("pk").values_list(
        "binding_id", "from_state", "to_state"
    ):
        events[binding_id].append((from_state, to_state))
    assert events == {c.binding_id: c.transitions for c in cases}
    expected = set().union(*(c.notifications for c in cases))
    sent = list(Notification.objects.values_list("dedup_key", flat=True))
    assert sorted(sent) == sorted(expected), "one notification per dedup key, none missing, none extra"


def test_r25_pipeline_steps_run_on_a_real_worker(celery_worker_factory):
    """Queued steps: eligibility sends to review or refuses; after approval, R23 splits under 16 from 16+."""
    worker = celery_worker_factory()
    owner = _owner(dt.date(1975, 1, 10))
    cases = _submit_family(owner)
    reviewer = UserFactory(role=User.Role.REVIEWER, is_staff=True)

    _wait_for(
        lambda: _states(cases) == {c.binding_id: c.after_eligibility for c in cases},
        timeout=30,
        what="every application under review or rejected",
        workers=celery_worker_factory,
    )
    _approve_all(cases, reviewer)
    _wait_for(
        lambda: _count_in(cases, {S.UNDER_REVIEW}) == 0,
        timeout=30,
        what="every approved application past the age branch",
        workers=celery_worker_factory,
    )

    _assert_exactly_once(cases)
    binding = Binding.objects.get(pk=cases[1].binding_id)
    assert binding.needs_face_verification
    assert binding.face_deadline is not None
    assert binding.policy_label  # the version that decided, kept on the binding (R13)
    # The steps ran in the worker, not in this process.
    assert worker.received_count(ELIGIBILITY_TASK) == len(cases)
    assert worker.received_count(AGE_BRANCH_TASK) == len(cases) - 1


def _kill_mid_run(workers: WorkerFactory, *, task_name: str, remaining: Callable[[], int]) -> None:
    """Start a worker on a backlog, SIGKILL its process group mid-run, start another: every step must run.

    The killed worker held messages it had taken and not acknowledged (acks_late): after the visibility
    timeout the broker hands them to the next worker, which also takes what was still queued. A message
    the worker had popped from Redis but not yet recorded as taken is lost with it (kombu's Redis
    transport moves it in two steps); the sweeper, which beat runs every five minutes, queues its step
    again. Run here at once, it must find exactly the steps still stuck.
    """
    total = remaining()
    doomed = workers(wait=False)
    _wait_for(
        lambda: remaining() <= total - max(1, total // 4),
        timeout=45,
        what=f"a quarter of {total} steps done before the kill",
        workers=workers,
        interval=0.005,
    )
    doomed.kill()
    done_at_kill = total - remaining()
    queued_at_kill = workers.queued_count()
    unacked_at_kill = workers.unacked_count()
    assert done_at_kill < total, f"the kill landed after the run ({done_at_kill}/{total}); submit more applications"

    # Redis has no per-message ack deadline: a taken message comes back once older than the visibility timeout.
    time.sleep(doomed.visibility_timeout + 0.5)
    survivor = workers()
    expected = queued_at_kill + unacked_at_kill
    _wait_for(
        lambda: (
            survivor.received_count(task_name) >= expected
            and survivor.succeeded_count(task_name) == survivor.received_count(task_name)
        ),
        timeout=45,
        what=f"the {queued_at_kill} queued and {unacked_at_kill} redelivered steps run",
        workers=workers,
    )
    # Each message came back once: what was queued, plus what the killed worker had taken; the steps it
    # had started and not finished among them (acks_late: a step is acknowledged only once it is done).
    assert survivor.received_count(task_name) == expected
    interrupted = doomed.received_task_ids(task_name) - doomed.succeeded_task_ids(task_name)
    assert interrupted <= survivor.received_task_ids(task_name)
    assert workers.unacked_count() == 0

    stuck = remaining()
    assert services.bindings_requeue_stuck(older_than_seconds=0) == stuck
    _wait_for(lambda: remaining() == 0, timeout=30, what=f"all {total} steps done after the sweep", workers=workers)
    print(  # shown with -s: where the kill landed and what came back how
        f"{task_name}: killed after {done_at_kill}/{total} steps; {queued_at_kill} still queued, "
        f"{unacked_at_kill} taken and redelivered, {stuck} lost with the worker and swept"
    )
    survivor.stop()


def test_r25_worker_killed_mid_run_every_application_reaches_its_state_once(celery_worker_factory):
    """The issue's kill test: SIGKILL the worker mid-run (twice: during eligibility, during the age branch)."""
    owners = [_owner(dt.date(1975, 1, 10) + dt.timedelta(days=n)) for n in range(12)]
    reviewer = UserFactory(role=User.Role.REVIEWER, is_staff=True)
    # Submitted with no worker running: the steps wait in the queue.
    cases = [case for n, owner in enumerate(owners) for case in _submit_family(owner, offset=n)]
    assert len(cases) == 60

    _kill_mid_run(celery_worker_factory, task_name=ELIGIBILITY_TASK, remaining=lambda: _count_in(cases, {S.SUBMITTED}))
    assert _states(cases) == {c.binding_id: c.after_eligibility for c in cases}

    _approve_all(cases, reviewer)  # no worker running: the age-branch steps wait in the queue
    _kill_mid_run(
        celery_worker_factory, task_name=AGE_BRANCH_TASK, remaining=lambda: _count_in(cases, {S.UNDER_REVIEW})
    )

    _assert_exactly_once(cases)


def test_r25_redelivered_and_swept_steps_change_nothing(celery_worker_factory):
    """Duplicates of done steps (a late redelivery, the sweeper) run and write no event or notification."""
    worker = celery_worker_factory()
    cases = _submit_family(_owner(dt.date(1975, 1, 10)))
    reviewer = UserFactory(role=User.Role.REVIEWER, is_staff=True)
    _wait_for(
        lambda: _count_in(cases, {S.SUBMITTED}) == 0, timeout=30, what="eligibility done", workers=celery_worker_factory
    )
    _approve_all(cases, reviewer)
    _wait_for(
        lambda: _count_in(cases, {S.UNDER_REVIEW}) == 0,
        timeout=30,
        what="age branch done",
        workers=celery_worker_factory,
    )
    _assert_exactly_once(cases)

    duplicates = {
        task.delay(case.binding_id).id
        for case in cases
        for task in (tasks.binding_check_eligibility, tasks.binding_age_branch)
    }
    assert services.bindings_requeue_stuck(older_than_seconds=0) == 0  # nothing is stuck
    _wait_for(
        lambda: duplicates <= worker.succeeded_task_ids(),
        timeout=30,
        what="every duplicate step run",
        workers=celery_worker_factory,
    )
    _assert_exactly_once(cases)


def test_r25_sweeper_requeues_steps_whose_message_was_lost(celery_worker_factory):
    """A message the broker lost (here: dropped before any worker took it) is re-queued by the sweeper."""
    cases = _submit_family(_owner(dt.date(1975, 1, 10)))
    assert celery_worker_factory.queued_count() == len(cases)
    celery_worker_factory.drop_messages()
    worker = celery_worker_factory()
    # The worker is up and the queue is empty: nothing moves on its own.
    assert worker.received_count(ELIGIBILITY_TASK) == 0
    assert _count_in(cases, {S.SUBMITTED}) == len(cases)

    assert services.bindings_requeue_stuck(older_than_seconds=0) == len(cases)
    _wait_for(
        lambda: _count_in(cases, {S.SUBMITTED}) == 0, timeout=30, what="eligibility done", workers=celery_worker_factory
    )
    assert _states(cases) == {c.binding_id: c.after_eligibility for c in cases}

    reviewer = UserFactory(role=User.Role.REVIEWER, is_staff=True)
    _approve_all(cases, reviewer)
    _wait_for(
        lambda: _count_in(cases, {S.UNDER_REVIEW}) == 0,
        timeout=30,
        what="age branch done",
        workers=celery_worker_factory,
    )
    _assert_exactly_once(cases)

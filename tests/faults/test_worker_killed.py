"""Faults: a Celery worker SIGKILLed while a pipeline step runs (R25: no application lost, stuck or decided twice).

The moment of the kill is made deterministic: the test holds a row lock on two bindings, so the
worker's two pool processes block inside their step (``select_for_update`` on the binding, in the
step's open transaction); the test sees them wait on its lock in ``pg_stat_activity`` and kills the
worker's whole process group with SIGKILL. Those two steps never committed and their messages were
never acknowledged (``acks_late``, ``task_reject_on_worker_lost``): the broker must hand them to the
next worker, and the beat sweeper (``bindings_requeue_stuck``) must find exactly what is still stuck.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from accounts.models import User
from family import services
from family.models import BindingState
from tests.factories import UserFactory
from tests.faults.pipeline import (
    Case,
    RowLock,
    approve_all,
    assert_decided_once,
    count_in,
    owner_make,
    relatives_make,
    states,
    submit,
    wait_for,
)

if TYPE_CHECKING:
    from tests.worker import WorkerFactory

pytest_plugins = ["tests.worker"]

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

S = BindingState
ELIGIBILITY_TASK = "family.tasks.binding_check_eligibility"
AGE_BRANCH_TASK = "family.tasks.binding_age_branch"
# The doomed worker must not take its own blocked messages back before it dies (the Redis transport
# redelivers what is unacknowledged for longer than this); the survivor takes them back after 3 s.
DOOMED_VISIBILITY_TIMEOUT = 300
SURVIVOR_VISIBILITY_TIMEOUT = 3


def _kill_while_blocked(
    workers: WorkerFactory, *, task_name: str, blocked: list[Case], pending: Callable[[], int]
) -> set[str]:
    """Start a worker on the queued steps, wait until both its processes are stuck on ``blocked``, SIGKILL it.

    Returns the ids of the messages the dead worker had taken and not finished.
    """
    from tests.worker import database_url  # after pytest registered the plugin module (assertion rewriting)

    total = pending()
    lock = RowLock(database_url(), [c.binding_id for c in blocked])
    try:
        doomed = workers(wait=False, concurrency=len(blocked), visibility_timeout=DOOMED_VISIBILITY_TIMEOUT)
        wait_for(
            lambda: lock.waiters() == len(blocked),
            timeout=60,
            what="both pool processes inside a step, waiting for the locked bindings",
            logs=workers.logs,
        )
        doomed.kill()
        stuck_at_kill, queued_at_kill, unacked_at_kill = pending(), workers.queued_count(), workers.unacked_count()
        # Killed inside the step's transaction: nothing of it was committed.
        before = {ELIGIBILITY_TASK: S.SUBMITTED, AGE_BRANCH_TASK: S.UNDER_REVIEW}[task_name]
        assert {states(blocked)[c.binding_id] for c in blocked} == {before}
    finally:
        lock.release()  # the dead worker's sessions now fail and roll back
    # Mid-pipeline: some steps were done, the blocked ones were running, the rest still queued.
    assert 0 < total - stuck_at_kill < total
    # Prefetch 1 per process and acks_late: the worker held exactly the two running steps, unacknowledged.
    assert unacked_at_kill == len(blocked)
    assert queued_at_kill == stuck_at_kill - len(blocked)
    interrupted = doomed.received_task_ids(task_name) - doomed.succeeded_task_ids(task_name)
    assert len(interrupted) == len(blocked)
    print(  # shown with -s
        f"{task_name}: SIGKILL after {total - stuck_at_kill}/{total} steps; "
        f"{unacked_at_kill} running (unacknowledged), {queued_at_kill} queued"
    )
    return interrupted


def test_r25_worker_sigkilled_mid_step_every_application_is_decided_exactly_once(celery_worker_factory):
    """SIGKILL during eligibility (redelivery alone recovers), then during the age branch (plus the sweeper)."""
    workers = celery_worker_factory
    reviewer = UserFactory(role=User.Role.REVIEWER, is_staff=True)
    # Submitted with no worker running: nine eligibility steps wait in the queue, in this order.
    cases = []
    for n in range(3):
        owner = owner_make(n)
        cases += [submit(owner, *relative) for relative in relatives_make(owner)]
    assert workers.queued_count() == len(cases) == 9

    # 1. Killed during eligibility (R10–R16). The two running steps come back from the broker by
    #    themselves (acks_late + reject_on_worker_lost, after the visibility timeout): no sweep needed.
    interrupted = _kill_while_blocked(
        workers,
        task_name=ELIGIBILITY_TASK,
        blocked=[cases[1], cases[4]],
        pending=lambda: count_in(cases, {S.SUBMITTED}),
    )
    survivor = workers(wait=False, visibility_timeout=SURVIVOR_VISIBILITY_TIMEOUT)
    wait_for(
        lambda: count_in(cases, {S.SUBMITTED}) == 0 and interrupted <= survivor.succeeded_task_ids(ELIGIBILITY_TASK),
        timeout=60,
        what="every eligibility step done, the interrupted ones redelivered",
        logs=workers.logs,
    )
    assert workers.queued_count() == workers.unacked_count() == 0
    assert_decided_once(cases, final=False)
    assert services.bindings_requeue_stuck(older_than_seconds=0) == 0  # nothing stuck for the beat sweeper
    survivor.kill()  # idle, its queue empty: nothing to lose, and quicker than a warm shutdown

    # 2. Killed during the age branch (R23), after review. Here the sweeper also runs before the new
    #    worker starts, as beat would: every step is then queued twice or three times (the original or its
    #    redelivery, and the sweep's), and each must still act once.
    approved = approve_all(cases, reviewer)  # no worker running: six age-branch steps queued
    interrupted = _kill_while_blocked(
        workers,
        task_name=AGE_BRANCH_TASK,
        blocked=[approved[1], approved[3]],
        pending=lambda: count_in(approved, {S.UNDER_REVIEW}),
    )
    stuck = count_in(approved, {S.UNDER_REVIEW})
    assert services.bindings_requeue_stuck(older_than_seconds=0) == stuck
    survivor = workers(wait=False, visibility_timeout=SURVIVOR_VISIBILITY_TIMEOUT)
    wait_for(
        lambda: (
            count_in(approved, {S.UNDER_REVIEW}) == 0
            and interrupted <= survivor.succeeded_task_ids(AGE_BRANCH_TASK)
            and workers.queued_count() == workers.unacked_count() == 0
            and survivor.succeeded_count(AGE_BRANCH_TASK) == survivor.received_count(AGE_BRANCH_TASK)
        ),
        timeout=60,
        what="every age-branch step done, every duplicate run",
        logs=workers.logs,
    )
    # What ran: the queued originals, the two redelivered ones and the sweep's duplicates.
    assert survivor.received_count(AGE_BRANCH_TASK) == 2 * stuck
    assert_decided_once(cases, final=True)
    assert services.bindings_requeue_stuck(older_than_seconds=0) == 0

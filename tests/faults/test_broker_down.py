"""Faults: the broker (Redis) dies while applications are submitted (R20, R25).

Never the shared Redis: the test starts a private ``redis-server`` with no persistence, points this
process's Celery app and a real worker at it, and SIGKILLs it with messages inside. An application is
saved before its step is queued (``transaction.on_commit``), so a citizen who submits while the broker
is down is still told it was received; the messages the broker lost, and the ones that could not be
sent, are queued again by the beat sweeper (``bindings_requeue_stuck``) once the broker is back.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from unittest import mock

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import InsuredPerson, User
from family import services
from family.models import Binding, BindingEvent, BindingState
from tests.factories import UserFactory
from tests.faults.pipeline import (
    Case,
    RowLock,
    approve_all,
    assert_decided_once,
    count_in,
    owner_make,
    relatives_make,
    submit,
    wait_for,
)
from tests.faults.servers import PrivateRedis

if TYPE_CHECKING:
    from tests.worker import WorkerFactory

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

S = BindingState
ELIGIBILITY_TASK = "family.tasks.binding_check_eligibility"


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    broker = PrivateRedis(tmp_path).start()
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture
def workers(transactional_db, settings, tmp_path, private_redis) -> Iterator[WorkerFactory]:
    """Real workers on the test database and the private broker; this process queues there too."""
    # Imported here, once pytest is configured: tests.worker is also a plugin module of other tests.
    from tests.worker import WorkerFactory, tasks_on_broker

    if connection.vendor != "postgresql":
        pytest.skip("a real Celery worker needs the test database on PostgreSQL (DATABASE_URL=postgres://...)")
    factory = WorkerFactory(broker_url=private_redis.url, log_dir=tmp_path)
    # Celery prefers the CELERY_BROKER_URL environment variable to its configuration (Settings.broker_url):
    # while it names the shared Redis, tasks_on_broker alone would leave this process queueing there.
    with (
        mock.patch.dict(os.environ, {"CELERY_BROKER_URL": private_redis.url}),
        tasks_on_broker(private_redis.url, queue=factory.queue),
    ):
        settings.CELERY_TASK_ALWAYS_EAGER = False
        settings.CELERY_BROKER_URL = private_redis.url
        try:
            yield factory
        finally:
            factory.stop_all()  # the private Redis goes with the test: nothing to remove from it


def _apply_online(owner: InsuredPerson, outcome: str, relationship: str, relative: InsuredPerson) -> Case:
    """R20 through the API, as the owner's app does: the answer says whether the application was received."""
    user = User.objects.filter(person=owner).first() or UserFactory(person=owner)
    api = APIClient()
    api.force_authenticate(user)
    response = api.post(
        "/api/v1/bindings/",
        {
            "relative_name": relative.name,
            "relative_id_number": relative.id_number,
            "relationship": relationship,
            "letter_signed_name": owner.name,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["state"] == S.SUBMITTED
    return Case(response.json()["id"], outcome)


def test_r25_redis_killed_while_applications_are_submitted_none_lost_stuck_or_decided_twice(
    workers, private_redis, caplog
):
    """Submitted before, during and after a broker outage: all saved, all answered 201, each decided once."""
    from tests.worker import database_url

    # Three applications queued before any worker runs; the worker's two processes then block on the first
    # two (a row lock of the test's own), so the third, and everything submitted next, waits in Redis.
    owner = owner_make(0)
    first = [submit(owner, *relative) for relative in relatives_make(owner)]
    lock = RowLock(database_url(), [first[0].binding_id, first[1].binding_id])
    try:
        worker = workers(concurrency=2, wait=False)
        wait_for(lambda: lock.waiters() == 2, timeout=60, what="both pool processes busy", logs=workers.logs)
        owner = owner_make(1)
        queued = [_apply_online(owner, *relative) for relative in relatives_make(owner)]
        assert workers.queued_count() == 1 + len(queued)

        # The broker dies with four messages queued and two taken: all six are gone (no persistence).
        private_redis.kill()
        owner = owner_make(2)
        with caplog.at_level(logging.ERROR, logger="family.services.bindings"):
            started = time.monotonic()
            during = [_apply_online(owner, *relative) for relative in relatives_make(owner)]
            seconds_per_submission = (time.monotonic() - started) / len(during)
        # Saved and answered (201 above), the failure to queue logged for the operators.
        assert len([r for r in caplog.records if "sweeper" in r.getMessage()]) == len(during)
        assert count_in(during, {S.SUBMITTED}) == len(during)
        assert BindingEvent.objects.filter(binding_id__in=[c.binding_id for c in during]).count() == len(during)
    finally:
        # The two blocked steps now finish and commit; acknowledging them to the dead broker fails.
        lock.release()
    wait_for(
        lambda: count_in(first[:2], {S.SUBMITTED}) == 0, timeout=30, what="the blocked steps done", logs=workers.logs
    )

    private_redis.start()  # back on the same port, empty
    worker.wait_ready(timeout=60)  # the worker reconnected by itself
    cases = first + queued + during
    lost = [c for c in cases if Binding.objects.get(pk=c.binding_id).state == S.SUBMITTED]
    assert [c.binding_id for c in lost] == [c.binding_id for c in first[2:] + queued + during]
    # Nothing brings those back by itself: the messages are gone and the ones not sent never existed.
    time.sleep(2)
    assert count_in(lost, {S.SUBMITTED}) == len(lost)
    assert workers.queued_count() == 0

    # The beat sweeper, as it runs every five minutes (here with a 1 s cutoff, not 120 s): exactly the
    # lost ones are queued again.
    assert services.bindings_requeue_stuck(older_than_seconds=1) == len(lost)
    wait_for(lambda: count_in(cases, {S.SUBMITTED}) == 0, timeout=60, what="eligibility done", logs=workers.logs)
    assert_decided_once(cases, final=False)

    # The rest of the pipeline runs on the restored broker as usual.
    approve_all(cases, UserFactory(role=User.Role.REVIEWER, is_staff=True))
    wait_for(lambda: count_in(cases, {S.UNDER_REVIEW}) == 0, timeout=60, what="age branch done", logs=workers.logs)
    assert_decided_once(cases, final=True)
    assert services.bindings_requeue_stuck(older_than_seconds=0) == 0
    print(f"submission with the broker down answered in {seconds_per_submission:.2f} s")  # shown with -s

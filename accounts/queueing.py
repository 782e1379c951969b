"""Queueing Celery tasks after the commit, without turning a saved request into an error.

By the time an ``on_commit`` callback runs, the work is saved. A broker that is down must not make the
answer a 500 (the user would try again and meet a duplicate): the failure is logged, and the beat
sweepers queue what is still waiting once the broker is back.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)


def enqueue_on_commit(task: Any, *args: Any) -> None:
    """``task.delay(*args)`` once the current transaction commits; a broker failure is logged, not raised."""

    def send() -> None:
        try:
            task.delay(*args)
        except (BrokerError, OSError):
            logger.exception("Could not queue %s%r; a sweeper will queue it again.", task.name, args)

    transaction.on_commit(send)

"""Run jobs at the same moment in threads, each on its own database connection (PostgreSQL concurrency tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connections


def run_together(jobs: list[Callable[[], object]]) -> list[object]:
    """Run the jobs in threads released by one barrier; each job's result or the exception it raised."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def worker(index: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = job()
        except Exception as error:  # the test inspects it
            results[index] = error
        finally:
            # Each thread opened its own connection: close it, or the test database cannot be flushed.
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (a lock never released?)"
    return results

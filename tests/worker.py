"""A real Celery worker for tests: a subprocess on the pytest test database and a Redis broker.

Use the ``celery_worker_factory`` fixture (``pytest_plugins = ["tests.worker"]`` in the test module,
or once in tests/conftest.py) in a test marked ``worker`` and ``postgres`` with
``@pytest.mark.django_db(transaction=True)``: the worker is another process, so it sees only committed
rows (tests/conftest.py puts back the data-migration rows that a transactional test's flush removed).

    def test_it_runs_the_pipeline(celery_worker_factory):
        worker = celery_worker_factory()  # started and answering a ping
        ...
        worker.kill()  # SIGKILL to the whole process group, as a crash would
        worker = celery_worker_factory()  # a new worker on the same queue

The factory points this process's Celery app at the broker (tasks queued, not run in-process) and at
a queue of the test's own, which its workers consume and also use for the steps they queue; it stops
every worker it started and removes the queue's messages, taken or not, at the end. Broker:
``CELERY_BROKER_URL`` when set (CI: ``redis://127.0.0.1:6379/15``), else ``redis://127.0.0.1:6379/11``.
The broker database is never flushed: a queue per test keeps two suites running at once on one
machine (or pytest-xdist) from taking each other's messages. Workers get a visibility timeout of 5 s
(production: 300 s), so a killed worker's messages come back quickly; a test whose tasks run longer
than that passes ``visibility_timeout=...``. Without PostgreSQL or Redis the tests are skipped, unless
``CI`` is set: there they fail, because a skipped pipeline test proves nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.db import connection
from kombu import pools

from portal.celery import app

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/11"
WORKER_SETTINGS = "tests.worker_settings"
# Short, so a killed worker's unacknowledged messages come back within seconds (production: 300).
DEFAULT_VISIBILITY_TIMEOUT = 5
READY_TIMEOUT = 30.0
# kombu's Redis transport: messages taken by a worker and not acknowledged yet, and when they were taken.
UNACKED_KEY = "unacked"
UNACKED_INDEX_KEY = "unacked_index"


def broker_url() -> str:
    """The broker the worker tests use: CI's, or a database of the local Redis kept for them."""
    return os.environ.get("CELERY_BROKER_URL") or DEFAULT_BROKER_URL


def database_url() -> str:
    """The URL of the database this test runs on (pytest-django's ``test_…`` database), for the worker."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}{'@' if credentials else ''}{host}{port}/{quote(db['NAME'], safe='')}"


def require_worker_environment() -> None:
    """Skip (fail on CI) unless the tests run on PostgreSQL and the broker's Redis answers."""
    problem = None
    if connection.vendor != "postgresql":
        problem = "a real Celery worker needs the test database on PostgreSQL (set DATABASE_URL=postgres://...)"
    else:
        try:
            redis.Redis.from_url(broker_url(), socket_connect_timeout=2, socket_timeout=2).ping()
        except redis.RedisError as error:
            problem = f"Redis at {broker_url()} does not answer ({error}); a real Celery worker needs it"
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so this is a failure, not a skip: {problem}")
    pytest.skip(problem)


class CeleryWorker:
    """One ``celery -A portal worker`` subprocess in a process group of its own, logging to a file."""

    def __init__(
        self,
        *,
        database_url: str,
        broker_url: str,
        queue: str,
        log_path: Path,
        visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT,
        pool: str = "prefork",
        concurrency: int = 2,
    ) -> None:
        self.database_url = database_url
        self.broker_url = broker_url
        self.queue = queue
        self.log_path = log_path
        self.visibility_timeout = visibility_timeout
        self.pool = pool
        self.concurrency = concurrency
        self.hostname = f"{queue}-{uuid.uuid4().hex[:6]}@{os.uname().nodename}"
        self.process: subprocess.Popen | None = None

    def start(self, *, wait: bool = True, timeout: float = READY_TIMEOUT) -> CeleryWorker:
        """Start the worker; with ``wait``, return once it answers a ping (it consumes from the start)."""
        env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "CELERY_"))}
        env.update(
            DJANGO_SETTINGS_MODULE=WORKER_SETTINGS,
            DATABASE_URL=self.database_url,
            CELERY_BROKER_URL=self.broker_url,
            CELERY_VISIBILITY_TIMEOUT=str(self.visibility_timeout),
            CELERY_TEST_QUEUE=self.queue,
            PYTHONUNBUFFERED="1",
        )
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            f"--pool={self.pool}",
            f"--concurrency={self.concurrency}",
            "--loglevel=INFO",
            f"--hostname={self.hostname}",
            f"--queues={self.queue}",
            # Nothing to learn from other workers on the broker: start at once, stay quiet.
            "--without-mingle",
            "--without-gossip",
        ]
        with self.log_path.open("ab") as log:
            # A session (and process group) of its own, so a kill reaches the pool's children too.
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        if wait:
            self.wait_ready(timeout=timeout)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, *, timeout: float = READY_TIMEOUT) -> None:
        """Return once the worker answers a ping; fail with its log if it died or stayed silent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                pytest.fail(f"the Celery worker exited with {self.process.returncode}:\n{self.log_tail()}")
            if app.control.ping(destination=[self.hostname], timeout=1):
                return
        pytest.fail(f"the Celery worker did not answer a ping in {timeout:.0f} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the main process and the pool's children at once: nothing is acknowledged or cleaned up."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, *, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM: running tasks finish), then SIGKILL whatever is left of the group."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        # Children of a main process that died (or would not stop) must not outlive the test.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def succeeded_task_ids(self, task_name: str | None = None) -> set[str]:
        """Ids of the tasks (of this name, or all) that this worker's log says succeeded."""
        return self._task_ids(task_name, "succeeded")

    def received_task_ids(self, task_name: str | None = None) -> set[str]:
        """Ids of the tasks (of this name, or all) that this worker's log says it received."""
        return self._task_ids(task_name, "received")

    def _task_ids(self, task_name: str | None, event: str) -> set[str]:
        name = re.escape(task_name) if task_name else r"[\w.]+"
        return set(re.findall(rf"Task {name}\[([0-9a-f-]{{36}})\] {event}", self.log()))

    def succeeded_count(self, task_name: str) -> int:
        """How many messages of this task the worker ran to success."""
        return len(re.findall(rf"Task {re.escape(task_name)}\[[0-9a-f-]{{36}}\] succeeded", self.log()))

    def received_count(self, task_name: str) -> int:
        """How many messages of this task the worker received (a redelivered one counts again)."""
        return len(re.findall(rf"Task {re.escape(task_name)}\[[0-9a-f-]{{36}}\] received", self.log()))


def _reset_app_broker_state() -> None:
    """Make the app build its broker connections and routing afresh from the configuration now in force."""
    # Celery and kombu keep these for the process's life: kombu's pools by broker URL (what a fork
    # resets), the app's connection pool, and app.amqp with the default queue and router it cached.
    pools.reset()
    app._pool = None
    app.__dict__.pop("amqp", None)


@contextlib.contextmanager
def tasks_on_broker(url: str, *, queue: str, visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT) -> Iterator[None]:
    """Make this process queue tasks on ``queue`` of broker ``url`` instead of running them in-process."""
    changed = {
        "task_always_eager": False,
        "broker_url": url,
        "broker_transport_options": {"visibility_timeout": visibility_timeout},
        "task_default_queue": queue,
    }
    saved = {name: app.conf[name] for name in changed}
    app.conf.update(changed)
    _reset_app_broker_state()
    try:
        yield
    finally:
        app.conf.update(saved)
        _reset_app_broker_state()


class WorkerFactory:
    """Starts real workers on this test's database and queue; every one is stopped at the end of the test.

    ``factory()`` starts one and waits for it to answer a ping; ``factory(wait=False)`` returns at once
    (it consumes as soon as it is up). Options: ``pool``, ``concurrency``, ``visibility_timeout``.
    """

    def __init__(self, *, broker_url: str, log_dir: Path) -> None:
        self.broker_url = broker_url
        self.queue = f"test-{uuid.uuid4().hex[:12]}"
        self.log_dir = log_dir
        self.started: list[CeleryWorker] = []

    def __call__(self, *, wait: bool = True, **options) -> CeleryWorker:
        log_path = self.log_dir / f"celery-worker-{len(self.started) + 1}.log"
        worker = CeleryWorker(
            database_url=database_url(), broker_url=self.broker_url, queue=self.queue, log_path=log_path, **options
        )
        self.started.append(worker)
        return worker.start(wait=wait)

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()

    def logs(self) -> str:
        """The tail of every worker's log, for a failure message."""
        return "\n".join(f"--- {w.log_path.name} ---\n{w.log_tail()}" for w in self.started)

    def queued_count(self) -> int:
        """Messages waiting in this test's queue, not taken by any worker yet."""
        return self._redis().llen(self.queue)

    def unacked_count(self) -> int:
        """Messages of this test's queue taken by a worker and not acknowledged yet."""
        return len(self._unacked_tags())

    def drop_messages(self) -> None:
        """Lose every message of this test's queue, queued or taken, as a broker that lost them would."""
        client = self._redis()
        tags = self._unacked_tags()
        if tags:
            client.hdel(UNACKED_KEY, *tags)
            client.zrem(UNACKED_INDEX_KEY, *tags)
        client.delete(self.queue)

    def remove_from_broker(self) -> None:
        """Leave nothing of this test on the broker: its messages, its queue's binding, its workers' keys."""
        self.drop_messages()
        client = self._redis()
        for key in client.scan_iter(match=f"*{self.queue}*"):
            client.delete(key)
        # Workers register their control queues in kombu's shared binding sets.
        for key in client.scan_iter(match="_kombu.binding.*"):
            members = [m for m in client.smembers(key) if self.queue.encode() in m]
            if members:
                client.srem(key, *members)

    def _unacked_tags(self) -> list[bytes]:
        # Each entry is [message, exchange, routing_key]; the routing key of a default-exchange message is its queue.
        return [tag for tag, entry in self._redis().hgetall(UNACKED_KEY).items() if json.loads(entry)[2] == self.queue]

    def _redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.broker_url)


@pytest.fixture
def celery_worker_factory(transactional_db, settings, tmp_path) -> Iterator[WorkerFactory]:
    """Real workers for this test (see the module's docstring); the test must be transactional."""
    require_worker_environment()
    factory = WorkerFactory(broker_url=broker_url(), log_dir=tmp_path)
    # Celery reads its configuration from Django's settings lazily, on first use: save the app's
    # configuration (tasks_on_broker) BEFORE changing the settings, or the "saved" values would be the
    # changed ones and eager mode would stay off for every later test.
    with tasks_on_broker(factory.broker_url, queue=factory.queue):
        settings.CELERY_TASK_ALWAYS_EAGER = False
        settings.CELERY_BROKER_URL = factory.broker_url
        try:
            yield factory
        finally:
            # Stopped before pytest-django flushes the database: no worker connection holds a lock on it.
            factory.stop_all()
            factory.remove_from_broker()


@pytest.fixture
def celery_worker(celery_worker_factory) -> CeleryWorker:
    """One real worker (prefork, two processes), already answering a ping."""
    return celery_worker_factory()

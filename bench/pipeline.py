"""Bench for the binding pipeline: applications per minute end to end on one Celery worker.

    .venv/bin/python bench/pipeline.py [--applications 200] [--methods counter,online] [--max-seconds 300] \
        [--concurrency 0] [--broker-url redis://127.0.0.1:6379/4] \
        [--database-url postgres://postgres@127.0.0.1:5432/bench_pipeline_main] [--keep]

It drops and creates the bench database, migrates it (the migrations load region 320500 and its
policy) and, by direct ORM inserts, makes one employee owner per application (a personal account with
¥800 posted through the ledger, as ``tests.factories.give_account``) and one child of theirs, resident,
between 2 and 10 years old (so under the face age of 16), a counter clerk and a reviewer.

It starts ONE ``celery -A portal worker`` subprocess as production does (``docker-compose.yml``:
``celery -A portal worker -l info``, no ``--concurrency``, so the prefork pool with one child per CPU;
``--concurrency N`` overrides) under the production settings (``portal.settings``, DEBUG off) on the
bench database, with a broker on Redis database 4 and a queue of this run (``bench-pipeline-<hex>``),
which the worker also uses for the steps it queues itself (as ``tests/worker.py`` does with
``tests.worker_settings``; here the launcher sets ``task_default_queue``, so the settings stay
production's). The document pre-check (OCR) is not part of it: no document is uploaded.

Figures, each from submission to ``active``, this process submitting the applications one after the
other as fast as one client can while the worker runs:

- ``counter``: ``binding_submit(method=COUNTER)`` (a clerk, originals seen) → the worker runs
  ``binding_check_eligibility`` (R10–R16, → under_review) → ``binding_age_branch`` (→ active);
  two tasks per application, no review.
- ``online``: ``binding_submit`` (online, ID numbers) → eligibility (→ under_review) → a reviewer thread
  of this process polls every 20 ms and calls ``binding_review_decide(approve=True)`` on each one as
  soon as it is under review → ``binding_age_branch`` (→ active): two tasks and a decision.

Applications per minute = N / (last ``activated_at`` − first submission); latency per application =
its ``activated_at`` (written by the worker, same clock) − the moment its ``binding_submit`` call began;
p50/p99 by nearest rank. The same-run baseline on the same worker: 2 × N no-op messages
(``binding_check_eligibility`` on ids that do not exist: one ``SELECT … FOR UPDATE`` finding nothing,
then the acknowledgement), queued at once, timed until the worker's log says the last one succeeded;
it is counted in pairs (two messages, the pipeline's two tasks), so the ratio is applications per
minute over no-op pairs per minute. The baseline runs before and after the pipeline and the mean is
used. Bounded by ``--applications`` and ``--max-seconds`` per phase; the worker is stopped, the
queue's messages and bindings are removed from Redis (never a flush) and the database is dropped at
the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from eligibility import ROOT, drop_database, id_number, manage, recreate_database, server_env

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_pipeline_main"
DEFAULT_BROKER = "redis://127.0.0.1:6379/4"
ELIGIBILITY_TASK = "family.tasks.binding_check_eligibility"
REVIEW_POLL_SECONDS = 0.02
# The worker: the app of portal/celery.py with this run's queue as the default, then the usual command line.
LAUNCHER = (
    "import sys; from portal.celery import app; "
    "app.conf.update(task_default_queue=sys.argv[1], task_always_eager=False); "
    "app.worker_main(['worker', *sys.argv[2:]])"
)


class Worker:
    """One Celery worker subprocess in a process group of its own, logging to a file."""

    def __init__(self, *, env: dict[str, str], queue: str, concurrency: int, log_path: Path) -> None:
        self.env, self.queue, self.concurrency, self.log_path = env, queue, concurrency, log_path
        self.hostname = f"{queue}@{os.uname().nodename}"
        self.process: subprocess.Popen | None = None
        self._read_to = 0
        self._succeeded: dict[str, int] = {}

    def start(self, timeout: float = 60) -> None:
        command = [
            sys.executable,
            "-c",
            LAUNCHER,
            self.queue,
            "--loglevel=INFO",
            f"--hostname={self.hostname}",
            f"--queues={self.queue}",
            "--without-mingle",
            "--without-gossip",
            *([f"--concurrency={self.concurrency}"] if self.concurrency else []),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while " ready." not in self.log():
            if self.process.poll() is not None:
                raise SystemExit(f"the worker exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"the worker was not ready in {timeout:.0f} s:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def pool_size(self) -> str:
        found = re.search(r"concurrency:\s*(\d+ \(\w+\))", self.log())
        return found.group(1) if found else "?"

    def succeeded(self, task_name: str) -> int:
        """How many of these tasks the log says succeeded; reads only what was added since the last call."""
        with self.log_path.open("rb") as log:
            log.seek(self._read_to)
            added = log.read()
        # Whole lines only: a line being written is counted next time.
        added = added[: added.rfind(b"\n") + 1]
        self._read_to += len(added)
        pattern = rf"Task {re.escape(task_name)}\[[0-9a-f-]{{36}}\] succeeded".encode()
        self._succeeded[task_name] = self._succeeded.get(task_name, 0) + len(re.findall(pattern, added))
        return self._succeeded[task_name]


def remove_from_broker(broker_url: str, queue: str) -> None:
    """Leave nothing of this run on the broker: its messages (queued or taken), its queue's bindings."""
    import redis

    client = redis.Redis.from_url(broker_url)
    tags = [tag for tag, entry in client.hgetall("unacked").items() if json.loads(entry)[2] == queue]
    if tags:
        client.hdel("unacked", *tags)
        client.zrem("unacked_index", *tags)
    for key in client.scan_iter(match=f"*{queue}*"):
        client.delete(key)
    for key in client.scan_iter(match="_kombu.binding.*"):
        members = [m for m in client.smembers(key) if queue.encode() in m]
        if members:
            client.srem(key, *members)
    # kombu's deadlines of exchange bindings (celery.pidbox): only those whose binding set is gone.
    for member in client.zrange("_kombu.binding_deadlines", 0, -1):
        if not client.exists(b"_kombu.binding." + member):
            client.zrem("_kombu.binding_deadlines", member)


def make_data(applications: int, offset: int) -> list[tuple[object, str, str]]:
    """``applications`` owners (employees with an account) and one child each: (owner, child's id, child's name)."""
    from django.utils import timezone

    from accounts.models import InsuredPerson, Region
    from tests.factories import give_account

    region = Region.objects.get(code="320500")
    today = timezone.localdate()
    owners, children = [], []
    for i in range(offset, offset + applications):
        birth = dt.date(1970, 1, 1) + dt.timedelta(days=i)
        number = id_number("320505", birth, 2 * (i % 400) + 1)
        owners.append(
            InsuredPerson(
                id_number=number, name=f"王{i}号", birth_date=birth, sex="M", insurance_type="employee",
                status="active", region=region, card_number=f"P{i:08d}",
            )
        )  # fmt: skip
        # Between about 2 and 10 years old: under the face age (16) on any day the bench runs.
        child_birth = today - dt.timedelta(days=3653 - i % 2900)
        child = id_number("320505", child_birth, 2 * (i // 2900) + 2)
        children.append(
            InsuredPerson(
                id_number=child, name=f"王{i}子", birth_date=child_birth, sex="F", insurance_type="resident",
                status="active", region=region, card_number=f"C{i:08d}",
            )
        )  # fmt: skip
    InsuredPerson.objects.bulk_create(owners + children)
    for owner in owners:
        give_account(owner, current="800.00")
    return [(owner, child.id_number, child.name) for owner, child in zip(owners, children, strict=True)]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(len(ordered) * share + 0.5) - 1))] if ordered else 0.0


def baseline(worker: Worker, count: int, max_seconds: float) -> float:
    """``count`` no-op messages queued at once; seconds until the worker's log says the last succeeded."""
    from family import tasks

    before = worker.succeeded(ELIGIBILITY_TASK)
    started = time.perf_counter()
    for n in range(count):
        tasks.binding_check_eligibility.delay(-1 - n)
    while worker.succeeded(ELIGIBILITY_TASK) < before + count:
        if time.perf_counter() - started > max_seconds:
            raise SystemExit(f"baseline: not done in {max_seconds:.0f} s")
        time.sleep(0.02)
    return time.perf_counter() - started


def pipeline(method: str, people: list, *, clerk, institution, reviewer, max_seconds: float) -> dict:
    """Submit every application, let the worker (and, online, the reviewer thread) take them to active."""
    from django.db import connection

    from family.models import Binding, BindingMethod, BindingState
    from family.services.bindings import binding_review_decide, binding_submit

    submitted: dict[int, float] = {}
    lock = threading.Lock()
    done = threading.Event()
    errors: list[str] = []

    def review() -> None:
        try:
            while not done.is_set():
                with lock:
                    ids = list(submitted)
                waiting = list(
                    Binding.objects.filter(
                        pk__in=ids, state=BindingState.UNDER_REVIEW, reviewed_at__isnull=True
                    ).values_list("pk", flat=True)
                )
                for pk in waiting:
                    binding_review_decide(binding_id=pk, reviewer=reviewer, approve=True)
                if not waiting:
                    time.sleep(REVIEW_POLL_SECONDS)
        except Exception as error:  # shown at the end
            errors.append(repr(error))
        finally:
            connection.close()

    reviewer_thread = threading.Thread(target=review) if method == "online" else None
    started = time.time()
    if reviewer_thread:
        reviewer_thread.start()
    try:
        for owner, child_id, child_name in people:
            begun = time.time()
            if method == "counter":
                binding = binding_submit(
                    owner=owner, relative_id_number=child_id, relative_name=child_name, relationship="child",
                    method=BindingMethod.COUNTER, submitted_by=clerk, institution=institution,
                    originals_seen=["owner_id_card", "relative_id_card", "household_register"],
                )  # fmt: skip
            else:
                binding = binding_submit(
                    owner=owner, relative_id_number=child_id, relative_name=child_name, relationship="child"
                )
            with lock:
                submitted[binding.pk] = begun
        submit_seconds = time.time() - started
        final = {BindingState.ACTIVE, BindingState.REJECTED, BindingState.AWAITING_FACE}
        while Binding.objects.filter(pk__in=list(submitted), state__in=final).count() < len(submitted):
            if time.time() - started > max_seconds or errors:
                states = Binding.objects.filter(pk__in=list(submitted)).values_list("state", flat=True)
                raise SystemExit(
                    f"{method}: not all final in {max_seconds:.0f} s: {dict(collections_count(states))} {errors}"
                )
            time.sleep(0.05)
    finally:
        done.set()
        if reviewer_thread:
            reviewer_thread.join()
    rows = list(Binding.objects.filter(pk__in=list(submitted)).values_list("pk", "state", "activated_at"))
    wrong = [(pk, state) for pk, state, _ in rows if state != BindingState.ACTIVE]
    if wrong:
        raise SystemExit(f"{method}: {len(wrong)} applications did not become active, first: {wrong[:5]}")
    latencies = [activated.timestamp() - submitted[pk] for pk, _, activated in rows]
    elapsed = max(activated.timestamp() for _, _, activated in rows) - started
    return {
        "method": method,
        "applications": len(rows),
        "seconds": elapsed,
        "per_minute": len(rows) * 60 / elapsed,
        "submit_seconds": submit_seconds,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def collections_count(values) -> dict:
    counts: dict = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--applications", type=int, default=200, help="applications per method")
    parser.add_argument("--methods", default="counter,online", help="counter, online or both (comma-separated)")
    parser.add_argument("--max-seconds", type=float, default=300, help="bound on each timed phase")
    parser.add_argument("--concurrency", type=int, default=0, help="worker pool size (0: Celery's default, the CPUs)")
    parser.add_argument("--broker-url", default=DEFAULT_BROKER, help="Redis; a queue of this run, never flushed")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--json", action="store_true", help="also print one BENCH-JSON line (bench/run_all.py)")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods or set(methods) - {"counter", "online"}:
        raise SystemExit("--methods: counter, online or counter,online")
    if urlsplit(args.database_url).hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit("the bench drops and creates its database: loopback PostgreSQL only")
    if args.applications < 1 or args.applications > 5000:
        raise SystemExit("--applications: 1 to 5000")

    url = args.database_url
    queue = f"bench-pipeline-{uuid.uuid4().hex[:12]}"
    env = server_env(url)
    env.update(DJANGO_SETTINGS_MODULE="portal.settings", CELERY_BROKER_URL=args.broker_url, PYTHONUNBUFFERED="1")
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    worker = Worker(env=env, queue=queue, concurrency=args.concurrency, log_path=tmp / "worker.log")
    recreate_database(url)
    try:
        manage({**env, "DJANGO_DEBUG": "1"}, "migrate", "--noinput")
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.utils import translation

        from accounts.models import Institution, Region, User
        from portal.celery import app

        app.conf.update(task_default_queue=queue, task_always_eager=False)
        translation.activate("zh-hans")

        region = Region.objects.get(code="320500")
        institution = Institution.objects.create(code="H320500BENCH", name="苏州市立医院", kind="clinic", region=region)
        clerk = User.objects.create_user(username="bench-clerk", role="clerk", institution=institution)
        reviewer = User.objects.create_user(username="bench-reviewer", role="reviewer", is_staff=True)
        people = {m: make_data(args.applications, offset=k * args.applications) for k, m in enumerate(methods)}

        worker.start()
        print(
            f"one worker: prefork pool {worker.pool_size()} on {os.cpu_count()} CPUs, queue {queue} on "
            f"{args.broker_url}; {args.applications} applications per method (children 2-10 years old)",
            flush=True,
        )
        baseline(worker, min(20, args.applications), args.max_seconds)  # warm-up: the pool's connections
        pairs = args.applications
        before = baseline(worker, 2 * pairs, args.max_seconds)
        results = [
            pipeline(
                method, people[method], clerk=clerk, institution=institution, reviewer=reviewer,
                max_seconds=args.max_seconds,
            )
            for method in methods
        ]  # fmt: skip
        after = baseline(worker, 2 * pairs, args.max_seconds)
        base_per_minute = pairs * 60 / statistics.mean([before, after])

        print(
            f"\nbaseline: {2 * pairs} no-op messages (binding_check_eligibility on missing ids) in {before:.2f} s "
            f"before and {after:.2f} s after: {base_per_minute:,.0f} no-op pairs/min "
            f"({2 * base_per_minute:,.0f} tasks/min)"
        )
        for r in results:
            print(
                f"{r['method']:8} {r['per_minute']:8,.0f} applications/min ({r['applications']} in "
                f"{r['seconds']:.1f} s; submitting took {r['submit_seconds']:.1f} s); submit → active "
                f"p50 {r['p50_ms']:,.0f} ms, p99 {r['p99_ms']:,.0f} ms; "
                f"ratio to the no-op pairs {r['per_minute'] / base_per_minute:.3f}x"
            )
        if args.json:
            from report import Figure, emit

            emit(
                "pipeline",
                [
                    Figure(
                        name=f"{r['method']} applications submit → active, one worker ({worker.pool_size()})",
                        value=r["per_minute"],
                        unit="applications/min",
                        baseline="no-op task pairs on the same worker (binding_check_eligibility, missing id)",
                        baseline_value=base_per_minute,
                        ratio=r["per_minute"] / base_per_minute,
                        extra={
                            "applications": r["applications"],
                            "p50_ms": round(r["p50_ms"]),
                            "p99_ms": round(r["p99_ms"]),
                        },
                    )
                    for r in results
                ],
                notes=["document pre-check (OCR) not included: no document uploaded"],
            )
        return 0
    finally:
        worker.stop()
        with contextlib.suppress(Exception):
            remove_from_broker(args.broker_url, queue)
        log = worker.log()
        if "Traceback" in log:
            print(f"\n--- worker log (has a traceback) ---\n{log[-3000:]}")
        (tmp / "worker.log").unlink(missing_ok=True)
        tmp.rmdir()
        if not args.keep:
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
            drop_database(url)


if __name__ == "__main__":
    sys.exit(main())

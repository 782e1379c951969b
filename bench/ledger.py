"""Bench for R33/R34 payments: payments per second through ``payment_make``, beside raw single-row UPDATEs
and beside the SQL floor of a payment.

    .venv/bin/python bench/ledger.py [--threads 32] [--processes 2] [--seconds 5] [--rounds 2] \
        [--patients 400] [--owners 8] [--max-payments 100000] [--broker redis://127.0.0.1:6379/13] \
        [--database-url postgres://postgres@127.0.0.1:5432/portal_bench_ledger] [--profile] [--keep] [--json]

It drops and creates the bench database, migrates it, and sets up in this process (Django, production
settings, DEBUG off, tasks queued to ``--broker`` as in production, where a worker would run them; no
worker runs here and the Redis database is emptied at the end): ``--owners`` employees with large
accounts, ``--patients`` relatives bound to them (each to one owner, every fourth also to the next owner,
so two patients of one owner lock accounts in crossing R33 orders), a quarter of the patients employees
with a small account of their own (used up early, as in life), and a clinic's partner login. Opening
balances are ledger entries (R30).

Three loads take turns (``--rounds``, order reversed every other round), each for ``--seconds`` or
``--max-payments``, from ``--threads`` clients with a database connection each:

- payments: ``payment_make`` in-process, as ``POST /api/v1/payments/`` calls it after ``card_identify``
  (the patient loaded with account, wallet and region: one query, inside the timing), a new key and a
  random amount (1.00-99.99) for a random patient; so every payment locks one or two owners' accounts.
  The clients are spread over ``--processes`` forked processes (default one per CPU, as gunicorn
  workers would be), threads inside each;
- raw (the goal's baseline): ``UPDATE bench_raw_account SET balance = balance - x WHERE id = k`` in
  autocommit, on a table of its own with one row per owner (same threads, same rows, no ledger);
- the SQL floor of a payment: what a payment must write, in psycopg2 with no Python deciding anything:
  lock one owner's row (every fourth two, in id order), insert the payment, its parts and its ledger
  entries, move the balances, commit. The gap between payments and the floor is Python (Django's ORM,
  the R33 decision); the gap between the floor and the raw UPDATE is the work a payment has to do.

It prints the three rates, the ratios (goal: payments at least 0.3x the raw rate) and lost updates,
counted three ways: accounts whose ledger does not sum to the cached balance, accounts whose balance is
not the opening minus what the receipts said was taken, and baseline rows not at opening minus the
updates counted. Then one payment's queries (CaptureQueriesContext), a single-thread run (the
uncontended rate, and the share of time inside database calls) and, with ``--profile``, the functions
that took the most time in that run. It exits 1 only when money was lost or counted wrong; a missed
speed goal is a figure. Loopback only; the database is dropped at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import os
import pstats
import random
import statistics
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlsplit

import psycopg2
from eligibility import ROOT, base_env, drop_database, manage, recreate_database, server_env
from report import Figure, emit

GOAL = 0.3
OWNER_CURRENT = Decimal("5000000.00")
OWNER_HISTORICAL = Decimal("100000.00")
PATIENT_CURRENT = Decimal("30.00")
PATIENT_HISTORICAL = Decimal("20.00")
RAW_OPENING = Decimal("100000000.00")


@dataclass
class Batch:
    """One timed load: how many, how long, latencies, errors, and what the receipts said was taken."""

    name: str
    count: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    db_seconds: float = 0.0
    cpu_seconds: float = 0.0
    lock_seconds: float = 0.0
    taken: dict[int, list[Decimal]] = field(default_factory=lambda: defaultdict(lambda: [Decimal(0), Decimal(0)]))

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def add(self, other: Batch) -> None:
        self.count += other.count
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.errors += other.errors
        self.db_seconds += other.db_seconds
        self.cpu_seconds += other.cpu_seconds
        self.lock_seconds += other.lock_seconds
        for key, (current, historical) in other.taken.items():
            self.taken[key][0] += current
            self.taken[key][1] += historical

    def summary(self) -> str:
        ms = sorted(x * 1000 for x in self.latencies)
        p95 = ms[max(0, int(len(ms) * 0.95) - 1)] if ms else 0.0
        return (
            f"{self.rate:8.1f} /s  ({self.count} in {self.seconds:.1f} s; "
            f"p50 {statistics.median(ms) if ms else 0:.1f} ms, p95 {p95:.1f} ms)"
        )


def django_setup(url: str, broker: str) -> None:
    os.environ.update(server_env(url))
    # As in production: the owners' notifications (R35) go to the broker for a worker, not run in here.
    os.environ["CELERY_BROKER_URL"] = broker
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def make_people(patients: int, owners: int) -> dict:
    """Owners, patients, bindings, accounts with their opening ledger entries, a clinic and its partner login."""
    from django.utils import timezone

    from accounts.identity import id_check_character
    from accounts.models import Institution, InsuredPerson, LedgerEntry, PersonalAccount, Region, User
    from family.models import Binding

    region = Region.objects.get(code="320500")
    now = timezone.now()

    def person(n: int, employee: bool) -> InsuredPerson:
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=11 * n)
        body = f"320505{birth:%Y%m%d}{n % 1000:03d}"
        number = body + id_check_character(body)
        return InsuredPerson(
            id_number=number,
            name=f"李{n}号",
            birth_date=birth,
            sex="M" if int(number[16]) % 2 else "F",
            insurance_type="employee" if employee else "resident",
            status="active",
            region=region,
            card_number=f"B{n:08d}",
        )

    owner_rows = InsuredPerson.objects.bulk_create(person(n, True) for n in range(owners))
    patient_rows = InsuredPerson.objects.bulk_create(person(owners + n, n % 4 == 0) for n in range(patients))
    accounts = [
        PersonalAccount(person=p, current_balance=OWNER_CURRENT, historical_balance=OWNER_HISTORICAL)
        for p in owner_rows
    ] + [
        PersonalAccount(person=p, current_balance=PATIENT_CURRENT, historical_balance=PATIENT_HISTORICAL)
        for p in patient_rows
        if p.insurance_type == "employee"
    ]
    accounts = PersonalAccount.objects.bulk_create(accounts)
    LedgerEntry.objects.bulk_create(
        LedgerEntry(account=a, part=part, amount=amount, kind="adjustment", description="opening balance")
        for a in accounts
        for part, amount in (("current", a.current_balance), ("historical", a.historical_balance))
    )
    bindings = []
    for n, patient in enumerate(patient_rows):
        first = owner_rows[n % owners]
        bindings.append((first, patient, now - dt.timedelta(days=30)))
        if n % 4 == 1 and owners > 1:
            bindings.append((owner_rows[(n + 1) % owners], patient, now - dt.timedelta(days=20)))
    Binding.objects.bulk_create(
        Binding(
            owner=owner,
            relative=patient,
            relationship="child",
            method="online_id",
            state="active",
            region=region,
            policy_label="*@2026-01-09",
            activated_at=since,
            exclusive=False,
        )
        for owner, patient, since in bindings
    )
    clinic = Institution.objects.create(code="H320500BENCH", name="苏州市立医院", kind="clinic", region=region)
    client = User.objects.create_user(username="bench-clinic", role="partner", institution=clinic)
    return {
        "client": client,
        "clinic": clinic,
        "patients": [p.pk for p in patient_rows],
        "owners": [p.pk for p in owner_rows],
        "bindings": len(bindings),
    }


class DbTimer:
    """``connection.execute_wrapper``: adds the time spent in database calls of this thread."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.lock_seconds = 0.0  # in ``SELECT ... FOR UPDATE``: mostly waiting for another payment's locks

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            took = time.perf_counter() - started
            self.seconds += took
            if "FOR UPDATE" in sql:
                self.lock_seconds += took


def run_payments(
    world: dict, threads: int, seconds: float, limit: int, seed: int, tag: str, profiler: cProfile.Profile | None = None
) -> Batch:
    """``threads`` clients paying for random patients until ``seconds`` or ``limit`` payments (``profiler``:
    profile the clients' work; for one thread)."""
    from django.db import connection, connections

    from accounts.models import InsuredPerson
    from family.services.keys import request_fingerprint
    from family.services.payments import payment_make

    batch = Batch("payments")
    lock = threading.Lock()
    counter = iter(range(limit))
    barrier = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        mine = Batch("payments")
        timer = DbTimer()
        cpu_started = 0.0
        try:
            connection.ensure_connection()
            barrier.wait()
            cpu_started = time.thread_time()
            if profiler is not None:
                profiler.enable()
            with connection.execute_wrapper(timer):
                n = 0
                while time.perf_counter() < stop_at[0]:
                    with lock:
                        if next(counter, None) is None:
                            break
                    patient_id = rng.choice(world["patients"])
                    amount = Decimal(rng.randint(100, 9999)) / 100
                    key = f"{tag}-{index}-{n}"
                    n += 1
                    started = time.perf_counter()
                    try:
                        patient = InsuredPerson.objects.select_related("account", "wallet", "region").get(pk=patient_id)
                        receipt = payment_make(
                            client=world["client"],
                            idempotency_key=key,
                            request_hash=request_fingerprint(patient=patient_id, amount=amount),
                            patient=patient,
                            card_number=patient.card_number or "",
                            institution=world["clinic"],
                            kind="medical",
                            amount=amount,
                        )
                    except Exception as error:  # counted, and the bench fails on any
                        mine.errors.append(repr(error)[:300])
                        continue
                    mine.latencies.append(time.perf_counter() - started)
                    mine.count += 1
                    for line in receipt.lines:
                        taken = mine.taken[line.payer.pk]
                        taken[0] += line.current
                        taken[1] += line.historical
        finally:
            if profiler is not None:
                profiler.disable()
            mine.db_seconds = timer.seconds
            mine.lock_seconds = timer.lock_seconds
            mine.cpu_seconds = time.thread_time() - cpu_started
            with lock:
                batch.add(mine)
            connections.close_all()

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    started = time.perf_counter()
    stop_at[0] = started + seconds
    barrier.wait()
    for worker in workers:
        worker.join()
    batch.seconds = time.perf_counter() - started
    return batch


def run_payments_in_processes(
    world: dict, processes: int, threads: int, seconds: float, limit: int, seed: int, tag: str
) -> Batch:
    """``run_payments`` with the ``threads`` clients spread over ``processes`` forked processes (as gunicorn
    workers would be): the same load without one interpreter lock for all."""
    if processes == 1:
        return run_payments(world, threads, seconds, limit, seed, tag)
    import multiprocessing

    from django.db import connections

    connections.close_all()  # never share a connection with a child
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    shares = [threads // processes + (1 if i < threads % processes else 0) for i in range(processes)]

    def child(index: int, share: int) -> None:
        batch = run_payments(world, share, seconds, max(1, limit // processes), seed * 100 + index, f"{tag}p{index}")
        batch.taken = {k: list(v) for k, v in batch.taken.items()}
        results.put(batch)

    children = [context.Process(target=child, args=(i, share)) for i, share in enumerate(shares) if share]
    for process in children:
        process.start()
    total = Batch("payments")
    longest = 0.0
    for _ in children:
        batch = results.get(timeout=seconds + 120)
        longest = max(longest, batch.seconds)
        batch.seconds = 0.0
        total.add(batch)
    for process in children:
        process.join()
    total.seconds = longest
    return total


def _raw_update(cursor, rng: random.Random, rows: list[int]) -> dict[int, Decimal]:
    """The goal's baseline: one locked balance update, autocommitted."""
    row, amount = rng.choice(rows), Decimal(rng.randint(100, 9999)) / 100
    cursor.execute("UPDATE bench_raw_account SET balance = balance - %s WHERE id = %s", (amount, row))
    return {row: amount}


def _sql_payment(cursor, rng: random.Random, rows: list[int]) -> dict[int, Decimal]:
    """The SQL floor of one payment, with no Python deciding anything: lock one owner's row (every fourth
    payment two, in id order, as R33 does), write the payment, its parts and its ledger entries, move the
    balances, commit: the six round trips ``payment_make`` keeps while the accounts are locked."""
    first = rng.choice(rows)
    chosen = sorted({first, rows[(rows.index(first) + 1) % len(rows)]} if rng.random() < 0.25 else {first})
    taken = {row: Decimal(rng.randint(100, 9999)) / 100 / len(chosen) for row in chosen}
    taken = {row: amount.quantize(Decimal("0.01")) for row, amount in taken.items()}
    cursor.execute("SELECT id, balance FROM bench_floor_account WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (chosen,))
    cursor.fetchall()
    cursor.execute(
        "INSERT INTO bench_floor_payment (reference, amount, created_at) VALUES (%s, %s, now()) RETURNING id",
        (f"P{rng.getrandbits(40):X}", sum(taken.values())),
    )
    payment_id = cursor.fetchone()[0]
    values = [(payment_id, row, amount) for row, amount in taken.items()]
    cursor.execute(
        "INSERT INTO bench_floor_part (payment_id, account_id, amount) VALUES "
        + ", ".join(["(%s, %s, %s)"] * len(values)),
        [x for value in values for x in value],
    )
    cursor.execute(
        "INSERT INTO bench_floor_entry (account_id, amount, description, created_at) VALUES "
        + ", ".join(["(%s, %s, 'payment', now())"] * len(values)),
        [x for _payment, row, amount in values for x in (row, -amount)],
    )
    cursor.execute(
        "UPDATE bench_floor_account SET balance = balance - CASE id "
        + " ".join(["WHEN %s THEN %s"] * len(values))
        + " END WHERE id = ANY(%s)",
        [*(x for _payment, row, amount in values for x in (row, amount)), chosen],
    )
    cursor.connection.commit()
    return taken


def run_raw(
    url: str, rows: list[int], threads: int, seconds: float, limit: int, seed: int, work=_raw_update, name="raw"
) -> Batch:
    """``threads`` clients, each on its own psycopg2 connection, doing ``work`` (one random row's UPDATE in
    autocommit, or ``_sql_payment``'s transaction) until ``seconds`` or ``limit``."""
    batch = Batch(name)
    lock = threading.Lock()
    counter = iter(range(limit))
    barrier = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        mine = Batch(name)
        db = psycopg2.connect(url)
        db.autocommit = work is _raw_update
        try:
            with db.cursor() as cursor:
                barrier.wait()
                while time.perf_counter() < stop_at[0]:
                    with lock:
                        if next(counter, None) is None:
                            break
                    started = time.perf_counter()
                    try:
                        taken = work(cursor, rng, rows)
                    except psycopg2.Error as error:
                        db.rollback()
                        mine.errors.append(repr(error)[:300])
                        continue
                    mine.latencies.append(time.perf_counter() - started)
                    mine.count += 1
                    for row, amount in taken.items():
                        mine.taken[row][0] += amount
        finally:
            with lock:
                batch.add(mine)
            db.close()

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    started = time.perf_counter()
    stop_at[0] = started + seconds
    barrier.wait()
    for worker in workers:
        worker.join()
    batch.seconds = time.perf_counter() - started
    return batch


def make_raw_table(url: str, rows: int) -> list[int]:
    """The baselines' tables: ``bench_raw_account`` for the raw UPDATE, and for the SQL floor of a payment
    an account table of its own with a payment, part and ledger table beside it."""
    db = psycopg2.connect(url)
    with db, db.cursor() as cursor:
        for table in ("bench_raw_account", "bench_floor_account"):
            cursor.execute(
                f"CREATE TABLE {table} (id integer PRIMARY KEY, balance numeric(14, 2) NOT NULL CHECK (balance >= 0))"
            )
            cursor.executemany(
                f"INSERT INTO {table} (id, balance) VALUES (%s, %s)", [(i, RAW_OPENING) for i in range(1, rows + 1)]
            )
        cursor.execute(
            "CREATE TABLE bench_floor_payment (id bigserial PRIMARY KEY, reference varchar(32) NOT NULL UNIQUE,"
            " amount numeric(14, 2) NOT NULL, created_at timestamptz NOT NULL)"
        )
        cursor.execute(
            "CREATE TABLE bench_floor_part (id bigserial PRIMARY KEY,"
            " payment_id bigint NOT NULL REFERENCES bench_floor_payment,"
            " account_id integer NOT NULL REFERENCES bench_floor_account, amount numeric(14, 2) NOT NULL)"
        )
        cursor.execute(
            "CREATE TABLE bench_floor_entry (id bigserial PRIMARY KEY,"
            " account_id integer NOT NULL REFERENCES bench_floor_account, amount numeric(14, 2) NOT NULL,"
            " description varchar(200) NOT NULL, created_at timestamptz NOT NULL)"
        )
    db.close()
    return list(range(1, rows + 1))


def broker_flush(broker: str) -> None:
    """Empty the bench's Redis database: the notification tasks no worker was there to run."""
    import redis

    redis.Redis.from_url(broker).flushdb()


def lost_updates(
    url: str, opening: dict[int, tuple[Decimal, Decimal]], payments: Batch, raw: Batch, floor: Batch
) -> dict:
    """Accounts whose ledger differs from the cache; accounts and raw rows not where the counted work put them."""
    from accounts.models import PersonalAccount
    from family.models import Payment

    db = psycopg2.connect(url)
    with db, db.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.id, a.person_id, a.current_balance, a.historical_balance,
                   COALESCE(SUM(e.amount) FILTER (WHERE e.part = 'current'), 0),
                   COALESCE(SUM(e.amount) FILTER (WHERE e.part = 'historical'), 0)
            FROM accounts_personalaccount a LEFT JOIN accounts_ledgerentry e ON e.account_id = a.id
            GROUP BY a.id
            """
        )
        accounts = cursor.fetchall()
        cursor.execute("SELECT id, balance FROM bench_raw_account")
        raw_rows = dict(cursor.fetchall())
        cursor.execute(
            "SELECT a.id, a.balance, COALESCE(SUM(e.amount), 0) FROM bench_floor_account a"
            " LEFT JOIN bench_floor_entry e ON e.account_id = a.id GROUP BY a.id"
        )
        floor_rows = cursor.fetchall()
    db.close()
    ledger_vs_cache = sum(1 for _id, _p, current, historical, c, h in accounts if (current, historical) != (c, h))
    cache_vs_receipts = 0
    for _id, person_id, current, historical, _c, _h in accounts:
        open_current, open_historical = opening[person_id]
        taken_current, taken_historical = payments.taken.get(person_id, (Decimal(0), Decimal(0)))
        if (current, historical) != (open_current - taken_current, open_historical - taken_historical):
            cache_vs_receipts += 1
    raw_lost = sum(1 for row, balance in raw_rows.items() if balance != RAW_OPENING - raw.taken.get(row, [0])[0])
    raw_lost += sum(
        1
        for row, balance, entries in floor_rows
        if not balance == RAW_OPENING + entries == RAW_OPENING - floor.taken.get(row, [0])[0]
    )
    return {
        "accounts": len(accounts),
        "ledger_vs_cache": ledger_vs_cache,
        "cache_vs_receipts": cache_vs_receipts,
        "payment_rows": Payment.objects.count(),
        "raw_rows": len(raw_rows) + len(floor_rows),
        "raw_lost": raw_lost,
        "open_balance_total": sum(c + h for _i, _p, c, h, _c, _h in accounts),
        "persons_with_account": PersonalAccount.objects.count(),
    }


def one_payment_queries(world: dict) -> list[str]:
    """The queries of one payment of a patient with an account of their own and two owners."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import InsuredPerson
    from family.services.payments import payment_make

    # Patient 1 has two owners (every fourth patient from 1 does), so both owners' accounts are locked.
    patient_id = world["patients"][1]
    with CaptureQueriesContext(connection) as captured:
        patient = InsuredPerson.objects.select_related("account", "wallet", "region").get(pk=patient_id)
        payment_make(
            client=world["client"],
            idempotency_key="bench-queries",
            request_hash="bench-queries",
            patient=patient,
            card_number=patient.card_number,
            institution=world["clinic"],
            kind="medical",
            amount=Decimal("12.34"),
        )
    return [q["sql"] for q in captured.captured_queries]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=32, help="client threads (each its own connection)")
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="spread the payment clients over this many processes, as gunicorn workers (default: one per CPU)",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each timed batch")
    parser.add_argument("--rounds", type=int, default=2, help="the two loads take turns this many times")
    parser.add_argument("--patients", type=int, default=400)
    parser.add_argument("--owners", type=int, default=8)
    parser.add_argument("--max-payments", type=int, default=100_000, help="bound on each batch's count")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal_bench_ledger")
    parser.add_argument("--profile", action="store_true", help="cProfile the single-thread run")
    parser.add_argument(
        "--broker",
        default="redis://127.0.0.1:6379/13",
        help="Redis database the payments queue their notification tasks on (no worker reads it; emptied at the end)",
    )
    parser.add_argument("--json", action="store_true", help="also print one BENCH-JSON line for run_all.py")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    url = args.database_url
    if urlsplit(url).hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit("the bench drops and creates its database: loopback PostgreSQL only")
    if not (
        1 <= args.processes <= args.threads
        and 1 <= args.threads <= 64
        and 1 <= args.owners <= 100
        and args.owners <= args.patients <= 900
    ):
        raise SystemExit("--threads 1..64, --owners 1..100, --patients owners..900")
    if not (0 < args.seconds <= 60 and 1 <= args.rounds <= 10):
        raise SystemExit("--seconds 0..60, --rounds 1..10")

    try:
        recreate_database(url)
        migrate_env = base_env(url)
        migrate_env["DJANGO_DEBUG"] = "1"
        manage(migrate_env, "migrate", "--noinput")
        django_setup(url, args.broker)
        broker_flush(args.broker)
        from django.db import connections

        from accounts.models import PersonalAccount

        started = time.perf_counter()
        world = make_people(args.patients, args.owners)
        raw_rows = make_raw_table(url, args.owners)
        opening = {a.person_id: (a.current_balance, a.historical_balance) for a in PersonalAccount.objects.all()}
        connections.close_all()
        print(
            f"{args.owners} owners, {args.patients} patients ({world['bindings']} active bindings), "
            f"set up in {time.perf_counter() - started:.1f} s; {args.threads} clients in {args.processes} process(es), "
            f"{args.rounds} x {args.seconds:g} s per load, {os.cpu_count()} CPUs",
            flush=True,
        )

        warm = run_payments(world, args.threads, min(2.0, args.seconds), 500, seed=0, tag="warm")
        if warm.errors:
            raise SystemExit(f"warm-up: {len(warm.errors)} errors, first: {warm.errors[0]}")
        payments, raw, floor = Batch("payments"), Batch("raw"), Batch("sql payment")
        payments.add(warm)  # counted in the balances' check, not in the rate
        payments.count, payments.seconds, payments.latencies, payments.db_seconds = 0, 0.0, [], 0.0
        for round_number in range(args.rounds):
            turns = [
                lambda r=round_number: raw.add(
                    run_raw(url, raw_rows, args.threads, args.seconds, args.max_payments, r)
                ),
                lambda r=round_number: payments.add(
                    run_payments_in_processes(
                        world, args.processes, args.threads, args.seconds, args.max_payments, seed=r + 1, tag=f"r{r}"
                    )
                ),
                lambda r=round_number: floor.add(
                    run_raw(
                        url, raw_rows, args.threads, args.seconds, args.max_payments, r, _sql_payment, "sql payment"
                    )
                ),
            ]
            for turn in turns if round_number % 2 == 0 else reversed(turns):
                turn()
        for batch in (payments, raw, floor):
            if batch.errors:
                raise SystemExit(f"{batch.name}: {len(batch.errors)} errors, first: {batch.errors[0]}")

        queries = one_payment_queries(world)
        # The single payment above is not in the receipts' tally: count what it took from the stored part rows.
        from family.models import Payment

        extra = Payment.objects.get(idempotency_key="bench-queries")
        for part in extra.parts.all():
            taken = payments.taken[part.payer_id]
            taken[0] += part.current_amount
            taken[1] += part.historical_amount
        connections.close_all()

        profiler = cProfile.Profile() if args.profile else None
        single = run_payments(world, 1, min(3.0, args.seconds), 2000, seed=99, tag="single", profiler=profiler)
        for person_id, (current, historical) in single.taken.items():
            payments.taken[person_id][0] += current
            payments.taken[person_id][1] += historical

        lost = lost_updates(url, opening, payments, raw, floor)
        ratio = payments.rate / raw.rate if raw.rate else 0.0
        print(f"\n  raw UPDATE balance = balance - x   {raw.summary()}")
        print(f"  SQL floor of a payment              {floor.summary()}")
        print(f"  payment_make                        {payments.summary()}")
        floor_ratio = payments.rate / floor.rate if floor.rate else 0.0
        print(f"\npayments run at {ratio:.2f}x the raw update rate (goal >= {GOAL}x)")
        print(f"payments run at {floor_ratio:.2f}x the SQL floor of a payment (its writes and locks, no Python)")
        db_share = payments.db_seconds / sum(payments.latencies) if payments.latencies else 0.0
        print(
            f"lost updates: {lost['ledger_vs_cache']} accounts whose ledger is not their balance, "
            f"{lost['cache_vs_receipts']} accounts not at opening - receipts (of {lost['accounts']}), "
            f"{lost['raw_lost']} raw rows not at opening - updates (of {lost['raw_rows']}); "
            f"{lost['payment_rows']} payment rows"
        )
        print(
            f"{args.threads} clients in {args.processes} process(es): "
            f"{1000 * payments.cpu_seconds / payments.count if payments.count else 0:.1f} ms of client CPU per payment"
        )
        print(
            f"{args.threads}-client payments: {db_share:.0%} of each payment's time inside database calls "
            f"(waiting in SELECT ... FOR UPDATE for the accounts' locks: "
            f"{payments.lock_seconds / sum(payments.latencies) if payments.latencies else 0:.0%})"
        )
        single_db = single.db_seconds / sum(single.latencies) if single.latencies else 0.0
        print(
            f"1 thread, no contention: {single.rate:.1f} payments/s, "
            f"{1000 / single.rate if single.rate else 0:.1f} ms each, {single_db:.0%} inside database calls, "
            f"{1000 * single.cpu_seconds / single.count if single.count else 0:.1f} ms of CPU in this process each"
        )
        print(f"\nqueries per payment (patient loaded as card_identify does, then payment_make): {len(queries)}")
        locked_from = next((i for i, sql in enumerate(queries) if "FOR UPDATE" in sql), 0)
        locked_to = next((i for i, sql in enumerate(queries) if sql == "COMMIT"), len(queries) - 1)
        print(f"round trips while the accounts are locked (FOR UPDATE to COMMIT): {locked_to - locked_from + 1}")
        for sql in queries:
            print(f"    {sql[:150]}")
        if profiler:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(r"family|accounts|cards", 25)
            print("\n" + out.getvalue())
        total_lost = lost["ledger_vs_cache"] + lost["cache_vs_receipts"] + lost["raw_lost"]
        if lost["payment_rows"] != warm.count + payments.count + 1 + single.count:
            print("payment rows differ from the payments counted by the clients")
            total_lost += 1
        if args.json:
            p50 = statistics.median(payments.latencies) * 1000 if payments.latencies else 0.0
            common = {
                "p50_ms": round(p50, 1),
                "queries": len(queries),
                "locked_round_trips": locked_to - locked_from + 1,
                "client_cpu_ms": round(1000 * payments.cpu_seconds / payments.count, 1) if payments.count else None,
                "processes": args.processes,
                "lost_updates": total_lost,
            }
            emit(
                "ledger",
                [
                    Figure(
                        name=f"payment_make, {args.threads} clients",
                        value=payments.rate,
                        unit="payments/s",
                        baseline=f"raw UPDATE balance = balance - x, {args.threads} clients, same rows",
                        baseline_value=raw.rate,
                        ratio=ratio,
                        goal=f">= {GOAL}x raw, 0 lost updates",
                        met=ratio >= GOAL and total_lost == 0,
                        extra=common,
                    ),
                    Figure(
                        name=f"payment_make, {args.threads} clients",
                        value=payments.rate,
                        unit="payments/s",
                        baseline="the SQL floor of a payment (same locks and writes, psycopg2, no Python decisions)",
                        baseline_value=floor.rate,
                        ratio=floor_ratio,
                    ),
                ],
                notes=[
                    f"{args.threads} clients in {args.processes} process(es); owners' notifications queued to Redis"
                ],
            )
        # A missed speed goal is a figure, not a failure; lost money is.
        return 1 if total_lost else 0
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with contextlib.suppress(Exception):
            broker_flush(args.broker)
        if not args.keep:
            with contextlib.suppress(psycopg2.Error):
                drop_database(url)


if __name__ == "__main__":
    sys.exit(main())

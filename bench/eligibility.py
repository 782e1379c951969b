"""Bench for C3 ``POST /api/v1/eligibility/``: decisions per second with 1,000 and with N insured persons.

    .venv/bin/python bench/eligibility.py [--persons 1000000] [--small 1000] [--requests 2000] [--rounds 4] \
        [--threads 4] [--workers 2] [--database-url postgres://postgres@127.0.0.1:5432/portal_bench_elig] \
        [--explain] [--keep]

Two fresh databases, ``NAME_small`` with 1,000 persons and ``NAME`` with N, are created and migrated (the
default policy and its regions come with the data migration). Persons are loaded with ``COPY`` (valid ID
numbers, ~70% employees with a personal account whose balance is one ledger entry, 5% suspended), with
active bindings for 10% of them (neighbours, so the network query has rows to find), then ``ANALYZE``d;
``manage.py issue_token bench`` gives each a partner token. Each database gets its own gunicorn (DEBUG
off, as in production) on a free loopback port. After an untimed warm-up, the sizes take turns
(ABBA, ``--rounds``) so that load from elsewhere on the machine falls on both alike; each turn times
``GET /healthz`` (one ``SELECT 1``: the same-run baseline of a bare endpoint on the same server) and
a share of the ``--requests`` eligibility requests, fired by ``--threads`` client threads on pairs
drawn from the loaded persons. It prints both figures for both sizes and the ratio; the goal is that N
persons are at most 1.2x slower than 1,000 (exit 1 when missed). ``--explain`` (automatic when the goal
is missed) prints ``EXPLAIN ANALYZE`` of the queries of ``family.selectors.eligibility_facts`` at both
sizes. Loopback only; every batch is bounded by its count and ``--max-seconds``; the servers are stopped
and the databases dropped at the end (``--keep`` keeps the databases).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL = 1.2
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
# Pooling regions of the default policy (loaded by the data migration) -> districts of their residents.
DIVISIONS = [
    ("320500", "320505"),
    ("320500", "320506"),
    ("320500", "320508"),
    ("420100", "420102"),
    ("420100", "420106"),
    ("510100", "510104"),
    ("110100", "110105"),
    ("330100", "330106"),
]
FIRST_BIRTH = dt.date(1940, 1, 1)
BIRTH_DAYS = 30_000  # births from 1940 to 2022
FAMILY_NAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN_NAMES = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞"
RELATIONSHIPS = ["spouse", "parent", "child", "sibling", "grandparent", "grandchild"]
PERSON_COLUMNS = [
    "id_number",
    "name",
    "birth_date",
    "sex",
    "insurance_type",
    "status",
    "region_id",
    "card_number",
    "phone",
    "created_at",
    "updated_at",
]
LOADED_AT = "2026-01-01 00:00:00+08"
SECRET_KEY = "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105 throw-away server


def id_number(division: str, birth: dt.date, seq: int) -> str:
    """R1: a valid ID number (ISO 7064 MOD 11-2 check character, as accounts.identity.id_check_character)."""
    body = f"{division}{birth:%Y%m%d}{seq:03d}"
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, WEIGHTS, strict=True)) % 11]


def person_id_number(n: int) -> str:
    """The ID number of the n-th bench person; (birth day, sequence) is unique for every n below 14 million."""
    _, division = DIVISIONS[n % len(DIVISIONS)]
    birth = FIRST_BIRTH + dt.timedelta(days=n % BIRTH_DAYS)
    return id_number(division, birth, 2 * (n // BIRTH_DAYS) + (n & 1))


def person_rows(start: int, stop: int) -> str:
    """Persons start..stop-1 as COPY text rows (R2: birth date and sex agree with the ID number)."""
    lines = []
    for n in range(start, stop):
        region = DIVISIONS[n % len(DIVISIONS)][0]
        number = person_id_number(n)
        name = FAMILY_NAMES[n % 20] + GIVEN_NAMES[(n // 20) % 20] + GIVEN_NAMES[(n // 400) % 20]
        birth = f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
        sex = "M" if int(number[16]) % 2 else "F"
        insurance_type = "employee" if n % 10 < 7 else "resident"
        status = "suspended" if n % 20 == 19 else "active"
        row = [number, name, birth, sex, insurance_type, status, region, f"B{n:08d}", "", LOADED_AT, LOADED_AT]
        lines.append("\t".join(row))
    return "\n".join(lines) + "\n"


def database_url_for(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


def recreate_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = psycopg2.connect(database_url_for(url, "postgres"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = psycopg2.connect(database_url_for(url, "postgres"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


def load_persons(url: str, persons: int, chunk: int = 100_000) -> tuple[int, int, int]:
    """Empty the person tables and load ``persons`` with COPY, their accounts, ledger and bindings."""
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        # CASCADE empties what points at persons too (accounts, ledger, bindings, logins and their tokens).
        cursor.execute("TRUNCATE accounts_insuredperson RESTART IDENTITY CASCADE")
        copy = f"COPY accounts_insuredperson ({', '.join(PERSON_COLUMNS)}) FROM STDIN"
        for start in range(0, persons, chunk):
            cursor.copy_expert(copy, io.StringIO(person_rows(start, min(persons, start + chunk))))
        # Employees have a personal account; its balance is the sum of its ledger entries (R30).
        cursor.execute(
            """
            INSERT INTO accounts_personalaccount (person_id, current_balance, historical_balance, updated_at)
            SELECT id, (id %% 500000) / 100.0 + 1, 0, %s FROM accounts_insuredperson
            WHERE insurance_type = 'employee'
            """,
            [LOADED_AT],
        )
        cursor.execute(
            """
            INSERT INTO accounts_ledgerentry (account_id, part, amount, kind, description, reference, created_at)
            SELECT id, 'current', current_balance, 'adjustment', 'opening balance', '', %s
            FROM accounts_personalaccount
            """,
            [LOADED_AT],
        )
        # Active bindings for 10% of the persons: an employee owner and the next person as relative.
        cursor.execute(
            """
            INSERT INTO family_binding (
                relationship, method, state, policy_label, reasons, needs_review, needs_face_verification,
                exclusive, newborn_name, mother_name, mother_id_number, birth_certificate_number,
                letter_signed_name, originals_seen, created_at, updated_at, activated_at, end_reason,
                counter_cards, owner_id, region_id, relative_id
            )
            SELECT 'sibling', 'online_id', 'active', '*@2024-07-01', '[]', false, false,
                   true, '', '', '', '', '', '[]', %s, %s, %s, '', '{}', o.id, o.region_id, r.id
            FROM accounts_insuredperson o JOIN accounts_insuredperson r ON r.id = o.id + 1
            WHERE o.id %% 20 = 1 AND o.insurance_type = 'employee'
            """,
            [LOADED_AT, LOADED_AT, LOADED_AT],
        )
        cursor.execute("SELECT count(*) FROM accounts_insuredperson")
        loaded = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM accounts_personalaccount")
        accounts = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM family_binding")
        bindings = cursor.fetchone()[0]
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connection.close()
    return loaded, accounts, bindings


def base_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "REDIS_"))}
    env.update(DATABASE_URL=url, DJANGO_LOG_LEVEL="WARNING")
    return env


def server_env(url: str) -> dict[str, str]:
    """The environment of production (DEBUG off) on loopback HTTP, with no rate limit in the way."""
    env = base_env(url)
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="0",
        API_THROTTLE_USER="1000000/minute",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def gunicorn(url: str, workers: int, log_path: Path, *, extra_env: dict[str, str] | None = None):
    """Serve the portal as production would (DEBUG off) on a free loopback port; yield the port."""
    port = free_port()
    env = server_env(url)
    env.update(extra_env or {})
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "portal.wsgi:application",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--error-logfile",
        str(log_path),
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                raise SystemExit(f"gunicorn exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/healthz")
                if probe.getresponse().status == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer /healthz in 30 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@dataclass
class Run:
    """Timed requests of one kind: how many, how long, and what came back."""

    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    eligible: int = 0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def add(self, other: Run) -> None:
        self.requests += other.requests
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.errors += other.errors
        self.eligible += other.eligible

    def percentile(self, share: float) -> float:
        """The latency in ms below which ``share`` of the requests answered (nearest rank)."""
        ms = sorted(x * 1000 for x in self.latencies)
        return ms[max(0, min(len(ms) - 1, int(len(ms) * share + 0.5) - 1))] if ms else 0.0

    def summary(self) -> str:
        ms = sorted(x * 1000 for x in self.latencies)
        return (
            f"{self.rate:8.1f} req/s  ({self.requests} in {self.seconds:.1f} s; "
            f"p50 {statistics.median(ms) if ms else 0:.1f} ms, p95 {self.percentile(0.95):.1f} ms, "
            f"p99 {self.percentile(0.99):.1f} ms)"
        )


def fire(port: int, calls: list[tuple[str, str, bytes | None]], headers: dict, threads: int, max_seconds: float) -> Run:
    """Send the calls from ``threads`` client threads (one connection each, reopened when the server closes it)."""
    run = Run()
    lock = threading.Lock()
    position = iter(range(len(calls)))
    stop_at = time.monotonic() + max_seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop_at:
            with lock:
                index = next(position, None)
            if index is None:
                break
            method, path, body = calls[index]
            started = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                with lock:
                    run.errors.append(f"{method} {path}: {error!r}")
                continue
            took = time.perf_counter() - started
            with lock:
                run.requests += 1
                run.latencies.append(took)
                if response.status != 200:
                    run.errors.append(f"{method} {path}: {response.status} {payload[:300]!r}")
                elif path.startswith("/api/") and json.loads(payload)["eligible"]:
                    run.eligible += 1
        connection.close()

    workers = [threading.Thread(target=client) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    run.seconds = time.perf_counter() - started
    return run


def eligibility_calls(persons: int, count: int, seed: int) -> list[tuple[str, str, bytes | None]]:
    """Requests on pairs of loaded persons; a third are neighbours, so some pairs have a binding between them."""
    rng = random.Random(seed)
    calls = []
    for i in range(count):
        owner = rng.randrange(persons)
        relative = (owner + 1) % persons if i % 3 == 0 else rng.randrange(persons)
        if relative == owner:
            relative = (owner + 2) % persons
        body = {
            "owner_id_number": person_id_number(owner),
            "relative_id_number": person_id_number(relative),
            "relationship": rng.choice(RELATIONSHIPS),
        }
        calls.append(("POST", "/api/v1/eligibility/", json.dumps(body).encode()))
    return calls


@dataclass
class Size:
    """One loaded database, its server and what was measured on it."""

    persons: int
    url: str
    token: str = ""
    port: int = 0
    calls: list = field(default_factory=list)
    healthz: Run = field(default_factory=Run)
    eligibility: Run = field(default_factory=Run)
    round_rates: list[float] = field(default_factory=list)


def prepare(size: Size) -> None:
    """A fresh, migrated database with ``size.persons`` loaded, and a partner token."""
    recreate_database(size.url)
    env = base_env(size.url)
    env["DJANGO_DEBUG"] = "1"
    manage(env, "migrate", "--noinput")
    started = time.perf_counter()
    loaded, accounts, bindings = load_persons(size.url, size.persons)
    print(
        f"{urlsplit(size.url).path.lstrip('/')}: {loaded:,} persons ({accounts:,} accounts, "
        f"{bindings:,} active bindings) loaded and analysed in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    size.token = manage(env, "issue_token", "bench").strip()


def explain(url: str, persons: int) -> None:
    """EXPLAIN ANALYZE the queries eligibility_facts makes, for a pair with a binding between them."""
    os.environ.update(base_env(url), DJANGO_SETTINGS_MODULE="portal.settings", DJANGO_DEBUG="1")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from family.selectors import eligibility_facts

    # Point the one Django connection at this size's database.
    connection.close()
    connection.settings_dict["NAME"] = urlsplit(url).path.lstrip("/")
    with CaptureQueriesContext(connection) as captured:
        eligibility_facts(
            owner_id_number=person_id_number(0), relative_id_number=person_id_number(1), on_date=timezone.localdate()
        )
    print(f"\nEXPLAIN ANALYZE of eligibility_facts at {persons:,} persons ({len(captured.captured_queries)} queries):")
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            print(f"\n  {query['sql'][:300]} ...")
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            for (line,) in cursor.fetchall():
                print(f"    {line}")
    connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=1_000_000, help="the large size")
    parser.add_argument("--small", type=int, default=1_000, help="the small size")
    parser.add_argument("--requests", type=int, default=2000, help="timed eligibility requests per size")
    parser.add_argument("--rounds", type=int, default=8, help="the sizes take turns this many times")
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--max-seconds", type=float, default=120, help="bound on each timed batch")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal_bench_elig")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the eligibility queries")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument("--json", action="store_true", help="also print one BENCH-JSON line (bench/run_all.py)")
    args = parser.parse_args()
    if urlsplit(args.database_url).hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit("the bench drops and creates its databases: loopback PostgreSQL only")

    name = urlsplit(args.database_url).path.lstrip("/")
    small = Size(args.small, database_url_for(args.database_url, f"{name}_small"))
    large = Size(args.persons, args.database_url)
    sizes = [small, large]
    tmp = Path(tempfile.mkdtemp(prefix="bench-eligibility-"))
    per_round = max(1, args.requests // args.rounds)
    warmup = max(50, min(300, args.requests // 5))
    try:
        for size in sizes:
            prepare(size)
            size.calls = eligibility_calls(size.persons, warmup + per_round * args.rounds, seed=size.persons)
        print(
            f"{per_round * args.rounds} timed requests per endpoint and size in {args.rounds} alternating rounds, "
            f"{args.threads} client threads, gunicorn -w {args.workers} per size, {os.cpu_count()} CPUs",
            flush=True,
        )
        with contextlib.ExitStack() as servers:
            for size in sizes:
                size.port = servers.enter_context(
                    gunicorn(size.url, args.workers, tmp / f"gunicorn-{size.persons}.log")
                )
            headers = {}
            for size in sizes:
                headers[size.persons] = {
                    "Authorization": f"Token {size.token}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                }
                fire(size.port, [("GET", "/healthz", None)] * warmup, headers[size.persons], args.threads, 60)
                fire(size.port, size.calls[:warmup], headers[size.persons], args.threads, args.max_seconds)
            # The sizes take turns (ABBA), so load from elsewhere on the machine falls on both alike.
            for round_number in range(args.rounds):
                for size in sizes if round_number % 2 == 0 else reversed(sizes):
                    batch = size.calls[warmup + round_number * per_round : warmup + (round_number + 1) * per_round]
                    bare = fire(
                        size.port, [("GET", "/healthz", None)] * per_round, headers[size.persons], args.threads, 60
                    )
                    run = fire(size.port, batch, headers[size.persons], args.threads, args.max_seconds)
                    size.healthz.add(bare)
                    size.eligibility.add(run)
                    size.round_rates.append(run.rate)
        for size in sizes:
            for label, run in (("healthz", size.healthz), ("eligibility", size.eligibility)):
                if run.errors:
                    raise SystemExit(f"{label} at {size.persons:,}: {len(run.errors)} errors, first: {run.errors[0]}")
            print(f"\nat {size.persons:,} persons:")
            print(f"  GET /healthz (baseline)     {size.healthz.summary()}")
            print(f"  POST /api/v1/eligibility/   {size.eligibility.summary()}  [{size.eligibility.eligible} eligible]")
            print(f"  eligibility decisions/s by round: {', '.join(f'{r:.1f}' for r in size.round_rates)}")

        ratio = small.eligibility.rate / large.eligibility.rate
        round_ratios = [a / b for a, b in zip(small.round_rates, large.round_rates, strict=True)]
        bare_ratio = small.healthz.rate / large.healthz.rate
        print(f"\n{'':26}{small.persons:>12,} {large.persons:>12,}")
        print(f"{'healthz req/s':26}{small.healthz.rate:12.1f} {large.healthz.rate:12.1f}   ({bare_ratio:.2f}x)")
        print(f"{'eligibility decisions/s':26}{small.eligibility.rate:12.1f} {large.eligibility.rate:12.1f}")
        met = "met" if ratio <= GOAL else "MISSED"
        print(
            f"ratio: {large.persons:,} persons are {ratio:.2f}x slower than {small.persons:,} "
            f"(by round: {', '.join(f'{r:.2f}' for r in round_ratios)}; goal <= {GOAL}x: {met})"
        )
        if args.json:
            from report import Figure, emit

            emit(
                "eligibility",
                [
                    Figure(
                        name=f"POST /api/v1/eligibility/ at {size.persons:,} persons",
                        value=size.eligibility.rate,
                        unit="decisions/s",
                        baseline="GET /healthz on the same server",
                        baseline_value=size.healthz.rate,
                        ratio=size.eligibility.rate / size.healthz.rate,
                        extra={
                            "p50_ms": round(size.eligibility.percentile(0.5), 1),
                            "p99_ms": round(size.eligibility.percentile(0.99), 1),
                        },
                    )
                    for size in sizes
                ]
                + [
                    Figure(
                        name=f"slowdown from {small.persons:,} to {large.persons:,} persons",
                        value=ratio,
                        unit="x slower",
                        baseline=f"{small.persons:,} persons, same run",
                        baseline_value=1.0,
                        ratio=ratio,
                        goal=f"<= {GOAL}x",
                        met=ratio <= GOAL,
                    )
                ],
            )
        if args.explain or ratio > GOAL:
            for size in sizes:
                explain(size.url, size.persons)
        return 0 if ratio <= GOAL else 1
    finally:
        for log in sorted(tmp.glob("*.log")):
            text = log.read_text(errors="replace")
            if "Traceback" in text:
                print(f"\n--- {log.name} (has a traceback) ---\n{text[-3000:]}")
            log.unlink()
        tmp.rmdir()
        if not args.keep:
            for size in sizes:
                with contextlib.suppress(psycopg2.Error):
                    drop_database(size.url)


if __name__ == "__main__":
    sys.exit(main())

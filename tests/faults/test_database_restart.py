"""Faults: PostgreSQL restarted during a burst of payments (R34: once or not at all, and the client can tell).

Never the shared server: the test starts a private PostgreSQL 15 cluster, copies the migrated schema
of the test database into it, sets up a payment desk there (``tests/faults/payment_world.py``) and
serves the real API from gunicorn on it. Clients pay through ``POST /api/v1/payments/`` with one
``Idempotency-Key`` per payment; mid-burst the test restarts the server with ``pg_ctl restart -m
immediate`` (every backend cut off, as in a crash). A client whose request failed (a 500, a dropped
connection) sends the same key and body again until it gets an answer:

- 201: the payment was made by this request, so none of the earlier attempts had charged anything;
- 200 with ``replayed``: an earlier attempt had charged it and its answer was lost; this is its receipt.

Afterwards: one payment per key, every answer naming that payment, the ledger equal to the cached
balances, every charge belonging to a payment, and the money conserved.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest
from django.db import connection

from tests.faults.servers import PrivatePostgres, free_port, wait_for_port

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "portal"
CLIENTS_PER_CARD = 2
PAYMENTS_PER_CLIENT = 10
RESTART_AFTER = 25  # payments answered before the restart
ANSWER_DEADLINE = 90.0  # seconds a client keeps retrying one key


def _child_env(database_url: str) -> dict[str, str]:
    """The environment of a process on the private database: test settings, tasks in-process."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CELERY_")) and key not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(DJANGO_SETTINGS_MODULE="portal.test_settings", DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
    return env


def _copy_schema(server: PrivatePostgres) -> None:
    """The test database's migrated schema and seed rows (policy versions), as ``migrate`` left them."""
    db = connection.settings_dict
    source = [
        "pg_dump", "--no-owner", "--no-privileges", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432),
        "-U", db["USER"] or "postgres", db["NAME"],
    ]  # fmt: skip
    target = ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres"]
    subprocess.run([*target, "-c", f"CREATE DATABASE {DATABASE}"], check=True, capture_output=True, timeout=60)
    env = {**os.environ, "PGPASSWORD": db["PASSWORD"] or ""}
    dump = subprocess.run(source, check=True, capture_output=True, timeout=120, env=env)
    subprocess.run([*target, "-d", DATABASE], input=dump.stdout, check=True, capture_output=True, timeout=120)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api_server(private_postgres, tmp_path) -> Iterator[int]:
    """gunicorn serving the portal on the private database (persistent connections, health-checked)."""
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    command = [
        sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread", "--workers", "2", "--threads", "4", "--timeout", "60",
        "--graceful-timeout", "5",
    ]  # fmt: skip
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=_child_env(private_postgres.url(DATABASE)),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, timeout=60, what="gunicorn", log=log_path)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGQUIT)  # gunicorn's quick shutdown: the burst is over
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@dataclass
class KeyedPayment:
    """One payment a client wants made, every attempt at it, and the answer it finally got."""

    key: str
    body: dict
    attempts: list[str] = field(default_factory=list)  # "201", "500", "ConnectionResetError", ...
    status: int | None = None
    receipt: dict | None = None

    @property
    def failed_attempts(self) -> int:
        return len(self.attempts) - (1 if self.status is not None else 0)


def _call(port: int, token: str, method: str, path: str, *, key: str = "", body: dict | None = None):
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    if body is not None:
        headers["Content-Type"] = "application/json"
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        client.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = client.getresponse()
        content = response.read()
    finally:
        client.close()
    is_json = response.getheader("Content-Type", "").startswith(("application/json", "application/problem+json"))
    return response.status, json.loads(content) if is_json else None


def _pay_until_answered(port: int, token: str, payment: KeyedPayment) -> None:
    """Send the payment; on a 5xx or a broken connection, send the same key and body again."""
    deadline = time.monotonic() + ANSWER_DEADLINE
    while True:
        try:
            status, data = _call(port, token, "POST", "/api/v1/payments/", key=payment.key, body=payment.body)
        except (OSError, http.client.HTTPException) as error:
            payment.attempts.append(type(error).__name__)
        else:
            payment.attempts.append(str(status))
            if status < 500:
                payment.status, payment.receipt = status, data
                return
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)


def _query(database_url: str, sql: str, params=()) -> list[tuple]:
    with contextlib.closing(psycopg2.connect(database_url)) as db, db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_r34_postgres_restarted_mid_burst_each_key_charged_once_or_not_and_the_client_can_tell(
    private_postgres, api_server, tmp_path
):
    """A crash-like restart of PostgreSQL in a burst of 80 payments: no key charged twice, none lost."""
    database_url = private_postgres.url(DATABASE)
    _copy_schema(private_postgres)
    world = json.loads(
        subprocess.run(
            [sys.executable, "-m", "tests.faults.payment_world"],
            cwd=ROOT,
            env=_child_env(database_url),
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    )
    token, port = world["token"], api_server
    clients = [
        [
            KeyedPayment(
                key=f"burst-{client}-{n}",
                body={"card_number": card, "kind": "medical", "amount": f"{7 + 3 * n + client}.{11 * n % 100:02d}"},
            )
            for n in range(PAYMENTS_PER_CLIENT)
        ]
        for client, card in enumerate(world["cards"] * CLIENTS_PER_CARD)
    ]
    payments = [p for client in clients for p in client]
    answered = threading.Semaphore(0)

    def run_client(own: list[KeyedPayment]) -> None:
        for payment in own:
            _pay_until_answered(port, token, payment)
            answered.release()

    threads = [threading.Thread(target=run_client, args=(own,)) for own in clients]
    for thread in threads:
        thread.start()
    for _ in range(RESTART_AFTER):
        assert answered.acquire(timeout=60), "the burst did not get going"
    private_postgres.restart(mode="immediate")  # in the middle of the burst: 8 clients paying
    for thread in threads:
        thread.join(timeout=ANSWER_DEADLINE + 30)
    assert not any(thread.is_alive() for thread in threads)

    # Every key got an answer in the end, and it is a receipt: 201 made now, or 200 the earlier one.
    assert {p.key: p.status for p in payments if p.status not in (200, 201)} == {}
    failed = [p for p in payments if p.failed_attempts]
    assert failed, "the restart hit no request: nothing was tested"
    # A replayed receipt without an earlier failed attempt would be a key charged by someone else.
    assert all(p.failed_attempts for p in payments if p.status == 200)
    assert all(p.receipt["replayed"] == (p.status == 200) for p in payments)

    # One payment per key, and it is the one each answer names (R34).
    stored = {
        key: (payment_id, reference, Decimal(amount))
        for key, payment_id, reference, amount in _query(
            database_url, "SELECT idempotency_key, id, reference, amount FROM family_payment"
        )
    }
    assert len(stored) == len(_query(database_url, "SELECT id FROM family_payment"))  # no key twice
    assert set(stored) == {p.key for p in payments}
    for p in payments:
        assert stored[p.key] == (p.receipt["id"], p.receipt["reference"], Decimal(p.body["amount"])), p.key

    # The client can tell by the key alone: the same key again answers that receipt, charging nothing;
    # and the receipt it names is there to read.
    for p in payments[:: len(clients)] + failed:
        status, again = _call(port, token, "POST", "/api/v1/payments/", key=p.key, body=p.body)
        assert (status, again["id"], again["replayed"]) == (200, p.receipt["id"], True)
        status, detail = _call(port, token, "GET", f"/api/v1/payments/{p.receipt['id']}/")
        assert (status, detail["reference"], detail["amount"]) == (200, p.receipt["reference"], p.body["amount"])

    # All or nothing: each payment is its parts plus cash; each part is in the ledger under its
    # reference; no ledger charge belongs to a payment that does not exist (a rolled-back one).
    unbalanced = _query(
        database_url,
        """SELECT p.id FROM family_payment p LEFT JOIN family_paymentpart pp ON pp.payment_id = p.id
           GROUP BY p.id, p.amount, p.cash_amount
           HAVING p.amount <> p.cash_amount
               + COALESCE(SUM(pp.current_amount + pp.historical_amount + pp.wallet_amount), 0)""",
    )
    assert unbalanced == []
    charged = dict(
        _query(
            database_url,
            """SELECT p.reference, SUM(pp.current_amount + pp.historical_amount)
               FROM family_payment p JOIN family_paymentpart pp ON pp.payment_id = p.id GROUP BY p.reference""",
        )
    )
    in_ledger = dict(
        _query(
            database_url, "SELECT reference, -SUM(amount) FROM accounts_ledgerentry WHERE kind = 'payment' GROUP BY 1"
        )
    )
    assert in_ledger == {reference: amount for reference, amount in charged.items() if amount}
    # The ledger sums equal the cached balances, part by part, and never below zero.
    balances = {
        str(account_id): (current, historical)
        for account_id, current, historical in _query(
            database_url, "SELECT id, current_balance, historical_balance FROM accounts_personalaccount"
        )
    }
    ledger = {
        str(account_id): (current, historical)
        for account_id, current, historical in _query(
            database_url,
            """SELECT account_id, COALESCE(SUM(amount) FILTER (WHERE part = 'current'), 0),
                      COALESCE(SUM(amount) FILTER (WHERE part = 'historical'), 0)
               FROM accounts_ledgerentry GROUP BY account_id""",
        )
    }
    assert ledger == balances
    assert all(current >= 0 and historical >= 0 for current, historical in balances.values())
    # Money is conserved: what left the accounts is exactly what the payments charged to them.
    opening = sum(Decimal(current) + Decimal(historical) for current, historical in world["opening"].values())
    assert opening - sum(c + h for c, h in balances.values()) == sum(charged.values())
    print(  # shown with -s
        f"{len(payments)} payments, PostgreSQL restarted after {RESTART_AFTER}: {len(failed)} keys retried "
        f"({sum(p.status == 200 for p in payments)} had been charged, their answer lost; "
        f"{sum(p.status == 201 for p in failed)} had not); attempts of retried keys: "
        f"{sorted({a for p in failed for a in p.attempts})}"
    )

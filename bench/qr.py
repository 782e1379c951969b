"""Bench for R42 ``POST /api/v1/cards/verify/``: QR verifications per second, beside a bare DRF view.

    .venv/bin/python bench/qr.py [--verifications 2000] [--holders 200] [--rounds 4] [--threads 4] \
        [--workers 2] [--database-url postgres://postgres@127.0.0.1:5432/portal_bench_qr] [--keep]

It drops and creates the bench database, migrates it, and (in ``manage.py shell`` with the server's
settings, so the codes are signed with the server's key) makes ``--holders`` card holders with an active
e-card, half of them employees with a personal account, a third with one or two active family-sharing
bindings (so the payers query has rows to find), and a partner system of a Suzhou pharmacy with a token
(so the province check runs). Each code is single-use, so the codes are pre-issued in bulk: one
``QrToken`` row per verification (warm-up included), valid for two hours, signed by
``cards.services.qr_token_sign`` as ``qr_issue`` signs them. It serves the portal with gunicorn (DEBUG
off, as in production) under ``bench.settings_bench``, whose URLs add ``/bench/bare-api/``: a DRF view
with the same token authentication, throttling and JSON parsing that does nothing else, as the
same-run baseline. After an untimed warm-up the two take turns (``--rounds``, order reversed every other
round) with ``--threads`` client threads. Every verification must answer 200 with the holder masked
(a code used twice would answer 409: none is). It prints both rates, the ratio, and the queries one
verification makes. Loopback only; bounded by the number of codes and ``--max-seconds``; the server is
stopped and the database dropped at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
from eligibility import ROOT, Run, base_env, drop_database, gunicorn, manage, recreate_database, server_env

SETTINGS = "bench.settings_bench"
MASKED_ID = re.compile(r"^\d{3}\*{11}[\dX]{4}$")

# Run inside ``manage.py shell`` with the server's settings. HOLDERS and TOKENS are set before it.
SETUP = """
import datetime as dt
import json

from django.contrib.auth.hashers import make_password
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.identity import id_check_character
from accounts.models import Institution, InsuredPerson, PersonalAccount, Region, User
from cards.models import ECard, QrToken
from cards.services import qr_token_sign
from family.models import Binding

region = Region.objects.get(code="320500")
now = timezone.now()
sequence = iter(range(1, 999))


def person(n, insurance_type):
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=23 * n)
    body = f"320505{birth:%Y%m%d}{next(sequence) % 1000:03d}"
    number = body + id_check_character(body)
    return InsuredPerson(
        id_number=number, name=f"王{n}号", birth_date=birth, sex="M" if int(number[16]) % 2 else "F",
        insurance_type=insurance_type, status="active", region=region,
    )


persons = InsuredPerson.objects.bulk_create(
    person(n, "employee" if n % 2 == 0 else "resident") for n in range(HOLDERS + 2)
)
holders, owners = persons[:HOLDERS], persons[HOLDERS:]
PersonalAccount.objects.bulk_create(PersonalAccount(person=p) for p in persons if p.insurance_type == "employee")
for owner in owners:
    owner.insurance_type = "employee"
    owner.save(update_fields=["insurance_type"])
    PersonalAccount.objects.get_or_create(person=owner)
bindings = []
for n, holder in enumerate(holders):
    if n % 3 == 0:
        for k, owner in enumerate(owners[: 1 + n % 2]):
            bindings.append(Binding(
                owner=owner, relative=holder, relationship="child", method="online_id", state="active",
                region=region, policy_label="*@2026-01-09", activated_at=now - dt.timedelta(days=10 + k),
                exclusive=False,
            ))
Binding.objects.bulk_create(bindings)
password = make_password("586217")
cards = ECard.objects.bulk_create(
    ECard(
        person=holder, issuing_region=region, state="active", agreement_accepted_at=now, face_verified_at=now,
        password=password, password_set_at=now, claimed_at=now,
    )
    for holder in holders
)
shower = User.objects.create_user(username="bench-holder", person=holders[0], phone="13900000001")
pharmacy = Institution.objects.create(code="P320500BENCH", name="苏州市大药房", kind="pharmacy", region=region)
partner = User.objects.create_user(username="bench-partner", role="partner", institution=pharmacy)
token_key = Token.objects.create(user=partner).key

expires_at = (now + dt.timedelta(hours=2)).replace(microsecond=0)
rows = QrToken.objects.bulk_create(
    QrToken(
        nonce=f"bench{i:07d}", card=cards[i % HOLDERS], holder=holders[i % HOLDERS], shown_by=shower,
        region_code="320500", expires_at=expires_at, created_at=now,
    )
    for i in range(TOKENS + 1)
)
codes = [qr_token_sign(row=row) for row in rows]

# One verification through the test client: its answer and its queries (the code is then spent).
client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token_key}")
with CaptureQueriesContext(connection) as captured:
    response = client.post("/api/v1/cards/verify/", {"token": codes[-1]}, content_type="application/json")
assert response.status_code == 200, response.content
print(json.dumps({
    "token": token_key, "codes": codes[:-1], "queries": len(captured.captured_queries),
    "bindings": len(bindings), "sql": [q["sql"][:160] for q in captured.captured_queries],
}))
"""


def fire(port: int, calls: list[tuple[str, bytes]], headers: dict, threads: int, max_seconds: float, check) -> Run:
    """POST the calls from ``threads`` client threads (one connection each); ``check`` judges each answer."""
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
            path, body = calls[index]
            started = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                with lock:
                    run.errors.append(f"POST {path}: {error!r}")
                continue
            took = time.perf_counter() - started
            problem = check(response.status, payload)
            with lock:
                run.requests += 1
                run.latencies.append(took)
                if problem:
                    run.errors.append(f"POST {path}: {problem}")
        connection.close()

    workers = [threading.Thread(target=client) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    run.seconds = time.perf_counter() - started
    return run


def check_bare(status: int, payload: bytes) -> str:
    return "" if status == 200 and json.loads(payload) == {"ok": True} else f"{status} {payload[:300]!r}"


def check_verification(status: int, payload: bytes) -> str:
    """200 with the holder masked (R4) and the card active; anything else is an error of the bench."""
    if status != 200:
        return f"{status} {payload[:300]!r}"
    body = json.loads(payload)
    if not MASKED_ID.match(body["holder"]["id_number"]) or body["card"]["state"] != "active":
        return f"unexpected answer {payload[:300]!r}"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verifications", type=int, default=2000, help="timed verifications (each a fresh code)")
    parser.add_argument("--holders", type=int, default=200, help="card holders the codes are spread over")
    parser.add_argument("--rounds", type=int, default=4, help="the two endpoints take turns this many times")
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--max-seconds", type=float, default=120, help="bound on each timed batch")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal_bench_qr")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--json", action="store_true", help="also print one BENCH-JSON line (bench/run_all.py)")
    args = parser.parse_args()
    if urlsplit(args.database_url).hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit("the bench drops and creates its database: loopback PostgreSQL only")
    if not 1 <= args.verifications <= 200_000 or not 1 <= args.holders <= 900:
        raise SystemExit("--verifications is 1..200000 and --holders 1..900")

    url = args.database_url
    per_round = max(1, args.verifications // args.rounds)
    warmup = max(20, min(200, args.verifications // 5))
    tmp = Path(tempfile.mkdtemp(prefix="bench-qr-"))
    bench_env = {"DJANGO_SETTINGS_MODULE": SETTINGS, "BENCH_STATIC_ROOT": str(tmp / "static")}
    try:
        recreate_database(url)
        migrate_env = base_env(url)
        migrate_env["DJANGO_DEBUG"] = "1"
        manage(migrate_env, "migrate", "--noinput")
        env = server_env(url) | bench_env
        manage(env, "collectstatic", "--noinput")
        started = time.perf_counter()
        prelude = f"HOLDERS = {args.holders}\nTOKENS = {warmup + per_round * args.rounds}\n"
        setup = json.loads(manage(env, "shell", "-c", prelude + SETUP).strip().splitlines()[-1])
        print(
            f"{args.holders} card holders ({setup['bindings']} active bindings), {len(setup['codes'])} codes "
            f"pre-issued in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        codes = setup["codes"]
        headers = {
            "Authorization": f"Token {setup['token']}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        verify_calls = [("/api/v1/cards/verify/", json.dumps({"token": code}).encode()) for code in codes]
        bare_calls = [("/bench/bare-api/", body) for _path, body in verify_calls]
        runs = {"bare DRF view": Run(), "QR verification": Run()}
        with gunicorn(url, args.workers, tmp / "gunicorn.log", extra_env=bench_env) as port:
            fire(port, bare_calls[:warmup], headers, args.threads, args.max_seconds, check_bare)
            warm = fire(port, verify_calls[:warmup], headers, args.threads, args.max_seconds, check_verification)
            if warm.errors:
                raise SystemExit(f"warm-up: {len(warm.errors)} errors, first: {warm.errors[0]}")
            for round_number in range(args.rounds):
                batch = slice(warmup + round_number * per_round, warmup + (round_number + 1) * per_round)
                turns = [
                    ("bare DRF view", bare_calls[batch], check_bare),
                    ("QR verification", verify_calls[batch], check_verification),
                ]
                for name, calls, check in turns if round_number % 2 == 0 else reversed(turns):
                    runs[name].add(fire(port, calls, headers, args.threads, args.max_seconds, check))
        for name, run in runs.items():
            if run.errors:
                raise SystemExit(f"{name}: {len(run.errors)} errors, first: {run.errors[0]}")

        print(
            f"{per_round * args.rounds} timed requests per endpoint in {args.rounds} alternating rounds, "
            f"{args.threads} client threads, gunicorn -w {args.workers}, {os.cpu_count()} CPUs\n"
        )
        print(f"  POST /bench/bare-api/ (baseline)   {runs['bare DRF view'].summary()}")
        print(f"  POST /api/v1/cards/verify/         {runs['QR verification'].summary()}")
        bare, verify = runs["bare DRF view"].rate, runs["QR verification"].rate
        print(f"\nqueries per verification: {setup['queries']}")
        for sql in setup["sql"]:
            print(f"    {sql}")
        print(f"QR verification runs at {verify / bare:.0%} of the bare DRF view's rate ({bare / verify:.2f}x slower)")
        if args.json:
            from report import Figure, emit

            run = runs["QR verification"]
            emit(
                "qr",
                [
                    Figure(
                        name="POST /api/v1/cards/verify/",
                        value=verify,
                        unit="verifications/s",
                        baseline="POST /bench/bare-api/ (token auth + JSON, no work)",
                        baseline_value=bare,
                        ratio=verify / bare,
                        extra={
                            "p50_ms": round(run.percentile(0.5), 1),
                            "p99_ms": round(run.percentile(0.99), 1),
                            "queries": setup["queries"],
                        },
                    )
                ],
            )
        return 0
    finally:
        log = tmp / "gunicorn.log"
        if log.exists() and "Traceback" in (text := log.read_text(errors="replace")):
            print(f"\n--- gunicorn.log (has a traceback) ---\n{text[-3000:]}")
        shutil.rmtree(tmp, ignore_errors=True)
        if not args.keep:
            with contextlib.suppress(psycopg2.Error):
                drop_database(url)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

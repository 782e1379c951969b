"""Bench for the citizen pages: the family page (``GET /family/``) for an owner with 1 and with 10 members,
and 我的医保 (``GET /me/insurance/``, a full page of 20 ledger entries), in requests per second with p50 and
p99 latency, beside a bare view on the same server (goal: at least 0.5x of the bare view's rate).

    .venv/bin/python bench/family_page.py [--requests 1000] [--rounds 4] [--threads 4] [--workers 2] \
        [--database-url postgres://postgres@127.0.0.1:5432/portal_bench_family] \
        [--redis-url redis://127.0.0.1:6379/9] [--keep] [--json]

It drops and creates the bench database, migrates it, collects the static files into a temporary folder (the
production storage, with its manifest), and creates two logged-in owners: one whose network has 1 active
member, one whose network has 10 (and 31 ledger entries, for 我的医保), each with a session, as a login would
leave it. It serves the portal with gunicorn (DEBUG off, as in production) under ``bench.settings_bench``,
with Redis as the workers' shared cache (``--redis-url``, REDIS_URL in production, so sessions are read from
it as there), whose URLs add ``/bench/bare/``: a view that does nothing, on the same server and middleware,
as the baseline of the goal; and ``/bench/bare-page/``: a logged-in request (session and user loaded)
rendering ``base.html`` with no content, the floor of any citizen page, printed for the analysis. After an
untimed warm-up the pages take turns (``--rounds``, order reversed every other round, so load from elsewhere
on the machine falls on all alike), each turn a share of ``--requests`` from ``--threads`` client threads.
Every page answered must be the owner's, with the right number of members or entries. It prints requests per
second with p50/p95/p99 latency for each, the queries one page makes, and the ratios (``--json`` adds one
machine-readable line for ``bench/run_all.py``). Loopback only; bounded by ``--requests`` and
``--max-seconds``; the server is stopped and the database dropped at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
from eligibility import (
    ROOT,
    Run,
    base_env,
    drop_database,
    fire,
    gunicorn,
    manage,
    recreate_database,
    server_env,
)
from report import Figure, emit

SETTINGS = "bench.settings_bench"
SIZES = (1, 10)
MEMBER_MARK = b'data-testid="owned-binding"'
ENTRY_MARK = b'<td class="num'
GOAL = 0.5

# Run inside ``manage.py shell`` with the server's settings (its secret key signs the sessions): two
# owners with 1 and 10 active members, a session for each, and the queries one family page makes.
SETUP = """
import json
import datetime as dt

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.identity import id_check_character
from decimal import Decimal

from accounts.models import InsuredPerson, PersonalAccount, Region, User
from accounts.services import Posting, ledger_post
from family.models import Binding

region = Region.objects.get(code="320500")
sequence = iter(range(1, 999))


def person(birth, name, insurance_type="employee"):
    body = f"320505{birth:%Y%m%d}{next(sequence):03d}"
    number = body + id_check_character(body)
    sex = "M" if int(number[16]) % 2 else "F"
    return InsuredPerson.objects.create(
        id_number=number, name=name, birth_date=birth, sex=sex, insurance_type=insurance_type,
        status="active", region=region,
    )


sessions, queries = {}, {}
for members in SIZES:
    owner = person(dt.date(1970, 1, members), f"王{members}号")
    account = PersonalAccount.objects.create(person=owner)
    if members == max(SIZES):
        # 我的医保: an opening balance and 30 payments, more than one page of 20 entries.
        ledger_post(account_id=account.pk, postings=[Posting("current", Decimal("500.00"), "adjustment", "opening")])
        for _ in range(30):
            ledger_post(account_id=account.pk, postings=[Posting("current", Decimal("-1.50"), "payment", "pharmacy")])
    user = User.objects.create_user(username=f"bench-owner-{members}", person=owner, phone=f"1390000{members:04d}")
    for n in range(members):
        relative = person(dt.date(1990 + n, 2, 1 + members), f"李{members}{n}", insurance_type="resident")
        Binding.objects.create(
            owner=owner, relative=relative, relationship="sibling", method="online_id", state="active",
            region=region, policy_label="*@2026-01-09", activated_at=timezone.now(),
        )
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    sessions[members] = session.session_key
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = session.session_key
    for path in ("/family/", "/me/insurance/", "/bench/bare-page/"):
        client.get(path)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        queries[f"{path} {members}"] = [query["sql"] for query in captured.captured_queries]
print(json.dumps({"sessions": sessions, "queries": queries}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="timed requests per page")
    parser.add_argument("--rounds", type=int, default=4, help="the pages take turns this many times")
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--max-seconds", type=float, default=120, help="bound on each timed batch")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal_bench_family")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/9",
        help="the shared cache (and so the sessions) of the server's workers, as REDIS_URL in production",
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--json", action="store_true", help="also print one BENCH-JSON line (bench/run_all.py)")
    args = parser.parse_args()
    if urlsplit(args.database_url).hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit("the bench drops and creates its database: loopback PostgreSQL only")

    url = args.database_url
    tmp = Path(tempfile.mkdtemp(prefix="bench-family-"))
    # Production sets REDIS_URL; without it each gunicorn worker would have a cache of its own, and sessions
    # would be read from the database (portal/settings.py).
    bench_env = {
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "BENCH_STATIC_ROOT": str(tmp / "static"),
        "REDIS_URL": args.redis_url,
    }
    try:
        recreate_database(url)
        migrate_env = base_env(url)
        migrate_env["DJANGO_DEBUG"] = "1"
        manage(migrate_env, "migrate", "--noinput")
        env = server_env(url) | bench_env
        manage(env, "collectstatic", "--noinput")
        setup = json.loads(manage(env, "shell", "-c", f"SIZES = {SIZES!r}\n" + SETUP).strip().splitlines()[-1])
        sessions = {int(k): v for k, v in setup["sessions"].items()}
        queries = setup["queries"]
        largest = max(SIZES)

        per_round = max(1, args.requests // args.rounds)
        warmup = max(20, min(200, args.requests // 5))
        targets = {
            "bare view": ("/bench/bare/", {}),
            "bare logged-in page": ("/bench/bare-page/", {"Cookie": f"sessionid={sessions[largest]}"}),
        }
        for members in SIZES:
            targets[f"family, {members} member{'s' if members > 1 else ''}"] = (
                "/family/",
                {"Cookie": f"sessionid={sessions[members]}"},
            )
        targets["my insurance"] = ("/me/insurance/", {"Cookie": f"sessionid={sessions[largest]}"})
        runs = {name: Run() for name in targets}
        with gunicorn(url, args.workers, tmp / "gunicorn.log", extra_env=bench_env) as port:
            for members in SIZES:
                check_page(port, "/family/", sessions[members], MEMBER_MARK, members)
            check_page(port, "/me/insurance/", sessions[largest], ENTRY_MARK, 20)
            for path, headers in targets.values():
                fire(port, [("GET", path, None)] * warmup, headers, args.threads, args.max_seconds)
            for round_number in range(args.rounds):
                order = list(targets) if round_number % 2 == 0 else list(reversed(targets))
                for name in order:
                    path, headers = targets[name]
                    runs[name].add(fire(port, [("GET", path, None)] * per_round, headers, args.threads, 60))
        for name, run in runs.items():
            if run.errors:
                raise SystemExit(f"{name}: {len(run.errors)} errors, first: {run.errors[0]}")

        print(
            f"{per_round * args.rounds} timed requests per page in {args.rounds} alternating rounds, "
            f"{args.threads} client threads, gunicorn -w {args.workers}, {os.cpu_count()} CPUs\n"
        )
        bare = runs["bare view"]
        for name, run in runs.items():
            print(f"  {name:<22} {run.summary()}  {run.rate / bare.rate:.3f}x bare")
        print()
        for key, sql in queries.items():
            print(f"queries of {key} member(s): {len(sql)}")
            for statement in sql:
                print(f"    {statement[:160]}")
        one, ten = (runs[name].rate for name in list(runs)[2:4])
        print(f"\n{largest} members are {one / ten:.2f}x slower than 1")
        figures = []
        for name, run in runs.items():
            if name == "bare view":
                continue
            ratio = run.rate / bare.rate
            goal = name != "bare logged-in page"
            path = targets[name][0]
            count = len(queries[f"{path} {largest if name != 'family, 1 member' else 1}"])
            figures.append(
                Figure(
                    name=f"GET {path} ({name})",
                    value=run.rate,
                    unit="req/s",
                    baseline="GET /bench/bare/ (a view that does nothing, same server)",
                    baseline_value=bare.rate,
                    ratio=ratio,
                    goal=f">= {GOAL}x bare" if goal else "",
                    met=(ratio >= GOAL) if goal else None,
                    extra={
                        "p50_ms": round(run.percentile(0.5), 1),
                        "p99_ms": round(run.percentile(0.99), 1),
                        "queries": count,
                        "bare_p50_ms": round(bare.percentile(0.5), 1),
                        "bare_p99_ms": round(bare.percentile(0.99), 1),
                    },
                )
            )
            if goal:
                verdict = "met" if ratio >= GOAL else "MISSED"
                print(f"{name}: {ratio:.3f}x of the bare view's rate (goal >= {GOAL}x: {verdict})")
        if args.json:
            emit("pages", figures, [f"gunicorn -w {args.workers}, {args.threads} client threads on the same machine"])
        return 0
    finally:
        log = tmp / "gunicorn.log"
        if log.exists() and "Traceback" in (text := log.read_text(errors="replace")):
            print(f"\n--- gunicorn.log (has a traceback) ---\n{text[-3000:]}")
        shutil.rmtree(tmp, ignore_errors=True)
        if not args.keep:
            with contextlib.suppress(psycopg2.Error):
                drop_database(url)


def check_page(port: int, path: str, session_key: str, mark: bytes, count: int) -> None:
    """The page answered is the owner's, with all of its members (or entries), not a login page."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path, headers={"Cookie": f"sessionid={session_key}"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 200 or body.count(mark) != count:
        raise SystemExit(
            f"{path} answered {response.status} with {body.count(mark)} of {mark!r}, expected {count}:\n"
            f"{body[:1500].decode(errors='replace')}"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

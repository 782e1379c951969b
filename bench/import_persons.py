"""Bench for C1 ``import_persons``: rows per second and peak memory, against a plain PostgreSQL COPY.

    .venv/bin/python bench/import_persons.py [--rows 1000000] \
        [--database-url postgres://postgres@127.0.0.1:5432/portal_bench] [--batch-size 1000] [--again] [--keep]

It writes a CSV of N rows (valid ID numbers, ~70% employees with balances, a few bad rows on purpose)
in a temporary folder, drops and creates the bench database, migrates it, runs
``manage.py import_persons`` as a child process (wall time and the child's own peak RSS), then
times a plain ``COPY`` of the same file into a scratch table in the same database as the baseline.
``--again`` also times a second run of the same file (nothing to change: the idempotent path).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql
from report import Figure, emit

ROOT = Path(__file__).resolve().parent.parent
HEADER = [
    "id_number",
    "name",
    "insurance_type",
    "status",
    "region_code",
    "card_number",
    "phone",
    "account_balance",
    "historical_balance",
]
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
# Pooling region -> divisions (districts) whose residents it insures.
REGIONS = {
    "320500": ("苏州市", "320000", ["320505", "320506", "320507", "320508"]),
    "420100": ("武汉市", "420000", ["420102", "420103", "420104", "420106"]),
}
FAMILY_NAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN_NAMES = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞"
BAD_EVERY = 50_000  # one bad row of each kind in so many rows


def id_number(division: str, birth: dt.date, seq: int) -> str:
    """R1: a valid ID number (ISO 7064 MOD 11-2 check character)."""
    body = f"{division}{birth:%Y%m%d}{seq:03d}"
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, WEIGHTS, strict=True)) % 11]


def write_csv(path: Path, rows: int, seed: int = 20250601) -> int:
    """Write the bench file; return how many rows are bad on purpose."""
    rng = random.Random(seed)
    divisions = [(code, division) for code, (_, _, ds) in REGIONS.items() for division in ds]
    first_birth = dt.date(1940, 1, 1)
    bad = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for n in range(rows):
            # (day, seq) is unique for every n below 25,000 * 1,000.
            region, division = divisions[n % len(divisions)]
            birth = first_birth + dt.timedelta(days=n % 25_000)
            number = id_number(division, birth, (n // 25_000) % 1000)
            name = rng.choice(FAMILY_NAMES) + rng.choice(GIVEN_NAMES) + rng.choice(GIVEN_NAMES)
            employee = rng.random() < 0.7
            if employee:
                total = rng.randrange(0, 5_000_000)  # fen
                historical = rng.randrange(0, total + 1)
                balances = [f"{total / 100:.2f}", f"{historical / 100:.2f}"]
            else:
                balances = ["", ""]
            row = [
                number,
                name,
                "employee" if employee else "resident",
                "active" if rng.random() < 0.95 else "suspended",
                region,
                f"B{n:08d}",
                f"139{n:08d}",
                *balances,
            ]
            kind = n % BAD_EVERY - 11
            if 0 <= kind < 4:
                bad += 1
                if kind == 0:  # R1: wrong check character
                    row[0] = number[:17] + ("1" if number[17] != "1" else "2")
                elif kind == 1:  # unknown region
                    row[4] = "000000"
                elif kind == 2:  # negative amount
                    row[2], row[7], row[8] = "employee", "-1.00", ""
                else:  # duplicate of an earlier row's ID number (and a card number of its own)
                    earlier = n - 10
                    row[0] = id_number(
                        divisions[earlier % len(divisions)][1],
                        first_birth + dt.timedelta(days=earlier % 25_000),
                        (earlier // 25_000) % 1000,
                    )
            writer.writerow(row)
    return bad


def database_url_for(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


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


def manage(env: dict[str, str], *args: str, stdout=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True
    )


def timed_import(env: dict[str, str], csv_path: Path, out_path: Path, batch_size: int) -> tuple[float, float, int, str]:
    """Run import_persons; return wall seconds, the child's peak RSS in MB, exit code and the summary line."""
    with out_path.open("w") as out:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "manage.py", "import_persons", str(csv_path), f"--batch-size={batch_size}"],
            cwd=ROOT,
            env=env,
            stdout=out,
        )
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would mix in the migrate run).
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
    lines = out_path.read_text(encoding="utf-8").splitlines()
    return elapsed, usage.ru_maxrss / 1024, child.returncode, (lines[-1] if lines else "")


def timed_copy(url: str, csv_path: Path) -> float:
    """The baseline: a plain COPY of the same file into a scratch table of text columns."""
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy_scratch")
        cursor.execute("CREATE TABLE bench_copy_scratch (" + ", ".join(f"{column} text" for column in HEADER) + ")")
    started = time.perf_counter()
    with connection, connection.cursor() as cursor, csv_path.open("rb") as f:
        cursor.copy_expert("COPY bench_copy_scratch FROM STDIN WITH (FORMAT csv, HEADER true)", f)
    elapsed = time.perf_counter() - started
    with connection, connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_copy_scratch")
    connection.close()
    return elapsed


def check_ledger(url: str) -> tuple[int, int, int, bool]:
    """Persons, accounts, entries, and whether every account's entries add up to its balances (R30)."""
    connection = psycopg2.connect(url)
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM accounts_insuredperson")
        persons = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM accounts_personalaccount")
        accounts = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM accounts_ledgerentry")
        entries = cursor.fetchone()[0]
        cursor.execute(
            """
            SELECT count(*) FROM accounts_personalaccount a
            LEFT JOIN (
                SELECT account_id,
                       sum(amount) FILTER (WHERE part = 'current') AS cur,
                       sum(amount) FILTER (WHERE part = 'historical') AS hist
                FROM accounts_ledgerentry GROUP BY account_id
            ) e ON e.account_id = a.id
            WHERE a.current_balance <> coalesce(e.cur, 0) OR a.historical_balance <> coalesce(e.hist, 0)
            """
        )
        consistent = cursor.fetchone()[0] == 0
    connection.close()
    return persons, accounts, entries, consistent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal_bench")
    parser.add_argument("--batch-size", type=int, default=1000, help="import_persons --batch-size")
    parser.add_argument("--again", action="store_true", help="also time a second run of the same file")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (CSV and output) and the database"
    )
    parser.add_argument("--json", action="store_true", help="also print one BENCH-JSON line (bench/run_all.py)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DATABASE_URL=args.database_url,
        DJANGO_SECRET_KEY="bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",  # noqa: S106 throw-away DB
        # DEBUG keeps a log of queries: the harder case for bounded memory.
        DJANGO_DEBUG="1",
        DJANGO_LOG_LEVEL="WARNING",
    )
    try:
        csv_path = tmp / "persons.csv"
        started = time.perf_counter()
        bad = write_csv(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 2**20
        took = time.perf_counter() - started
        print(f"wrote {args.rows:,} rows ({bad} bad on purpose, {size_mb:.1f} MB) in {took:.1f} s")

        recreate_database(args.database_url)
        migrated = manage(env, "migrate", "--noinput", stdout=subprocess.DEVNULL)
        if migrated.returncode != 0:
            print(migrated.stderr[-2000:])
            return 1
        connection = psycopg2.connect(args.database_url)
        with connection, connection.cursor() as cursor:
            for code, (name, province, _) in REGIONS.items():
                cursor.execute(
                    "INSERT INTO accounts_region (code, name, province) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    [code, name, province],
                )
        connection.close()

        elapsed, peak_mb, code, summary = timed_import(env, csv_path, tmp / "import-1.out", args.batch_size)
        print(f"import_persons: {summary!r} exit {code}")
        if not summary.startswith("imported"):
            print((tmp / "import-1.out").read_text()[-2000:])
            return 1
        persons, accounts, entries, consistent = check_ledger(args.database_url)
        print(
            f"  stored: {persons:,} persons, {accounts:,} accounts, {entries:,} ledger entries; "
            f"entries add up to balances: {consistent}"
        )
        print(f"  {elapsed:.1f} s, {args.rows / elapsed:,.0f} rows/s, peak RSS {peak_mb:.0f} MB")

        if args.again:
            again, again_mb, again_code, again_summary = timed_import(
                env, csv_path, tmp / "import-2.out", args.batch_size
            )
            print(f"second run: {again_summary!r} exit {again_code}")
            print(f"  {again:.1f} s, {args.rows / again:,.0f} rows/s, peak RSS {again_mb:.0f} MB")

        copy = timed_copy(args.database_url, csv_path)
        print(f"baseline COPY into a scratch table: {copy:.2f} s, {args.rows / copy:,.0f} rows/s")
        print(f"ratio import / COPY: {elapsed / copy:.1f}x")
        if args.json:
            baseline = "plain COPY of the same file into a scratch table (same run)"
            figures = [
                Figure(
                    name=f"import_persons, {args.rows:,} rows (first run: inserts)",
                    value=args.rows / elapsed,
                    unit="rows/s",
                    baseline=baseline,
                    baseline_value=args.rows / copy,
                    ratio=copy / elapsed,
                    extra={
                        "seconds": round(elapsed, 1),
                        "peak_rss_mb": round(peak_mb),
                        "ledger_consistent": consistent,
                    },
                )
            ]
            if args.again:
                figures.append(
                    Figure(
                        name=f"import_persons, {args.rows:,} rows (second run: unchanged)",
                        value=args.rows / again,
                        unit="rows/s",
                        baseline=baseline,
                        baseline_value=args.rows / copy,
                        ratio=copy / again,
                        extra={"seconds": round(again, 1), "peak_rss_mb": round(again_mb)},
                    )
                )
            emit("import_persons", figures, [f"--batch-size {args.batch_size}; peak RSS is the child's own"])
        return 0
    finally:
        if args.keep:
            print(f"kept {tmp} and the database")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            drop_database(args.database_url)


if __name__ == "__main__":
    sys.exit(main())

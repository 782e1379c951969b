"""Run every bench, bounded, and write ``bench/results.md``: date, machine, each figure beside its baseline.

    .venv/bin/python bench/run_all.py [--quick] [--only pages,import_persons] [--output bench/results.md]

Each bench runs as a child process with ``--json`` and a size bounded here (``--quick``: smaller still,
for a check that the benches work), its own throwaway database (``bench_all_<name>``, or ``--database-prefix``)
and prints its figures and one ``BENCH-JSON`` line (``bench/report.py``), which this script collects.
A bench that is missing (``bench/ledger.py`` may not be there yet) or fails is listed with a note and the
tail of its output; the others still run. The benches take turns, never at once: on a shared machine
their figures are noisy, so each compares with a baseline measured in the same run, and the ratio is
the figure to read. Loopback PostgreSQL only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from report import MARK  # noqa: E402

SERVER = "postgres://postgres@127.0.0.1:5432"
# name -> (script, full arguments, --quick arguments). Sizes are bounded: about 15 minutes in all.
BENCHES = {
    "pages": ("family_page.py", ["--requests", "1000"], ["--requests", "300", "--rounds", "2"]),
    "import_persons": ("import_persons.py", ["--rows", "1000000", "--again"], ["--rows", "100000"]),
    "eligibility": (
        "eligibility.py",
        ["--persons", "1000000", "--requests", "2000"],
        ["--persons", "100000", "--requests", "600", "--rounds", "4"],
    ),
    "qr": ("qr.py", ["--verifications", "2000"], ["--verifications", "400", "--rounds", "2"]),
    "precheck": ("precheck.py", ["--rounds", "3"], ["--rounds", "1"]),
    "ledger": ("ledger.py", ["--seconds", "5"], ["--seconds", "2", "--rounds", "1"]),
    "pipeline": ("pipeline.py", ["--applications", "200"], ["--applications", "30"]),
}


def machine() -> dict[str, str]:
    """CPU model and count, memory, OS, Python and PostgreSQL versions."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f"{kib / 2**20:.1f} GiB"
    try:
        connection = psycopg2.connect(f"{SERVER}/postgres")
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            postgres = cursor.fetchone()[0]
        connection.close()
    except psycopg2.Error as error:
        postgres = f"unreachable ({error})"
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return {
        "CPU": f"{model}, {os.cpu_count()} logical CPUs",
        "RAM": memory,
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "PostgreSQL": postgres,
        "load average at start (1/5/15 min)": load,
    }


def run_bench(name: str, quick: bool, prefix: str) -> dict:
    """Run one bench; its collected figures, or a note saying why there are none."""
    script, full, small = BENCHES[name]
    path = BENCH / script
    if not path.exists():
        return {"bench": name, "figures": [], "notes": [f"skipped: bench/{script} is not there"], "seconds": 0}
    # A bench without --json (another engineer's, not yet wired) still runs; its figures stay in its output.
    speaks_json = '"--json"' in path.read_text(encoding="utf-8")
    command = [sys.executable, str(path), *(small if quick else full), *(["--json"] if speaks_json else [])]
    command += ["--database-url", f"{SERVER}/{prefix}{name}"]
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    print(done.stdout, end="", flush=True)
    found = [line[len(MARK) :] for line in done.stdout.splitlines() if line.startswith(MARK)]
    if found:
        result = json.loads(found[-1])
        if done.returncode not in (0, 1):
            result["notes"].append(f"exit {done.returncode}")
    else:
        why = "has no --json yet; the last lines of its output" if not speaks_json else "no figures"
        # Without --json the figures are in its output; with it, a failure says why on standard error.
        tail = ((done.stdout if not speaks_json else done.stderr) or done.stdout).strip().splitlines()[-8:]
        result = {"bench": name, "figures": [], "notes": [f"{why} (exit {done.returncode}):", *tail]}
    result["seconds"] = round(seconds)
    result["when"] = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f}"
    result["command"] = " ".join(["bench/" + script, *command[2:]])
    return result


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def markdown(results: list[dict], about: dict[str, str], quick: bool, started: dt.datetime) -> str:
    lines = [
        "# Bench results",
        "",
        f"Written by `bench/run_all.py{' --quick' if quick else ''}` on {started:%Y-%m-%d %H:%M} UTC.",
        "Every figure is beside a baseline measured in the same run on the same machine; on a shared or",
        "busy machine the absolute figures move a lot between runs, the ratios much less.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in about.items()],
        "",
        "## Figures",
        "",
        "| bench | figure | value | baseline | baseline value | ratio | goal | met | details |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for figure in result["figures"]:
            met = {True: "yes", False: "**no**", None: ""}[figure.get("met")]
            details = ", ".join(f"{k} {v}" for k, v in (figure.get("extra") or {}).items())
            ratio = figure.get("ratio")
            lines.append(
                f"| {result['bench']} | {figure['name']} | {number(figure['value'], figure['unit'])} | "
                f"{figure.get('baseline', '')} | {number(figure.get('baseline_value'), figure['unit'])} | "
                f"{'' if ratio is None else f'{ratio:.3f}x'} | {figure.get('goal', '')} | {met} | {details} |"
            )
    lines += ["", "## Runs", ""]
    for result in results:
        when = f", {result['when']}" if result.get("when") else ""
        lines.append(f"- **{result['bench']}** ({result.get('seconds', 0)} s{when}): `{result.get('command', '')}`")
        lines += [f"  - `{note}`" if note.startswith(" ") else f"  - {note}" for note in result.get("notes", [])]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: checks that every bench works")
    parser.add_argument(
        "--only", default="", help=f"rerun these (comma-separated: {', '.join(BENCHES)}); keep the others' figures"
    )
    parser.add_argument("--output", type=Path, default=BENCH / "results.md")
    parser.add_argument("--database-prefix", default="bench_all_", help="each bench's database is PREFIX + name")
    args = parser.parse_args()
    names = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHES)
    unknown = set(names) - set(BENCHES)
    if unknown:
        raise SystemExit(f"unknown benches: {', '.join(sorted(unknown))}")

    started = dt.datetime.now(dt.UTC)
    about = machine()
    results = [run_bench(name, args.quick, args.database_prefix) for name in names]
    # --only reruns some benches: the others keep their figures of the last run (bench/results.json).
    store = args.output.with_suffix(".json")
    if args.only and store.exists():
        fresh = {result["bench"]: result for result in results}
        kept = json.loads(store.read_text(encoding="utf-8"))
        results = [fresh.pop(old["bench"], old) for old in kept] + list(fresh.values())
    store.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    args.output.write_text(markdown(results, about, args.quick, started), encoding="utf-8")
    print(f"\nwrote {args.output}")
    missed = [f for r in results for f in r["figures"] if f.get("met") is False]
    failed = [r for r in results if not r["figures"] and not r["notes"][0].startswith(("skipped", "has no --json"))]
    return 1 if missed or failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The machine-readable line every bench prints with ``--json``, for ``bench/run_all.py``.

One line, ``BENCH-JSON {...}``, after the bench's own human-readable figures:
``{"bench": NAME, "figures": [{"name", "value", "unit", "baseline", "baseline_value", "ratio", "goal", "met"}],
"notes": [...]}``. ``ratio`` is value / baseline_value (for a time, the bench says which way is better in
``goal``); ``met`` is null when the figure has no goal.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

MARK = "BENCH-JSON "


@dataclass
class Figure:
    """One measured figure beside its same-run baseline."""

    name: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None
    extra: dict = field(default_factory=dict)


def emit(bench: str, figures: list[Figure], notes: list[str] | None = None) -> None:
    """Print the bench's figures as one JSON line (floats rounded for reading)."""
    rows = []
    for figure in figures:
        row = asdict(figure)
        for key in ("value", "baseline_value", "ratio"):
            if isinstance(row[key], float):
                row[key] = round(row[key], 4 if key == "ratio" else 2)
        rows.append(row)
    print(MARK + json.dumps({"bench": bench, "figures": rows, "notes": notes or []}, ensure_ascii=False), flush=True)

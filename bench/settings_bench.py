"""Settings of the bench servers: production settings plus a bare view to compare with (bench/urls_bench.py)."""

import os

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls_bench"
# The bench collects static files into a folder of its own, never the repository's var/.
STATIC_ROOT = os.environ.get("BENCH_STATIC_ROOT", str(STATIC_ROOT))  # noqa: F405

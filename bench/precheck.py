"""Bench for the R24 pre-check: documents pre-checked per second by one worker, beside decoding alone.

    .venv/bin/python bench/precheck.py [--rounds 3] \
        [--database-url postgres://postgres@127.0.0.1:5432/portal_bench_precheck] [--keep]

It drops and creates the bench database, migrates it, and stores the drawn corpus of
``tests/documents_corpus.py`` (household register pages, marriage and birth certificates, commitment
letters: clean, skewed, blurred, dark, small...; A4 at 150 dpi, one page each, JPEG, PNG and PDF) as
uploads are stored (``read_document_content`` + ``document_store``), files in a temporary folder.
Then, in this one process as one worker would, each round resets every report to ``pending`` and runs
``family.services.precheck.document_precheck_run`` on every document (readability, Tesseract on the
readable pages, comparison with the claim, the report written), timed per document. The same-run
baseline is the decoding alone: ``document_page_image`` for the same files (Pillow decodes the stored
picture, or pdfium renders the PDF page, and the page is encoded again as PNG), with no OCR. It prints
documents per second for both (median of the rounds), the median document's size in bytes and pixels,
and the slowest document. The database is dropped at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from eligibility import ROOT, base_env, drop_database, manage, recreate_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_precheck"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--json", action="store_true", help="also print one BENCH-JSON line (bench/run_all.py)")
    options = parser.parse_args()

    url = options.database_url
    recreate_database(url)
    try:
        env = base_env(url)
        env["DJANGO_DEBUG"] = "1"
        manage(env, "migrate", "--noinput")
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        with tempfile.TemporaryDirectory(prefix="bench-precheck-") as folder:
            precheck_rate, baseline_rate = run(rounds=options.rounds, folder=Path(folder))
        if options.json:
            from report import Figure, emit

            emit(
                "precheck",
                [
                    Figure(
                        name="R24 document pre-check, one worker",
                        value=precheck_rate,
                        unit="documents/s",
                        baseline="document_page_image alone (decode + re-encode)",
                        baseline_value=baseline_rate,
                        ratio=precheck_rate / baseline_rate,
                    )
                ],
            )
    finally:
        if not options.keep:
            from django.db import connections

            connections.close_all()
            drop_database(url)
    return 0


def run(*, rounds: int, folder: Path) -> tuple[float, float]:
    from django.utils import translation
    from PIL import Image

    from accounts.models import Notification
    from accounts.storage import PrivateStorage
    from family.documents import document_page_image, document_store, read_document_content
    from family.models import Binding, BindingDocument, BindingState, DocumentStatus, PrecheckStatus
    from family.services.precheck import document_precheck_run
    from tests.documents_corpus import TODAY, application_for, corpus

    translation.activate("zh-hans")
    private = PrivateStorage(location=folder)
    for field in ("file", "thumbnail"):
        BindingDocument._meta.get_field(field).storage = private

    documents = corpus()
    stored = []
    for document in documents:
        binding = application_for(document)
        row = document_store(
            binding=binding, kind=document.kind, content=read_document_content(document.data), user=None
        )
        stored.append(row)
        # Several documents claim the same pair, which may have one open application: the earlier ones
        # are set aside (their unreadable documents are then not sent back, which the bench does not time).
        Binding.objects.filter(pk=binding.pk).update(state=BindingState.CANCELLED)
    sizes = sorted(row.size for row in stored)
    pixels = []
    for row in stored:
        with Image.open(io.BytesIO(document_page_image(document=row))) as page:
            pixels.append(page.width * page.height)
    ids = [row.pk for row in stored]
    print(
        f"corpus: {len(stored)} documents ({sum(r.pages for r in stored)} pages), median stored size "
        f"{statistics.median(sizes) / 1024:.0f} KiB, median page {statistics.median(pixels) / 1e6:.2f} Mpx "
        f"(A4 at 150 dpi is 2.17 Mpx); {sum(d.expected.status == 'unreadable' for d in documents)} unreadable"
    )

    precheck_rates, baseline_rates, slowest = [], [], (0.0, "")
    for number in range(1, rounds + 1):
        BindingDocument.objects.filter(pk__in=ids).update(
            precheck_status=PrecheckStatus.PENDING, precheck={}, status=DocumentStatus.PENDING, rejection_reason=""
        )
        Notification.objects.all().delete()

        started = time.perf_counter()
        for row in stored:
            for page in range(row.pages):
                document_page_image(document=row, page=page)
        baseline = time.perf_counter() - started

        started = time.perf_counter()
        for row, document in zip(stored, documents, strict=True):
            begun = time.perf_counter()
            result = document_precheck_run(document_id=row.pk, today=TODAY)
            took = time.perf_counter() - begun
            if result is None or result.precheck_status != document.expected.status:
                raise SystemExit(f"{document.slug}: unexpected pre-check outcome {result and result.precheck_status}")
            slowest = max(slowest, (took, document.slug))
        elapsed = time.perf_counter() - started

        precheck_rates.append(len(stored) / elapsed)
        baseline_rates.append(len(stored) / baseline)
        print(
            f"round {number}: pre-check {len(stored) / elapsed:6.2f} documents/s ({elapsed:5.1f} s); "
            f"decode + re-encode alone {len(stored) / baseline:6.1f} documents/s ({baseline:5.2f} s)"
        )

    precheck_rate, baseline_rate = statistics.median(precheck_rates), statistics.median(baseline_rates)
    print(
        f"one worker: {precheck_rate:.2f} documents/s pre-checked ({1000 / precheck_rate:.0f} ms a document); "
        f"decode + re-encode alone {baseline_rate:.1f} documents/s; the pre-check costs "
        f"{baseline_rate / precheck_rate:.0f}x the decoding; slowest {slowest[1]} {slowest[0] * 1000:.0f} ms"
    )
    return precheck_rate, baseline_rate


if __name__ == "__main__":
    raise SystemExit(main())

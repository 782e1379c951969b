"""C1: ``python manage.py import_persons FILE.csv`` loads insured persons from the insurance core system."""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import reset_queries
from django.utils.translation import gettext as _

from accounts.person_import import BATCH_SIZE, ImportFileError, ImportResult, persons_import
from accounts.signals import persons_sharing_changed


def _forget_queries() -> None:
    # With DEBUG on, Django keeps the SQL of the last 9,000 queries; a batch's bulk INSERT is long,
    # so a big file would hold hundreds of megabytes of SQL text (C1: bounded memory).
    if settings.DEBUG:
        reset_queries()


class Command(BaseCommand):
    help = (
        "Load insured persons from the core system's CSV (C1): upsert by ID number, report bad rows as "
        "'line N: reason', end with 'imported A, updated U, unchanged C, rejected R'; exit 1 if any row is rejected."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="UTF-8 CSV with the C1 header")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="rows per transaction")

    def handle(self, *args, file: Path, batch_size: int, **options) -> None:
        def report(line: int, reason: str) -> None:
            # The "line N:" prefix is part of the contract: English in every language.
            self.stdout.write(f"line {line}: {reason}")

        try:
            with file.open("rb") as source:
                result = persons_import(
                    source=source,
                    on_rejected=report,
                    batch_size=max(1, batch_size),
                    after_batch=_forget_queries,
                )
        except (OSError, ImportFileError) as error:
            if isinstance(error, OSError):
                message = _("Cannot read %(file)s: %(error)s") % {"file": file, "error": error.strerror or error}
            else:
                message = str(error)
            self.stderr.write(message)
            # The summary stays the last line of standard output, even when nothing could be read.
            self.stdout.write(ImportResult().summary)
            self.stdout.flush()
            sys.exit(1)

        if result.changed_eligibility_person_ids:
            persons_sharing_changed.send(sender=Command, person_ids=result.changed_eligibility_person_ids)
        self.stdout.write(result.summary)
        self.stdout.flush()
        if result.rejected:
            sys.exit(1)

"""Celery tasks of the e-card: thin and idempotent."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from cards import services


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def qr_tokens_purge() -> int:
    """Beat, hourly: unused QR codes expired more than a day ago are deleted (used ones are kept)."""
    return services.qr_tokens_purge(now=timezone.now())


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def family_card_document_precheck(document_id: int) -> str | None:
    """R24: the automatic pre-check of a family card document (readability, recognised text); it never approves."""
    document = services.family_card_document_precheck_run(document_id=document_id)
    return document.precheck_status if document else None

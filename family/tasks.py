"""Celery tasks of the binding pipeline: thin, idempotent, safe to redeliver (they take ids and check state)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from family import services
from family.services import payments
from family.services.precheck import document_precheck_run, documents_requeue_pending_precheck

# Only transient database trouble is retried; a rule refusal is an outcome, not an error.
RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "retry_backoff_max": 60, "max_retries": 5}


@shared_task(acks_late=True, **RETRY)
def binding_check_eligibility(binding_id: int) -> str | None:
    """Step 1: eligibility (R10–R16)."""
    binding = services.binding_run_eligibility(binding_id=binding_id)
    return binding.state if binding else None


@shared_task(acks_late=True, **RETRY)
def binding_age_branch(binding_id: int) -> str | None:
    """Step 3: after review, under 16 becomes active, 16 or over waits for face verification (R23)."""
    binding = services.binding_age_branch(binding_id=binding_id)
    return binding.state if binding else None


@shared_task(acks_late=True, **RETRY)
def bindings_expire_awaiting_face() -> int:
    """Beat: applications past their face-verification deadline expire (R23)."""
    return services.bindings_expire_awaiting_face(now=timezone.now())


@shared_task(acks_late=True, **RETRY)
def bindings_daily_authorizations() -> tuple[int, int]:
    """Beat, daily: remind owners before an authorization period ends, end those that ended (R27)."""
    today = timezone.localdate()
    return (
        services.bindings_remind_authorization_end(today=today),
        services.bindings_end_expired_authorizations(today=today),
    )


@shared_task(acks_late=True, **RETRY)
def bindings_sweep_stuck() -> int:
    """Beat: re-enqueue pipeline steps whose message the broker lost (submissions are saved first)."""
    requeued = services.bindings_requeue_stuck(older_than_seconds=120)
    # Documents' pre-checks too: an upload saved while the broker was down waits for its check.
    return requeued + documents_requeue_pending_precheck(older_than_seconds=300)


@shared_task(acks_late=True, **RETRY)
def bindings_reevaluate_pending(region_codes: list[str]) -> int:
    """R17: after a policy change, pending applications of these regions are checked again."""
    return services.bindings_reevaluate_pending(region_codes=region_codes)


@shared_task(acks_late=True, **RETRY)
def bindings_end_for_owner(person_ids: list[int]) -> int:
    """R27: after an import, end the bindings of owners who can no longer share."""
    return services.bindings_end_for_owner(person_ids=person_ids)


@shared_task(acks_late=True, **RETRY)
def document_precheck(document_id: int) -> str | None:
    """R24: the automatic pre-check of an uploaded document (readability, recognised text); it never approves."""
    document = document_precheck_run(document_id=document_id)
    return document.precheck_status if document else None


@shared_task(acks_late=True, **RETRY)
def review_release_idle_claims() -> int:
    """Beat: claims idle longer than REVIEW_CLAIM_IDLE_MINUTES go back to the queue (R24)."""
    from family.services.review import review_release_idle

    return review_release_idle()


@shared_task(acks_late=True, **RETRY)
def wallet_transfers_return_due() -> int:
    """Beat: R37, unaccepted wallet transfers go back to the owner at 06:00 the next day (idempotent)."""
    from family.services.wallet import wallet_transfers_return_due as return_due

    return return_due(now=timezone.now())


@shared_task(acks_late=True, **RETRY)
def contribution_confirm(payment_id: int) -> str | None:
    """R31: hand a contribution paid for a relative to the insurance office; idempotent (confirmed stays so)."""
    from family.services.contributions import contribution_confirm as confirm

    payment = confirm(payment_id=payment_id)
    return payment.office_state if payment else None


@shared_task(acks_late=True, **RETRY)
def contributions_confirm_pending() -> int:
    """Beat, every 10 minutes: R31, contributions the insurance office has not confirmed yet are asked again."""
    from family.services.contributions import contributions_confirm_pending as confirm_pending

    return confirm_pending(now=timezone.now())


@shared_task(acks_late=True, **RETRY)
def payment_notify_owners(payment_id: int) -> int:
    """R35: tell the owners whose accounts paid; queued after the payment's commit, outside its locks."""
    return payments.payment_notify_owners(payment_id=payment_id)

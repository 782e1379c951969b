"""Bindings (R20–R27): submission, one function per state change, and the pipeline's steps.

Every change goes through ``binding_transition``: it locks the row, checks the current state,
writes the new state and a ``BindingEvent`` in one transaction. Pipeline steps are idempotent:
run twice, they act once (the state says whether the step is done).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.errors import DomainError, FieldError
from accounts.identity import age_on
from accounts.models import InsuredPerson, User
from accounts.queueing import enqueue_on_commit
from accounts.services import audit_record, notification_send
from family.eligibility import Decision
from family.models import (
    OPEN_STATES,
    PENDING_STATES,
    Binding,
    BindingDocument,
    BindingEvent,
    BindingMethod,
    BindingState,
    DocumentStatus,
)
from family.selectors import eligibility_check, newborn_eligibility_check, policy_in_force

__all__ = [
    "BindingRefused",
    "DuplicateApplication",
    "InvalidTransition",
    "binding_age_branch",
    "binding_cancel",
    "binding_end",
    "binding_face_verified",
    "binding_newborn_add_id",
    "binding_review_decide",
    "binding_run_eligibility",
    "binding_submit",
    "binding_submit_newborn",
    "binding_transition",
    "bindings_end_expired_authorizations",
    "bindings_end_for_owner",
    "bindings_expire_awaiting_face",
    "bindings_reevaluate_pending",
    "bindings_remind_authorization_end",
    "bindings_requeue_stuck",
]

S = BindingState

# R25: the transitions there are; anything else is refused.
TRANSITIONS: dict[str, set[str]] = {
    S.SUBMITTED: {S.UNDER_REVIEW, S.AWAITING_FACE, S.ACTIVE, S.REJECTED, S.CANCELLED},
    S.UNDER_REVIEW: {S.AWAITING_FACE, S.ACTIVE, S.REJECTED, S.CANCELLED},
    S.AWAITING_FACE: {S.ACTIVE, S.REJECTED, S.CANCELLED, S.EXPIRED},
    S.ACTIVE: {S.ENDED},
}


class BindingRefused(DomainError):
    """R10–R15 refuse the request; ``reasons`` name each rule."""


class InvalidTransition(DomainError):
    """The binding is not in a state that allows this (R25)."""


class DuplicateApplication(DomainError):
    """An application or binding for the same pair is open already; ``existing`` is it."""

    existing: Binding | None = None


def _actor_label(actor: User | None) -> str:
    return actor.get_username() if actor is not None else "system"


def binding_transition(
    *, binding_id: int, to_state: str, actor: User | None = None, reason: str = "", **fields
) -> Binding:
    """R25: move a binding to ``to_state`` if its current state allows it, with an event, in one transaction."""
    with transaction.atomic():
        binding = Binding.objects.select_for_update().get(pk=binding_id)
        if to_state not in TRANSITIONS.get(binding.state, set()):
            raise InvalidTransition(
                title=_("This application cannot change from “%(from)s” to “%(to)s”.")
                % {"from": binding.get_state_display(), "to": S(to_state).label},
                status=409,
                code="invalid_transition",
            )
        from_state = binding.state
        binding.state = to_state
        now = timezone.now()
        if to_state == S.ACTIVE:
            binding.activated_at = now
        if to_state in (S.ENDED, S.EXPIRED, S.CANCELLED, S.REJECTED):
            binding.ended_at = now
            binding.end_reason = reason[:200]
        for name, value in fields.items():
            setattr(binding, name, value)
        binding.save()
        BindingEvent.objects.create(
            binding=binding,
            actor=actor,
            actor_label=_actor_label(actor),
            from_state=from_state,
            to_state=to_state,
            reason=reason,
        )
        if to_state in (S.ENDED, S.EXPIRED):
            # R37: what is in flight to the relative's wallet, or unused in it, goes back to the owner.
            from family.services.wallet import wallet_transfers_return_for_binding

            wallet_transfers_return_for_binding(binding=binding, now=now)
    return binding


def _decision_reasons(decision: Decision) -> list[dict[str, str]]:
    return [{"rule": r.rule, "message": r.message} for r in decision.reasons]


def _refusal_text(decision: Decision) -> str:
    return "; ".join(f"{r.rule}: {r.message}" for r in decision.refusals)


def binding_submit(
    *,
    owner: InsuredPerson,
    relative_id_number: str,
    relative_name: str,
    relationship: str,
    method: str = BindingMethod.ONLINE_ID,
    submitted_by: User | None = None,
    authorized_from: dt.date | None = None,
    authorized_until: dt.date | None = None,
    letter_signed_name: str = "",
    institution=None,
    originals_seen: Iterable[str] = (),
    counter_cards: dict[str, str] | None = None,
) -> Binding:
    """R20/R22: open an application; the pipeline (eligibility first) is queued once it is committed.

    The relative must be an insured person with this name and ID number: a mismatch is refused under
    R11 in words that do not tell whether the ID number exists. A pair with an open application or
    binding gets ``DuplicateApplication`` carrying the existing one.
    """
    relative = InsuredPerson.objects.filter(id_number=relative_id_number).first()
    if relative is None or relative.name.strip() != relative_name.strip():
        raise BindingRefused(
            title=_("No insured person matches this name and ID number (R11). Check both as on the ID card."),
            errors=[FieldError("relative_id_number", _("No insured person matches this name and ID number."))],
            code="relative_not_found",
        )
    if relative.pk == owner.pk:
        raise BindingRefused(
            title=_("An owner cannot share with himself or herself (R11)."),
            errors=[FieldError("relative_id_number", _("This is your own ID number."))],
            code="self",
        )
    if authorized_from and authorized_until and authorized_until < authorized_from:
        raise BindingRefused(
            title=_("The authorization ends before it starts."),
            errors=[FieldError("authorized_until", _("Choose an end date after the start date."))],
            code="period",
        )
    try:
        with transaction.atomic():
            # R15: the owner's row is the lock that serialises this owner's submissions and activations.
            InsuredPerson.objects.select_for_update().get(pk=owner.pk)
            existing = (
                Binding.objects.filter(owner=owner, relative=relative, state__in=OPEN_STATES).order_by("pk").first()
            )
            if existing is not None:
                _raise_duplicate(existing)
            binding = Binding.objects.create(
                owner=owner,
                relative=relative,
                relationship=relationship,
                method=method,
                region_id=owner.region_id,
                submitted_by=submitted_by,
                authorized_from=authorized_from,
                authorized_until=authorized_until,
                letter_signed_name=letter_signed_name,
                letter_signed_at=timezone.now() if letter_signed_name else None,
                institution=institution,
                originals_seen=list(originals_seen),
                counter_cards=counter_cards or {},
            )
            BindingEvent.objects.create(
                binding=binding,
                actor=submitted_by,
                actor_label=_actor_label(submitted_by),
                from_state="",
                to_state=S.SUBMITTED,
                reason=_("Application submitted."),
            )
            _enqueue("binding_check_eligibility", binding.pk)
    except IntegrityError:
        # Two submissions for the same pair at once: the constraint let one through; show it.
        existing = Binding.objects.filter(owner=owner, relative=relative, state__in=OPEN_STATES).first()
        if existing is None:
            raise
        _raise_duplicate(existing)
    return binding


def _raise_duplicate(existing: Binding):
    error = DuplicateApplication(
        title=_("An application for this relative is already open; it is shown instead of a new one."),
        status=409,
        code="duplicate",
    )
    error.existing = existing
    raise error


def _enqueue(task_name: str, binding_id: int) -> None:
    """Queue a pipeline step once the current transaction commits (never inside it).

    A broker that is down does not fail the saved application: ``enqueue_on_commit`` logs it, and the
    beat sweeper (``bindings_requeue_stuck``) queues the step once the broker is back.
    """
    from family import tasks

    enqueue_on_commit(getattr(tasks, task_name), binding_id)


def binding_run_eligibility(*, binding_id: int, on_date: dt.date | None = None) -> Binding | None:
    """Pipeline step 1 (R10–R16): refuse with the reasons, or send on to review (counter: to the age branch).

    Idempotent: does nothing unless the binding is still ``submitted``.
    """
    with transaction.atomic():
        binding = (
            Binding.objects.select_for_update(of=("self",)).select_related("owner", "relative").filter(pk=binding_id)
        ).first()
        if binding is None or binding.state != S.SUBMITTED:  # a stale message: nothing to do
            return None
        on_date = on_date or timezone.localdate()
        if binding.method == BindingMethod.NEWBORN:
            return _newborn_eligibility(binding, on_date)
        decision = eligibility_check(
            owner_id_number=binding.owner.id_number,
            relative_id_number=binding.relative.id_number,
            relationship=binding.relationship,
            on_date=on_date,
        )
        facts = {
            "reasons": _decision_reasons(decision),
            "policy_label": decision.policy_version or "",
            "decision_date": on_date,
            "needs_review": decision.needs_review,
            "needs_face_verification": decision.needs_face_verification,
        }
        if not decision.eligible:
            binding = binding_transition(
                binding_id=binding.pk, to_state=S.REJECTED, reason=_refusal_text(decision), **facts
            )
            _notify_decision(binding, _("Your family-sharing application was refused"), _refusal_text(decision))
            return binding
        if binding.method == BindingMethod.COUNTER:
            # R22: the clerk saw the originals; there is no upload review.
            binding = binding_transition(
                binding_id=binding.pk,
                to_state=S.UNDER_REVIEW,
                reason=_("Eligible; originals checked at the counter."),
                **facts,
            )
            _enqueue("binding_age_branch", binding.pk)
            return binding
        binding = binding_transition(
            binding_id=binding.pk,
            to_state=S.UNDER_REVIEW,
            reason=_("Eligible under policy %(policy)s; documents go to a reviewer.")
            % {"policy": decision.policy_version},
            **facts,
        )
    return binding


def binding_review_decide(*, binding_id: int, reviewer: User, approve: bool, reason: str = "") -> Binding:
    """R24: a reviewer approves (the pipeline goes on to the age branch) or rejects with a reason the citizen sees."""
    if not approve and not reason.strip():
        raise DomainError(
            title=_("Say why the application is rejected; the citizen sees it."),
            errors=[FieldError("reason", _("A reason is required."))],
        )
    with transaction.atomic():
        binding = Binding.objects.select_for_update().get(pk=binding_id)
        if binding.state != S.UNDER_REVIEW or binding.reviewed_at is not None:
            raise InvalidTransition(
                title=_("This application is not waiting for review."), status=409, code="not_under_review"
            )
        if approve:
            binding.reviewed_by = reviewer
            binding.reviewed_at = timezone.now()
            binding.save(update_fields=["reviewed_by", "reviewed_at", "updated_at"])
            # Approving the application accepts the documents it was decided on.
            BindingDocument.objects.filter(binding=binding, status=DocumentStatus.PENDING).update(
                status=DocumentStatus.APPROVED
            )
            _enqueue("binding_age_branch", binding.pk)
            return binding
        binding = binding_transition(
            binding_id=binding.pk,
            to_state=S.REJECTED,
            actor=reviewer,
            reason=reason,
            reviewed_by=reviewer,
            reviewed_at=timezone.now(),
        )
        _notify_decision(binding, _("Your family-sharing application was rejected"), reason)
    return binding


def binding_age_branch(*, binding_id: int, on_date: dt.date | None = None) -> Binding | None:
    """Pipeline step 3 (R23): under the face age, activate; otherwise wait for the relative's face check.

    Idempotent: acts only on an ``under_review`` binding that a reviewer approved (or a counter binding).
    """
    with transaction.atomic():
        binding = (
            Binding.objects.select_for_update(of=("self",)).select_related("owner", "relative").filter(pk=binding_id)
        ).first()
        if binding is None or binding.state != S.UNDER_REVIEW:  # a stale message: nothing to do
            return None
        if binding.method != BindingMethod.COUNTER and binding.reviewed_at is None:
            return None
        on_date = on_date or timezone.localdate()
        policy = policy_in_force(region_code=binding.region_id, on_date=on_date)
        face_age = policy.face_age if policy is not None else 16
        needs_face = age_on(binding.relative.birth_date, on_date) >= face_age
        if binding.method == BindingMethod.COUNTER or not needs_face:
            # R22: at the counter the relative's identity was confirmed in person.
            return _activate(binding, reason=_("Documents accepted; no face verification needed (R23)."))
        deadline = timezone.now() + dt.timedelta(days=settings.FAMILY_FACE_WAIT_DAYS)
        binding = binding_transition(
            binding_id=binding.pk,
            to_state=S.AWAITING_FACE,
            reason=_("Documents accepted; the relative (16 or over) must confirm with face verification (R23)."),
            face_deadline=deadline,
            needs_face_verification=True,
        )
        link = settings.PORTAL_BASE_URL + reverse("binding_consent", args=[binding.pk])
        notification_send(
            person=binding.relative,
            kind="binding.consent_needed",
            title=_("%(owner)s wants to share a medical-insurance account with you")
            % {"owner": binding.owner.masked_name},
            body=_("Confirm with face verification by %(date)s.") % {"date": timezone.localdate(deadline).isoformat()},
            link=link,
            dedup_key=f"binding:{binding.pk}:consent",
            sms=True,
        )
    return binding


def _activate(binding: Binding, *, reason: str, actor: User | None = None) -> Binding:
    """Activation under the owner's lock, re-checking the network limits of R15 at this moment."""
    InsuredPerson.objects.select_for_update().get(pk=binding.owner_id)
    policy = policy_in_force(region_code=binding.region_id, on_date=timezone.localdate())
    multiple_owners = bool(policy and policy.multiple_owners)
    if policy is not None and policy.max_members is not None:
        active = Binding.objects.filter(owner_id=binding.owner_id, state=S.ACTIVE).count()
        if active >= policy.max_members:
            refused = binding_transition(
                binding_id=binding.pk,
                to_state=S.REJECTED,
                reason=_("Region %(region)s allows at most %(count)d relatives per owner (R15).")
                % {"region": binding.region_id, "count": policy.max_members},
            )
            _notify_decision(refused, _("Your family-sharing application was refused"), refused.end_reason)
            return refused
    # A newborn without an ID number yet (R21) is in no other network; NULL would match every other newborn.
    if (
        not multiple_owners
        and binding.relative_id is not None
        and Binding.objects.filter(relative_id=binding.relative_id, state=S.ACTIVE, exclusive=True)
        .exclude(pk=binding.pk)
        .exists()
    ):
        refused = binding_transition(
            binding_id=binding.pk,
            to_state=S.REJECTED,
            reason=_("The relative is already in another family network (R15)."),
        )
        _notify_decision(refused, _("Your family-sharing application was refused"), refused.end_reason)
        return refused
    binding = binding_transition(
        binding_id=binding.pk, to_state=S.ACTIVE, actor=actor, reason=reason, exclusive=not multiple_owners
    )
    _notify_both(
        binding,
        "binding.active",
        _("Family sharing is active"),
        _("The relative may now pay from the owner's personal account."),
    )
    return binding


def binding_face_verified(*, binding_id: int, person: InsuredPerson, passed: bool, actor: User | None) -> Binding:
    """R23: the relative's own face check is their consent; a pass activates the binding."""
    with transaction.atomic():
        binding = Binding.objects.select_for_update().get(pk=binding_id)
        # R21: for a newborn, the mother's face completes the binding; otherwise the relative's own (R23).
        expected = (
            binding.mother_id_number == person.id_number
            if binding.method == BindingMethod.NEWBORN
            else (binding.relative_id == person.pk)
        )
        if binding.state != S.AWAITING_FACE or not expected:
            raise InvalidTransition(
                title=_("This application is not waiting for your face verification."), status=409, code="not_awaiting"
            )
        if not passed:
            return binding
        return _activate(binding, actor=actor, reason=_("The relative confirmed with face verification (R23)."))


def binding_cancel(*, binding_id: int, user: User) -> Binding:
    """R25: the owner withdraws an application before it is active."""
    binding = Binding.objects.get(pk=binding_id)
    if user.person_id != binding.owner_id and not user.is_staff_role:
        raise InvalidTransition(title=_("Only the account owner can cancel this application."), status=403)
    if binding.state not in PENDING_STATES:
        raise InvalidTransition(title=_("Only an application that is not active yet can be cancelled."), status=409)
    return binding_transition(
        binding_id=binding_id, to_state=S.CANCELLED, actor=user, reason=_("Cancelled by the owner.")
    )


def binding_end(*, binding_id: int, user: User, reason: str = "") -> Binding:
    """R26: the owner unbinds or the relative leaves (退出), at once; both are told."""
    binding = Binding.objects.select_related("owner", "relative").get(pk=binding_id)
    if user.person_id == binding.owner_id:
        why = reason or _("Unbound by the owner.")
    elif user.person_id is not None and user.person_id == binding.relative_id:
        # (A newborn's binding has no relative yet: None == None must not let a person-less login in.)
        why = reason or _("The relative left the family network.")
    elif user.role == User.Role.CLERK and user.institution_id is not None:
        # R26 at a counter: only a clerk working for a designated institution, which the audit row names.
        why = reason or _("Unbound at the counter.")
    else:
        raise InvalidTransition(title=_("Only the owner or the relative can end this binding."), status=403)
    if binding.state != S.ACTIVE:
        raise InvalidTransition(title=_("Only an active binding can be ended."), status=409)
    binding = binding_transition(binding_id=binding_id, to_state=S.ENDED, actor=user, reason=why)
    if user.role == User.Role.CLERK:
        audit_record(
            actor=user, action="binding.ended_at_counter", target=binding, detail={"institution": user.institution_id}
        )
    _notify_both(binding, "binding.ended", _("Family sharing ended"), why)
    return binding


def bindings_for_owner_end(*, owner: InsuredPerson, reason: str) -> int:
    """R27: the owner can no longer share; every active binding ends, pending ones are rejected."""
    count = 0
    for binding in Binding.objects.filter(owner=owner, state__in=OPEN_STATES).order_by("pk"):
        target = S.ENDED if binding.state == S.ACTIVE else S.REJECTED
        ended = binding_transition(binding_id=binding.pk, to_state=target, reason=reason)
        _notify_both(ended, "binding.ended", _("Family sharing ended"), reason)
        count += 1
    return count


def bindings_end_for_owner(*, person_ids: Iterable[int]) -> int:
    """R27: after an import changed status, region or insurance type, end what the owners can no longer share."""
    ended = 0
    persons = InsuredPerson.objects.filter(pk__in=list(person_ids)).select_related("region")
    for person in persons:
        if not Binding.objects.filter(owner=person, state__in=OPEN_STATES).exists():
            continue
        if not person.is_employee:
            reason = _("The owner is no longer in employee medical insurance (R10, R27).")
        elif not person.is_active:
            reason = _("The owner's insurance is suspended (R10, R27).")
        elif Binding.objects.filter(owner=person, state__in=OPEN_STATES).exclude(region_id=person.region_id).exists():
            reason = _("The owner moved to another pooling region (R27).")
        else:
            continue
        with transaction.atomic():
            ended += bindings_for_owner_end(owner=person, reason=reason)
    return ended


def bindings_expire_awaiting_face(*, now: dt.datetime | None = None) -> int:
    """R23: applications waiting for the relative's face past their deadline expire."""
    now = now or timezone.now()
    expired = 0
    for binding_id in Binding.objects.filter(state=S.AWAITING_FACE, face_deadline__lt=now).values_list("pk", flat=True):
        try:
            binding = binding_transition(
                binding_id=binding_id,
                to_state=S.EXPIRED,
                reason=_("The relative did not complete face verification in time (R23)."),
            )
        except InvalidTransition:
            continue  # decided meanwhile
        _notify_both(binding, "binding.expired", _("A family-sharing application expired"), binding.end_reason)
        expired += 1
    return expired


def bindings_end_expired_authorizations(*, today: dt.date) -> int:
    """R27: a binding whose authorization period is over ends by itself (never retroactively)."""
    ended = 0
    ids = Binding.objects.filter(state=S.ACTIVE, authorized_until__lt=today).values_list("pk", flat=True)
    for binding_id in ids:
        try:
            binding = binding_transition(
                binding_id=binding_id, to_state=S.ENDED, reason=_("The authorization period ended (R27).")
            )
        except InvalidTransition:
            continue
        _notify_both(binding, "binding.ended", _("Family sharing ended"), binding.end_reason)
        ended += 1
    return ended


def bindings_remind_authorization_end(*, today: dt.date) -> int:
    """R27: remind the owner before the authorization period ends (once per binding)."""
    soon = today + dt.timedelta(days=settings.FAMILY_AUTHORIZATION_REMINDER_DAYS)
    reminded = 0
    for binding in Binding.objects.filter(
        state=S.ACTIVE, authorized_until__gte=today, authorized_until__lte=soon
    ).select_related("owner", "relative"):
        sent = notification_send(
            person=binding.owner,
            kind="binding.authorization_ending",
            title=_("Family sharing with %(relative)s ends on %(date)s")
            % {"relative": binding.relative.masked_name, "date": binding.authorized_until.isoformat()},
            body=_("Extend it from the family page if you want it to go on."),
            link=reverse("family_home"),
            dedup_key=f"binding:{binding.pk}:reminder:{binding.authorized_until.isoformat()}",
        )
        reminded += sent is not None
    return reminded


def bindings_reevaluate_pending(*, region_codes: Iterable[str]) -> int:
    """R17: after a policy change, pending applications of these regions (``*``: all) are checked again.

    Applications whose relationship or limits the new policy refuses are rejected with the reason; the
    others go on. Active bindings made under an earlier policy stay active.
    """
    codes = set(region_codes)
    pending = Binding.objects.filter(state__in=PENDING_STATES).select_related("owner", "relative")
    if "*" not in codes:
        pending = pending.filter(region_id__in=codes)
    rejected = 0
    today = timezone.localdate()
    for binding in pending.exclude(relative__isnull=True):
        decision = eligibility_check(
            owner_id_number=binding.owner.id_number,
            relative_id_number=binding.relative.id_number,
            relationship=binding.relationship,
            on_date=today,
        )
        if decision.eligible:
            continue
        try:
            refused = binding_transition(
                binding_id=binding.pk,
                to_state=S.REJECTED,
                reason=_("The policy changed (R17): %(why)s") % {"why": _refusal_text(decision)},
                reasons=_decision_reasons(decision),
                policy_label=decision.policy_version or "",
                decision_date=today,
            )
        except InvalidTransition:
            continue
        _notify_decision(
            refused, _("Your family-sharing application was refused after a policy change"), refused.end_reason
        )
        rejected += 1
    return rejected


def _notify_decision(binding: Binding, title: str, body: str) -> None:
    notification_send(
        person=binding.owner,
        kind=f"binding.{binding.state}",
        title=title,
        body=body,
        link=reverse("binding_detail", args=[binding.pk]),
        dedup_key=f"binding:{binding.pk}:{binding.state}:owner",
    )


def _notify_both(binding: Binding, kind: str, title: str, body: str) -> None:
    """R26, R27: owner and relative are both told."""
    for side, person in (("owner", binding.owner), ("relative", binding.relative)):
        if person is None:
            continue
        notification_send(
            person=person,
            kind=kind,
            title=title,
            body=body,
            link=reverse("binding_detail", args=[binding.pk]),
            dedup_key=f"binding:{binding.pk}:{binding.state}:{side}",
        )


def bindings_pending_for_relative(*, person: InsuredPerson) -> Q:
    return Q(relative=person, state=S.AWAITING_FACE)


def bindings_requeue_stuck(*, older_than_seconds: int) -> int:
    """Re-enqueue the step of every binding that has waited too long for the queue (a lost message).

    Safe because every step is idempotent: a step that did run meanwhile does nothing the second time.
    """
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    requeued = 0
    for binding_id in Binding.objects.filter(state=S.SUBMITTED, updated_at__lt=cutoff).values_list("pk", flat=True):
        _enqueue("binding_check_eligibility", binding_id)
        requeued += 1
    approved = Binding.objects.filter(state=S.UNDER_REVIEW, updated_at__lt=cutoff).filter(
        Q(reviewed_at__isnull=False) | Q(method=BindingMethod.COUNTER)
    )
    for binding_id in approved.values_list("pk", flat=True):
        _enqueue("binding_age_branch", binding_id)
        requeued += 1
    return requeued


def binding_submit_newborn(
    *,
    owner: InsuredPerson,
    newborn_name: str,
    mother_name: str,
    mother_id_number: str,
    birth_certificate_number: str,
    submitted_by: User | None = None,
) -> Binding:
    """R21: bind a newborn by the birth medical certificate; the mother's face verification completes it.

    The owner is the mother, or the father giving the mother's details; the mother must be an insured
    person with this name (her own login does the face check). The newborn's ID number comes later.
    """
    mother = InsuredPerson.objects.filter(id_number=mother_id_number).first()
    if mother is None or mother.name.strip() != mother_name.strip():
        raise BindingRefused(
            title=_("No insured person matches the mother's name and ID number."),
            errors=[FieldError("mother_id_number", _("No insured person matches this name and ID number."))],
            code="mother_not_found",
        )
    with transaction.atomic():
        InsuredPerson.objects.select_for_update().get(pk=owner.pk)
        existing = (
            Binding.objects.filter(
                owner=owner,
                method=BindingMethod.NEWBORN,
                birth_certificate_number=birth_certificate_number,
                state__in=OPEN_STATES,
            )
            .order_by("pk")
            .first()
        )
        if existing is not None:
            _raise_duplicate(existing)
        binding = Binding.objects.create(
            owner=owner,
            relative=None,
            relationship="child",
            method=BindingMethod.NEWBORN,
            region_id=owner.region_id,
            submitted_by=submitted_by,
            newborn_name=newborn_name.strip(),
            mother_name=mother_name.strip(),
            mother_id_number=mother_id_number,
            birth_certificate_number=birth_certificate_number.strip(),
        )
        BindingEvent.objects.create(
            binding=binding,
            actor=submitted_by,
            actor_label=_actor_label(submitted_by),
            from_state="",
            to_state=S.SUBMITTED,
            reason=_("Newborn application submitted with the birth medical certificate."),
        )
        _enqueue("binding_check_eligibility", binding.pk)
    return binding


def _newborn_eligibility(binding: Binding, on_date: dt.date) -> Binding:
    """R21 step 1: the owner's side (R10, R12, R15); eligible → wait for the mother's face."""
    decision = newborn_eligibility_check(owner=binding.owner, on_date=on_date, binding_id=binding.pk)
    facts = {
        "reasons": _decision_reasons(decision),
        "policy_label": decision.policy_version or "",
        "decision_date": on_date,
        "needs_face_verification": True,
    }
    if not decision.eligible:
        refused = binding_transition(
            binding_id=binding.pk, to_state=S.REJECTED, reason=_refusal_text(decision), **facts
        )
        _notify_decision(refused, _("Your family-sharing application was refused"), _refusal_text(decision))
        return refused
    deadline = timezone.now() + dt.timedelta(days=settings.FAMILY_FACE_WAIT_DAYS)
    waiting = binding_transition(
        binding_id=binding.pk,
        to_state=S.AWAITING_FACE,
        reason=_("Eligible; the mother completes the binding with face verification (R21)."),
        face_deadline=deadline,
        **facts,
    )
    mother = InsuredPerson.objects.filter(id_number=binding.mother_id_number).first()
    if mother is not None:
        notification_send(
            person=mother,
            kind="binding.consent_needed",
            title=_("Confirm your newborn's family sharing with face verification"),
            body=_("Confirm by %(date)s.") % {"date": timezone.localdate(deadline).isoformat()},
            link=settings.PORTAL_BASE_URL + reverse("binding_consent", args=[binding.pk]),
            dedup_key=f"binding:{binding.pk}:consent",
            sms=mother.pk != binding.owner_id,
        )
    return waiting


def binding_newborn_add_id(*, binding_id: int, user: User, id_number: str) -> Binding:
    """R21: once the newborn is insured with an ID number, the owner adds it and the binding names the child."""
    with transaction.atomic():
        binding = Binding.objects.select_for_update().get(pk=binding_id)
        if user.person_id != binding.owner_id:
            raise InvalidTransition(title=_("Only the account owner can add the newborn's ID number."), status=403)
        if binding.method != BindingMethod.NEWBORN or binding.relative_id is not None:
            raise InvalidTransition(title=_("This binding is not waiting for a newborn's ID number."), status=409)
        child = InsuredPerson.objects.filter(id_number=id_number).first()
        if child is None or child.name.strip() != binding.newborn_name:
            raise BindingRefused(
                title=_("No insured person matches the newborn's name and this ID number yet."),
                errors=[FieldError("id_number", _("No insured person matches this name and ID number."))],
                code="newborn_not_found",
            )
        binding.relative = child
        binding.save(update_fields=["relative", "updated_at"])
        audit_record(actor=user, action="binding.newborn_id_added", target=binding, detail={"person": child.pk})
    return binding

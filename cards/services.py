"""Writes of the e-card: the claim (R40), the card password (R41), dynamic QR codes (R42) and the family
card service (亲情服务, R43).

Every function takes keyword-only arguments and writes inside ``transaction.atomic``. Face checks are
``accounts.models.FaceVerification`` rows made by ``accounts.face.face_verify``; a service accepts one
only if it passed, is of the right person, was made for this purpose and this object (``reference``: the
card's id for ``card_claim`` and ``card_password_reset``, the link's id for ``family_card_consent`` and
``family_card_photo``), is fresh (``CARD_FACE_VALID_MINUTES``, default 10) and newer than what it
confirms, so that one face check counts once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import pypdfium2
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.errors import FieldError
from accounts.identity import normalize_id_number
from accounts.masking import mask_id_number, mask_name
from accounts.models import FaceVerification, Institution, InsuredPerson, Region, User, Wallet
from accounts.queueing import enqueue_on_commit
from accounts.services import audit_record, notification_send, wallet_open
from cards import rules
from cards.errors import CardLocked, CardPasswordRefused, CardRefused, FamilyCardRefused, QrRefused
from cards.models import (
    FAMILY_CARD_OPEN_STATES,
    CardChannel,
    CardState,
    ECard,
    FamilyCardDocument,
    FamilyCardDocumentKind,
    FamilyCardDocumentStatus,
    FamilyCardLink,
    FamilyCardLinkState,
    FamilyCardPrecheckStatus,
    FamilyCardVerifiedBy,
    QrToken,
)
from cards.qr import qr_svg
from cards.selectors import family_card_link_active, family_card_max_for, payers_for_person, person_is_child
from family.documents import (
    DocumentRefused,
    StoredContent,
    document_max_bytes,
    document_page_image,
    read_document_content,
)
from family.models import Binding, BindingState, Relation, ReviewReason
from family.selectors_review import claim_cutoff, is_review_admin
from family.services.review import CLAIM_ATTEMPTS

__all__ = [
    "QR_SALT",
    "CardLocked",
    "CardPasswordRefused",
    "CardRefused",
    "FamilyCardRefused",
    "PayerView",
    "QrRefused",
    "QrVerification",
    "card_accept_agreement",
    "card_change_password",
    "card_change_password_by_manager",
    "card_check_password",
    "card_claim_for_child",
    "card_claim_start",
    "card_face_passed",
    "card_of_managed_child",
    "card_password_attempts_left",
    "card_reactivate",
    "card_reset_password",
    "card_reset_password_by_manager",
    "card_set_password",
    "card_suspend",
    "family_card_add",
    "family_card_confirm",
    "family_card_document_approve",
    "family_card_document_precheck_run",
    "family_card_document_reject",
    "family_card_document_replace",
    "family_card_end",
    "password_problem_message",
    "qr_issue",
    "qr_svg",
    "qr_token_sign",
    "qr_tokens_purge",
    "qr_verify",
]

# R42: a salt of its own, so no other signed value of the portal can pass for a QR code.
QR_SALT = "cards.qr.v1"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# FaceVerification.purpose of each step.
FACE_CARD_CLAIM = "card_claim"
FACE_PASSWORD_RESET = "card_password_reset"  # noqa: S105 a purpose name, not a password
FACE_FAMILY_CONSENT = "family_card_consent"
FACE_FAMILY_PHOTO = "family_card_photo"


def _max_attempts() -> int:
    return getattr(settings, "CARD_PASSWORD_MAX_ATTEMPTS", 5)


def _lock_minutes() -> int:
    return getattr(settings, "CARD_PASSWORD_LOCK_MINUTES", 30)


def _qr_ttl_seconds() -> int:
    return getattr(settings, "CARD_QR_TTL_SECONDS", 60)


def _face_valid_minutes() -> int:
    return getattr(settings, "CARD_FACE_VALID_MINUTES", 10)


def _login_of(person: InsuredPerson) -> User | None:
    """The holder's own login, for the audit log of steps that have no user argument."""
    return User.objects.filter(person=person).first()


def _local(moment: dt.datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


# --- Claim (R40) ---


def _locked_card(card: ECard) -> ECard:
    return ECard.objects.select_for_update().select_related("person").get(pk=card.pk)


def _refresh(target: ECard, source: ECard) -> ECard:
    """Copy the saved state onto the caller's object too, so it never holds a stale card."""
    for model_field in ECard._meta.concrete_fields:
        setattr(target, model_field.attname, getattr(source, model_field.attname))
    return source


def _check_face(
    verification: FaceVerification | None,
    *,
    persons: set[int | None],
    purpose: str,
    reference: str,
    not_before: dt.datetime | None = None,
) -> None:
    """A face check counts if it passed, is of one of ``persons``, was made for ``purpose`` and for this object
    (``reference``: the card's or the link's id), and is fresh and new enough."""
    valid_from = timezone.now() - dt.timedelta(minutes=_face_valid_minutes())
    ok = (
        verification is not None
        and verification.pk is not None
        and verification.decision == FaceVerification.Decision.PASSED
        and verification.person_id in persons - {None}
        and verification.purpose == purpose
        and verification.reference == reference
        and verification.created_at >= valid_from
        # Newer than what it confirms (the claim, the request, the password it replaces): each counts once.
        and (not_before is None or verification.created_at > not_before)
    )
    if not ok:
        raise CardRefused(
            title=_("A new face verification is needed for this step."),
            detail=_(
                "The face verification is missing, did not pass, is of someone else, or is older than "
                "%(minutes)d minutes. Please verify again."
            )
            % {"minutes": _face_valid_minutes()},
            status=400,
            code="face_verification_needed",
            errors=[FieldError("verification", _("Verify your face again."))],
        )


def _claim_start(*, person: InsuredPerson, region_code: str, channel: str, guardian: InsuredPerson | None) -> ECard:
    if channel not in CardChannel.values:
        raise CardRefused(
            title=_("Unknown channel."),
            code="unknown_channel",
            errors=[FieldError("channel", _("Choose portal, alipay, wechat or bank."))],
        )
    region = Region.objects.filter(code=(region_code or "").strip()).first()
    if region is None:
        raise CardRefused(
            title=_("There is no pooling region with this code."),
            code="unknown_region",
            errors=[FieldError("region_code", _("Choose the region where your card was issued."))],
        )
    with transaction.atomic():
        # The person's row serialises two claims of one person (R40: one card, claimed once).
        InsuredPerson.objects.select_for_update().get(pk=person.pk)
        card = ECard.objects.select_for_update().filter(person=person).first()
        if card is None:
            card = ECard.objects.create(person=person, issuing_region=region, channel=channel, guardian=guardian)
            audit_record(
                actor=_login_of(guardian or person),
                action="card.claim_started",
                target=person,
                detail={"card": card.pk, "region": region.code, "channel": channel, "for_child": guardian is not None},
            )
            return card
        if card.state != CardState.PENDING:
            # R40: claiming again shows the existing card.
            return card
        # Resume the claim; the region and channel are those chosen now.
        changed = ["issuing_region", "channel", "updated_at"]
        card.issuing_region = region
        card.channel = channel
        if card.guardian_id != (guardian.pk if guardian else None):
            # Someone else carries on: their face is needed, not the earlier one's.
            card.guardian = guardian
            card.face_verified_at = None
            card.face_verification = None
            changed += ["guardian", "face_verified_at", "face_verification"]
        card.save(update_fields=changed)
    return card


def card_claim_start(*, person: InsuredPerson, region_code: str, channel: str = CardChannel.PORTAL) -> ECard:
    """R40 step 1: choose the issuing region. An active (or suspended) card is returned as it is; a claim
    in progress is resumed; otherwise a pending card is created."""
    return _claim_start(person=person, region_code=region_code, channel=channel, guardian=None)


def card_accept_agreement(*, card: ECard) -> ECard:
    """R40 step 2: the user agreement is accepted (the first acceptance is kept; a claimed card is unchanged)."""
    with transaction.atomic():
        locked = _locked_card(card)
        if locked.state == CardState.PENDING and locked.agreement_accepted_at is None:
            locked.agreement_accepted_at = timezone.now()
            locked.save(update_fields=["agreement_accepted_at", "updated_at"])
    return _refresh(card, locked)


def _require_pending(card: ECard) -> None:
    if card.state != CardState.PENDING:
        raise CardRefused(
            title=_("This card is claimed already."),
            detail=_("To change its password, use “change password” or “forgot password”."),
            status=409,
            code="card_claimed",
        )


def _require_guardian_link(card: ECard) -> None:
    """R43: a card claimed for a child stays the manager's to finish only while the link is active."""
    if card.guardian_id and not family_card_link_active(manager=card.guardian_id, relative=card.person_id):
        raise CardRefused(
            title=_("You no longer manage this relative's card (family card service)."),
            status=403,
            code="not_managed",
        )


def card_face_passed(*, card: ECard, verification: FaceVerification) -> ECard:
    """R40 step 3: a passed face verification (purpose ``card_claim``) of the holder — or, for a child's card,
    of the manager who claims it (R43) — made after the claim started and within the last few minutes."""
    with transaction.atomic():
        locked = _locked_card(card)
        _require_pending(locked)
        if locked.agreement_accepted_at is None:
            raise CardRefused(title=_("Accept the user agreement first."), status=409, code="agreement_needed")
        _require_guardian_link(locked)
        _check_face(
            verification,
            persons={locked.guardian_id or locked.person_id},
            purpose=FACE_CARD_CLAIM,
            reference=str(locked.pk),
            not_before=locked.created_at,
        )
        locked.face_verified_at = timezone.now()
        locked.face_verification = verification
        locked.save(update_fields=["face_verified_at", "face_verification", "updated_at"])
    return _refresh(card, locked)


def password_problem_message(code: str) -> str:
    """R41: the words for a code of ``cards.rules.password_problems``, in the user's language."""
    messages = {
        "not_six_digits": _("The card password is exactly 6 digits (0–9)."),
        "all_same": _("Six equal digits are too easy to guess."),
        "ascending": _("Digits in a rising run (like 123456) are too easy to guess."),
        "descending": _("Digits in a falling run (like 654321) are too easy to guess."),
        "birth_date": _("Your birth date, in any order, is too easy to guess."),
        "id_number": _("The last 6 characters of your ID number are too easy to guess."),
        "common": _("This is one of the most used passwords (or a repeated pattern like 121212)."),
    }
    return messages.get(code, _("This password is too easy to guess."))


def _refuse_trivial(password: str, person: InsuredPerson, field_name: str) -> None:
    """R41: refuse a trivial password with every reason, before anything is written."""
    problems = rules.password_problems(password, birth_date=person.birth_date, id_number=person.id_number)
    if problems:
        raise CardPasswordRefused(
            title=_("Choose a password that is harder to guess."),
            detail=" ".join(password_problem_message(code) for code in problems),
            status=400,
            code="password_refused",
            errors=[FieldError(field_name, password_problem_message(code)) for code in problems],
            problems=problems,
        )


def _store_password(card: ECard, password: str, now: dt.datetime) -> list[str]:
    # R41: only the hasher's output is kept; the digits never reach the database or the log.
    card.password = make_password(password)
    card.password_set_at = now
    card.failed_attempts = 0
    card.locked_until = None
    return ["password", "password_set_at", "failed_attempts", "locked_until", "updated_at"]


def card_set_password(*, card: ECard, password: str) -> ECard:
    """R40 step 4, R41: set the 6-digit password (trivial ones refused) and activate the card."""
    with transaction.atomic():
        locked = _locked_card(card)
        _require_pending(locked)
        if locked.agreement_accepted_at is None or locked.face_verified_at is None:
            raise CardRefused(
                title=_("Accept the user agreement and verify your face before setting the password."),
                status=409,
                code="claim_incomplete",
            )
        _require_guardian_link(locked)
        _refuse_trivial(password, locked.person, "password")
        now = timezone.now()
        changed = _store_password(locked, password, now)
        locked.state = CardState.ACTIVE
        locked.claimed_at = now
        locked.save(update_fields=[*changed, "state", "claimed_at"])
        audit_record(
            actor=_login_of(locked.guardian or locked.person),
            action="card.claimed",
            target=locked.person,
            detail={"card": locked.pk, "region": locked.issuing_region_id, "channel": locked.channel},
        )
    return _refresh(card, locked)


def card_password_attempts_left(*, card: ECard) -> int:
    """R41: wrong passwords left before the lock (0 while locked)."""
    if rules.is_locked(locked_until=card.locked_until, now=timezone.now()):
        return 0
    used = card.failed_attempts if card.locked_until is None else 0
    return max(0, _max_attempts() - used)


def _card_locked_error(locked_until: dt.datetime) -> CardLocked:
    return CardLocked(
        title=_("The card password is locked after too many wrong tries."),
        detail=_("Try again after %(time)s, or reset the password with a face verification.")
        % {"time": _local(locked_until)},
        status=423,
        code="card_locked",
        locked_until=locked_until,
    )


def card_check_password(*, card: ECard, password: str) -> bool:
    """R41: whether ``password`` is the card's. Wrong ones are counted in the database (so across sessions
    and devices, and concurrent guesses all count); at the limit the card locks; while locked every try is
    refused with ``CardLocked`` saying until when; a right one resets the count.

    Commits its own transaction: a caller must not roll it back (a refused guess has to stay counted).
    """
    with transaction.atomic():
        locked = _locked_card(card)
        if locked.state != CardState.ACTIVE or not locked.password:
            raise CardRefused(title=_("This card is not active."), status=409, code="card_not_active")
        now = timezone.now()
        if rules.is_locked(locked_until=locked.locked_until, now=now):
            _refresh(card, locked)
            raise _card_locked_error(locked.locked_until)
        if locked.locked_until is not None:
            # The lock has run out: a fresh count starts.
            locked.failed_attempts, locked.locked_until = 0, None
        if check_password(password, locked.password):
            right = True
            locked.failed_attempts, locked.locked_until = 0, None
        else:
            right = False
            locked.failed_attempts, locked.locked_until = rules.lock_after_failure(
                failed_attempts=locked.failed_attempts,
                now=now,
                max_attempts=_max_attempts(),
                lock_minutes=_lock_minutes(),
            )
            if locked.locked_until is not None:
                audit_record(
                    actor=None,
                    action="card.password_locked",
                    target=locked.person,
                    detail={"card": locked.pk, "until": locked.locked_until.isoformat()},
                )
        locked.save(update_fields=["failed_attempts", "locked_until", "updated_at"])
    _refresh(card, locked)
    return right


def card_change_password(*, card: ECard, old_password: str, new_password: str, actor: User | None = None) -> ECard:
    """R41: change the password knowing the old one. A wrong old one counts as a wrong try (and may lock).

    The check commits first (its count must survive the refusal), then the change in its own transaction.
    ``actor`` is who changes it, for the audit log: the holder unless told (a child's manager, R43).
    """
    _refuse_trivial(new_password, card.person, "new_password")
    if not card_check_password(card=card, password=old_password):
        left = card_password_attempts_left(card=card)
        if left == 0:
            raise _card_locked_error(card.locked_until)
        message = ngettext(
            "The current password is wrong. %(count)d try left before the card locks.",
            "The current password is wrong. %(count)d tries left before the card locks.",
            left,
        ) % {"count": left}
        raise CardPasswordRefused(
            title=_("The current password is wrong."),
            detail=message,
            status=400,
            code="password_wrong",
            errors=[FieldError("old_password", message)],
            problems=["wrong"],
        )
    with transaction.atomic():
        locked = _locked_card(card)
        locked.save(update_fields=_store_password(locked, new_password, timezone.now()))
        audit_record(
            actor=actor or _login_of(locked.person),
            action="card.password_changed",
            target=locked.person,
            detail={"card": locked.pk, "by_manager": actor is not None and actor.person_id != locked.person_id},
        )
    return _refresh(card, locked)


def _reset_password(
    card: ECard, *, verification: FaceVerification, new_password: str, face_of: set[int | None], actor: User | None
) -> ECard:
    with transaction.atomic():
        locked = _locked_card(card)
        if locked.state != CardState.ACTIVE:
            raise CardRefused(title=_("This card is not active."), status=409, code="card_not_active")
        _check_face(
            verification,
            persons=face_of,
            purpose=FACE_PASSWORD_RESET,
            reference=str(locked.pk),
            not_before=locked.password_set_at,
        )
        _refuse_trivial(new_password, locked.person, "new_password")
        locked.save(update_fields=_store_password(locked, new_password, timezone.now()))
        audit_record(
            actor=actor or _login_of(verification.person),
            action="card.password_reset",
            target=locked.person,
            detail={"card": locked.pk, "verification": verification.pk, "face_of": verification.person_id},
        )
    return _refresh(card, locked)


def card_reset_password(*, card: ECard, verification: FaceVerification, new_password: str) -> ECard:
    """R41: forgot the password: a passed face verification (purpose ``card_password_reset``) of the holder
    (or of a child's manager who claimed the card) from the last 10 minutes sets a new one and lifts the lock.

    A verification counts once: it must be newer than the password it replaces.
    """
    _require_guardian_link(card)
    return _reset_password(
        card,
        verification=verification,
        new_password=new_password,
        face_of={card.person_id, card.guardian_id},
        actor=None,
    )


def card_of_managed_child(*, link_id: int, manager_user: User) -> ECard:
    """R43/R41: the active card of the child of an active family card link that ``manager_user`` holds.

    Refused (``CardRefused``) when the link is not theirs or not active, the relative is at or over the face
    age (they look after their own password), or the child has no active card."""
    link = (
        FamilyCardLink.objects.select_related("manager", "relative")
        .filter(pk=link_id, manager_id=manager_user.person_id, state=FamilyCardLinkState.ACTIVE)
        .first()
    )
    if link is None or manager_user.person_id is None:
        raise CardRefused(
            title=_("You no longer manage this relative's card (family card service)."),
            status=403,
            code="not_managed",
        )
    if not person_is_child(person=link.relative, region_code=link.manager.region_id, on_date=timezone.localdate()):
        raise CardRefused(
            title=_("From 16, a person looks after their own card password."),
            detail=_("Ask your relative to change or reset the password themselves."),
            status=403,
            code="not_a_child",
        )
    card = ECard.objects.select_related("person").filter(person=link.relative).first()
    if card is None or card.state != CardState.ACTIVE:
        raise CardRefused(title=_("This card is not active."), status=409, code="card_not_active")
    return card


def card_change_password_by_manager(*, link_id: int, manager_user: User, old_password: str, new_password: str) -> ECard:
    """R43/R41: a manager changes the card password of a child they manage, knowing the old one.

    The same rules as the holder's: trivial passwords refused, a wrong old one counts toward the lock."""
    card = card_of_managed_child(link_id=link_id, manager_user=manager_user)
    return card_change_password(card=card, old_password=old_password, new_password=new_password, actor=manager_user)


def card_reset_password_by_manager(
    *, link_id: int, manager_user: User, verification: FaceVerification, new_password: str
) -> ECard:
    """R43/R41: a manager sets a new card password for a child they manage after the MANAGER's own fresh face
    verification (purpose ``card_password_reset``, the child's card as reference); the lock is lifted."""
    card = card_of_managed_child(link_id=link_id, manager_user=manager_user)
    return _reset_password(
        card,
        verification=verification,
        new_password=new_password,
        face_of={manager_user.person_id},
        actor=manager_user,
    )


# --- Suspension (已暂停) ---

SUSPENSION_REASON_MAX = 200


def _require_card_admin(actor: User) -> None:
    # Suspending stops every payment with the card: an administrator's decision, not a clerk's or a reviewer's.
    if not (actor.role == User.Role.ADMIN or actor.is_superuser):
        raise CardRefused(title=_("Only administrators suspend or reactivate cards."), status=403, code="not_allowed")


def _tell_holder(card: ECard, *, kind: str, title: str, body: str, dedup_key: str) -> None:
    """The holder, and for a child's card the manager who claimed it, are told (消息)."""
    for person in filter(None, (card.person, card.guardian)):
        notification_send(
            person=person,
            kind=kind,
            title=title,
            body=body,
            link=reverse("card_home"),
            dedup_key=f"{dedup_key}:{person.pk}",
        )


def card_suspend(*, card_id: int, actor: User, reason: str) -> ECard:
    """Suspend an active card (已暂停): it shows no QR code and none of its codes is accepted (R42) until
    ``card_reactivate``. ``reason`` is what the holder reads on their card page; an audit row is written."""
    _require_card_admin(actor)
    reason = " ".join((reason or "").split())
    if not reason or len(reason) > SUSPENSION_REASON_MAX:
        raise CardRefused(
            title=_("Write the reason the holder reads (at most %(limit)d characters).")
            % {"limit": SUSPENSION_REASON_MAX},
            code="reason_required",
            errors=[FieldError("reason", _("Write the reason the holder reads."))],
        )
    with transaction.atomic():
        card = ECard.objects.select_for_update(of=("self",)).select_related("person", "guardian").get(pk=card_id)
        if card.state != CardState.ACTIVE:
            raise CardRefused(title=_("Only an active card can be suspended."), status=409, code="card_not_active")
        now = timezone.now()
        card.state = CardState.SUSPENDED
        card.suspended_at = now
        card.suspended_by = actor
        card.suspension_reason = reason
        card.save(update_fields=["state", "suspended_at", "suspended_by", "suspension_reason", "updated_at"])
        audit_record(
            actor=actor, action="card.suspended", target=card.person, detail={"card": card.pk, "reason": reason}
        )
        with translation.override(settings.LANGUAGE_CODE):
            _tell_holder(
                card,
                kind="card.suspended",
                title=_("Your electronic social-security card is suspended"),
                body=_("Reason: %(reason)s. Call 12393 or visit a medical-insurance service hall with your ID card.")
                % {"reason": reason},
                dedup_key=f"card:{card.pk}:suspended:{now.isoformat()}",
            )
    return card


def card_reactivate(*, card_id: int, actor: User, note: str = "") -> ECard:
    """Lift a suspension: the card is active again and shows its code; an audit row is written."""
    _require_card_admin(actor)
    with transaction.atomic():
        card = ECard.objects.select_for_update(of=("self",)).select_related("person", "guardian").get(pk=card_id)
        if card.state != CardState.SUSPENDED:
            raise CardRefused(title=_("This card is not suspended."), status=409, code="card_not_suspended")
        previous = card.suspension_reason
        card.state = CardState.ACTIVE
        card.suspended_at = None
        card.suspended_by = None
        card.suspension_reason = ""
        card.save(update_fields=["state", "suspended_at", "suspended_by", "suspension_reason", "updated_at"])
        audit_record(
            actor=actor,
            action="card.reactivated",
            target=card.person,
            detail={"card": card.pk, "was_suspended_for": previous, "note": " ".join((note or "").split())[:200]},
        )
        with translation.override(settings.LANGUAGE_CODE):
            _tell_holder(
                card,
                kind="card.reactivated",
                title=_("Your electronic social-security card can be used again"),
                body=_("The suspension is lifted; the card shows its code again."),
                dedup_key=f"card:{card.pk}:reactivated:{timezone.now().isoformat()}",
            )
    return card


# --- Dynamic QR codes (R42) ---


def _to_ms(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(milliseconds=1)


def _from_ms(value: int) -> dt.datetime:
    return EPOCH + dt.timedelta(milliseconds=value)


def _may_show(card: ECard, viewer: User) -> bool:
    """R42/R43: the holder; a manager with an active link; the owner of an active binding of a child."""
    person_id = getattr(viewer, "person_id", None)
    if not person_id:
        return False
    is_holder = person_id == card.person_id
    manages = not is_holder and family_card_link_active(manager=person_id, relative=card.person_id)
    owns = (
        not (is_holder or manages)
        and Binding.objects.filter(owner_id=person_id, relative_id=card.person_id, state=BindingState.ACTIVE).exists()
    )
    child = owns and person_is_child(
        person=card.person, region_code=card.person.region_id, on_date=timezone.localdate()
    )
    return rules.may_show_code(
        is_holder=is_holder, manages_holder=manages, owns_binding_of_holder=owns, holder_is_child=child
    )


def qr_token_sign(*, row: QrToken) -> str:
    """R42: the signed code of a QR row: nonce, card, holder, issuing region, expiry (ms since the epoch)."""
    payload = {"n": row.nonce, "c": row.card_id, "h": row.holder_id, "r": row.region_code, "e": _to_ms(row.expires_at)}
    return signing.dumps(payload, salt=QR_SALT, compress=False)


def qr_issue(*, card: ECard, viewer: User) -> tuple[str, QrToken]:
    """R42: a fresh signed code of ``card``, valid ``CARD_QR_TTL_SECONDS`` and usable once.

    The token (django.core.signing, salt ``QR_SALT``) carries nonce, card, holder, issuing region and
    expiry; the row keeps the nonce and who showed it. It always names the holder, never the viewer.
    """
    with transaction.atomic():
        card = ECard.objects.select_related("person").get(pk=card.pk)
        if card.state != CardState.ACTIVE:
            raise CardRefused(
                title=_("This card is not active; it has no QR code."), status=409, code="card_not_active"
            )
        if not _may_show(card, viewer):
            raise CardRefused(title=_("You may not show this card's code."), status=403, code="not_allowed")
        now = timezone.now()
        expires_at = now + dt.timedelta(seconds=_qr_ttl_seconds())
        # Whole milliseconds, so the token's expiry and the row's are the same instant.
        expires_at = expires_at.replace(microsecond=expires_at.microsecond // 1000 * 1000)
        row = QrToken.objects.create(
            nonce=secrets.token_urlsafe(16),
            card=card,
            holder_id=card.person_id,
            shown_by=viewer,
            region_code=card.issuing_region_id,
            expires_at=expires_at,
            created_at=now,
        )
        token = qr_token_sign(row=row)
        if viewer.person_id != card.person_id:
            # R43: showing a relative's code is done on their behalf; it is recorded.
            audit_record(
                actor=viewer, action="card.qr_shown_for_relative", target=card.person, detail={"card": card.pk}
            )
    return token, row


@dataclass(frozen=True)
class PayerView:
    """One account that may pay (R33), as a verifier sees it: masked (R4)."""

    kind: str  # "own" or "binding"
    name: str
    id_number: str
    relationship: str = ""
    relationship_label: str = ""


@dataclass(frozen=True)
class QrVerification:
    """R42: a code accepted (and used up): whose card, its state, and who may pay, in R33 order."""

    holder_name: str
    holder_id_number: str
    card_id: int
    card_state: str
    region_code: str
    region_name: str
    payers: list[PayerView]
    reference: str  # the used code's nonce: what a payment that follows names
    verified_at: dt.datetime


def _refuse(code: str, status: int, title: str, detail: str = "") -> QrRefused:
    return QrRefused(title=title, detail=detail, status=status, code=code)


def _forged() -> QrRefused:
    return _refuse(
        "forged", 400, _("This is not a valid e-card code."), _("Ask the card holder to show the code again.")
    )


def _expired() -> QrRefused:
    return _refuse(
        "expired", 410, _("This code has expired."), _("Ask the card holder to refresh the code and scan it again.")
    )


def _replayed() -> QrRefused:
    return _refuse(
        "replayed",
        409,
        _("This code has been used already."),
        _("Each code is used once. Ask the card holder to refresh it and scan the new one."),
    )


def _parse(token: str) -> dict:
    try:
        payload = signing.loads(token or "", salt=QR_SALT)
    except (signing.BadSignature, ValueError, TypeError, UnicodeError):
        raise _forged() from None
    shape = {"n": str, "c": int, "h": int, "r": str, "e": int}
    if not isinstance(payload, dict) or any(type(payload.get(key)) is not kind for key, kind in shape.items()):
        raise _forged()
    return payload


def qr_verify(*, token: str, verifier: User) -> QrVerification:
    """R42: accept a shown code once: refused if forged, expired, used already (replayed), from a card
    issued in another province than the verifier's institution, or of a card that is not active.

    Only a refusal that concerns the code itself uses it up; a foreign or inactive card leaves it unused.
    The use is one conditional UPDATE, so of two simultaneous verifications exactly one gets through.
    """
    if verifier.role not in (User.Role.CLERK, User.Role.PARTNER):
        raise _refuse("not_a_verifier", 403, _("Only clerks and partner systems verify e-card codes."))
    payload = _parse(token)
    now = timezone.now()
    if now >= _from_ms(payload["e"]):
        raise _expired()
    # The holder's personal account comes along, so the payers need no query of their own for it.
    found = ECard.objects.select_related(
        "person", "person__account", "person__wallet", "person__region", "issuing_region"
    ).filter(pk=payload["c"])
    card = next(iter(found.order_by()[:1]), None)
    if card is None or card.person_id != payload["h"] or card.issuing_region_id != payload["r"]:
        raise _forged()
    verifier_province = (
        next(
            iter(Institution.objects.filter(pk=verifier.institution_id).values_list("region__province", flat=True)),
            None,
        )
        if verifier.institution_id
        else None
    )
    if rules.is_foreign_province(verifier_province=verifier_province, card_province=card.issuing_region.province):
        raise _refuse(
            "foreign_region",
            403,
            _("This card was issued in another province."),
            _(
                "The card was issued by %(region)s (province %(card_province)s); your institution is in province "
                "%(province)s, which does not accept cards of other provinces."
            )
            % {
                "region": card.issuing_region.name,
                "card_province": card.issuing_region.province,
                "province": verifier_province,
            },
        )
    if card.state != CardState.ACTIVE:
        raise _refuse(
            "card_not_active",
            409,
            _("This card is not active."),
            _("The card is %(state)s.") % {"state": card.get_state_display()},
        )
    with transaction.atomic():
        used = QrToken.objects.filter(
            nonce=payload["n"], card_id=card.pk, holder_id=card.person_id, used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now, used_by=verifier)
        if used != 1:
            row = QrToken.objects.filter(nonce=payload["n"]).only("card_id", "used_at", "expires_at").first()
            if row is None or row.card_id != card.pk:
                raise _forged()
            if row.used_at is not None:
                raise _replayed()
            raise _expired()
        payer_rows = payers_for_person(person=card.person, on_date=timezone.localdate(now))
        audit_record(
            actor=verifier,
            action="card.qr_verified",
            target=card.person,
            detail={"card": card.pk, "reference": payload["n"]},
        )
    relation_labels = dict(Relation.choices)
    return QrVerification(
        holder_name=mask_name(card.person.name),
        holder_id_number=mask_id_number(card.person.id_number),
        card_id=card.pk,
        card_state=card.state,
        region_code=card.issuing_region_id,
        region_name=card.issuing_region.name,
        payers=[
            PayerView(
                kind=payer.kind,
                name=mask_name(payer.person.name),
                id_number=mask_id_number(payer.person.id_number),
                relationship=payer.relationship,
                relationship_label=str(relation_labels.get(payer.relationship, "")),
            )
            for payer in payer_rows
        ],
        reference=payload["n"],
        verified_at=now,
    )


def qr_tokens_purge(*, now: dt.datetime, older_than: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Delete unused codes that expired more than ``older_than`` ago; used ones stay as the record of use."""
    deleted, _by_model = QrToken.objects.filter(used_at__isnull=True, expires_at__lt=now - older_than).delete()
    return deleted


# --- Family card service (亲情服务, R43) ---


def _family_card_refused(title: str, *, code: str, status: int = 400, errors=None) -> FamilyCardRefused:
    return FamilyCardRefused(title=title, code=code, status=status, errors=errors or [])


def _family_card_document_content(*, document: UploadedFile | None, document_kind: str) -> StoredContent | None:
    """R43 via R20/R21: the uploaded document checked by content, exactly as a binding's (family.documents)."""
    if document is None:
        return None
    if document_kind not in FamilyCardDocumentKind.values:
        raise DocumentRefused(
            title=_("Choose which document this is."),
            errors=[FieldError("document_kind", _("Choose which document this is."))],
            code="document_kind",
        )
    limit = document_max_bytes()
    document.seek(0)
    # The client's name and content type are never looked at: the content decides (limit + 1: too large shows).
    return read_document_content(document.read(limit + 1))


def _family_card_document_new(
    *, link: FamilyCardLink, kind: str, content: StoredContent, user: User
) -> FamilyCardDocument:
    """A document row with its file written (not saved yet): the caller saves it, or deletes the file."""
    document = FamilyCardDocument(
        link=link,
        kind=kind,
        content_type=content.content_type,
        size=len(content.data),
        pages=max(1, content.pages),
        uploaded_by=user,
    )
    document.file.save(f"document.{content.extension}", ContentFile(content.data), save=False)
    return document


def _family_card_precheck_on_commit(document_id: int) -> None:
    # R24: the pre-check reads the pages (seconds of OCR) in the worker, once the upload is committed.
    from cards import tasks

    enqueue_on_commit(tasks.family_card_document_precheck, document_id)


def family_card_add(
    *,
    manager: InsuredPerson,
    relative_id_number: str,
    relative_name: str,
    relationship: str,
    user: User,
    document: UploadedFile | None = None,
    document_kind: str = FamilyCardDocumentKind.RELATIVE_HOUSEHOLD_REGISTER,
) -> FamilyCardLink:
    """R43: ask to manage a relative's e-card (pending until confirmed). At most ``FAMILY_CARD_MAX_RELATIVES``
    open links; the relative must be an insured person with this name (refused without saying whether the
    ID number exists). It gives no right to spend from anyone's account.

    ``document`` (R20/R21: the relative's household register page, or a newborn's birth medical certificate)
    is checked by ``family.documents.read_document_content`` and stored with the link, all or nothing: a
    refused file (``DocumentRefused``, on the field ``file``) leaves no link and no file. A link without a
    document cannot be confirmed (``family_card_confirm``)."""
    if user.person_id != manager.pk:
        raise _family_card_refused(
            _("Only the manager can add relatives to their own family card service."), code="not_manager", status=403
        )
    if relationship not in Relation.values:
        raise _family_card_refused(
            _("Unknown relationship."),
            code="relationship",
            errors=[FieldError("relationship", _("Choose spouse, parent, child, sibling, grandparent or grandchild."))],
        )
    relative = InsuredPerson.objects.filter(id_number=normalize_id_number(relative_id_number)).first()
    if relative is None or relative.name.strip() != " ".join((relative_name or "").split()):
        # The same words as a binding's (R11): whether the ID number exists is not told.
        raise _family_card_refused(
            _("No insured person matches this name and ID number (R11). Check both as on the ID card."),
            code="relative_not_found",
            errors=[FieldError("relative_id_number", _("No insured person matches this name and ID number."))],
        )
    if relative.pk == manager.pk:
        raise _family_card_refused(
            _("You cannot add yourself."),
            code="self",
            errors=[FieldError("relative_id_number", _("This is your own ID number."))],
        )
    # Decoded before the lock: a bad file is refused before anything is written.
    content = _family_card_document_content(document=document, document_kind=document_kind)
    # R43: the limit is the manager's region's, by the policy in force today.
    limit = family_card_max_for(region_code=manager.region_id, on_date=timezone.localdate())
    stored: FamilyCardDocument | None = None
    try:
        with transaction.atomic():
            # The manager's row serialises this manager's additions: the limit holds under concurrency.
            InsuredPerson.objects.select_for_update().get(pk=manager.pk)
            open_links = FamilyCardLink.objects.filter(manager=manager, state__in=FAMILY_CARD_OPEN_STATES)
            if open_links.filter(relative=relative).exists():
                raise _family_card_refused(
                    _("This relative is in your family card service already."), code="duplicate", status=409
                )
            if open_links.count() >= limit:
                raise _family_card_refused(
                    ngettext(
                        "The family card service manages at most %(limit)d relative; end one to add another.",
                        "The family card service manages at most %(limit)d relatives; end one to add another.",
                        limit,
                    )
                    % {"limit": limit},
                    code="limit",
                    status=409,
                )
            link = FamilyCardLink.objects.create(
                manager=manager, relative=relative, relationship=relationship, created_by=user
            )
            if content is not None:
                # The file is written inside the transaction: if the rows roll back, it is removed below.
                stored = _family_card_document_new(link=link, kind=document_kind, content=content, user=user)
                stored.save()
                _family_card_precheck_on_commit(stored.pk)
            audit_record(
                actor=user,
                action="family_card.added",
                target=relative,
                detail={"link": link.pk, "document": stored.pk if stored is not None else None},
            )
    except Exception:
        # The rows are not there (the block rolled back): neither may the file be.
        if stored is not None and stored.file.name:
            stored.file.storage.delete(stored.file.name)
        raise
    return link


def _family_card_document_live(link: FamilyCardLink) -> FamilyCardDocument | None:
    """The document that counts for a link: the newest one (R24: a rejected one is replaced by a new upload)."""
    return FamilyCardDocument.objects.filter(link=link).order_by("-created_at", "-pk").first()


def _family_card_activate_if_ready(link: FamilyCardLink, *, actor: User | None) -> bool:
    """R43 via R20/R24: a link becomes usable when its document is approved AND the relative's face (16+) or the
    child's photo is recorded, whichever comes last. The caller holds the link's row lock."""
    document = _family_card_document_live(link)
    if (
        link.state != FamilyCardLinkState.PENDING
        or not link.face_step_done
        or document is None
        or document.status != FamilyCardDocumentStatus.APPROVED
    ):
        return False
    link.state = FamilyCardLinkState.ACTIVE
    link.activated_at = timezone.now()
    link.save(update_fields=["state", "activated_at"])
    audit_record(
        actor=actor,
        action="family_card.confirmed",
        target=link.relative,
        detail={"link": link.pk, "verified_by": link.verified_by, "document": document.pk},
    )
    with translation.override(settings.LANGUAGE_CODE):  # the citizen's language: Chinese first
        notification_send(
            person=link.manager,
            kind="family_card.confirmed",
            title=_("You can now manage your relative's e-card (family card service)"),
            body=_("%(name)s: the document is approved and the confirmation is done.")
            % {"name": link.relative.masked_name},
            link=reverse("family_card_detail", args=[link.pk]),
            dedup_key=f"family_card:{link.pk}:confirmed",
        )
    return True


def family_card_confirm(*, link_id: int, verification: FaceVerification) -> FamilyCardLink:
    """R43/R23: record the confirmation of a pending link: 16 or over, the relative's own passed face
    verification (purpose ``family_card_consent``); under 16, a passed local check of a frontal photo of the
    child (purpose ``family_card_photo``) that the manager submitted. Either must be newer than the request.

    The link becomes active only once its document is approved by a reviewer too (R24): whichever of the two
    comes last activates it (``FamilyCardLink.face_step_done`` tells the first one is there)."""
    with transaction.atomic():
        link = FamilyCardLink.objects.select_for_update().select_related("manager", "relative").get(pk=link_id)
        if link.state != FamilyCardLinkState.PENDING:
            raise _family_card_refused(
                _("This family card request is not waiting for confirmation."), code="not_pending", status=409
            )
        if not link.documents.exists():
            # R43 follows R20/R21: no confirmation without the relative's register page or birth certificate.
            raise _family_card_refused(
                _(
                    "This family card request has no document yet. Upload the household register page of the "
                    "relative (or the birth medical certificate of a newborn) before it is confirmed."
                ),
                code="document_missing",
                status=409,
            )
        child = person_is_child(person=link.relative, region_code=link.manager.region_id, on_date=timezone.localdate())
        purpose, verified_by = (
            (FACE_FAMILY_PHOTO, FamilyCardVerifiedBy.PHOTO)
            if child
            else (FACE_FAMILY_CONSENT, FamilyCardVerifiedBy.FACE)
        )
        _check_face(
            verification,
            persons={link.relative_id},
            purpose=purpose,
            reference=str(link.pk),
            not_before=link.created_at,
        )
        link.verified_by = verified_by
        link.verification = verification
        link.save(update_fields=["verified_by", "verification"])
        actor = _login_of(link.manager) if child else _login_of(link.relative)
        audit_record(
            actor=actor,
            action="family_card.face_recorded",
            target=link.relative,
            detail={"link": link.pk, "verified_by": verified_by, "verification": verification.pk},
        )
        _family_card_activate_if_ready(link, actor=actor)
    return link


# --- Review of family card documents (R43 via R20/R21, R24) ---

# FamilyCardDocument.rejection_reason
FAMILY_CARD_REASON_MAX = 300


def _require_reviewer(user: User) -> None:
    if not (user.role in (User.Role.REVIEWER, User.Role.ADMIN) or user.is_superuser):
        raise _family_card_refused(_("Only reviewers decide documents."), code="not_a_reviewer", status=403)


def family_card_document_held_by_other(document: FamilyCardDocument, reviewer: User) -> bool:
    """Another reviewer took this document and their hold has not lapsed (admins are never held back)."""
    return (
        document.claimed_by_id is not None
        and document.claimed_by_id != reviewer.pk
        and document.claimed_at >= claim_cutoff()
        and not is_review_admin(reviewer)
    )


def family_card_document_take_next(*, reviewer: User) -> FamilyCardDocument | None:
    """R24: hold the oldest waiting family card document for ``reviewer`` and return it; None when none is left.

    What the reviewer already holds comes first (a reload does not lose it); a reviewer holds one document
    at a time, so any other goes back. Two reviewers taking at once get different documents: PostgreSQL
    passes over rows being taken (``skip_locked``) and the compare-and-set UPDATE decides on any database.
    """
    _require_reviewer(reviewer)
    skipped: set[int] = set()
    for _attempt in range(CLAIM_ATTEMPTS):
        now = timezone.now()
        free = Q(claimed_by__isnull=True) | Q(claimed_at__lt=claim_cutoff(now)) | Q(claimed_by=reviewer)
        with transaction.atomic():
            candidate = (
                FamilyCardDocument.objects.filter(
                    free, status=FamilyCardDocumentStatus.PENDING, link__state=FamilyCardLinkState.PENDING
                )
                .exclude(pk__in=skipped)
                .select_related("link")
                .order_by(
                    Case(When(claimed_by=reviewer, then=Value(0)), default=Value(1), output_field=IntegerField()),
                    "created_at",
                    "pk",
                )
                .select_for_update(skip_locked=True, of=("self",))
                .first()
            )
            if candidate is None:
                return None
            taken = FamilyCardDocument.objects.filter(Q(pk=candidate.pk) & free).update(
                claimed_by=reviewer, claimed_at=now
            )
            if not taken:
                skipped.add(candidate.pk)  # another reviewer was quicker
                continue
            FamilyCardDocument.objects.filter(claimed_by=reviewer).exclude(pk=candidate.pk).update(
                claimed_by=None, claimed_at=None
            )
            link = candidate.link
            # manager/relative let the audit log find this by person, as for the other document events (R51).
            audit_record(
                actor=reviewer,
                action="family_card.document_taken",
                target=candidate,
                detail={"link": link.pk, "manager": link.manager_id, "relative": link.relative_id},
            )
            return candidate
    return None


def _document_for_decision(document_id: int, reviewer: User) -> tuple[FamilyCardLink, FamilyCardDocument]:
    """Lock the link, then the document (the order uploads take them): two reviewers never both decide.
    A document another reviewer holds is theirs to decide until the hold lapses."""
    link_id = FamilyCardDocument.objects.filter(pk=document_id).values_list("link_id", flat=True).first()
    if link_id is None:
        raise _family_card_refused(_("There is no such document."), code="not_found", status=404)
    link = FamilyCardLink.objects.select_for_update().select_related("manager", "relative").get(pk=link_id)
    document = FamilyCardDocument.objects.select_for_update().get(pk=document_id)
    if document.status != FamilyCardDocumentStatus.PENDING:
        raise _family_card_refused(_("This document has been decided already."), code="decided_already", status=409)
    if family_card_document_held_by_other(document, reviewer):
        raise _family_card_refused(
            _("Another reviewer has taken this document; it is theirs to decide."), code="held_by_other", status=409
        )
    if link.state != FamilyCardLinkState.PENDING:
        raise _family_card_refused(
            _("This family card request is no longer waiting (it is %(state)s).") % {"state": link.get_state_display()},
            code="not_pending",
            status=409,
        )
    return link, document


def _approved_body(document: FamilyCardDocument, link: FamilyCardLink) -> str:
    """What the manager reads when the document is approved: and what is still awaited, if anything."""
    body = _("%(kind)s of %(name)s.") % {"kind": document.get_kind_display(), "name": link.relative.masked_name}
    if not link.face_step_done:
        body += " " + _("The card can be managed once the confirmation (face verification or photo) is done.")
    return body


def family_card_document_approve(
    *, document_id: int, reviewer: User, request: HttpRequest | None = None
) -> FamilyCardDocument:
    """R24: a reviewer approves a family card document; with the face or photo step done, the link is active."""
    _require_reviewer(reviewer)
    with transaction.atomic():
        link, document = _document_for_decision(document_id, reviewer)
        document.status = FamilyCardDocumentStatus.APPROVED
        document.decided_by = reviewer
        document.decided_at = timezone.now()
        document.claimed_by, document.claimed_at = None, None
        document.save(update_fields=["status", "decided_by", "decided_at", "claimed_by", "claimed_at"])
        audit_record(
            actor=reviewer,
            action="family_card.document_approved",
            target=document,
            request=request,
            detail={"link": link.pk, "manager": link.manager_id, "relative": link.relative_id},
        )
        with translation.override(settings.LANGUAGE_CODE):
            notification_send(
                person=link.manager,
                kind="family_card.document_approved",
                title=_("Your family card service document is approved"),
                body=_approved_body(document, link),
                link=reverse("family_card_detail", args=[link.pk]),
                dedup_key=f"family_card_document:{document.pk}:approved",
            )
        _family_card_activate_if_ready(link, actor=reviewer)
    return document


def _rejection_text(*, reason_id: int | None, note: str, language: str | None) -> str:
    """The words the manager reads: the canned reason in the chosen language, then the reviewer's note."""
    reason = None
    if reason_id is not None:
        reason = ReviewReason.objects.filter(pk=reason_id, active=True).first()
        if reason is None:
            raise _family_card_refused(
                _("Choose one of the offered reasons."),
                code="reason_unknown",
                errors=[FieldError("reason", _("Choose one of the offered reasons."))],
            )
    canned = reason.text_for(language or settings.LANGUAGE_CODE) if reason is not None else ""
    text = " ".join(part for part in (canned, " ".join((note or "").split())) if part)
    if not text:
        raise _family_card_refused(
            _("Choose a reason or write one: the citizen sees it."),
            code="reason_required",
            errors=[FieldError("reason", _("Choose a reason or write one."))],
        )
    if len(text) > FAMILY_CARD_REASON_MAX:
        raise _family_card_refused(
            _("The reason is too long: at most %(limit)d characters.") % {"limit": FAMILY_CARD_REASON_MAX},
            code="reason_too_long",
            errors=[FieldError("note", _("Shorten the note."))],
        )
    return text


def family_card_document_reject(
    *,
    document_id: int,
    reviewer: User,
    reason_id: int | None = None,
    note: str = "",
    language: str | None = None,
    request: HttpRequest | None = None,
) -> FamilyCardDocument:
    """R24: a reviewer rejects a family card document with the reason the manager sees; the link waits for a
    new upload (``family_card_document_replace``)."""
    _require_reviewer(reviewer)
    text = _rejection_text(reason_id=reason_id, note=note, language=language)
    with transaction.atomic():
        link, document = _document_for_decision(document_id, reviewer)
        document.status = FamilyCardDocumentStatus.REJECTED
        document.rejection_reason = text
        document.decided_by = reviewer
        document.decided_at = timezone.now()
        document.claimed_by, document.claimed_at = None, None
        document.save(
            update_fields=["status", "rejection_reason", "decided_by", "decided_at", "claimed_by", "claimed_at"]
        )
        audit_record(
            actor=reviewer,
            action="family_card.document_rejected",
            target=document,
            request=request,
            detail={
                "link": link.pk,
                "manager": link.manager_id,
                "relative": link.relative_id,
                "reason_id": reason_id,
                "reason": text,
            },
        )
        with translation.override(language or settings.LANGUAGE_CODE):
            notification_send(
                person=link.manager,
                kind="family_card.document_rejected",
                title=_("Please upload the family card service document again"),
                body=f"{document.get_kind_display()}: {text}",
                link=reverse("family_card_detail", args=[link.pk]),
                dedup_key=f"family_card_document:{document.pk}:rejected",
            )
    return document


def family_card_document_replace(
    *, link_id: int, user: User, document: UploadedFile, document_kind: str
) -> FamilyCardDocument:
    """R24: after a rejection, the manager uploads the document again; it waits for a reviewer as the first did.

    Checked by content like the first (``DocumentRefused`` on the field ``file``); a refused or concurrent
    second upload leaves no row and no file."""
    content = _family_card_document_content(document=document, document_kind=document_kind)
    if content is None:
        raise DocumentRefused(
            title=_("Choose the file to upload."),
            errors=[FieldError("file", _("Choose the file to upload."))],
            code="document_empty",
        )
    stored: FamilyCardDocument | None = None
    try:
        with transaction.atomic():
            link = FamilyCardLink.objects.select_for_update().select_related("relative").get(pk=link_id)
            if user.person_id != link.manager_id:
                raise _family_card_refused(
                    _("Only the manager uploads documents for this request."), code="not_manager", status=403
                )
            if link.state != FamilyCardLinkState.PENDING:
                raise _family_card_refused(
                    _("This family card request no longer takes documents."), code="documents_closed", status=409
                )
            live = _family_card_document_live(link)
            if live is not None and live.status != FamilyCardDocumentStatus.REJECTED:
                raise _family_card_refused(
                    _("The document is uploaded already; it can be replaced only after it is rejected."),
                    code="document_already_uploaded",
                    status=409,
                )
            stored = _family_card_document_new(link=link, kind=document_kind, content=content, user=user)
            stored.save()
            audit_record(
                actor=user,
                action="family_card.document_uploaded",
                target=link.relative,
                detail={"link": link.pk, "document": stored.pk, "replaces": live.pk if live else None},
            )
            _family_card_precheck_on_commit(stored.pk)
    except Exception as error:
        if stored is not None and stored.file.name:
            stored.file.storage.delete(stored.file.name)
        if isinstance(error, IntegrityError):
            # Two uploads at once: the one-live-document constraint let one through.
            raise _family_card_refused(
                _("The document is uploaded already; it can be replaced only after it is rejected."),
                code="document_already_uploaded",
                status=409,
            ) from None
        raise
    return stored


def _family_card_read_pages(document: FamilyCardDocument) -> list:
    """Readability of each page (the first five) and the text of the readable ones (family.precheck)."""
    import io

    from PIL import Image

    from family.precheck import PageResult, ocr_text, readability

    results = []
    for page in range(min(max(document.pages, 1), 5)):
        data = document_page_image(document=document, page=page, max_side=2000)
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
            image = picture.convert("RGB")
        quality = readability(image)
        results.append(PageResult(quality, ocr_text(image) if quality.ok else ""))
    return results


def family_card_document_precheck_run(*, document_id: int, today: dt.date | None = None) -> FamilyCardDocument | None:
    """R24: the automatic pre-check of a family card document, as a binding's: readability and the recognised
    text compared with the manager, the relative and the relationship claimed. It never decides (R24).

    Idempotent: only a document whose pre-check is ``pending`` is checked; the report is written under the row
    lock after checking that again. Returns the document, or None when there was nothing to do."""
    from family.precheck import Claim, ClaimedPerson, OcrError, build_report

    document = (
        FamilyCardDocument.objects.select_related("link__manager", "link__relative").filter(pk=document_id).first()
    )
    if document is None or document.precheck_status != FamilyCardPrecheckStatus.PENDING:
        return None
    link = document.link
    claim = Claim(
        kind=document.kind,
        relationship=link.relationship,
        owner=ClaimedPerson(link.manager.name, link.manager.id_number),
        relative=ClaimedPerson(link.relative.name, link.relative.id_number),
    )
    try:
        pages = _family_card_read_pages(document)
    except OcrError as error:
        status = FamilyCardPrecheckStatus.FAILED
        report = {"error": {"code": error.code, "detail": error.detail[:500]}, "checks": [], "text": ""}
    except (OSError, ValueError, pypdfium2.PdfiumError) as error:  # a missing file or page, damaged content
        status = FamilyCardPrecheckStatus.FAILED
        report = {"error": {"code": "page_unavailable", "detail": str(error)[:500]}, "checks": [], "text": ""}
    else:
        report = build_report(pages=pages, claim=claim, today=today or timezone.localdate())
        readable = any(page.readability.ok for page in pages)
        status = FamilyCardPrecheckStatus.DONE if readable else FamilyCardPrecheckStatus.UNREADABLE
    with transaction.atomic():
        locked = FamilyCardDocument.objects.select_for_update().filter(pk=document_id).first()
        if locked is None or locked.precheck_status != FamilyCardPrecheckStatus.PENDING:
            return None
        locked.precheck_status = status
        locked.precheck = report
        locked.save(update_fields=["precheck_status", "precheck"])
    return locked


def family_card_end(*, link_id: int, user: User) -> FamilyCardLink:
    """R43: the manager stops managing, or the relative withdraws; at once."""
    with transaction.atomic():
        link = FamilyCardLink.objects.select_for_update().select_related("relative").get(pk=link_id)
        if user.person_id not in (link.manager_id, link.relative_id):
            raise _family_card_refused(
                _("Only the manager or the relative can end this."), code="not_a_party", status=403
            )
        if link.state not in FAMILY_CARD_OPEN_STATES:
            raise _family_card_refused(_("This family card link has ended already."), code="ended", status=409)
        link.state = FamilyCardLinkState.ENDED
        link.ended_at = timezone.now()
        link.ended_by = user
        link.save(update_fields=["state", "ended_at", "ended_by"])
        audit_record(actor=user, action="family_card.ended", target=link.relative, detail={"link": link.pk})
    return link


def card_claim_for_child(*, manager_user: User, child: InsuredPerson, region_code: str) -> ECard:
    """R43: a manager with an active family card link to a child under 16 claims the child's card; the
    manager then accepts the agreement, verifies their own face and sets the password."""
    manager = manager_user.person
    if manager is None or not family_card_link_active(manager=manager, relative=child):
        raise CardRefused(
            title=_("Add this relative to your family card service first."), status=403, code="not_managed"
        )
    if not person_is_child(person=child, region_code=manager.region_id, on_date=timezone.localdate()):
        raise CardRefused(
            title=_("From 16, a person claims their own card."),
            detail=_("Ask your relative to claim the card with their own face verification."),
            status=409,
            code="not_a_child",
        )
    return _claim_start(person=child, region_code=region_code, channel=CardChannel.PORTAL, guardian=manager)


def family_card_wallet_open(*, link_id: int, user: User) -> Wallet:
    """R37, R43: a manager opens the relative's medical-insurance wallet on their behalf, so a relative
    in another province can receive an owner's transfers. Opening moves no money; idempotent."""
    link = (
        FamilyCardLink.objects.select_related("relative")
        .filter(pk=link_id, manager_id=user.person_id, state=FamilyCardLinkState.ACTIVE)
        .first()
    )
    if link is None:
        raise _family_card_refused(
            _("Only the manager of an active family card link can do this."), code="not_manager", status=404
        )
    return wallet_open(person=link.relative, opened_by=user)

"""E-cards (电子社保卡, R40–R41), their dynamic QR codes (R42) and the family card service (亲情服务, R43)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import FaceVerification, InsuredPerson, Region, User
from accounts.storage import private_storage
from family.models import Relation


class CardChannel(models.TextChoices):
    """Where the card was claimed (R40)."""

    PORTAL = "portal", _("this portal")
    ALIPAY = "alipay", _("Alipay")
    WECHAT = "wechat", _("WeChat")
    BANK = "bank", _("bank app")


class CardState(models.TextChoices):
    # A context of their own: "suspended" is 停保 for insurance, 已暂停 for a card.
    PENDING = "pending", pgettext_lazy("e-card state", "claim in progress")
    ACTIVE = "active", pgettext_lazy("e-card state", "active")
    SUSPENDED = "suspended", pgettext_lazy("e-card state", "suspended")


class ECard(models.Model):
    """电子社保卡: one per person (R40), claimed in four steps: region, agreement, face, password.

    The password is Django's hasher output, never the digits (R41); failures are counted here, in
    the database, so the lock holds across sessions and devices.
    """

    # R40: one person, one e-card (OneToOne: a unique constraint in the database).
    person = models.OneToOneField(
        InsuredPerson, on_delete=models.PROTECT, related_name="ecard", verbose_name=_("card holder")
    )
    issuing_region = models.ForeignKey(Region, on_delete=models.PROTECT, verbose_name=_("issuing region"))
    channel = models.CharField(_("channel"), max_length=16, choices=CardChannel.choices, default=CardChannel.PORTAL)
    state = models.CharField(_("state"), max_length=16, choices=CardState.choices, default=CardState.PENDING)
    # R43: a manager (亲情服务) who claims a child's card; their face stands in for the child's.
    guardian = models.ForeignKey(
        InsuredPerson,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("claimed on the holder's behalf by"),
    )
    agreement_accepted_at = models.DateTimeField(_("user agreement accepted at"), null=True, blank=True)
    face_verified_at = models.DateTimeField(_("face verified at"), null=True, blank=True)
    face_verification = models.ForeignKey(
        FaceVerification,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("face verification"),
    )
    password = models.CharField(_("card password (hashed)"), max_length=128, blank=True)
    password_set_at = models.DateTimeField(_("password set at"), null=True, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(_("wrong passwords in a row"), default=0)
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    # A suspended card (已暂停) shows no code and verifies none; the holder's page says why (card_suspend).
    suspended_at = models.DateTimeField(_("suspended at"), null=True, blank=True)
    suspended_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("suspended by")
    )
    suspension_reason = models.CharField(_("reason for the suspension"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("claim started at"), default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("e-card (电子社保卡)")
        verbose_name_plural = _("e-cards (电子社保卡)")
        constraints = [
            models.CheckConstraint(condition=Q(state__in=CardState.values), name="ecard_state_known"),
            models.CheckConstraint(condition=Q(channel__in=CardChannel.values), name="ecard_channel_known"),
            # R40/R41: a half-finished claim never leaves an active card without a password.
            models.CheckConstraint(
                condition=~Q(state=CardState.ACTIVE) | ~Q(password=""), name="ecard_active_password"
            ),
            models.CheckConstraint(
                condition=~Q(state=CardState.ACTIVE)
                | Q(
                    agreement_accepted_at__isnull=False,
                    face_verified_at__isnull=False,
                    password_set_at__isnull=False,
                    claimed_at__isnull=False,
                ),
                name="ecard_active_claim_complete",
            ),
            models.CheckConstraint(condition=~Q(guardian=F("person")), name="ecard_guardian_not_self"),
            # The holder is always told when and why their card was suspended.
            models.CheckConstraint(
                condition=~Q(state=CardState.SUSPENDED) | (Q(suspended_at__isnull=False) & ~Q(suspension_reason="")),
                name="ecard_suspended_with_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.person.masked_name} {self.person.masked_id_number} ({self.get_state_display()})"

    @property
    def is_active(self) -> bool:
        return self.state == CardState.ACTIVE

    @property
    def is_suspended(self) -> bool:
        return self.state == CardState.SUSPENDED


class QrToken(models.Model):
    """R42: one dynamic QR code. The code itself is signed and not stored; the nonce is, and is used once."""

    nonce = models.CharField(_("nonce"), max_length=32, unique=True)
    card = models.ForeignKey(ECard, on_delete=models.PROTECT, related_name="qr_tokens", verbose_name=_("e-card"))
    # Whose code it is (the patient, R32) — never the person who shows it.
    holder = models.ForeignKey(InsuredPerson, on_delete=models.PROTECT, related_name="+", verbose_name=_("card holder"))
    # R42/R43: who showed it: the holder, or a family-card manager / binding owner of a child.
    shown_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", verbose_name=_("shown by"))
    region_code = models.CharField(_("issuing region"), max_length=6)
    expires_at = models.DateTimeField(_("valid until"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    used_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("verified by")
    )
    created_at = models.DateTimeField(_("issued at"), default=timezone.now)

    class Meta:
        verbose_name = _("QR code")
        verbose_name_plural = _("QR codes")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The purge (cards.tasks.qr_tokens_purge) looks for unused codes long expired.
            models.Index(fields=["expires_at"], condition=Q(used_at__isnull=True), name="qrtoken_unused_expiry"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=F("created_at")), name="qrtoken_expires_after_issue"),
            models.CheckConstraint(
                condition=Q(used_at__isnull=True, used_by__isnull=True) | Q(used_at__isnull=False),
                name="qrtoken_used_by_only_when_used",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.nonce[:8]}… {self.region_code} {self.expires_at:%Y-%m-%d %H:%M:%S}"


class FamilyCardLinkState(models.TextChoices):
    PENDING = "pending", _("waiting for confirmation")
    ACTIVE = "active", _("active")
    ENDED = "ended", _("ended")


class FamilyCardVerifiedBy(models.TextChoices):
    # R43/R23: 16 or over, the relative's own face; under 16, a frontal photo of the child.
    FACE = "face", _("the relative's own face verification")
    PHOTO = "photo", _("a frontal photo of the child")


FAMILY_CARD_OPEN_STATES = (FamilyCardLinkState.PENDING, FamilyCardLinkState.ACTIVE)


class FamilyCardLink(models.Model):
    """亲情服务 (R43): the manager may claim, show and follow the relative's e-card. No right to spend."""

    manager = models.ForeignKey(
        InsuredPerson, on_delete=models.PROTECT, related_name="family_cards_managed", verbose_name=_("manager")
    )
    relative = models.ForeignKey(
        InsuredPerson, on_delete=models.PROTECT, related_name="family_card_managers", verbose_name=_("relative")
    )
    relationship = models.CharField(_("relationship"), max_length=16, choices=Relation.choices)
    state = models.CharField(
        _("state"), max_length=16, choices=FamilyCardLinkState.choices, default=FamilyCardLinkState.PENDING
    )
    verified_by = models.CharField(_("confirmed by"), max_length=8, choices=FamilyCardVerifiedBy.choices, blank=True)
    verification = models.ForeignKey(
        FaceVerification,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("face verification"),
    )
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    ended_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("added at"), default=timezone.now)
    activated_at = models.DateTimeField(_("active since"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        verbose_name = _("family card link (亲情服务)")
        verbose_name_plural = _("family card links (亲情服务)")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["manager", "state"], name="familycard_manager_state")]
        constraints = [
            models.CheckConstraint(condition=~Q(manager=F("relative")), name="familycard_not_self"),
            models.CheckConstraint(condition=Q(state__in=FamilyCardLinkState.values), name="familycard_state_known"),
            models.UniqueConstraint(
                fields=["manager", "relative"],
                condition=Q(state__in=[s.value for s in FAMILY_CARD_OPEN_STATES]),
                name="familycard_one_open_per_pair",
            ),
            models.CheckConstraint(
                condition=~Q(state=FamilyCardLinkState.ACTIVE) | (Q(activated_at__isnull=False) & ~Q(verified_by="")),
                name="familycard_active_confirmed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.manager.masked_name} → {self.relative.masked_name} ({self.get_state_display()})"

    @property
    def face_step_done(self) -> bool:
        """R43/R23: the relative's face (16+) or the child's photo is recorded; the review may still be due."""
        return bool(self.verified_by) and self.verification_id is not None


class FamilyCardDocumentKind(models.TextChoices):
    """R43 follows R20/R21: the relative's household register page, or a newborn's birth medical certificate."""

    RELATIVE_HOUSEHOLD_REGISTER = "relative_register", _("household register page of the relative")
    BIRTH_CERTIFICATE = "birth_certificate", _("birth medical certificate")


def family_card_document_path(document: FamilyCardDocument, filename: str) -> str:
    # The citizen's file name never reaches the disk: only the extension we decided on.
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"family_cards/{document.link_id}/{uuid.uuid4().hex}.{extension}"


class FamilyCardDocumentStatus(models.TextChoices):
    """R24: every document is decided by a reviewer; automation never approves alone."""

    PENDING = "pending", _("waiting for review")
    APPROVED = "approved", _("approved")
    REJECTED = "rejected", _("rejected")


class FamilyCardPrecheckStatus(models.TextChoices):
    """R24: the automatic pre-check (readability, recognised text against the claim) of a document."""

    PENDING = "pending", _("not run yet")
    DONE = "done", _("done")
    UNREADABLE = "unreadable", _("unreadable")
    FAILED = "failed", _("could not run")


class FamilyCardDocument(models.Model):
    """A document of a family card link (R43 via R20/R21), checked by content, in private storage (R51),
    pre-checked automatically and decided by a reviewer (R24). A rejected one is replaced by a new upload."""

    link = models.ForeignKey(
        FamilyCardLink, on_delete=models.PROTECT, related_name="documents", verbose_name=_("family card link")
    )
    kind = models.CharField(_("kind"), max_length=32, choices=FamilyCardDocumentKind.choices)
    file = models.FileField(_("file"), storage=private_storage, upload_to=family_card_document_path, max_length=200)
    content_type = models.CharField(_("content type"), max_length=50)
    size = models.PositiveIntegerField(_("size in bytes"))
    pages = models.PositiveSmallIntegerField(_("pages"), default=1)
    uploaded_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("uploaded by")
    )
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now)
    status = models.CharField(
        _("review"), max_length=16, choices=FamilyCardDocumentStatus.choices, default=FamilyCardDocumentStatus.PENDING
    )
    rejection_reason = models.CharField(_("reason for the rejection"), max_length=300, blank=True)
    decided_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("decided by")
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    precheck_status = models.CharField(
        _("pre-check"),
        max_length=16,
        choices=FamilyCardPrecheckStatus.choices,
        default=FamilyCardPrecheckStatus.PENDING,
    )
    precheck = models.JSONField(_("pre-check report"), default=dict, blank=True)
    # The reviewer who took it from the queue ("take the next"), so two reviewers do not read the same
    # document; the hold lapses after REVIEW_CLAIM_IDLE_MINUTES, as on the binding workbench.
    claimed_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("taken by")
    )
    claimed_at = models.DateTimeField(_("taken for review at"), null=True, blank=True)

    class Meta:
        verbose_name = _("family card document")
        verbose_name_plural = _("family card documents")
        ordering = ["link", "created_at", "id"]
        indexes = [
            # The reviewers' queue: waiting documents, oldest first.
            models.Index(
                fields=["created_at", "id"],
                condition=Q(status="pending"),
                name="familycarddoc_waiting",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=FamilyCardDocumentKind.values), name="familycarddocument_kind_known"
            ),
            models.CheckConstraint(
                condition=Q(status__in=FamilyCardDocumentStatus.values), name="familycarddocument_status_known"
            ),
            # R24: one document of a link is live (waiting or approved); a rejected one may be replaced.
            models.UniqueConstraint(
                fields=["link"],
                condition=Q(status__in=["pending", "approved"]),
                name="familycarddocument_one_live_per_link",
            ),
            models.CheckConstraint(
                condition=Q(claimed_by__isnull=True, claimed_at__isnull=True)
                | Q(claimed_by__isnull=False, claimed_at__isnull=False),
                name="familycarddocument_claimed_by_whom",
            ),
            # A decision says who and when; a rejection also why (the citizen reads it).
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False, decided_by__isnull=False),
                name="familycarddocument_decided_by_whom",
            ),
            models.CheckConstraint(
                condition=~Q(status="rejected") | ~Q(rejection_reason=""),
                name="familycarddocument_rejected_with_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.link_id})"

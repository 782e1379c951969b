"""Family sharing: policy versions, bindings with their events, and their documents."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from accounts.models import (
    AppendOnlyModel,
    Institution,
    InsuredPerson,
    PersonalAccount,
    Region,
    Wallet,
    choice_label,
)
from accounts.storage import private_storage


class Relation(models.TextChoices):
    """C3: what the relative is to the owner."""

    SPOUSE = "spouse", _("spouse (配偶)")
    PARENT = "parent", _("parent (父母)")
    CHILD = "child", _("child (子女)")
    SIBLING = "sibling", _("sibling (兄弟姐妹)")
    GRANDPARENT = "grandparent", _("grandparent (祖父母、外祖父母)")
    GRANDCHILD = "grandchild", _("grandchild (孙子女、外孙子女)")


class SharingMode(models.TextChoices):
    PAYMENT = "payment", _("payment from the owner's account")
    TRANSFER = "transfer", _("transfer between accounts")


class PolicyVersion(models.Model):
    """One version of a region's sharing policy (C2), in force from ``effective_from`` to ``effective_to``.

    ``region`` empty is the national default (``*`` in C2 files).
    """

    region = models.ForeignKey(
        Region,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="policies",
        verbose_name=_("pooling region"),
    )
    effective_from = models.DateField(_("in force from"))
    effective_to = models.DateField(_("in force until (exclusive)"), null=True, blank=True)
    relations = models.JSONField(_("relationships allowed"), default=list)
    cross_province = models.BooleanField(_("cross-province sharing opened"), default=False)
    max_members = models.PositiveIntegerField(_("most relatives per owner"), null=True, blank=True)
    multiple_owners = models.BooleanField(_("a relative may be in several networks"), default=False)
    sharing_mode = models.CharField(
        _("sharing mode"), max_length=16, choices=SharingMode.choices, default=SharingMode.PAYMENT
    )
    face_age = models.PositiveSmallIntegerField(_("face verification from age"), default=16)
    min_owner_balance = models.DecimalField(
        _("minimum owner balance"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    one_owner_per_payment = models.BooleanField(_("one owner's account per payment"), default=False)
    # R31: the long-term-care insurance contribution (长护险) may be paid where the region has it.
    long_term_care = models.BooleanField(_("long-term-care insurance in the region"), default=False)
    # R43: how many relatives one user may manage through the family card service; empty: the
    # FAMILY_CARD_MAX_RELATIVES setting (8, the e-card's 亲情服务; the national app's 亲情账户 allows 5).
    family_card_max = models.PositiveSmallIntegerField(
        _("most relatives in the family card service"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("policy version")
        verbose_name_plural = _("policy versions")
        ordering = ["region_id", "effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["region", "effective_from"], name="policy_region_start_unique"),
            models.UniqueConstraint(
                fields=["effective_from"], condition=Q(region__isnull=True), name="policy_national_start_unique"
            ),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True) | Q(effective_to__gt=F("effective_from")),
                name="policy_period_not_empty",
            ),
            models.CheckConstraint(condition=Q(sharing_mode__in=SharingMode.values), name="policy_sharing_mode"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """How R13 and C3 name a version: ``320500@2024-07-01`` or ``*@2021-04-13``."""
        return f"{self.region_id or '*'}@{self.effective_from.isoformat()}"


class BindingMethod(models.TextChoices):
    ONLINE_ID = "online_id", _("online, by ID number")
    NEWBORN = "newborn", _("newborn, by birth medical certificate")
    COUNTER = "counter", _("at a counter")


class BindingState(models.TextChoices):
    """R25."""

    SUBMITTED = "submitted", _("submitted")
    UNDER_REVIEW = "under_review", _("under review")
    AWAITING_FACE = "awaiting_face", _("waiting for the relative's face verification")
    ACTIVE = "active", _("active")
    REJECTED = "rejected", _("rejected")
    CANCELLED = "cancelled", _("cancelled")
    EXPIRED = "expired", _("expired")
    ENDED = "ended", _("ended")


PENDING_STATES = (BindingState.SUBMITTED, BindingState.UNDER_REVIEW, BindingState.AWAITING_FACE)
OPEN_STATES = (*PENDING_STATES, BindingState.ACTIVE)


class Binding(models.Model):
    """共济绑定: the owner lets the relative spend from the owner's personal account (R12–R27).

    The state changes only through ``family.services.binding_transition`` (R25), which writes a
    ``BindingEvent`` in the same transaction. The policy version is kept as its label, since
    loading a policy file replaces version rows (C2) while a binding's history must stay.
    """

    owner = models.ForeignKey(
        InsuredPerson, on_delete=models.PROTECT, related_name="bindings_owned", verbose_name=_("account owner")
    )
    relative = models.ForeignKey(
        InsuredPerson,
        on_delete=models.PROTECT,
        related_name="bindings_joined",
        null=True,
        blank=True,
        verbose_name=_("relative"),
        help_text=_("Empty only for a newborn whose ID number is not issued yet (R21)."),
    )
    relationship = models.CharField(_("relationship"), max_length=16, choices=Relation.choices)
    method = models.CharField(_("method"), max_length=16, choices=BindingMethod.choices)
    state = models.CharField(
        _("state"), max_length=16, choices=BindingState.choices, default=BindingState.SUBMITTED, db_index=True
    )
    region = models.ForeignKey(Region, on_delete=models.PROTECT, verbose_name=_("owner's pooling region"))
    policy_label = models.CharField(_("policy version"), max_length=32, blank=True)
    decision_date = models.DateField(_("decision date"), null=True, blank=True)
    # R16 doubts and the refusing reasons of the last eligibility check, as [{rule, message}].
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    needs_review = models.BooleanField(_("plausibility doubt"), default=False)
    needs_face_verification = models.BooleanField(_("needs face verification"), default=False)
    # R15: whether this binding holds the relative's single network (regions that allow several owners say no).
    exclusive = models.BooleanField(default=True)
    # R27: the owner's authorization period; empty means open-ended.
    authorized_from = models.DateField(_("authorized from"), null=True, blank=True)
    authorized_until = models.DateField(_("authorized until"), null=True, blank=True)
    face_deadline = models.DateTimeField(_("face verification due by"), null=True, blank=True)
    # R21: a newborn is named by the mother's details and the certificate until the ID number is added.
    newborn_name = models.CharField(_("newborn's name"), max_length=50, blank=True)
    mother_name = models.CharField(_("mother's name"), max_length=50, blank=True)
    mother_id_number = models.CharField(_("mother's ID number"), max_length=18, blank=True)
    birth_certificate_number = models.CharField(_("birth certificate number"), max_length=20, blank=True)
    # R20: the commitment letter as signed.
    letter_signed_name = models.CharField(_("commitment letter signed by"), max_length=50, blank=True)
    letter_signed_at = models.DateTimeField(_("commitment letter signed at"), null=True, blank=True)
    # R22: the counter's record.
    institution = models.ForeignKey(
        "accounts.Institution", on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("institution")
    )
    originals_seen = models.JSONField(_("originals seen"), default=list, blank=True)
    submitted_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # R24: a person decides; automation never approves alone.
    reviewed_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    # R24: the reviewer who took this application from the queue; released when idle too long.
    claimed_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    claimed_at = models.DateTimeField(_("taken for review at"), null=True, blank=True)
    created_at = models.DateTimeField(_("submitted at"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    activated_at = models.DateTimeField(_("active since"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    end_reason = models.CharField(_("why it ended"), max_length=200, blank=True)
    # R22: the card numbers read at the counter ({"owner": ..., "relative": ...}).
    counter_cards = models.JSONField(_("cards read at the counter"), default=dict, blank=True)

    class Meta:
        verbose_name = _("family-sharing binding")
        verbose_name_plural = _("family-sharing bindings")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "state"], name="binding_owner_state"),
            models.Index(fields=["relative", "state"], name="binding_relative_state"),
            # A mother sees her newborn's application (R13) before the child has an ID number of its own:
            # the family page's third OR branch, so PostgreSQL can OR three index scans, not scan the table.
            models.Index(fields=["mother_id_number"], condition=Q(method="newborn"), name="binding_newborn_mother"),
        ]
        constraints = [
            # R15: never relative of himself.
            models.CheckConstraint(condition=~Q(owner=F("relative")), name="binding_not_self"),
            models.CheckConstraint(
                condition=Q(relative__isnull=False) | Q(method="newborn"), name="binding_relative_unless_newborn"
            ),
            models.CheckConstraint(condition=Q(state__in=BindingState.values), name="binding_state_known"),
            # One open application or binding per pair: a second is shown the first, not duplicated.
            models.UniqueConstraint(
                fields=["owner", "relative"],
                condition=Q(state__in=[s.value for s in OPEN_STATES]),
                name="binding_one_open_per_pair",
            ),
            # R15 default: a relative belongs to at most one active network (unless the region allows several).
            models.UniqueConstraint(
                fields=["relative"],
                condition=Q(state=BindingState.ACTIVE, exclusive=True),
                name="binding_one_exclusive_network",
            ),
            models.CheckConstraint(
                condition=Q(authorized_until__isnull=True)
                | Q(authorized_from__isnull=True)
                | Q(authorized_until__gte=F("authorized_from")),
                name="binding_authorization_period",
            ),
        ]

    def __str__(self) -> str:
        relative = self.relative.masked_name if self.relative_id else self.newborn_name or "—"
        return f"{self.owner.masked_name} → {relative} ({self.get_relationship_display()}, {self.get_state_display()})"

    def get_relationship_display(self) -> str:
        return choice_label(Relation, self.relationship)

    def get_state_display(self) -> str:
        return choice_label(BindingState, self.state)

    @property
    def is_pending(self) -> bool:
        return self.state in PENDING_STATES


class BindingEvent(AppendOnlyModel):
    """R25: every change of a binding: who, when, from which state to which, and why."""

    binding = models.ForeignKey(Binding, on_delete=models.PROTECT, related_name="events")
    actor = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    actor_label = models.CharField(_("who"), max_length=150)
    from_state = models.CharField(_("from"), max_length=16, blank=True)
    to_state = models.CharField(_("to"), max_length=16)
    reason = models.TextField(_("why"), blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        verbose_name = _("binding event")
        verbose_name_plural = _("binding events")
        ordering = ["created_at", "id"]
        constraints = [
            # Exactly one event per transition into a state (redelivered tasks cannot write a second).
            models.UniqueConstraint(
                fields=["binding", "from_state", "to_state"], name="binding_event_once_per_transition"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.from_state or '∅'} → {self.to_state}"


class DocumentKind(models.TextChoices):
    OWNER_HOUSEHOLD_REGISTER = "owner_register", _("household register page of the owner")
    RELATIVE_HOUSEHOLD_REGISTER = "relative_register", _("household register page of the relative")
    MARRIAGE_CERTIFICATE = "marriage_certificate", _("marriage certificate")
    BIRTH_CERTIFICATE = "birth_certificate", _("birth medical certificate")
    COMMITMENT_LETTER = "commitment_letter", _("signed commitment letter")


class PrecheckStatus(models.TextChoices):
    PENDING = "pending", _("waiting for the automatic check")
    DONE = "done", _("checked automatically")
    UNREADABLE = "unreadable", _("unreadable")
    FAILED = "failed", _("could not be checked")


class DocumentStatus(models.TextChoices):
    PENDING = "pending", _("waiting for review")
    APPROVED = "approved", _("accepted")
    REJECTED = "rejected", _("rejected")


def document_path(document: BindingDocument, filename: str) -> str:
    # The citizen's file name never reaches the disk (no path tricks): only the extension we decided on.
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"bindings/{document.binding_id}/{uuid.uuid4().hex}.{extension}"


class BindingDocument(models.Model):
    """An uploaded or generated document of an application (R20, R24), in private storage (R51)."""

    binding = models.ForeignKey(Binding, on_delete=models.PROTECT, related_name="documents")
    kind = models.CharField(_("kind"), max_length=32, choices=DocumentKind.choices)
    file = models.FileField(_("file"), storage=private_storage, upload_to=document_path, max_length=200)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    status = models.CharField(
        _("status"), max_length=16, choices=DocumentStatus.choices, default=DocumentStatus.PENDING
    )
    rejection_reason = models.CharField(_("why it was rejected"), max_length=300, blank=True)
    uploaded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    # Rendered pages of a PDF and a small picture for the reviewer's queue (private too).
    pages = models.PositiveSmallIntegerField(_("pages"), default=1)
    thumbnail = models.FileField(storage=private_storage, upload_to=document_path, max_length=200, blank=True)
    # R24: the automatic pre-check (readability, recognised text compared with the claim); never approves.
    precheck_status = models.CharField(
        _("pre-check"), max_length=16, choices=PrecheckStatus.choices, default=PrecheckStatus.PENDING
    )
    precheck = models.JSONField(_("pre-check report"), default=dict, blank=True)
    decided_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["binding", "kind", "-created_at"]
        constraints = [
            # Re-uploading replaces only a rejected document: one live document of each kind.
            models.UniqueConstraint(
                fields=["binding", "kind"],
                condition=~Q(status="rejected"),
                name="document_one_live_per_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_status_display()})"


class ReviewReason(models.Model):
    """A canned reason a reviewer picks when rejecting (the citizen sees it); the list is edited in the admin."""

    text_zh = models.CharField(_("reason (Chinese)"), max_length=200)
    text_en = models.CharField(_("reason (English)"), max_length=200)
    active = models.BooleanField(_("offered"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("rejection reason")
        verbose_name_plural = _("rejection reasons")
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.text_zh

    def text_for(self, language: str) -> str:
        """The reason in the citizen's language (Chinese unless English)."""
        return self.text_en if (language or "").startswith("en") else self.text_zh


# ---------------------------------------------------------------------------------------------
# Spending (R31–R37): payments with their parts and refunds, transfers (R36), wallet transfers (R37).
# Money itself moves only as ledger (and wallet) entries; these rows say why, for whom and by which key.


class PaymentKind(models.TextChoices):
    """R31: what a personal account may pay for."""

    MEDICAL = "medical", _("self-paid part of medical costs")
    PHARMACY = "pharmacy", _("pharmacy purchase")
    RESIDENT_CONTRIBUTION = "resident_contribution", _("resident-insurance contribution")
    LTC_CONTRIBUTION = "ltc_contribution", _("long-term-care insurance contribution")


class PharmacyCategory(models.TextChoices):
    """R31: at a designated pharmacy, only these."""

    DRUG = "drug", _("drugs")
    DEVICE = "device", _("medical devices")
    CONSUMABLE = "consumable", _("medical consumables")


class PaymentSource(models.TextChoices):
    OWN = "own", _("own personal account")
    WALLET = "wallet", _("own medical-insurance wallet")
    BINDING = "binding", _("family member's account")


class OfficeState(models.TextChoices):
    """A contribution is confirmed by the insurance office after it is paid (R31)."""

    NONE = "", _("not a contribution")
    PENDING = "pending", _("waiting for the insurance office")
    CONFIRMED = "confirmed", _("confirmed by the insurance office")


class Payment(models.Model):
    """A settlement charged to personal accounts (R31–R34): one per idempotency key and client.

    ``client`` is the login that called (a partner's token, a clerk, a citizen paying a contribution):
    keys are unique per client, and the same key again returns this payment's receipt.
    """

    client = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.CharField(_("idempotency key"), max_length=64)
    request_hash = models.CharField(max_length=64)
    reference = models.CharField(_("payment number"), max_length=20, unique=True)
    patient = models.ForeignKey(
        InsuredPerson, on_delete=models.PROTECT, related_name="payments", verbose_name=_("patient")
    )
    card_number = models.CharField(_("card presented"), max_length=20, blank=True)
    # R42: the QR code (its nonce) that identified the patient; one code pays once.
    qr_reference = models.CharField(_("QR code used"), max_length=32, blank=True)
    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("where")
    )
    kind = models.CharField(_("kind"), max_length=24, choices=PaymentKind.choices)
    category = models.CharField(_("category"), max_length=16, choices=PharmacyCategory.choices, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    cash_amount = models.DecimalField(_("paid in cash"), max_digits=12, decimal_places=2)
    refunded_amount = models.DecimalField(_("refunded"), max_digits=12, decimal_places=2, default=0)
    office_state = models.CharField(
        _("insurance office"), max_length=16, choices=OfficeState.choices, default=OfficeState.NONE, blank=True
    )
    office_reference = models.CharField(_("insurance office reference"), max_length=40, blank=True)
    office_confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    # R31: the year a contribution is for; what the insurance office needs besides the payment itself.
    contribution_year = models.PositiveSmallIntegerField(_("for the year"), null=True, blank=True)
    # Why owners did not pay (R33, R36, R37), as the receipt first said it: a replay (R34) says it again.
    notes = models.JSONField(_("notes"), default=list, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at", "-id"]
        indexes = [
            # A person's payments, newest first (what was paid for me, R35; the card holder's records).
            models.Index(fields=["patient", "-created_at"], name="payment_patient_time"),
            # R31: the beat asks the insurance office about the few contributions still pending; the
            # partial index stays small however many payments there are.
            models.Index(fields=["created_at"], condition=Q(office_state="pending"), name="payment_office_pending"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["client", "idempotency_key"], name="payment_key_once_per_client"),
            models.UniqueConstraint(
                fields=["qr_reference"], condition=~Q(qr_reference=""), name="payment_qr_code_pays_once"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(contribution_year__isnull=True) | Q(kind__in=["resident_contribution", "ltc_contribution"]),
                name="payment_year_only_for_contributions",
            ),
            models.CheckConstraint(condition=Q(cash_amount__gte=0), name="payment_cash_not_negative"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
                name="payment_refund_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount}"

    @property
    def charged_to_accounts(self):
        return self.amount - self.cash_amount


class PaymentPart(models.Model):
    """One account's share of a payment (R33): the receipt's lines, in deduction order."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="parts")
    position = models.PositiveSmallIntegerField()
    source = models.CharField(_("from"), max_length=16, choices=PaymentSource.choices)
    payer = models.ForeignKey(InsuredPerson, on_delete=models.PROTECT, related_name="+", verbose_name=_("paid by"))
    binding = models.ForeignKey("Binding", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    account = models.ForeignKey(PersonalAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    current_amount = models.DecimalField(_("from the current year"), max_digits=12, decimal_places=2, default=0)
    historical_amount = models.DecimalField(_("from previous years"), max_digits=12, decimal_places=2, default=0)
    wallet_amount = models.DecimalField(_("from the wallet"), max_digits=12, decimal_places=2, default=0)
    refunded_amount = models.DecimalField(_("refunded"), max_digits=12, decimal_places=2, default=0)

    class Meta:
        verbose_name = _("payment part")
        verbose_name_plural = _("payment parts")
        ordering = ["payment_id", "position"]
        indexes = [
            # R35: sharing records, by payer and by time.
            models.Index(fields=["payer", "payment"], name="paymentpart_payer"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["payment", "position"], name="paymentpart_position_unique"),
            models.CheckConstraint(
                condition=Q(current_amount__gte=0) & Q(historical_amount__gte=0) & Q(wallet_amount__gte=0),
                name="paymentpart_amounts_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.payment_id}#{self.position} {self.amount}"

    @property
    def amount(self):
        return self.current_amount + self.historical_amount + self.wallet_amount


class PaymentRefund(models.Model):
    """退款 (R34): a full or partial reversal, written as new entries; keyed like payments."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    client = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.CharField(_("idempotency key"), max_length=64)
    request_hash = models.CharField(max_length=64)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    cash_amount = models.DecimalField(_("returned in cash"), max_digits=12, decimal_places=2, default=0)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["client", "idempotency_key"], name="refund_key_once_per_client"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.payment_id} -{self.amount}"


class AccountTransfer(models.Model):
    """历年账户家庭共济 (R36): the owner moves money from the previous years' part to a bound relative's account."""

    client = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.CharField(_("idempotency key"), max_length=64)
    request_hash = models.CharField(max_length=64)
    reference = models.CharField(_("transfer number"), max_length=20, unique=True)
    binding = models.ForeignKey("Binding", on_delete=models.PROTECT, related_name="transfers")
    owner = models.ForeignKey(InsuredPerson, on_delete=models.PROTECT, related_name="+")
    relative = models.ForeignKey(InsuredPerson, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("account transfer")
        verbose_name_plural = _("account transfers")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["client", "idempotency_key"], name="transfer_key_once_per_client"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="transfer_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount}"


class WalletTransferState(models.TextChoices):
    PENDING = "pending", _("waiting for the relative to accept")
    ACCEPTED = "accepted", _("accepted")
    RETURNED = "returned", _("returned to the owner")


class WalletTransfer(models.Model):
    """跨省共济 (R37): the owner sends money to a relative's medical-insurance wallet in another province.

    The owner's account is debited at once; the wallet is credited when the relative accepts; unaccepted
    at 06:00 the next day, the money goes back to the owner's account, to the parts it came from.
    """

    client = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.CharField(_("idempotency key"), max_length=64)
    request_hash = models.CharField(max_length=64)
    reference = models.CharField(_("transfer number"), max_length=20, unique=True)
    binding = models.ForeignKey("Binding", on_delete=models.PROTECT, related_name="wallet_transfers")
    owner = models.ForeignKey(InsuredPerson, on_delete=models.PROTECT, related_name="+")
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="transfers")
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    from_current = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    from_historical = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    # What of an accepted transfer went back to the owner when the relationship ended (R37).
    returned_amount = models.DecimalField(_("returned"), max_digits=12, decimal_places=2, default=0)
    state = models.CharField(
        _("state"), max_length=16, choices=WalletTransferState.choices, default=WalletTransferState.PENDING
    )
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True, db_index=True)
    return_due_at = models.DateTimeField(_("returns unless accepted by"))
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    returned_at = models.DateTimeField(_("returned at"), null=True, blank=True)

    class Meta:
        verbose_name = _("wallet transfer")
        verbose_name_plural = _("wallet transfers")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "return_due_at"], name="wallettransfer_due")]
        constraints = [
            models.UniqueConstraint(fields=["client", "idempotency_key"], name="wallettransfer_key_once"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="wallettransfer_amount_positive"),
            models.CheckConstraint(
                condition=Q(state__in=WalletTransferState.values), name="wallettransfer_state_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} ({self.state})"

"""Users, roles, institutions, insured persons, personal accounts, the ledger and the audit log."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.masking import mask_id_number, mask_name

ZERO = Decimal("0.00")


class AppendOnlyQuerySet(models.QuerySet):
    """Rows are added, never changed or removed (R30, R51); a database trigger holds the same rule."""

    def update(self, **kwargs):
        raise ValueError(f"{self.model.__name__} is append-only.")

    def delete(self):
        raise ValueError(f"{self.model.__name__} is append-only.")


class AppendOnlyModel(models.Model):
    """Base for tables whose rows are facts: saved once, never edited or deleted."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError(f"{type(self).__name__} is append-only; add a new row instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError(f"{type(self).__name__} is append-only; add a new row instead.")


class Region(models.Model):
    """统筹区: a pooling region, identified by its 6-digit division code."""

    code = models.CharField(_("division code"), max_length=6, primary_key=True)
    name = models.CharField(_("name"), max_length=60)
    province = models.CharField(_("province code"), max_length=6)

    class Meta:
        verbose_name = _("pooling region")
        verbose_name_plural = _("pooling regions")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(code__regex=r"^[0-9]{6}$"), name="region_code_six_digits"),
            models.CheckConstraint(condition=Q(province__regex=r"^[0-9]{6}$"), name="region_province_six_digits"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Institution(models.Model):
    """A designated clinic, pharmacy or social-security branch that clerks work for."""

    class Kind(models.TextChoices):
        CLINIC = "clinic", _("designated clinic")
        PHARMACY = "pharmacy", _("designated pharmacy")
        BRANCH = "branch", _("social-security branch")

    code = models.CharField(_("institution code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, verbose_name=_("pooling region"))

    class Meta:
        verbose_name = _("institution")
        verbose_name_plural = _("institutions")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


def choice_label(choices: type[models.TextChoices], value: str) -> str:
    """A choice's label in the active language, as ``get_FOO_display`` gives it (a value outside the choices
    shows as itself). Django's translates every label of the field, to build a dict, on each call; the
    citizen pages call it for every row, so the models below that show on them use this instead."""
    try:
        return str(choices(value).label)
    except ValueError:
        return value


class InsuranceType(models.TextChoices):
    EMPLOYEE = "employee", _("employee medical insurance (职工医保)")
    RESIDENT = "resident", _("resident medical insurance (居民医保)")


class InsuranceStatus(models.TextChoices):
    ACTIVE = "active", _("insured")
    SUSPENDED = "suspended", _("suspended")


class Sex(models.TextChoices):
    MALE = "M", _("male")
    FEMALE = "F", _("female")


class InsuredPerson(models.Model):
    """参保人, as the insurance core system knows them (loaded by import_persons, C1)."""

    id_number = models.CharField(_("ID number"), max_length=18, unique=True)
    name = models.CharField(_("name"), max_length=50)
    # R2: derived from the ID number, never typed in.
    birth_date = models.DateField(_("birth date"))
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices)
    insurance_type = models.CharField(_("insurance type"), max_length=16, choices=InsuranceType.choices)
    status = models.CharField(_("insurance status"), max_length=16, choices=InsuranceStatus.choices)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, verbose_name=_("pooling region"))
    card_number = models.CharField(_("card number"), max_length=20, null=True, blank=True, unique=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("insured person")
        verbose_name_plural = _("insured persons")
        constraints = [
            models.CheckConstraint(condition=Q(id_number__regex=r"^[0-9]{17}[0-9X]$"), name="person_id_number_shape"),
            models.CheckConstraint(condition=Q(insurance_type__in=InsuranceType.values), name="person_insurance_type"),
            models.CheckConstraint(condition=Q(status__in=InsuranceStatus.values), name="person_status"),
        ]

    def __str__(self) -> str:
        return f"{self.masked_name} {self.masked_id_number}"

    def get_insurance_type_display(self) -> str:
        return choice_label(InsuranceType, self.insurance_type)

    def get_status_display(self) -> str:
        return choice_label(InsuranceStatus, self.status)

    @property
    def masked_id_number(self) -> str:
        return mask_id_number(self.id_number)

    @property
    def masked_name(self) -> str:
        return mask_name(self.name)

    @property
    def is_employee(self) -> bool:
        return self.insurance_type == InsuranceType.EMPLOYEE

    @property
    def is_active(self) -> bool:
        return self.status == InsuranceStatus.ACTIVE


class User(AbstractUser):
    """A person who logs in: a citizen, a clerk, a reviewer, an admin, or a partner system."""

    class Role(models.TextChoices):
        CITIZEN = "citizen", _("citizen")
        CLERK = "clerk", _("clerk")
        REVIEWER = "reviewer", _("reviewer")
        ADMIN = "admin", _("administrator")
        PARTNER = "partner", _("partner system")

    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.CITIZEN)
    phone = models.CharField(_("mobile phone"), max_length=20, null=True, blank=True, unique=True)
    phone_verified = models.BooleanField(_("phone verified"), default=False)
    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("institution")
    )
    # Real-name link: one user per insured person.
    person = models.OneToOneField(
        InsuredPerson, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("insured person")
    )
    elderly_mode = models.BooleanField(_("elderly mode"), default=False)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.CheckConstraint(
                condition=~Q(role="clerk") | Q(institution__isnull=False), name="clerk_has_institution"
            ),
        ]

    def __str__(self) -> str:
        return self.get_username()

    @property
    def is_staff_role(self) -> bool:
        return self.role in {self.Role.CLERK, self.Role.REVIEWER, self.Role.ADMIN}


class PersonalAccount(models.Model):
    """个人账户: an employee's account. Balances are a cache of the ledger (R30), kept in the same transaction."""

    person = models.OneToOneField(
        InsuredPerson, on_delete=models.PROTECT, related_name="account", verbose_name=_("insured person")
    )
    current_balance = models.DecimalField(_("current year"), max_digits=12, decimal_places=2, default=ZERO)
    historical_balance = models.DecimalField(_("previous years"), max_digits=12, decimal_places=2, default=ZERO)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("personal account")
        verbose_name_plural = _("personal accounts")
        constraints = [
            # R34: never overdrawn, in either part.
            models.CheckConstraint(condition=Q(current_balance__gte=0), name="account_current_not_negative"),
            models.CheckConstraint(condition=Q(historical_balance__gte=0), name="account_historical_not_negative"),
        ]

    def __str__(self) -> str:
        return str(_("Personal account of %(person)s") % {"person": self.person})

    @property
    def balance(self) -> Decimal:
        return self.current_balance + self.historical_balance


class LedgerEntry(AppendOnlyModel):
    """One movement of money. Append-only (R30, R34): a trigger refuses UPDATE and DELETE."""

    class Part(models.TextChoices):
        CURRENT = "current", _("current year")
        HISTORICAL = "historical", _("previous years")

    class Kind(models.TextChoices):
        ADJUSTMENT = "adjustment", _("balance from the insurance core system")
        PAYMENT = "payment", _("payment")
        REVERSAL = "reversal", _("refund")
        TRANSFER = "transfer", _("transfer")
        WALLET = "wallet", _("medical-insurance wallet")

    account = models.ForeignKey(
        PersonalAccount, on_delete=models.PROTECT, related_name="entries", verbose_name=_("personal account")
    )
    part = models.CharField(_("part"), max_length=16, choices=Part.choices)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    description = models.CharField(_("description"), max_length=200, blank=True)
    reference = models.CharField(_("reference"), max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    # PROTECT: a user who moved money is deactivated, never deleted (the entry cannot change).
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at", "-id"], name="ledger_account_recent")]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
            models.CheckConstraint(condition=Q(part__in=["current", "historical"]), name="ledger_part_known"),
        ]

    def __str__(self) -> str:
        return f"{self.get_part_display()} {self.amount} ({self.get_kind_display()})"

    def get_part_display(self) -> str:
        return choice_label(self.Part, self.part)

    def get_kind_display(self) -> str:
        return choice_label(self.Kind, self.kind)


class Wallet(models.Model):
    """医保钱包 (R37): a person's medical-insurance wallet on the national platform. Money in it is the
    holder's (residents too, who have no personal account); the owner who sent it can no longer spend it.
    The balance is a cache of its entries, kept in the same transaction."""

    person = models.OneToOneField(
        InsuredPerson, on_delete=models.PROTECT, related_name="wallet", verbose_name=_("wallet holder")
    )
    balance = models.DecimalField(_("balance"), max_digits=12, decimal_places=2, default=ZERO)
    opened_at = models.DateTimeField(_("opened at"), auto_now_add=True)
    # The holder, or a family card manager (R43) on the holder's behalf.
    opened_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("medical-insurance wallet")
        verbose_name_plural = _("medical-insurance wallets")
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_not_negative")]

    def __str__(self) -> str:
        return str(_("Wallet of %(person)s") % {"person": self.person})


class WalletEntry(AppendOnlyModel):
    """One movement in or out of a wallet (R37). Append-only like the ledger; the sum of entries is the balance."""

    class Kind(models.TextChoices):
        TRANSFER_IN = "transfer_in", _("transfer accepted")
        PAYMENT = "payment", _("payment")
        REVERSAL = "reversal", _("refund")
        RETURN = "return", _("returned to the owner")

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries", verbose_name=_("wallet"))
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    description = models.CharField(_("description"), max_length=200, blank=True)
    reference = models.CharField(_("reference"), max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("wallet entry")
        verbose_name_plural = _("wallet entries")
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="wallet_entry_not_zero")]

    def __str__(self) -> str:
        return f"{self.amount} ({self.get_kind_display()})"


class AuditEvent(AppendOnlyModel):
    """审计日志: who did or saw what, which object, when, from where (R51). Append-only."""

    actor = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    actor_label = models.CharField(_("who"), max_length=150)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    target_type = models.CharField(_("object type"), max_length=64, blank=True)
    target_id = models.CharField(_("object id"), max_length=64, blank=True)
    target_label = models.CharField(_("object"), max_length=200, blank=True)
    ip_address = models.GenericIPAddressField(_("from"), null=True, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_label}"


class Notification(models.Model):
    """消息: a decision, a payment from my account, a reminder. Kept per insured person, so it waits for a login."""

    person = models.ForeignKey(
        InsuredPerson, on_delete=models.PROTECT, related_name="notifications", verbose_name=_("insured person")
    )
    kind = models.CharField(_("kind"), max_length=40)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"), blank=True)
    link = models.CharField(_("link"), max_length=200, blank=True)
    # Idempotency: a redelivered task that notifies again finds the same key and writes nothing.
    dedup_key = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["person", "-created_at"], name="notification_person_recent")]

    def __str__(self) -> str:
        return self.title


class FaceVerification(models.Model):
    """人脸识别 outcome (R23, R40, R52): the images are never kept, only provider, purpose, decision, score, time."""

    class Decision(models.TextChoices):
        PASSED = "passed", _("passed")
        FAILED = "failed", _("failed")

    person = models.ForeignKey(
        InsuredPerson, on_delete=models.PROTECT, related_name="face_verifications", verbose_name=_("insured person")
    )
    purpose = models.CharField(_("purpose"), max_length=40)
    reference = models.CharField(_("reference"), max_length=64, blank=True)
    provider = models.CharField(_("provider"), max_length=20)
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices)
    score = models.FloatField(_("score"), null=True, blank=True)
    detail = models.CharField(_("detail"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("face verification")
        verbose_name_plural = _("face verifications")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["person", "purpose", "reference"], name="face_person_purpose")]

    def __str__(self) -> str:
        return f"{self.purpose} {self.decision}"


def _new_face_vendor_session_id():
    """A random id for a vendor session (imported here so that this addition stays at the end of the file)."""
    import uuid

    return uuid.uuid4()


class FaceVendorSession(models.Model):
    """A face check at an outside vendor (R23, R40, R50, R52): started here, decided by the vendor's signed callback.

    The vendor holds the picture; this row holds only who, why, the state and a link to the outcome. Each
    callback carries a nonce that is stored here once (unique), and a session is decided once: a replay
    is refused by the database, not only by a check in Python.
    """

    class State(models.TextChoices):
        STARTED = "started", _("started")
        PASSED = "passed", _("passed")
        FAILED = "failed", _("failed")
        EXPIRED = "expired", _("expired")

    # A random id: it is in the return address the vendor sends the person back to.
    id = models.UUIDField(primary_key=True, default=_new_face_vendor_session_id, editable=False)
    person = models.ForeignKey(
        InsuredPerson, on_delete=models.PROTECT, related_name="face_vendor_sessions", verbose_name=_("insured person")
    )
    purpose = models.CharField(_("purpose"), max_length=40)
    reference = models.CharField(_("reference"), max_length=64, blank=True)
    vendor_session_id = models.CharField(_("vendor session"), max_length=64, unique=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.STARTED)
    # Where the person goes after the result page: a path on this site, never another host.
    return_url = models.CharField(_("return to"), max_length=300, default="/")
    # The nonce of the callback that decided the session: unique, so a replayed callback cannot decide twice.
    callback_nonce = models.CharField(_("callback nonce"), max_length=64, null=True, blank=True, unique=True)
    verification = models.OneToOneField(
        FaceVerification,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="vendor_session",
        verbose_name=_("face verification"),
    )
    created_at = models.DateTimeField(_("started at"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("face verification at the vendor")
        verbose_name_plural = _("face verifications at the vendor")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["person", "-created_at"], name="face_vendor_person_recent")]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["started", "passed", "failed", "expired"]), name="face_vendor_state_known"
            ),
            # A local path: one slash, then not a second slash or a backslash (no //host, no /\host).
            models.CheckConstraint(condition=Q(return_url__regex=r"^/([^/\\]|$)"), name="face_vendor_return_local"),
            # Started: nothing decided yet. Passed or failed: an outcome and its nonce. Expired: no outcome.
            models.CheckConstraint(
                condition=(
                    Q(state="started", decided_at__isnull=True, verification__isnull=True, callback_nonce__isnull=True)
                    | Q(
                        state__in=["passed", "failed"],
                        decided_at__isnull=False,
                        verification__isnull=False,
                        callback_nonce__isnull=False,
                    )
                    | Q(state="expired", decided_at__isnull=False, verification__isnull=True)
                ),
                name="face_vendor_decided_consistently",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.state}"

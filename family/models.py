"""Family-sharing policy (and, later, bindings)."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Region


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

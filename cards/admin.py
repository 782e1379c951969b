"""Admin of e-cards, QR codes and family card links: read-only and masked (R4). State changes go through
``cards.services``; the password is never shown, not even hashed."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from cards.models import ECard, FamilyCardLink, QrToken


class ReadOnlyAdmin(admin.ModelAdmin):
    """Looked at, never edited here: each change has its service, its checks and its audit row."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ECard)
class ECardAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "holder",
        "issuing_region",
        "channel",
        "state",
        "claimed_at",
        "failed_attempts",
        "locked_until",
    ]
    list_filter = ["state", "channel"]
    list_select_related = ["person", "issuing_region"]
    search_fields = ["=person__id_number"]
    search_help_text = _("A full ID number of the card holder.")
    fields = [
        "holder",
        "issuing_region",
        "channel",
        "state",
        "agreement_accepted_at",
        "face_verified_at",
        "password_is_set",
        "password_set_at",
        "failed_attempts",
        "locked_until",
        "claimed_at",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("card holder"))
    def holder(self, card: ECard) -> str:
        return f"{card.person.masked_name} {card.person.masked_id_number}"

    @admin.display(description=_("password set"), boolean=True)
    def password_is_set(self, card: ECard) -> bool:
        return bool(card.password)


@admin.register(QrToken)
class QrTokenAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "holder_masked", "region_code", "shown_by", "expires_at", "used_at", "used_by"]
    list_select_related = ["holder", "shown_by", "used_by"]
    list_filter = ["region_code"]
    date_hierarchy = "created_at"
    fields = ["holder_masked", "card", "region_code", "shown_by", "created_at", "expires_at", "used_at", "used_by"]
    readonly_fields = fields

    @admin.display(description=_("card holder"))
    def holder_masked(self, token: QrToken) -> str:
        return f"{token.holder.masked_name} {token.holder.masked_id_number}"


@admin.register(FamilyCardLink)
class FamilyCardLinkAdmin(ReadOnlyAdmin):
    list_display = ["id", "manager_masked", "relative_masked", "relationship", "state", "verified_by", "created_at"]
    list_filter = ["state", "verified_by", "relationship"]
    list_select_related = ["manager", "relative"]
    search_fields = ["=manager__id_number", "=relative__id_number"]
    search_help_text = _("A full ID number of the manager or the relative.")
    fields = [
        "manager_masked",
        "relative_masked",
        "relationship",
        "state",
        "verified_by",
        "created_at",
        "activated_at",
        "ended_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("manager"))
    def manager_masked(self, link: FamilyCardLink) -> str:
        return f"{link.manager.masked_name} {link.manager.masked_id_number}"

    @admin.display(description=_("relative"))
    def relative_masked(self, link: FamilyCardLink) -> str:
        return f"{link.relative.masked_name} {link.relative.masked_id_number}"

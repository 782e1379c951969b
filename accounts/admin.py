"""Admin for accounts. Opening a person's record (full ID number) is audited (R51)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from accounts.masking import mask_id_number
from accounts.models import AuditEvent, Institution, InsuredPerson, LedgerEntry, PersonalAccount, Region, User
from accounts.services import audit_record


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "province"]
    search_fields = ["code", "name"]


@admin.register(Institution)
class InstitutionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "region"]
    list_filter = ["kind"]
    search_fields = ["code", "name"]
    autocomplete_fields = ["region"]


@admin.register(InsuredPerson)
class InsuredPersonAdmin(admin.ModelAdmin):
    list_display = ["masked_id", "masked_name", "insurance_type", "status", "region"]
    list_filter = ["insurance_type", "status"]
    search_fields = ["=id_number", "=card_number"]
    list_select_related = ["region"]
    readonly_fields = ["birth_date", "sex", "created_at", "updated_at"]
    autocomplete_fields = ["region"]

    @admin.display(description=_("ID number"))
    def masked_id(self, person: InsuredPerson) -> str:
        return mask_id_number(person.id_number)

    @admin.display(description=_("name"))
    def masked_name(self, person: InsuredPerson) -> str:
        return person.masked_name

    def change_view(self, request, object_id, form_url="", extra_context=None):
        person = self.get_object(request, object_id)
        if person is not None:
            audit_record(actor=request.user, action="person.viewed_by_staff", target=person, request=request)
        return super().change_view(request, object_id, form_url, extra_context)


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    extra = 0
    can_delete = False
    fields = ["created_at", "part", "kind", "amount", "description", "reference"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PersonalAccount)
class PersonalAccountAdmin(admin.ModelAdmin):
    """Balances are read-only here: money moves only through the ledger (R30)."""

    list_display = ["person", "current_balance", "historical_balance"]
    readonly_fields = ["person", "current_balance", "historical_balance", "updated_at"]
    list_select_related = ["person"]
    inlines = [LedgerEntryInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_label", "action", "target_label", "ip_address"]
    list_filter = ["action"]
    search_fields = ["actor_label", "target_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "role", "institution", "is_active"]
    list_filter = ["role", "is_active"]
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        (_("Portal"), {"fields": ("role", "phone", "phone_verified", "institution", "person", "elderly_mode")}),
    )
    raw_id_fields = ["person"]

"""Admin of e-cards, QR codes and family card links: read-only and masked (R4). State changes go through
``cards.services``; the password is never shown, not even hashed."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.errors import DomainError
from cards.forms import CardSuspendForm
from cards.models import CardState, ECard, FamilyCardDocument, FamilyCardLink, QrToken
from cards.services import card_reactivate, card_suspend


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
    actions = ["suspend_cards", "reactivate_cards"]
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
        "suspended_at",
        "suspended_by",
        "suspension_reason",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("card holder"))
    def holder(self, card: ECard) -> str:
        return f"{card.person.masked_name} {card.person.masked_id_number}"

    @admin.action(description=_("Suspend the selected cards (asks for the reason)"))
    def suspend_cards(self, request: HttpRequest, queryset) -> HttpResponse | None:
        """A confirmation page asks the reason the holders read; each card goes through ``card_suspend``."""
        form = CardSuspendForm(request.POST if "reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            done = self._each(
                request,
                queryset,
                lambda card: card_suspend(card_id=card.pk, actor=request.user, reason=form.cleaned_data["reason"]),
            )
            if done:
                self.message_user(
                    request,
                    ngettext("%(count)d card suspended.", "%(count)d cards suspended.", done) % {"count": done},
                    messages.SUCCESS,
                )
            return None
        return TemplateResponse(
            request,
            "cards/admin_suspend.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Suspend e-cards"),
                "form": form,
                "cards": queryset.select_related("person"),
                "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
                "opts": self.model._meta,
            },
        )

    @admin.action(description=_("Reactivate the selected suspended cards"))
    def reactivate_cards(self, request: HttpRequest, queryset) -> None:
        done = self._each(
            request,
            queryset.filter(state=CardState.SUSPENDED),
            lambda card: card_reactivate(card_id=card.pk, actor=request.user),
        )
        self.message_user(
            request,
            ngettext("%(count)d card reactivated.", "%(count)d cards reactivated.", done) % {"count": done},
            messages.SUCCESS if done else messages.WARNING,
        )

    def _each(self, request: HttpRequest, queryset, action) -> int:
        """Run the service on each card; a refusal is reported for its card and the others go on."""
        done = 0
        for card in queryset.select_related("person"):
            try:
                action(card)
            except DomainError as error:
                self.message_user(request, f"{card}: {error.title}", messages.ERROR)
            else:
                done += 1
        return done

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


@admin.register(FamilyCardDocument)
class FamilyCardDocumentAdmin(ReadOnlyAdmin):
    """Looked at here; decided on the reviewers' page (/staff/family-cards/), which audits every view (R51).

    The file is never linked: only its stored name shows, so no page image leaves without an audit row."""

    list_display = ["id", "link", "kind", "status", "precheck_status", "created_at", "decided_by", "decided_at"]
    list_filter = ["status", "kind", "precheck_status"]
    list_select_related = ["link__manager", "link__relative", "decided_by"]
    date_hierarchy = "created_at"
    fields = [
        "link",
        "kind",
        "stored_file",
        "content_type",
        "size",
        "pages",
        "uploaded_by",
        "created_at",
        "status",
        "rejection_reason",
        "decided_by",
        "decided_at",
        "precheck_status",
        "precheck",
    ]
    readonly_fields = fields

    @admin.display(description=_("file"))
    def stored_file(self, document: FamilyCardDocument) -> str:
        return document.file.name

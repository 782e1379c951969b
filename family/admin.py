"""Admin for policy versions (C2), and bindings as the plain review queue (R24) until the reviewers' workbench."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.template import engines
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.errors import DomainError
from accounts.masking import mask_id_number, mask_name
from accounts.models import User
from family.models import (
    Binding,
    BindingDocument,
    BindingEvent,
    BindingMethod,
    BindingState,
    PolicyVersion,
    Relation,
    ReviewReason,
)
from family.rules import periods_overlap
from family.services import binding_review_decide


class PolicyScopeFilter(admin.SimpleListFilter):
    title = _("scope")
    parameter_name = "scope"

    def lookups(self, request, model_admin):
        return [("national", _("national default (*)")), ("regional", _("a pooling region's own"))]

    def queryset(self, request, queryset):
        if self.value() == "national":
            return queryset.filter(region__isnull=True)
        if self.value() == "regional":
            return queryset.filter(region__isnull=False)
        return queryset


class PolicyVersionForm(forms.ModelForm):
    relations = forms.MultipleChoiceField(
        label=_("relationships allowed"),
        choices=Relation.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = PolicyVersion
        fields = [
            "region",
            "effective_from",
            "effective_to",
            "relations",
            "cross_province",
            "max_members",
            "multiple_owners",
            "sharing_mode",
            "face_age",
            "min_owner_balance",
            "one_owner_per_payment",
            "long_term_care",
            "family_card_max",
        ]

    def clean_relations(self) -> list[str]:
        # Stored in C3's order, as load_policy stores them.
        chosen = set(self.cleaned_data["relations"])
        return [name for name in Relation.values if name in chosen]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("effective_from"), cleaned.get("effective_to")
        if start is None or (end is not None and end <= start):
            return cleaned
        # C2: versions of one region never overlap, or "the version in force" would be ambiguous.
        region = cleaned.get("region")
        others = PolicyVersion.objects.filter(Q(region=region) if region else Q(region__isnull=True))
        if self.instance.pk:
            others = others.exclude(pk=self.instance.pk)
        period = (start, end)
        clashes = [other for other in others if periods_overlap(period, (other.effective_from, other.effective_to))]
        if clashes:
            raise forms.ValidationError(
                _("This period overlaps %(versions)s of the same region.")
                % {"versions": ", ".join(version.label for version in clashes)}
            )
        return cleaned


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    form = PolicyVersionForm
    list_display = [
        "label",
        "region",
        "effective_from",
        "effective_to",
        "relations_display",
        "cross_province",
        "sharing_mode",
        "max_members",
        "multiple_owners",
        "min_owner_balance",
    ]
    list_filter = [PolicyScopeFilter, "cross_province", "sharing_mode", "multiple_owners", "effective_from"]
    list_select_related = ["region"]
    search_fields = ["region__code", "region__name"]
    ordering = ["region_id", "effective_from"]
    date_hierarchy = "effective_from"

    @admin.display(description=_("version"), ordering="effective_from")
    def label(self, version: PolicyVersion) -> str:
        return version.label

    @admin.display(description=_("relationships allowed"))
    def relations_display(self, version: PolicyVersion) -> str:
        labels = dict(Relation.choices)
        return ", ".join(str(labels.get(name, name)) for name in version.relations)


# --- 审核队列: the plain review queue (R24, R25) until the reviewers' workbench exists -------------


def _may_review(request) -> bool:
    """Reviewers and admins decide applications (R24); superusers can too."""
    user = request.user
    return bool(
        user.is_active and user.is_staff and (user.is_superuser or user.role in (User.Role.REVIEWER, User.Role.ADMIN))
    )


class ReviewQueueFilter(admin.SimpleListFilter):
    title = _("review")
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("waiting", _("waiting for a reviewer"))]

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.filter(_WAITING_FOR_REVIEW)
        return queryset


# R24: online applications that passed eligibility and no reviewer has decided (counter ones need none).
_WAITING_FOR_REVIEW = Q(state=BindingState.UNDER_REVIEW, reviewed_at__isnull=True) & ~Q(method=BindingMethod.COUNTER)


class _ReadOnlyInline(admin.TabularInline):
    """History and documents are shown, never edited here: changes go through the services."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_view_permission(self, request, obj=None) -> bool:
        return _may_review(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class BindingEventInline(_ReadOnlyInline):
    model = BindingEvent
    fields = ["created_at", "from_state", "to_state", "actor_label", "reason"]
    readonly_fields = fields
    ordering = ["created_at", "id"]


class BindingDocumentInline(_ReadOnlyInline):
    model = BindingDocument
    # No ``file``: private files have no URL (R51); the audited staff document view is a later issue.
    fields = ["kind", "status", "rejection_reason", "content_type", "size", "created_at"]
    readonly_fields = fields
    ordering = ["kind", "-created_at"]


class RejectReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Why (the citizen sees this)"),
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Say which document and what is wrong, e.g. “The relative's register page is blurred.”"),
    )


_REJECT_TEMPLATE = """{% extends "admin/base_site.html" %}{% load admin_urls %}
{% block breadcrumbs %}<div class="breadcrumbs"><a href="{% url 'admin:index' %}">{{ home_label }}</a>
&rsaquo; <a href="{% url opts|admin_urlname:'changelist' %}">{{ opts.verbose_name_plural|capfirst }}</a>
&rsaquo; {{ title }}</div>{% endblock %}
{% block content %}
<form method="post">{% csrf_token %}
  <p>{{ intro }}</p>
  {% if left_out %}<p>{{ left_out }}</p>{% endif %}
  <ul>{% for binding in bindings %}<li>#{{ binding.pk }} {{ binding }}</li>{% endfor %}</ul>
  {% if form.non_field_errors %}{{ form.non_field_errors }}{% endif %}
  <div class="form-row">{{ form.reason.errors }}{{ form.reason.label_tag }} {{ form.reason }}</div>
  {% for binding in bindings %}<input type="hidden" name="_selected_action" value="{{ binding.pk }}">{% endfor %}
  <input type="hidden" name="action" value="reject_selected">
  <input type="hidden" name="apply" value="1">
  <div class="submit-row"><input type="submit" class="default" value="{{ submit_label }}">
  <a href="{% url opts|admin_urlname:'changelist' %}" class="button cancel-link">{{ cancel_label }}</a></div>
</form>
{% endblock %}"""


@admin.register(Binding)
class BindingAdmin(admin.ModelAdmin):
    """Applications oldest first, filterable; approve or reject through ``binding_review_decide`` only."""

    list_display = [
        "id",
        "created_at",
        "owner_masked",
        "relative_masked",
        "relationship",
        "method",
        "state",
        "needs_review",
        "document_count",
    ]
    list_display_links = ["id", "created_at"]
    list_filter = [ReviewQueueFilter, "state", "method", "relationship", "needs_review"]
    list_select_related = ["owner", "relative"]
    search_fields = ["=owner__id_number", "=relative__id_number"]
    search_help_text = _("A full ID number of the owner or the relative.")
    ordering = ["created_at", "id"]  # oldest first: first come, first reviewed
    list_per_page = 50
    inlines = [BindingEventInline, BindingDocumentInline]
    actions = ["approve_selected", "reject_selected"]
    readonly_fields = ["owner_masked", "relative_masked", "newborn_name_masked", "mother_masked", "reasons_display"]
    fieldsets = [
        (
            _("Application"),
            {
                "fields": [
                    "state",
                    "owner_masked",
                    "relative_masked",
                    "relationship",
                    "method",
                    "region",
                    "created_at",
                    "authorized_from",
                    "authorized_until",
                ]
            },
        ),
        (
            _("Eligibility (R10–R16)"),
            {"fields": ["policy_label", "decision_date", "needs_review", "reasons_display", "needs_face_verification"]},
        ),
        (
            _("Commitment letter and review"),
            {"fields": ["letter_signed_at", "reviewed_by", "reviewed_at", "face_deadline"]},
        ),
        (
            _("Newborn (R21)"),
            {"fields": ["newborn_name_masked", "mother_masked", "birth_certificate_number"], "classes": ["collapse"]},
        ),
        (_("Counter (R22)"), {"fields": ["institution", "originals_seen"], "classes": ["collapse"]}),
        (_("Outcome"), {"fields": ["activated_at", "ended_at", "end_reason"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_document_count=Count("documents"))

    # R25: the state changes only through the services; nothing is edited, added or deleted here.
    def has_view_permission(self, request, obj=None) -> bool:
        return _may_review(request) or super().has_view_permission(request, obj)

    def has_module_permission(self, request) -> bool:
        return _may_review(request) or super().has_module_permission(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_review_permission(self, request) -> bool:
        return _may_review(request)

    # R4: names and ID numbers masked in the queue; the documents are where a reviewer compares them.
    @admin.display(description=_("account owner"), ordering="owner__name")
    def owner_masked(self, binding: Binding) -> str:
        return f"{binding.owner.masked_name} {binding.owner.masked_id_number}"

    @admin.display(description=_("relative"))
    def relative_masked(self, binding: Binding) -> str:
        if binding.relative_id is None:
            return mask_name(binding.newborn_name) or "—"
        return f"{binding.relative.masked_name} {binding.relative.masked_id_number}"

    @admin.display(description=_("newborn's name"))
    def newborn_name_masked(self, binding: Binding) -> str:
        return mask_name(binding.newborn_name)

    @admin.display(description=_("mother"))
    def mother_masked(self, binding: Binding) -> str:
        return f"{mask_name(binding.mother_name)} {mask_id_number(binding.mother_id_number)}".strip()

    @admin.display(description=_("documents"), ordering="_document_count")
    def document_count(self, binding: Binding) -> int:
        return binding._document_count

    @admin.display(description=_("reasons"))
    def reasons_display(self, binding: Binding) -> str:
        return "; ".join(f"{r.get('rule', '')}: {r.get('message', '')}" for r in binding.reasons) or "—"

    @admin.action(description=_("Approve selected (under review)"), permissions=["review"])
    def approve_selected(self, request, queryset):
        decided, skipped = self._decide(request, queryset, approve=True)
        if decided:
            self.message_user(
                request,
                ngettext(
                    "Approved %(count)d application; it goes on to the age check (R23).",
                    "Approved %(count)d applications; they go on to the age check (R23).",
                    decided,
                )
                % {"count": decided},
                messages.SUCCESS,
            )
        self._report_skipped(request, skipped)

    @admin.action(description=_("Reject selected (under review)…"), permissions=["review"])
    def reject_selected(self, request, queryset):
        """Asks for the reason first (an intermediate page); the citizen sees it (R24)."""
        waiting = list(queryset.filter(_WAITING_FOR_REVIEW).select_related("owner", "relative").order_by("pk"))
        form = RejectReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            decided, skipped = self._decide(request, queryset, approve=False, reason=form.cleaned_data["reason"])
            if decided:
                self.message_user(
                    request,
                    ngettext(
                        "Rejected %(count)d application; the owner is told why.",
                        "Rejected %(count)d applications; the owners are told why.",
                        decided,
                    )
                    % {"count": decided},
                    messages.SUCCESS,
                )
            self._report_skipped(request, skipped)
            return None
        if not waiting:
            self._report_skipped(request, queryset.count())
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Reject applications"),
            "home_label": _("Home"),
            "intro": ngettext(
                "Reject this application? The owner sees the reason you give.",
                "Reject these %(count)d applications? Their owners see the reason you give.",
                len(waiting),
            )
            % {"count": len(waiting)},
            "bindings": waiting,
            "left_out": self._left_out_text(queryset.count() - len(waiting)),
            "form": form,
            "submit_label": _("Reject"),
            "cancel_label": _("No, take me back"),
        }
        template = engines["django"].from_string(_REJECT_TEMPLATE)
        return TemplateResponse(request, template, context)

    def _decide(self, request, queryset, *, approve: bool, reason: str = "") -> tuple[int, int]:
        """Each binding through the service, in its own transaction; those not waiting are left alone."""
        decided = skipped = 0
        for binding_id in queryset.order_by("created_at", "id").values_list("pk", flat=True):
            try:
                binding_review_decide(binding_id=binding_id, reviewer=request.user, approve=approve, reason=reason)
            except DomainError:
                skipped += 1
            else:
                decided += 1
        return decided, skipped

    def _left_out_text(self, count: int) -> str:
        if not count:
            return ""
        return ngettext(
            "%(count)d selected application is not waiting for review and is left out.",
            "%(count)d selected applications are not waiting for review and are left out.",
            count,
        ) % {"count": count}

    def _report_skipped(self, request, skipped: int) -> None:
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d selected application was not waiting for review and was left as it was.",
                    "%(count)d selected applications were not waiting for review and were left as they were.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )


@admin.register(ReviewReason)
class ReviewReasonAdmin(admin.ModelAdmin):
    """The canned reasons reviewers pick when sending documents back or refusing (R24); the citizen sees them."""

    list_display = ["position", "text_zh", "text_en", "active"]
    list_display_links = ["text_zh"]
    list_editable = ["position", "active"]
    list_filter = ["active"]

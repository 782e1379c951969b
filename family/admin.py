"""Admin for policy versions (C2): the other way, besides load_policy, to change policy."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from family.models import PolicyVersion, Relation
from family.rules import periods_overlap


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

"""API shapes of bindings (R20–R27). Every name and ID number in an answer is masked (R4)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.masking import mask_id_number, mask_name
from accounts.models import InsuredPerson, User
from family.models import Binding, BindingEvent, PrecheckStatus


class MaskedPersonOutputSerializer(serializers.Serializer):
    """R4: family name and ``*``; first 3 and last 4 characters of the ID number."""

    name = serializers.SerializerMethodField()
    id_number = serializers.SerializerMethodField()

    def get_name(self, person: InsuredPerson) -> str:
        return mask_name(person.name)

    def get_id_number(self, person: InsuredPerson) -> str:
        return mask_id_number(person.id_number)


class ReasonOutputSerializer(serializers.Serializer):
    rule = serializers.CharField()
    message = serializers.CharField()

    class Meta:
        ref_name = "BindingReason"


class BindingOutputSerializer(serializers.Serializer):
    """A binding as its owner or relative sees it in a list."""

    id = serializers.IntegerField()
    my_side = serializers.SerializerMethodField(help_text="owner or relative: which side the caller is on")
    owner = MaskedPersonOutputSerializer()
    relative = MaskedPersonOutputSerializer(allow_null=True, help_text="null for a newborn without ID number (R21)")
    relationship = serializers.CharField(help_text="what the relative is to the owner (C3 names)")
    relationship_label = serializers.CharField(source="get_relationship_display")
    method = serializers.CharField()
    state = serializers.CharField()
    state_label = serializers.CharField(source="get_state_display")
    authorized_from = serializers.DateField(allow_null=True)
    authorized_until = serializers.DateField(allow_null=True)
    needs_face_verification = serializers.BooleanField()
    face_deadline = serializers.DateTimeField(allow_null=True)
    policy_version = serializers.SerializerMethodField()
    reasons = ReasonOutputSerializer(many=True)
    created_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    end_reason = serializers.CharField()

    @extend_schema_field(serializers.ChoiceField(choices=["owner", "relative"]))
    def get_my_side(self, binding: Binding) -> str:
        person_id = self.context.get("person_id")
        return "owner" if binding.owner_id == person_id else "relative"

    @extend_schema_field(OpenApiTypes.STR)
    def get_policy_version(self, binding: Binding) -> str | None:
        return binding.policy_label or None


class BindingEventOutputSerializer(serializers.Serializer):
    """R25: one change of state: who (masked, or a role for staff), when, from, to, why."""

    from_state = serializers.CharField()
    to_state = serializers.CharField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    actor_label = serializers.SerializerMethodField()

    def get_actor_label(self, event: BindingEvent) -> str:
        binding: Binding = self.context["binding"]
        actor = event.actor
        if actor is None:
            return _("system")
        if actor.person_id is not None and actor.person_id == binding.owner_id:
            return _("%(name)s (account owner)") % {"name": mask_name(binding.owner.name)}
        if actor.person_id is not None and actor.person_id == binding.relative_id:
            return _("%(name)s (relative)") % {"name": mask_name(binding.relative.name)}
        if actor.role in (User.Role.CLERK, User.Role.REVIEWER, User.Role.ADMIN):
            # Staff are named by their role, never by their login.
            return str(User.Role(actor.role).label)
        return _("someone else")


class BindingDocumentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    kind_label = serializers.CharField(source="get_kind_display")
    status = serializers.CharField()
    status_label = serializers.CharField(source="get_status_display")
    rejection_reason = serializers.CharField()
    pages = serializers.IntegerField(help_text="1 for a picture; the page count of a PDF")
    precheck_status = serializers.ChoiceField(
        choices=PrecheckStatus.choices, help_text="the automatic pre-check (R24); it never approves"
    )
    precheck_status_label = serializers.CharField(source="get_precheck_status_display")
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "BindingDocument"


class BindingDetailOutputSerializer(BindingOutputSerializer):
    """A binding with its history (R25) and the current document of each kind (R24)."""

    events = serializers.SerializerMethodField()
    documents = serializers.SerializerMethodField()

    @extend_schema_field(BindingEventOutputSerializer(many=True))
    def get_events(self, binding: Binding) -> list[dict]:
        return BindingEventOutputSerializer(self.context["events"], many=True, context={"binding": binding}).data

    @extend_schema_field(BindingDocumentOutputSerializer(many=True))
    def get_documents(self, binding: Binding) -> list[dict]:
        return BindingDocumentOutputSerializer(self.context["documents"], many=True).data


class ProblemFieldSerializer(serializers.Serializer):
    field = serializers.CharField()
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem+json, as every API error answers."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    errors = ProblemFieldSerializer(many=True, required=False)


class DuplicateProblemSerializer(ProblemSerializer):
    """409: an application or binding for this relative is open already; ``existing_id`` is it."""

    existing_id = serializers.IntegerField()

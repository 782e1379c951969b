"""API shapes of family sharing."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from accounts.identity import InvalidIdNumber, parse_id_number
from family.models import Relation


class IdNumberField(serializers.CharField):
    """R1: an ID number; the error says which part is wrong. Lower-case x is stored upper-case."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", 20)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return parse_id_number(value, today=timezone.localdate()).value
        except InvalidIdNumber as error:
            raise serializers.ValidationError(error.message, code=error.code) from None


class RelationshipField(serializers.ChoiceField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault(
            "error_messages",
            {
                "invalid_choice": _(
                    "“{input}” is not a relationship; use spouse, parent, child, sibling, grandparent or grandchild."
                )
            },
        )
        super().__init__(choices=Relation.choices, **kwargs)


class EligibilityInputSerializer(serializers.Serializer):
    owner_id_number = IdNumberField()
    relative_id_number = IdNumberField()
    relationship = RelationshipField(help_text="What the relative is to the owner.")
    on_date = serializers.DateField(required=False, help_text="Decision date; today in Asia/Shanghai if absent.")


class ReasonSerializer(serializers.Serializer):
    rule = serializers.CharField()
    message = serializers.CharField()


class EligibilityOutputSerializer(serializers.Serializer):
    eligible = serializers.BooleanField()
    needs_face_verification = serializers.BooleanField()
    needs_review = serializers.BooleanField()
    policy_version = serializers.CharField(allow_null=True)
    reasons = ReasonSerializer(many=True)

from __future__ import annotations

from rest_framework import serializers

from accounts.masking import mask_id_number, mask_name


class PersonOutputSerializer(serializers.Serializer):
    """An insured person as the API shows them: masked (R4)."""

    name = serializers.SerializerMethodField()
    id_number = serializers.SerializerMethodField()
    insurance_type = serializers.CharField()
    status = serializers.CharField()
    region_code = serializers.CharField(source="region_id")
    region_name = serializers.CharField(source="region.name")

    def get_name(self, person) -> str:
        return mask_name(person.name)

    def get_id_number(self, person) -> str:
        return mask_id_number(person.id_number)


class AccountOutputSerializer(serializers.Serializer):
    current_balance = serializers.DecimalField(max_digits=12, decimal_places=2)
    historical_balance = serializers.DecimalField(max_digits=12, decimal_places=2)
    balance = serializers.DecimalField(max_digits=12, decimal_places=2)


class MeOutputSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField()
    language = serializers.CharField()
    elderly_mode = serializers.BooleanField()
    person = PersonOutputSerializer(allow_null=True)
    account = AccountOutputSerializer(allow_null=True)

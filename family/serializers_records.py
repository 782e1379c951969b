"""API shapes of 共济使用明细 sharing records (R35). Names and ID numbers arrive masked from the selector (R4)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from family.selectors_payments import RECORDS_MAX_LIMIT, ROLES


class RecordsFilterInputSerializer(serializers.Serializer):
    """Query parameters: which side, a range of days (both included, Asia/Shanghai), the page window."""

    role = serializers.ChoiceField(choices=ROLES, required=False, help_text="owner or relative; both when absent.")
    limit = serializers.IntegerField(min_value=1, max_value=RECORDS_MAX_LIMIT, default=20)
    offset = serializers.IntegerField(min_value=0, default=0)

    class Meta:
        ref_name = "SharingRecordsFilterInput"

    def get_fields(self) -> dict:
        fields = super().get_fields()
        # "from" is a Python keyword, so the two dates are named here rather than declared.
        fields["from"] = serializers.DateField(required=False, help_text="First day, YYYY-MM-DD.")
        fields["until"] = serializers.DateField(required=False, help_text="Last day, YYYY-MM-DD (included).")
        return fields

    def validate(self, attrs: dict) -> dict:
        start, end = attrs.get("from"), attrs.get("until")
        if start and end and end < start:
            raise serializers.ValidationError({"until": _("Choose an end date after the start date.")})
        return attrs


class RecordTotalOutputSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Paid, in yuan.")
    refunded = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Refunded back, in yuan.")
    net = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="amount minus refunded.")
    count = serializers.IntegerField(help_text="Number of records.")

    class Meta:
        ref_name = "SharingRecordTotal"


class RecordTotalsOutputSerializer(serializers.Serializer):
    owner = RecordTotalOutputSerializer(help_text="Paid from my account for relatives.")
    relative = RecordTotalOutputSerializer(help_text="Paid for me from an owner's account.")

    class Meta:
        ref_name = "SharingRecordTotals"


class RecordMonthOutputSerializer(serializers.Serializer):
    month = serializers.DateField(format="%Y-%m", help_text="YYYY-MM (Asia/Shanghai).")
    owner = RecordTotalOutputSerializer(help_text="The whole month, not only this page.")
    relative = RecordTotalOutputSerializer(help_text="The whole month, not only this page.")

    class Meta:
        ref_name = "SharingRecordMonth"


class RecordOutputSerializer(serializers.Serializer):
    """One payment part from a family member's account, seen by its owner or its relative."""

    id = serializers.IntegerField(source="part_id")
    # A plain string in the schema: a second "role" enum would clash with the users' RoleEnum.
    role = serializers.CharField(help_text="owner: paid from my account; relative: paid for me.")
    payment_reference = serializers.CharField(source="reference")
    time = serializers.DateTimeField()
    month = serializers.DateTimeField(source="time", format="%Y-%m", help_text="The month heading it falls under.")
    kind = serializers.CharField(help_text="medical, pharmacy, resident_contribution or ltc_contribution.")
    kind_label = serializers.CharField()
    institution_code = serializers.CharField(help_text="Empty when paid online (contributions).")
    institution_name = serializers.CharField(help_text="Empty when paid online (contributions).")
    patient_name = serializers.CharField(help_text="Whom it was paid for, masked (R4).")
    patient_id_number = serializers.CharField(help_text="Masked (R4).")
    owner_name = serializers.CharField(help_text="From whose account, masked (R4).")
    owner_id_number = serializers.CharField(help_text="Masked (R4).")
    relationship = serializers.CharField(help_text="What the relative is to the owner (C3 words).")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    current_amount = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="From the current year.")
    historical_amount = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="From previous years.")
    refunded_amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    office_state = serializers.CharField(
        help_text="Contributions: pending or confirmed by the insurance office; empty otherwise."
    )

    class Meta:
        ref_name = "SharingRecord"


class RecordsPageOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Records in the whole selection.")
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    totals = RecordTotalsOutputSerializer(help_text="Grand totals of the whole selection.")
    months = RecordMonthOutputSerializer(many=True, help_text="The months of this page's records, newest first.")
    results = RecordOutputSerializer(many=True, help_text="Newest first.")

    class Meta:
        ref_name = "SharingRecordsPage"

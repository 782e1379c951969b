"""API shapes of payments (R31–R34): requests, quotes and receipts. Names and ID numbers masked (R4)."""

from __future__ import annotations

from rest_framework import serializers

from family.models import PaymentKind, PaymentSource, Relation
from family.serializers_bindings import MaskedPersonOutputSerializer


class PaymentInputSerializer(serializers.Serializer):
    """Who (R32: exactly one of card_number, qr_token, qr_reference), what (R31) and how much."""

    card_number = serializers.CharField(required=False, allow_blank=True, max_length=40, default="")
    qr_token = serializers.CharField(required=False, allow_blank=True, max_length=400, default="")
    qr_reference = serializers.CharField(required=False, allow_blank=True, max_length=32, default="")
    patient_id_number = serializers.CharField(required=False, allow_blank=True, max_length=18, default="")
    # Checked by the service against R31, so that a refusal names the rule.
    kind = serializers.CharField(max_length=32, help_text=f"One of {', '.join(PaymentKind.values)} (R31).")
    category = serializers.CharField(
        required=False, allow_blank=True, max_length=16, default="", help_text="drug, device or consumable"
    )
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="Yuan, at most 2 decimals.")
    institution_code = serializers.CharField(required=False, allow_blank=True, max_length=32, default="")


class RefundInputSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        required=False,
        allow_null=True,
        default=None,
        help_text="Empty: all that is left.",
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


class NoteOutputSerializer(serializers.Serializer):
    rule = serializers.CharField()
    message = serializers.CharField()

    class Meta:
        ref_name = "PaymentNote"


class SplitLineOutputSerializer(serializers.Serializer):
    """One account's share: from the current year, previous years or the wallet."""

    position = serializers.IntegerField()
    source = serializers.ChoiceField(choices=PaymentSource.choices)
    source_label = serializers.SerializerMethodField()
    payer = MaskedPersonOutputSerializer()
    relationship = serializers.CharField(help_text="What the patient is to the payer (C3 names); empty for own.")
    relationship_label = serializers.SerializerMethodField()
    current_year = serializers.DecimalField(source="current", max_digits=12, decimal_places=2)
    previous_years = serializers.DecimalField(source="historical", max_digits=12, decimal_places=2)
    wallet = serializers.DecimalField(max_digits=12, decimal_places=2)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    refunded = serializers.DecimalField(max_digits=12, decimal_places=2)

    def get_source_label(self, line) -> str:
        return str(PaymentSource(line.source).label)

    def get_relationship_label(self, line) -> str:
        return str(Relation(line.relationship).label) if line.relationship else ""


class QuoteOutputSerializer(serializers.Serializer):
    """R33: the split a payment would charge now; nothing is charged."""

    charged = serializers.SerializerMethodField()
    patient = MaskedPersonOutputSerializer()
    kind = serializers.CharField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    lines = SplitLineOutputSerializer(many=True)
    from_accounts = serializers.SerializerMethodField()
    cash = serializers.DecimalField(max_digits=12, decimal_places=2)
    notes = NoteOutputSerializer(many=True)
    qr_reference = serializers.SerializerMethodField(help_text="Name it in the payment that follows a QR quote.")

    def get_charged(self, split) -> bool:
        return split.payment is not None

    def get_from_accounts(self, split) -> str:
        return f"{sum((line.amount for line in split.lines), start=0):.2f}"

    def get_qr_reference(self, split) -> str:
        return self.context.get("qr_reference", "")


class ReceiptOutputSerializer(QuoteOutputSerializer):
    """R33/R34: the receipt: each part and from whose account, cash, refunds; the same for a replayed key."""

    id = serializers.IntegerField(source="payment.pk")
    reference = serializers.CharField(source="payment.reference")
    institution = serializers.SerializerMethodField()
    refunded = serializers.DecimalField(source="payment.refunded_amount", max_digits=12, decimal_places=2)
    office_state = serializers.CharField(source="payment.office_state")
    created_at = serializers.DateTimeField(source="payment.created_at")
    replayed = serializers.BooleanField(help_text="True when this key had been used: nothing was charged again.")

    def get_institution(self, split) -> dict | None:
        institution = split.payment.institution
        return {"code": institution.code, "name": institution.name} if institution else None


class RefundOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="refund.pk")
    amount = serializers.DecimalField(source="refund.amount", max_digits=12, decimal_places=2)
    cash = serializers.DecimalField(source="refund.cash_amount", max_digits=12, decimal_places=2)
    replayed = serializers.BooleanField()
    receipt = ReceiptOutputSerializer()

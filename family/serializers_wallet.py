"""API shapes of transfers (R36) and the medical-insurance wallet (R37). Names and ID numbers are masked (R4)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from family.models import AccountTransfer, WalletTransfer
from family.serializers import IdNumberField
from family.serializers_bindings import MaskedPersonOutputSerializer

MONEY = {"max_digits": 12, "decimal_places": 2}


class TransferInputSerializer(serializers.Serializer):
    """转移人员信息录入: the receiver as on their ID card, and the amount from the previous years' part."""

    relative_name = serializers.CharField(max_length=50, help_text="The receiver's name, as on the ID card.")
    relative_id_number = IdNumberField(help_text="The receiver's ID number (R1).")
    amount = serializers.DecimalField(**MONEY, help_text="Yuan, at most two decimals, from the previous years' part.")

    class Meta:
        ref_name = "AccountTransferInput"


class AccountTransferOutputSerializer(serializers.Serializer):
    """历年账户家庭共济 (R36): one transfer, as its owner or receiver sees it."""

    id = serializers.IntegerField()
    reference = serializers.CharField(help_text="transfer number")
    binding_id = serializers.IntegerField()
    owner = MaskedPersonOutputSerializer(help_text="who sent it (account owner)")
    relative = MaskedPersonOutputSerializer(help_text="who received it")
    amount = serializers.DecimalField(**MONEY)
    part = serializers.SerializerMethodField(help_text="always historical: the current year's part is never used")
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "AccountTransfer"

    @extend_schema_field(serializers.ChoiceField(choices=["historical"]))
    def get_part(self, transfer: AccountTransfer) -> str:
        return "historical"


class WalletTransferInputSerializer(serializers.Serializer):
    binding_id = serializers.IntegerField(min_value=1, help_text="Your binding with a relative in another province.")
    amount = serializers.DecimalField(**MONEY, help_text="Yuan, at most two decimals; see the limits (R37).")

    class Meta:
        ref_name = "WalletTransferInput"


class WalletTransferOutputSerializer(serializers.Serializer):
    """跨省共济 (R37): one transfer to a relative's wallet, with where it came from and where it stands."""

    id = serializers.IntegerField()
    reference = serializers.CharField(help_text="transfer number")
    binding_id = serializers.IntegerField()
    my_side = serializers.SerializerMethodField(help_text="owner or relative: which side the caller is on")
    owner = MaskedPersonOutputSerializer(help_text="the account owner who sent it")
    relative = MaskedPersonOutputSerializer(source="wallet.person", help_text="the wallet holder")
    amount = serializers.DecimalField(**MONEY)
    from_current = serializers.DecimalField(**MONEY, help_text="taken from the owner's current-year part")
    from_historical = serializers.DecimalField(**MONEY, help_text="taken from the owner's previous-years part")
    state = serializers.ChoiceField(choices=["pending", "accepted", "returned"])
    state_label = serializers.CharField(source="get_state_display")
    returned_amount = serializers.DecimalField(**MONEY, help_text="unused money given back when sharing ended")
    created_at = serializers.DateTimeField()
    return_due_at = serializers.DateTimeField(help_text="unaccepted by then, it goes back to the owner")
    accepted_at = serializers.DateTimeField(allow_null=True)
    returned_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "WalletTransfer"

    @extend_schema_field(serializers.ChoiceField(choices=["owner", "relative"]))
    def get_my_side(self, transfer: WalletTransfer) -> str:
        return "owner" if transfer.owner_id == self.context.get("person_id") else "relative"


class WalletEntryOutputSerializer(serializers.Serializer):
    amount = serializers.DecimalField(**MONEY, help_text="positive in, negative out")
    kind = serializers.CharField()
    kind_label = serializers.CharField(source="get_kind_display")
    description = serializers.CharField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "WalletEntry"


class WalletLimitsOutputSerializer(serializers.Serializer):
    """R37's limits for sending, and what the caller has left today."""

    per_day = serializers.IntegerField(source="limits.per_day")
    max_amount = serializers.DecimalField(**MONEY, source="limits.max_amount")
    # Local time of day as "HH:MM" (Asia/Shanghai), declared as such: OpenAPI's "time" has seconds.
    quiet_from = serializers.SerializerMethodField(help_text="HH:MM, Asia/Shanghai")
    quiet_until = serializers.SerializerMethodField(help_text="HH:MM, Asia/Shanghai")
    sent_today = serializers.IntegerField()
    left_today = serializers.IntegerField()
    quiet_now = serializers.BooleanField()

    class Meta:
        ref_name = "WalletLimits"

    @extend_schema_field(serializers.RegexField(r"^[0-2][0-9]:[0-5][0-9]$"))
    def get_quiet_from(self, data) -> str:
        return data.limits.quiet_from.strftime("%H:%M")

    @extend_schema_field(serializers.RegexField(r"^[0-2][0-9]:[0-5][0-9]$"))
    def get_quiet_until(self, data) -> str:
        return data.limits.quiet_until.strftime("%H:%M")


class WalletOutputSerializer(serializers.Serializer):
    """医保钱包: my wallet (if opened), transfers waiting for me to accept, entries, and what I sent."""

    opened = serializers.SerializerMethodField()
    balance = serializers.SerializerMethodField()
    opened_at = serializers.SerializerMethodField()
    waiting = serializers.SerializerMethodField(help_text="transfers to accept, before return_due_at")
    entries = WalletEntryOutputSerializer(many=True)
    sent = serializers.SerializerMethodField(help_text="wallet transfers I sent as an account owner, newest first")
    limits = serializers.SerializerMethodField()

    class Meta:
        ref_name = "Wallet"

    def get_opened(self, overview) -> bool:
        return overview.wallet is not None

    @extend_schema_field(serializers.DecimalField(**MONEY))
    def get_balance(self, overview) -> str:
        return f"{overview.wallet.balance:.2f}" if overview.wallet is not None else "0.00"

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_opened_at(self, overview):
        return serializers.DateTimeField().to_representation(overview.wallet.opened_at) if overview.wallet else None

    @extend_schema_field(WalletTransferOutputSerializer(many=True))
    def get_waiting(self, overview) -> list[dict]:
        return WalletTransferOutputSerializer(overview.waiting, many=True, context=self.context).data

    @extend_schema_field(WalletTransferOutputSerializer(many=True))
    def get_sent(self, overview) -> list[dict]:
        return WalletTransferOutputSerializer(overview.sent, many=True, context=self.context).data

    @extend_schema_field(WalletLimitsOutputSerializer)
    def get_limits(self, overview) -> dict:
        return WalletLimitsOutputSerializer(self.context["allowance"]).data

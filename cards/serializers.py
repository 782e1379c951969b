"""API shapes of the e-card (R40–R42). Every name and ID number in an answer is masked (R4)."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.masking import mask_id_number, mask_name
from cards import rules
from cards.models import CardChannel, ECard


class MaskedHolderOutputSerializer(serializers.Serializer):
    """R4: family name and ``*``; first 3 and last 4 characters of the ID number."""

    name = serializers.SerializerMethodField()
    id_number = serializers.SerializerMethodField()

    class Meta:
        ref_name = "CardHolder"

    def get_name(self, person) -> str:
        return mask_name(person.name)

    def get_id_number(self, person) -> str:
        return mask_id_number(person.id_number)


class RegionOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()

    class Meta:
        ref_name = "CardRegion"


class CardOutputSerializer(serializers.Serializer):
    """An e-card as its holder sees it, with the claim's next step (R40)."""

    id = serializers.IntegerField()
    state = serializers.CharField(help_text="pending (claim in progress), active or suspended")
    state_label = serializers.CharField(source="get_state_display")
    channel = serializers.CharField()
    region = RegionOutputSerializer(source="issuing_region")
    holder = MaskedHolderOutputSerializer(source="person")
    next_step = serializers.SerializerMethodField(help_text="agreement, face, password, or done")
    agreement_accepted_at = serializers.DateTimeField(allow_null=True)
    face_verified_at = serializers.DateTimeField(allow_null=True)
    claimed_at = serializers.DateTimeField(allow_null=True)
    locked_until = serializers.SerializerMethodField(help_text="R41: set while the password is locked")

    class Meta:
        ref_name = "ECard"

    @extend_schema_field(serializers.ChoiceField(choices=["agreement", "face", "password", "done"]))
    def get_next_step(self, card: ECard) -> str:
        return rules.claim_next_step(
            state=card.state,
            agreement_accepted=card.agreement_accepted_at is not None,
            face_verified=card.face_verified_at is not None,
            password_set=bool(card.password),
        )

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_locked_until(self, card: ECard):
        if rules.is_locked(locked_until=card.locked_until, now=timezone.now()):
            return serializers.DateTimeField().to_representation(card.locked_until)
        return None


class CardClaimInputSerializer(serializers.Serializer):
    region_code = serializers.RegexField(
        r"^[0-9]{6}$",
        help_text="The 6-digit code of the pooling region that issues the card.",
        error_messages={"invalid": _("A region code has 6 digits.")},
    )
    channel = serializers.ChoiceField(choices=CardChannel.choices, default=CardChannel.PORTAL, required=False)

    class Meta:
        ref_name = "CardClaimInput"


class QrOutputSerializer(serializers.Serializer):
    """R42: a fresh code; the page shows it as a QR image and asks for a new one before ``expires_at``."""

    token = serializers.CharField(help_text="The signed code to encode in the QR image; usable once.")
    expires_at = serializers.DateTimeField()
    ttl_seconds = serializers.IntegerField()

    class Meta:
        ref_name = "CardQr"


class QrVerifyInputSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=2000, help_text="The code read from the holder's QR image.")

    class Meta:
        ref_name = "CardQrVerifyInput"


class PayerOutputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["own", "wallet", "binding"], help_text="own account, own medical-insurance wallet, or an owner's"
    )
    name = serializers.CharField()
    id_number = serializers.CharField()
    relationship = serializers.CharField(help_text="what the holder is to the owner (C3 names); empty for own")
    relationship_label = serializers.CharField()

    class Meta:
        ref_name = "CardPayer"


class QrVerifyCardSerializer(serializers.Serializer):
    state = serializers.CharField()
    region_code = serializers.CharField()
    region_name = serializers.CharField()

    class Meta:
        ref_name = "CardVerifiedCard"


class QrVerificationOutputSerializer(serializers.Serializer):
    """R42, R33: whose card (masked), its state, and who may pay, own account first, oldest binding next."""

    holder = serializers.SerializerMethodField()
    card = serializers.SerializerMethodField()
    payers = PayerOutputSerializer(many=True)
    reference = serializers.CharField(help_text="Names this use of the code in a payment that follows.")
    verified_at = serializers.DateTimeField()

    class Meta:
        ref_name = "CardQrVerification"

    @extend_schema_field(MaskedHolderOutputSerializer)
    def get_holder(self, verification) -> dict:
        return {"name": verification.holder_name, "id_number": verification.holder_id_number}

    @extend_schema_field(QrVerifyCardSerializer)
    def get_card(self, verification) -> dict:
        return {
            "state": verification.card_state,
            "region_code": verification.region_code,
            "region_name": verification.region_name,
        }

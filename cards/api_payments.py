"""Payments API (R31–R34), for clinics' and pharmacies' systems (a partner token bound to an institution)
and counter clerks. One view per endpoint; every refusal is problem+json naming its reason, and nothing
is charged then. Charging calls carry an ``Idempotency-Key`` header: the same key again answers the first
receipt and charges nothing; the same key with another body is 409."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.errors import DomainError, FieldError
from cards.api import IsPartnerOrClerk
from cards.payments import Presented, card_identify, client_institution
from cards.serializers_payments import (
    PaymentInputSerializer,
    QuoteOutputSerializer,
    ReceiptOutputSerializer,
    RefundInputSerializer,
    RefundOutputSerializer,
)
from family.models import Payment
from family.selectors_payments import payment_for_client
from family.serializers_bindings import ProblemSerializer
from family.services.keys import request_fingerprint
from family.services.payments import payment_make, payment_quote, payment_receipt, payment_refund
from portal.problems import PROBLEM_CONTENT_TYPE

TAGS = ["payments"]
KEY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="One key per payment or refund, at most 64 characters; a retry sends the same key and body.",
)


def _problem(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ProblemSerializer, description=description)


COMMON_PROBLEMS = {
    (400, PROBLEM_CONTENT_TYPE): _problem("A bad field, a missing key, or a kind that R31 does not allow."),
    (401, PROBLEM_CONTENT_TYPE): _problem("No credentials."),
    (403, PROBLEM_CONTENT_TYPE): _problem("Not a clerk or partner bound to an institution, or another institution."),
    (404, PROBLEM_CONTENT_TYPE): _problem("Unknown card."),
    (409, PROBLEM_CONTENT_TYPE): _problem("Blocked card, a card not the patient's (R32), or a key reused."),
}


def idempotency_key(request: Request) -> str:
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if not key:
        raise DomainError(
            title=_("An Idempotency-Key header is required."),
            detail=_("Send a new unique key with each payment, and the same key when you retry it."),
            code="idempotency_key_missing",
            errors=[FieldError("Idempotency-Key", _("This header is required."))],
        )
    if len(key) > 64 or not key.isprintable():
        raise DomainError(
            title=_("The Idempotency-Key is at most 64 printable characters."),
            code="idempotency_key_invalid",
            errors=[FieldError("Idempotency-Key", _("At most 64 printable characters."))],
        )
    return key


def _no_store(response: Response) -> Response:
    response["Cache-Control"] = "no-store"
    return response


class PaymentQuoteApi(APIView):
    """R33: the split a payment would make now: own account, which owners, cash; charges nothing.

    A QR code is used up by the quote (R42); the answer's ``qr_reference`` pays in the next minutes.
    """

    permission_classes = [IsPartnerOrClerk]

    @extend_schema(
        operation_id="payments_quote",
        tags=TAGS,
        request=PaymentInputSerializer,
        responses={200: QuoteOutputSerializer, **COMMON_PROBLEMS},
    )
    def post(self, request: Request) -> Response:
        serializer = PaymentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        institution = client_institution(client=request.user, institution_code=data["institution_code"])
        presented = card_identify(
            client=request.user,
            card_number=data["card_number"],
            qr_token=data["qr_token"],
            qr_reference=data["qr_reference"],
            patient_id_number=data["patient_id_number"],
        )
        split = payment_quote(
            patient=presented.patient,
            institution=institution,
            kind=data["kind"],
            category=data["category"],
            amount=data["amount"],
        )
        context = {"qr_reference": presented.qr_reference}
        return _no_store(Response(QuoteOutputSerializer(split, context=context).data))


class PaymentCreateApi(APIView):
    """R31–R34: charge a payment: own account, then owners of active bindings in order, then cash.

    ``GET ?idempotency_key=K`` tells a client whose answer was lost whether K charged (the receipt) or
    not (404), without charging anything.
    """

    permission_classes = [IsPartnerOrClerk]

    @extend_schema(
        operation_id="payments_by_key",
        tags=TAGS,
        parameters=[OpenApiParameter("idempotency_key", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True)],
        responses={200: ReceiptOutputSerializer, **COMMON_PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        key = (request.query_params.get("idempotency_key") or "").strip()
        if not key:
            raise DomainError(
                title=_("Name the payment's Idempotency-Key."),
                code="idempotency_key_missing",
                errors=[FieldError("idempotency_key", _("This parameter is required."))],
            )
        payment = Payment.objects.filter(client=request.user, idempotency_key=key).only("pk").first()
        if payment is None:
            raise DomainError(
                title=_("No payment was made under this key."),
                detail=_("Nothing was charged; the payment can be sent again with the same key."),
                status=404,
                code="not_found",
            )
        receipt = payment_receipt(payment_id=payment.pk)
        return _no_store(Response(ReceiptOutputSerializer(receipt).data))

    @extend_schema(
        operation_id="payments_create",
        tags=TAGS,
        parameters=[KEY_HEADER],
        request=PaymentInputSerializer,
        responses={201: ReceiptOutputSerializer, 200: ReceiptOutputSerializer, **COMMON_PROBLEMS},
    )
    def post(self, request: Request) -> Response:
        key = idempotency_key(request)
        serializer = PaymentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        fingerprint = request_fingerprint(**data)
        existing = Payment.objects.filter(client=request.user, idempotency_key=key).first()
        # One transaction: a payment refused after the code was read leaves the code unused (R42).
        with transaction.atomic():
            if existing is None:
                # Identify only for a new key: a retry must not spend the QR code a second time.
                institution = client_institution(client=request.user, institution_code=data["institution_code"])
                presented = card_identify(
                    client=request.user,
                    card_number=data["card_number"],
                    qr_token=data["qr_token"],
                    qr_reference=data["qr_reference"],
                    patient_id_number=data["patient_id_number"],
                )
            else:
                institution = existing.institution
                presented = Presented(existing.patient, existing.card_number, existing.qr_reference)
            receipt = payment_make(
                client=request.user,
                idempotency_key=key,
                request_hash=fingerprint,
                patient=presented.patient,
                card_number=presented.card_number,
                institution=institution,
                kind=data["kind"],
                category=data["category"],
                amount=data["amount"],
                qr_reference=presented.qr_reference,
            )
        code = status.HTTP_200_OK if receipt.replayed else status.HTTP_201_CREATED
        return _no_store(Response(ReceiptOutputSerializer(receipt).data, status=code))


class PaymentDetailApi(APIView):
    """A payment's receipt, for the client that made it (or a clerk of its institution)."""

    permission_classes = [IsPartnerOrClerk]

    @extend_schema(
        operation_id="payments_detail", tags=TAGS, responses={200: ReceiptOutputSerializer, **COMMON_PROBLEMS}
    )
    def get(self, request: Request, payment_id: int) -> Response:
        payment = payment_for_client(client=request.user, payment_id=payment_id)
        receipt = payment_receipt(payment_id=payment.pk)
        receipt.replayed = False
        return _no_store(Response(ReceiptOutputSerializer(receipt).data))


class PaymentReverseApi(APIView):
    """R34: refund all or part of a payment, as new entries back to the accounts that paid; once per key."""

    permission_classes = [IsPartnerOrClerk]

    @extend_schema(
        operation_id="payments_reverse",
        tags=TAGS,
        parameters=[KEY_HEADER],
        request=RefundInputSerializer,
        responses={201: RefundOutputSerializer, 200: RefundOutputSerializer, **COMMON_PROBLEMS},
    )
    def post(self, request: Request, payment_id: int) -> Response:
        key = idempotency_key(request)
        serializer = RefundInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = payment_refund(
            client=request.user,
            payment_id=payment_id,
            idempotency_key=key,
            request_hash=request_fingerprint(payment_id=payment_id, **data),
            amount=data["amount"],
            reason=data["reason"],
        )
        code = status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED
        return _no_store(Response(RefundOutputSerializer(result).data, status=code))

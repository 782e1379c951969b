"""API of transfers (R36) and the medical-insurance wallet (R37), for citizens (session or token).

Money-moving requests carry an ``Idempotency-Key`` header (R34): the same key with the same body answers
the first result again (200) without charging twice; with another body it is refused (409). Errors
answer problem+json. A transfer the caller is no party to answers 404, like one that does not exist.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.errors import DomainError, FieldError
from accounts.models import Wallet
from accounts.services import wallet_open
from family.api_bindings import IsCitizenWithPerson
from family.serializers_bindings import ProblemSerializer
from family.serializers_wallet import (
    AccountTransferOutputSerializer,
    TransferInputSerializer,
    WalletOutputSerializer,
    WalletTransferInputSerializer,
    WalletTransferOutputSerializer,
)
from family.services.keys import request_fingerprint
from family.services.transfers import account_transfer_make
from family.services.wallet import (
    wallet_overview,
    wallet_send_allowance,
    wallet_transfer_accept,
    wallet_transfer_send,
)
from portal.problems import PROBLEM_CONTENT_TYPE

KEY_HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 64


def _problem(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ProblemSerializer, description=description)


PROBLEMS = {
    (401, PROBLEM_CONTENT_TYPE): _problem("Not logged in."),
    (403, PROBLEM_CONTENT_TYPE): _problem("Not a citizen linked to an insured person, or not allowed to do this."),
}
IDEMPOTENCY_KEY = OpenApiParameter(
    KEY_HEADER,
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=True,
    description="A key of your own (1–64 printable characters, a UUID is good) naming this request: "
    "repeating it with the same body answers the first result without charging again (R34).",
)


def idempotency_key(request: Request) -> str:
    """The request's ``Idempotency-Key``; missing or malformed is a 400 problem naming the header."""
    key = (request.headers.get(KEY_HEADER) or "").strip()
    message = ""
    if not key:
        message = _("Send an Idempotency-Key header naming this request, so it is never charged twice.")
    elif len(key) > KEY_MAX_LENGTH or not key.isascii() or not key.isprintable():
        message = _("The Idempotency-Key has at most 64 printable ASCII characters.")
    if message:
        raise DomainError(
            title=_("The Idempotency-Key header is missing or malformed."),
            errors=[FieldError(KEY_HEADER, message)],
            status=400,
            code="idempotency_key_missing",
        )
    return key


def _answer(serializer_class, transfer, request: Request) -> Response:
    """201 for a new transfer, 200 for the same request again (nothing charged twice)."""
    data = serializer_class(transfer, context={"person_id": request.user.person_id}).data
    response = Response(data, status=status.HTTP_200_OK if transfer.replayed else status.HTTP_201_CREATED)
    if transfer.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


class TransferCreateApi(APIView):
    """历年账户家庭共济 (R36): move money from the previous years' part of my account to a bound relative's."""

    permission_classes = [IsCitizenWithPerson]

    @extend_schema(
        operation_id="transfers_create",
        tags=["transfers"],
        parameters=[IDEMPOTENCY_KEY],
        request=TransferInputSerializer,
        responses={
            201: AccountTransferOutputSerializer,
            200: OpenApiResponse(AccountTransferOutputSerializer, description="The same request again: no new charge."),
            (400, PROBLEM_CONTENT_TYPE): _problem(
                "Missing Idempotency-Key, invalid fields, or the name and ID number match no family member of yours."
            ),
            (409, PROBLEM_CONTENT_TYPE): _problem(
                "Refused: the region shares by payment (R36), no personal account, not enough in the previous "
                "years' part, or the Idempotency-Key was used for another request (idempotency_key_reused)."
            ),
            **PROBLEMS,
        },
    )
    def post(self, request: Request) -> Response:
        key = idempotency_key(request)
        serializer = TransferInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        transfer = account_transfer_make(
            client=request.user,
            idempotency_key=key,
            request_hash=request_fingerprint(
                relative_name=data["relative_name"],
                relative_id_number=data["relative_id_number"],
                amount=data["amount"],
            ),
            owner=request.user.person,
            relative_name=data["relative_name"],
            relative_id_number=data["relative_id_number"],
            amount=data["amount"],
        )
        return _answer(AccountTransferOutputSerializer, transfer, request)


def _wallet_response(request: Request, status_code: int = status.HTTP_200_OK) -> Response:
    person = request.user.person
    context = {"person_id": person.pk, "allowance": wallet_send_allowance(owner=person)}
    return Response(WalletOutputSerializer(wallet_overview(person=person), context=context).data, status=status_code)


class WalletApi(APIView):
    """医保钱包 (R37): see my wallet; open it (a relative must have one to receive cross-province sharing)."""

    permission_classes = [IsCitizenWithPerson]

    @extend_schema(operation_id="wallet_retrieve", tags=["wallet"], responses={200: WalletOutputSerializer, **PROBLEMS})
    def get(self, request: Request) -> Response:
        return _wallet_response(request)

    @extend_schema(
        operation_id="wallet_open",
        tags=["wallet"],
        request=None,
        responses={
            201: WalletOutputSerializer,
            200: OpenApiResponse(WalletOutputSerializer, description="It was open already."),
            **PROBLEMS,
        },
    )
    def post(self, request: Request) -> Response:
        existed = Wallet.objects.filter(person_id=request.user.person_id).exists()
        wallet_open(person=request.user.person, opened_by=request.user)
        return _wallet_response(request, status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


class WalletTransferCreateApi(APIView):
    """跨省共济 (R37): send money from my account to the wallet of a bound relative in another province."""

    permission_classes = [IsCitizenWithPerson]

    @extend_schema(
        operation_id="wallet_transfers_create",
        tags=["wallet"],
        parameters=[IDEMPOTENCY_KEY],
        request=WalletTransferInputSerializer,
        responses={
            201: WalletTransferOutputSerializer,
            200: OpenApiResponse(WalletTransferOutputSerializer, description="The same request again: no new charge."),
            (400, PROBLEM_CONTENT_TYPE): _problem(
                "Missing Idempotency-Key, invalid fields, above the per-transfer limit (wallet_amount_limit), "
                "or no such binding of yours."
            ),
            (409, PROBLEM_CONTENT_TYPE): _problem(
                "Refused: quiet hours (wallet_quiet_hours), daily limit (wallet_daily_limit), same province "
                "(wallet_same_province), the relative's wallet not opened (wallet_not_open), not enough balance, "
                "or the Idempotency-Key was used for another request (idempotency_key_reused)."
            ),
            **PROBLEMS,
        },
    )
    def post(self, request: Request) -> Response:
        key = idempotency_key(request)
        serializer = WalletTransferInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        transfer = wallet_transfer_send(
            client=request.user,
            idempotency_key=key,
            request_hash=request_fingerprint(binding_id=data["binding_id"], amount=data["amount"]),
            owner=request.user.person,
            binding_id=data["binding_id"],
            amount=data["amount"],
        )
        return _answer(WalletTransferOutputSerializer, transfer, request)


class WalletTransferAcceptApi(APIView):
    """R37: the relative accepts a transfer into their wallet; accepting again answers the same."""

    permission_classes = [IsCitizenWithPerson]

    @extend_schema(
        operation_id="wallet_transfers_accept",
        tags=["wallet"],
        request=None,
        responses={
            200: WalletTransferOutputSerializer,
            (404, PROBLEM_CONTENT_TYPE): _problem("No such transfer of yours."),
            (409, PROBLEM_CONTENT_TYPE): _problem("It went back to the owner, or the time to accept is over."),
            **PROBLEMS,
        },
    )
    def post(self, request: Request, transfer_id: int) -> Response:
        transfer = wallet_transfer_accept(transfer_id=transfer_id, user=request.user)
        return Response(WalletTransferOutputSerializer(transfer, context={"person_id": request.user.person_id}).data)

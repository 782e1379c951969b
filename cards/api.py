"""API of the e-card: claim (R40), my card, my dynamic QR code (R42), and its verification by a
clerk or partner system (R42, R33). One view per endpoint; errors answer problem+json."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from cards.selectors import card_for_person
from cards.serializers import (
    CardClaimInputSerializer,
    CardOutputSerializer,
    QrOutputSerializer,
    QrVerificationOutputSerializer,
    QrVerifyInputSerializer,
)
from cards.services import card_claim_start, qr_issue, qr_verify
from family.api_bindings import IsCitizenWithPerson
from family.serializers_bindings import ProblemSerializer
from portal.problems import PROBLEM_CONTENT_TYPE

TAGS = ["cards"]


def _problem(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ProblemSerializer, description=description)


CITIZEN_PROBLEMS = {
    (401, PROBLEM_CONTENT_TYPE): _problem("Not logged in."),
    (403, PROBLEM_CONTENT_TYPE): _problem("Not a citizen linked to an insured person."),
}


class IsPartnerOrClerk(BasePermission):
    """Who verifies e-card codes: partner systems (pharmacies, clinics) and counter clerks (R42)."""

    message = _("Only clerks and partner systems verify e-card codes.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.role in {User.Role.PARTNER, User.Role.CLERK})


def _my_card(request: Request):
    card = card_for_person(person=request.user.person)
    if card is None:
        raise exceptions.NotFound(_("You have no e-card yet: claim one first."))
    return card


class CardClaimApi(APIView):
    """R40: start (or resume) claiming my e-card; claiming again shows the card I have."""

    permission_classes = [IsCitizenWithPerson]

    @extend_schema(
        operation_id="cards_claim",
        tags=TAGS,
        request=CardClaimInputSerializer,
        responses={
            201: OpenApiResponse(CardOutputSerializer, description="A claim started; next_step says what follows."),
            200: OpenApiResponse(CardOutputSerializer, description="The card I already have, or my claim resumed."),
            (400, PROBLEM_CONTENT_TYPE): _problem("Invalid fields, or no region with this code."),
            **CITIZEN_PROBLEMS,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = CardClaimInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        had_card = card_for_person(person=request.user.person) is not None
        card = card_claim_start(
            person=request.user.person,
            region_code=serializer.validated_data["region_code"],
            channel=serializer.validated_data.get("channel") or "portal",
        )
        return Response(
            CardOutputSerializer(card_for_person(person=card.person)).data,
            status=status.HTTP_200_OK if had_card else status.HTTP_201_CREATED,
        )


class CardMeApi(APIView):
    """电子社保卡: my card, its state and issuing region, me masked."""

    permission_classes = [IsCitizenWithPerson]

    @extend_schema(
        operation_id="cards_me_retrieve",
        tags=TAGS,
        responses={
            200: CardOutputSerializer,
            (404, PROBLEM_CONTENT_TYPE): _problem("No e-card claimed yet."),
            **CITIZEN_PROBLEMS,
        },
    )
    def get(self, request: Request) -> Response:
        return Response(CardOutputSerializer(_my_card(request)).data)


class CardQrApi(APIView):
    """R42: a fresh code of my active card, valid for a minute and usable once. Never cached."""

    permission_classes = [IsCitizenWithPerson]

    @extend_schema(
        operation_id="cards_me_qr_retrieve",
        tags=TAGS,
        responses={
            200: QrOutputSerializer,
            (404, PROBLEM_CONTENT_TYPE): _problem("No e-card claimed yet."),
            (409, PROBLEM_CONTENT_TYPE): _problem("The card is not active (claim unfinished, or suspended)."),
            **CITIZEN_PROBLEMS,
        },
    )
    def get(self, request: Request) -> Response:
        # A card that is not active is refused by qr_issue (409 card_not_active).
        token, row = qr_issue(card=_my_card(request), viewer=request.user)
        data = {
            "token": token,
            "expires_at": row.expires_at,
            "ttl_seconds": round((row.expires_at - row.created_at).total_seconds()),
        }
        response = Response(QrOutputSerializer(data).data)
        response["Cache-Control"] = "no-store"
        return response


class CardVerifyApi(APIView):
    """R42: a clerk or partner system accepts a shown code, once; the answer says whose card it is (masked)
    and who may pay (R33: own account first, then the owners of active bindings, oldest binding first).

    Refusals name their reason in ``type`` (``/api/problems/<code>/``): forged (400), expired (410),
    replayed (409), foreign_region (403), card_not_active (409).
    """

    permission_classes = [IsPartnerOrClerk]

    @extend_schema(
        operation_id="cards_verify",
        tags=TAGS,
        request=QrVerifyInputSerializer,
        responses={
            200: QrVerificationOutputSerializer,
            (400, PROBLEM_CONTENT_TYPE): _problem("Missing token, or forged (type /api/problems/forged/)."),
            (401, PROBLEM_CONTENT_TYPE): _problem("No credentials."),
            (403, PROBLEM_CONTENT_TYPE): _problem(
                "Not a clerk or partner, or a card of another province (type /api/problems/foreign_region/)."
            ),
            (409, PROBLEM_CONTENT_TYPE): _problem(
                "Used already (/api/problems/replayed/) or the card is not active (/api/problems/card_not_active/)."
            ),
            (410, PROBLEM_CONTENT_TYPE): _problem("Expired (/api/problems/expired/)."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = QrVerifyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        verification = qr_verify(token=serializer.validated_data["token"], verifier=request.user)
        response = Response(QrVerificationOutputSerializer(verification).data)
        response["Cache-Control"] = "no-store"
        return response

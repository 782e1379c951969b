"""API for accounts: who am I."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import account_for_user
from accounts.serializers import MeOutputSerializer


class MeApi(APIView):
    """The logged-in user, their insured person (masked) and account balances."""

    @extend_schema(responses=MeOutputSerializer, operation_id="me_retrieve")
    def get(self, request: Request) -> Response:
        user = request.user
        account = account_for_user(user=user)
        person = account.person if account else (user.person if user.person_id else None)
        data = {
            "username": user.get_username(),
            "role": user.role,
            "language": request.LANGUAGE_CODE,
            "elderly_mode": user.elderly_mode,
            "person": person,
            "account": account,
        }
        return Response(MeOutputSerializer(data).data)

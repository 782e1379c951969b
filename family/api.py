"""API of family sharing: C3 eligibility."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from family.selectors import eligibility_check
from family.serializers import EligibilityInputSerializer, EligibilityOutputSerializer
from family.serializers_bindings import ProblemSerializer
from portal.problems import PROBLEM_CONTENT_TYPE


class IsPartnerOrStaff(BasePermission):
    """Partner systems and staff; citizens use the pre-check page, which only asks about themselves."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and user.role in {User.Role.PARTNER, User.Role.CLERK, User.Role.REVIEWER, User.Role.ADMIN}
        )


class EligibilityApi(APIView):
    """C3: may this owner share with this relative on this date? The same check the binding pipeline runs."""

    permission_classes = [IsPartnerOrStaff]

    @extend_schema(
        request=EligibilityInputSerializer,
        responses={
            200: EligibilityOutputSerializer,
            (400, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                ProblemSerializer, description="A malformed body: errors names each bad field (C3)."
            ),
            (401, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description="No credentials."),
            (403, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description="Not a partner or staff."),
        },
        operation_id="eligibility",
    )
    def post(self, request: Request) -> Response:
        serializer = EligibilityInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        decision = eligibility_check(
            owner_id_number=data["owner_id_number"],
            relative_id_number=data["relative_id_number"],
            relationship=data["relationship"],
            on_date=data.get("on_date") or timezone.localdate(),
        )
        return Response(EligibilityOutputSerializer(decision).data)

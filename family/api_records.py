"""API of 共济使用明细 sharing records (R35) for citizens (session or token): the caller's own records only."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from family.api_bindings import IsCitizenWithPerson
from family.selectors_payments import ROLES, sharing_records
from family.serializers_bindings import ProblemSerializer
from family.serializers_records import RecordsFilterInputSerializer, RecordsPageOutputSerializer
from portal.problems import PROBLEM_CONTENT_TYPE

PARAMETERS = [
    OpenApiParameter("role", OpenApiTypes.STR, enum=list(ROLES), description="owner or relative; both when absent."),
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day (YYYY-MM-DD, Asia/Shanghai)."),
    OpenApiParameter("until", OpenApiTypes.DATE, description="Last day, included (YYYY-MM-DD)."),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Records per page, 1–100 (default 20)."),
    OpenApiParameter("offset", OpenApiTypes.INT, description="Records to skip (default 0)."),
]


def _page_url(request: Request, offset: int) -> str:
    url = request.build_absolute_uri()
    return replace_query_param(url, "offset", offset) if offset > 0 else remove_query_param(url, "offset")


class SharingRecordsApi(APIView):
    """共济使用明细: payments from my account for my family (owner) and for me from theirs (relative)."""

    permission_classes = [IsCitizenWithPerson]

    @extend_schema(
        operation_id="sharing_records_list",
        tags=["sharing records"],
        parameters=PARAMETERS,
        responses={
            200: RecordsPageOutputSerializer,
            (400, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                ProblemSerializer, description="A bad filter: unknown role, a malformed date, until before from."
            ),
            (401, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description="Not logged in."),
            (403, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                ProblemSerializer, description="Not a citizen linked to an insured person."
            ),
        },
    )
    def get(self, request: Request) -> Response:
        filters = RecordsFilterInputSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        records = sharing_records(
            person_id=request.user.person_id,
            role=data.get("role"),
            date_from=data.get("from"),
            date_until=data.get("until"),
            offset=data["offset"],
            limit=data["limit"],
        )
        body = {
            "count": records.count,
            "limit": records.limit,
            "offset": records.offset,
            "next": _page_url(request, records.offset + records.limit) if records.has_next else None,
            "previous": _page_url(request, max(0, records.offset - records.limit)) if records.has_previous else None,
            "totals": {"owner": records.owner, "relative": records.relative},
            "months": records.months,
            "results": records.records,
        }
        return Response(RecordsPageOutputSerializer(body).data)

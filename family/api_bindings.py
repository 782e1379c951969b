"""API of bindings for citizens (R20, R24, R25, R26): list and apply, see one, upload a document, cancel, end.

One view per endpoint. Objects come through ``binding_get_for_user``: a binding the caller is not
owner or relative of answers 404, like one that does not exist. Errors answer problem+json.
"""

from __future__ import annotations

from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from family.documents import document_attach
from family.models import Binding, BindingMethod, DocumentKind
from family.selectors import binding_documents_current, binding_events, binding_get_for_user
from family.serializers import IdNumberField, RelationshipField
from family.serializers_bindings import (
    BindingDetailOutputSerializer,
    BindingDocumentOutputSerializer,
    BindingOutputSerializer,
    DuplicateProblemSerializer,
    ProblemSerializer,
)
from family.services import DuplicateApplication, binding_cancel, binding_end, binding_submit
from portal.problems import PROBLEM_CONTENT_TYPE, problem_response

TAGS = ["bindings"]


def _problem(description: str, serializer=ProblemSerializer) -> OpenApiResponse:
    return OpenApiResponse(response=serializer, description=description)


PROBLEMS = {
    (401, PROBLEM_CONTENT_TYPE): _problem("Not logged in."),
    (403, PROBLEM_CONTENT_TYPE): _problem("Not a citizen linked to an insured person, or not allowed to do this."),
    (404, PROBLEM_CONTENT_TYPE): _problem("No such binding of yours."),
}


class IsCitizenWithPerson(BasePermission):
    """Citizens whose login is linked to an insured person (real name); partners and staff use other tools."""

    message = _("Only citizens linked to an insured person can use this.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.role == User.Role.CITIZEN and user.person_id)


def _detail_response(request: Request, binding: Binding, status_code: int = status.HTTP_200_OK) -> Response:
    """The binding with its events and current documents, as the caller may see it (masked, R4)."""
    context = {
        "person_id": request.user.person_id,
        "events": binding_events(binding=binding),
        "documents": binding_documents_current(binding=binding),
    }
    return Response(BindingDetailOutputSerializer(binding, context=context).data, status=status_code)


class BindingListCreateApi(APIView):
    """家庭共济: the bindings I own or am in; apply to add a family member (R20)."""

    permission_classes = [IsCitizenWithPerson]

    class InputSerializer(serializers.Serializer):
        relative_name = serializers.CharField(max_length=50, help_text="As on the relative's ID card.")
        relative_id_number = IdNumberField()
        relationship = RelationshipField(help_text="What the relative is to you (the account owner).")
        authorized_from = serializers.DateField(required=False, allow_null=True)
        authorized_until = serializers.DateField(required=False, allow_null=True)
        letter_signed_name = serializers.CharField(
            max_length=50, help_text="Your name as you sign the commitment letter (R20); it must be your own."
        )

        class Meta:
            ref_name = "BindingCreateInput"

        def validate_letter_signed_name(self, value: str) -> str:
            value = " ".join(value.split())
            if value != " ".join(self.context["owner_name"].split()):
                raise serializers.ValidationError(_("Sign with your own name, as on your ID card."))
            return value

    @extend_schema(
        operation_id="bindings_list", tags=TAGS, responses={200: BindingOutputSerializer(many=True), **PROBLEMS}
    )
    def get(self, request: Request) -> Response:
        person_id = request.user.person_id
        bindings = (
            Binding.objects.filter(Q(owner_id=person_id) | Q(relative_id=person_id))
            .select_related("owner", "relative")
            .order_by("-created_at", "-id")
        )
        return Response(BindingOutputSerializer(bindings, many=True, context={"person_id": person_id}).data)

    @extend_schema(
        operation_id="bindings_create",
        tags=TAGS,
        request=InputSerializer,
        responses={
            201: BindingDetailOutputSerializer,
            (400, PROBLEM_CONTENT_TYPE): _problem("Invalid fields, or refused (no such insured person, oneself)."),
            (409, PROBLEM_CONTENT_TYPE): _problem(
                "An application for this relative is open already: existing_id is it.", DuplicateProblemSerializer
            ),
            **PROBLEMS,
        },
    )
    def post(self, request: Request) -> Response:
        owner = request.user.person
        serializer = self.InputSerializer(data=request.data, context={"owner_name": owner.name})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            binding = binding_submit(
                owner=owner,
                relative_id_number=data["relative_id_number"],
                relative_name=data["relative_name"],
                relationship=data["relationship"],
                method=BindingMethod.ONLINE_ID,
                submitted_by=request.user,
                authorized_from=data.get("authorized_from"),
                authorized_until=data.get("authorized_until"),
                letter_signed_name=data["letter_signed_name"],
            )
        except DuplicateApplication as error:
            response = problem_response(
                status_code=error.status, title=error.title, detail=error.detail, errors=[], code=error.code
            )
            response.data["existing_id"] = error.existing.pk if error.existing is not None else None
            return response
        response = _detail_response(request, binding_get_for_user(request.user, binding.pk), status.HTTP_201_CREATED)
        response["Location"] = reverse("api_binding_detail", args=[binding.pk])
        return response


class BindingDetailApi(APIView):
    """申请进度: one binding of mine, with its history and documents."""

    permission_classes = [IsCitizenWithPerson]

    @extend_schema(
        operation_id="bindings_retrieve", tags=TAGS, responses={200: BindingDetailOutputSerializer, **PROBLEMS}
    )
    def get(self, request: Request, binding_id: int) -> Response:
        return _detail_response(request, binding_get_for_user(request.user, binding_id))


@extend_schema_field(OpenApiTypes.BINARY)
class UploadedFileField(serializers.FileField):
    """A file part of a multipart request (binary in the schema, not a URL)."""


class BindingDocumentCreateApi(APIView):
    """上传材料: the owner uploads a document of an open application, or replaces a rejected one (R20, R24).

    The file is judged by its content, never by its name or content type: JPEG, PNG, WebP, HEIC/HEIF
    pictures (re-encoded, metadata dropped) and PDF documents (no scripts, encryption, attachments;
    a limited number of pages). A refused file leaves nothing stored.
    """

    permission_classes = [IsCitizenWithPerson]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=DocumentKind.choices, help_text="Which document this is.")
        # Empty files reach the service, which refuses them with its own code (document_empty).
        file = UploadedFileField(allow_empty_file=True, help_text="A photo (JPEG, PNG, WebP, HEIC) or a PDF.")

        class Meta:
            ref_name = "BindingDocumentUploadInput"

    @extend_schema(
        operation_id="bindings_documents_create",
        tags=TAGS,
        request={"multipart/form-data": InputSerializer},
        responses={
            **PROBLEMS,
            201: BindingDocumentOutputSerializer,
            (400, PROBLEM_CONTENT_TYPE): _problem(
                "A missing or bad field; a refused file names the problem in errors[field=file] and in type "
                "(/api/problems/document_damaged/, document_markup, document_pdf_javascript, ...)."
            ),
            (403, PROBLEM_CONTENT_TYPE): _problem("Not a citizen linked to an insured person, or not the owner."),
            (409, PROBLEM_CONTENT_TYPE): _problem(
                "This kind is uploaded and not rejected, the application has as many documents as it may, "
                "or it no longer takes documents."
            ),
        },
    )
    def post(self, request: Request, binding_id: int) -> Response:
        binding = binding_get_for_user(request.user, binding_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        document = document_attach(
            binding=binding,
            kind=serializer.validated_data["kind"],
            uploaded=serializer.validated_data["file"],
            user=request.user,
        )
        return Response(BindingDocumentOutputSerializer(document).data, status=status.HTTP_201_CREATED)


class BindingCancelApi(APIView):
    """R25: the owner withdraws an application that is not active yet."""

    permission_classes = [IsCitizenWithPerson]

    @extend_schema(
        operation_id="bindings_cancel",
        tags=TAGS,
        request=None,
        responses={
            200: BindingDetailOutputSerializer,
            (409, PROBLEM_CONTENT_TYPE): _problem("The binding is active or closed already."),
            **PROBLEMS,
        },
    )
    def post(self, request: Request, binding_id: int) -> Response:
        binding = binding_get_for_user(request.user, binding_id)
        binding_cancel(binding_id=binding.pk, user=request.user)
        return _detail_response(request, binding_get_for_user(request.user, binding.pk))


class BindingEndApi(APIView):
    """R26: the owner unbinds (解绑) or the relative leaves (退出共济), at once."""

    permission_classes = [IsCitizenWithPerson]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=200, required=False, allow_blank=True)

        class Meta:
            ref_name = "BindingEndInput"

    @extend_schema(
        operation_id="bindings_end",
        tags=TAGS,
        request=InputSerializer,
        responses={
            200: BindingDetailOutputSerializer,
            (400, PROBLEM_CONTENT_TYPE): _problem("Invalid fields."),
            (409, PROBLEM_CONTENT_TYPE): _problem("The binding is not active."),
            **PROBLEMS,
        },
    )
    def post(self, request: Request, binding_id: int) -> Response:
        binding = binding_get_for_user(request.user, binding_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        binding_end(
            binding_id=binding.pk, user=request.user, reason=serializer.validated_data.get("reason", "").strip()
        )
        return _detail_response(request, binding_get_for_user(request.user, binding.pk))

"""API routes of bindings, under /api/v1/ (included by portal.urls)."""

from django.urls import path

from family.api_bindings import (
    BindingCancelApi,
    BindingDetailApi,
    BindingDocumentCreateApi,
    BindingEndApi,
    BindingListCreateApi,
)

urlpatterns = [
    path("bindings/", BindingListCreateApi.as_view(), name="api_bindings"),
    path("bindings/<int:binding_id>/", BindingDetailApi.as_view(), name="api_binding_detail"),
    path("bindings/<int:binding_id>/documents/", BindingDocumentCreateApi.as_view(), name="api_binding_documents"),
    path("bindings/<int:binding_id>/cancel/", BindingCancelApi.as_view(), name="api_binding_cancel"),
    path("bindings/<int:binding_id>/end/", BindingEndApi.as_view(), name="api_binding_end"),
]

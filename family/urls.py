"""Citizen pages of family sharing, under /family/. The names are fixed: services reverse some of them."""

from django.urls import include, path

from family import views

urlpatterns = [
    path("", views.family_home, name="family_home"),
    path("check/", views.family_precheck, name="family_precheck"),
    path("add/", views.binding_add, name="binding_add"),
    path("add/notice/", views.binding_add_notice, name="binding_add_notice"),
    path("add/member/", views.binding_add_member, name="binding_add_member"),
    path("add/letter/", views.binding_add_letter, name="binding_add_letter"),
    path("add/upload/", views.binding_add_upload, name="binding_add_upload"),
    path("add/restart/", views.binding_add_restart, name="binding_add_restart"),
    path("add/newborn/", views.binding_newborn, name="binding_newborn"),
    path("bindings/<int:pk>/", views.binding_detail, name="binding_detail"),
    path("bindings/<int:pk>/documents/", views.binding_document_upload, name="binding_document_upload"),
    path("bindings/<int:pk>/cancel/", views.binding_cancel_view, name="binding_cancel"),
    path("bindings/<int:pk>/end/", views.binding_end_view, name="binding_end"),
    path("bindings/<int:pk>/consent/", views.binding_consent, name="binding_consent"),
    path("bindings/<int:pk>/letter.pdf", views.binding_letter, name="binding_letter"),
    path("bindings/<int:pk>/newborn-id/", views.binding_newborn_id, name="binding_newborn_id"),
    path("wallet/", include("family.wallet_urls")),
    path("records/", include("family.records_urls")),
]

"""E-card and family card service pages, under /card/. The names are fixed: other apps and tests reverse them."""

from django.urls import path

from cards import views

urlpatterns = [
    path("", views.card_home, name="card_home"),
    path("qr/", views.card_qr_fragment, name="card_qr_fragment"),
    path("claim/", views.card_claim, name="card_claim"),
    path("claim/region/", views.card_claim_region, name="card_claim_region"),
    path("claim/agreement/", views.card_claim_agreement, name="card_claim_agreement"),
    path("claim/face/", views.card_claim_face, name="card_claim_face"),
    path("claim/password/", views.card_claim_password, name="card_claim_password"),
    path("password/", views.card_password_change, name="card_password_change"),
    path("password/reset/", views.card_password_reset, name="card_password_reset"),
    path("relatives/<int:link_id>/qr/", views.card_relative_qr, name="card_relative_qr"),
    path("relatives/<int:link_id>/qr/fragment/", views.card_relative_qr_fragment, name="card_relative_qr_fragment"),
    path("family/", views.family_card_home, name="family_card_home"),
    path("family/add/", views.family_card_add_view, name="family_card_add"),
    path("family/<int:link_id>/", views.family_card_detail, name="family_card_detail"),
    path("family/<int:link_id>/wallet/", views.family_card_wallet_open_view, name="family_card_wallet_open"),
    path("family/<int:link_id>/consent/", views.family_card_consent, name="family_card_consent"),
    path("family/<int:link_id>/photo/", views.family_card_photo, name="family_card_photo"),
    path("family/<int:link_id>/claim/", views.family_card_claim_child, name="family_card_claim_child"),
    path("family/<int:link_id>/end/", views.family_card_end_view, name="family_card_end"),
    path("family/<int:link_id>/document/", views.family_card_document_upload, name="family_card_document_upload"),
    path(
        "family/<int:link_id>/password/",
        views.family_card_child_password_change,
        name="family_card_child_password_change",
    ),
    path(
        "family/<int:link_id>/password/reset/",
        views.family_card_child_password_reset,
        name="family_card_child_password_reset",
    ),
]

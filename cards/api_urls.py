"""API routes of the e-card, under /api/v1/cards/ (included by portal.urls)."""

from django.urls import path

from cards.api import CardClaimApi, CardMeApi, CardQrApi, CardVerifyApi

urlpatterns = [
    path("claim/", CardClaimApi.as_view(), name="api_card_claim"),
    path("me/", CardMeApi.as_view(), name="api_card_me"),
    path("me/qr/", CardQrApi.as_view(), name="api_card_qr"),
    path("verify/", CardVerifyApi.as_view(), name="api_card_verify"),
]

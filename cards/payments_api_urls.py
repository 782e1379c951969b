"""API routes of payments (R31–R34), under /api/v1/payments/."""

from django.urls import path

from cards.api_payments import PaymentCreateApi, PaymentDetailApi, PaymentQuoteApi, PaymentReverseApi

urlpatterns = [
    path("", PaymentCreateApi.as_view(), name="api_payments"),
    path("quote/", PaymentQuoteApi.as_view(), name="api_payment_quote"),
    path("<int:payment_id>/", PaymentDetailApi.as_view(), name="api_payment_detail"),
    path("<int:payment_id>/reverse/", PaymentReverseApi.as_view(), name="api_payment_reverse"),
]

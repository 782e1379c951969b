"""Citizen pages of transfers (R36) and the medical-insurance wallet (R37), under /family/wallet/."""

from django.urls import path

from family import views_wallet

urlpatterns = [
    path("", views_wallet.wallet_home, name="wallet_home"),
    path("open/", views_wallet.wallet_open_view, name="wallet_open"),
    path("send/", views_wallet.wallet_send, name="wallet_send"),
    path("transfers/<int:pk>/accept/", views_wallet.wallet_transfer_accept_view, name="wallet_transfer_accept"),
    path("transfer/", views_wallet.transfer_receiver, name="transfer_receiver"),
    path("transfer/amount/", views_wallet.transfer_amount, name="transfer_amount"),
    path("transfer/confirm/", views_wallet.transfer_confirm, name="transfer_confirm"),
    path("transfer/done/<str:reference>/", views_wallet.transfer_detail, name="transfer_detail"),
]

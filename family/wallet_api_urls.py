"""API routes of transfers (R36) and the wallet (R37), under /api/v1/."""

from django.urls import path

from family.api_wallet import TransferCreateApi, WalletApi, WalletTransferAcceptApi, WalletTransferCreateApi

urlpatterns = [
    path("transfers/", TransferCreateApi.as_view(), name="api_transfers"),
    path("wallet/", WalletApi.as_view(), name="api_wallet"),
    path("wallet/transfers/", WalletTransferCreateApi.as_view(), name="api_wallet_transfers"),
    path(
        "wallet/transfers/<int:transfer_id>/accept/",
        WalletTransferAcceptApi.as_view(),
        name="api_wallet_transfer_accept",
    ),
]

"""Citizen pages of transfers (R36) and the medical-insurance wallet (R37), under /family/wallet/."""

urlpatterns: list = []

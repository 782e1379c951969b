"""API routes of transfers (R36) and the wallet (R37), under /api/v1/."""

urlpatterns: list = []

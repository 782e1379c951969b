"""API routes of payments (R31–R34), under /api/v1/payments/."""

urlpatterns: list = []

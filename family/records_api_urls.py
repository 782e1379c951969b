"""API routes of sharing records (R35), under /api/v1/."""

urlpatterns: list = []

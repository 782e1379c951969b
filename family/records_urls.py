"""Citizen pages of sharing records (R35) and contributions paid for a relative (R31), under /family/records/."""

urlpatterns: list = []

"""Citizen pages of sharing records (R35) and contributions paid for a relative (R31), under /family/records/."""

from django.urls import path

from family import views_records

urlpatterns = [
    path("", views_records.family_records, name="family_records"),
    path("export.csv", views_records.family_records_export, name="family_records_export"),
    path("contribute/", views_records.contribution_start, name="contribution_start"),
    path("contributions/<int:pk>/", views_records.contribution_detail, name="contribution_detail"),
]

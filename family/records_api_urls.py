"""API routes of sharing records (R35), under /api/v1/."""

from django.urls import path

from family.api_records import SharingRecordsApi

urlpatterns = [
    path("sharing-records/", SharingRecordsApi.as_view(), name="api_sharing_records"),
]

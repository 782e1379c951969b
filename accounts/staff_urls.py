"""The audit log for administrators, under /staff/audit/ (R51)."""

from django.urls import path

from accounts import staff_views

urlpatterns = [
    path("", staff_views.audit_log, name="staff_audit_log"),
    path("export.csv", staff_views.audit_export, name="staff_audit_export"),
]

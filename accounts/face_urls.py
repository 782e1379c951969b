"""人脸识别 at the outside vendor, under /face/: consent and start, the signed callback, the return page."""

from django.urls import path

from accounts import face_views

urlpatterns = [
    path("vendor/start/", face_views.vendor_start, name="face_vendor_start"),
    path("vendor/callback/", face_views.vendor_callback, name="face_vendor_callback"),
    path("vendor/return/<uuid:session_id>/", face_views.vendor_return, name="face_vendor_return"),
]

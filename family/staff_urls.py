"""The reviewers' workbench, under /staff/review/ (R24)."""

from django.urls import path

from family import staff_views

urlpatterns = [
    path("", staff_views.review_queue_view, name="staff_review_queue"),
    path("next/", staff_views.review_take_next, name="staff_review_take_next"),
    path("<int:pk>/", staff_views.review_detail, name="staff_review_detail"),
    path("<int:pk>/approve/", staff_views.review_approve_view, name="staff_review_approve"),
    path("<int:pk>/send-back/", staff_views.review_send_back_view, name="staff_review_send_back"),
    path("<int:pk>/refuse/", staff_views.review_refuse_view, name="staff_review_refuse"),
    path("<int:pk>/release/", staff_views.review_release_view, name="staff_review_release"),
    path(
        "documents/<int:document_id>/page/<int:page>.png",
        staff_views.review_page_image,
        name="staff_review_page_image",
    ),
]

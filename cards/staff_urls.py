"""The reviewers' pages of family card documents (R24, R43), under /staff/family-cards/."""

from django.urls import path

from cards import staff_views

urlpatterns = [
    path("", staff_views.family_card_review_queue, name="staff_family_card_queue"),
    path("next/", staff_views.family_card_review_take_next, name="staff_family_card_take_next"),
    path("<int:document_id>/", staff_views.family_card_review, name="staff_family_card_review"),
    path("<int:document_id>/approve/", staff_views.family_card_review_approve, name="staff_family_card_approve"),
    path("<int:document_id>/reject/", staff_views.family_card_review_reject, name="staff_family_card_reject"),
    path(
        "<int:document_id>/pages/<int:page>/",
        staff_views.family_card_page_image,
        name="staff_family_card_page_image",
    ),
]

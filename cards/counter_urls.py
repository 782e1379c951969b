"""The clerks' counter pages (R22, R32, R33), under /counter/."""

from django.urls import path

from cards import counter_views

urlpatterns = [
    path("", counter_views.counter_home, name="counter"),
    path("read/", counter_views.counter_read, name="counter_read"),
    path("next/", counter_views.counter_next, name="counter_next"),
    path("bind/", counter_views.counter_bind, name="counter_bind"),
    path("bind/restart/", counter_views.counter_bind_restart, name="counter_bind_restart"),
    path("bind/owner/", counter_views.counter_bind_owner, name="counter_bind_owner"),
    path("bind/relative/", counter_views.counter_bind_relative, name="counter_bind_relative"),
    path("bind/relationship/", counter_views.counter_bind_relationship, name="counter_bind_relationship"),
    path("bind/confirm/", counter_views.counter_bind_confirm, name="counter_bind_confirm"),
    path("bindings/<int:pk>/", counter_views.counter_binding, name="counter_binding"),
    path("unbind/", counter_views.counter_unbind, name="counter_unbind"),
    path("charge/", counter_views.counter_charge, name="counter_charge"),
    path("charge/confirm/", counter_views.counter_charge_confirm, name="counter_charge_confirm"),
    path("receipts/<int:pk>/", counter_views.counter_receipt, name="counter_receipt"),
]

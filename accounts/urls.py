from django.urls import path

from accounts import views

urlpatterns = [
    path("me/real-name/", views.real_name, name="real_name"),
    path("me/insurance/", views.my_insurance, name="my_insurance"),
    path("me/notifications/", views.notifications, name="notifications"),
    path("preferences/elderly-mode/", views.elderly_mode, name="elderly_mode"),
]

"""The clerks' counter pages (R22, R32, R33), under /counter/."""

urlpatterns: list = []

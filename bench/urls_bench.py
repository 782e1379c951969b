"""The portal's URLs plus ``/bench/bare/``: the same server and middleware, a view that does nothing."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from portal.urls import handler404, handler500
from portal.urls import urlpatterns as portal_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]


def bare(request: HttpRequest) -> HttpResponse:
    """The baseline: what a request costs before any page does its own work."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/bare/", bare, name="bench_bare"), *portal_urlpatterns]

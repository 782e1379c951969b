"""The portal's URLs plus baselines on the same server and middleware: ``/bench/bare/`` (a Django view
that does nothing), ``/bench/bare-page/`` (a logged-in request rendering ``base.html`` with no content)
and ``/bench/bare-api/`` (a DRF view that authenticates the token and parses a JSON body,
as an API endpoint does, then does nothing)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.urls import handler404, handler500
from portal.urls import urlpatterns as portal_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]


def bare(request: HttpRequest) -> HttpResponse:
    """The baseline: what a request costs before any page does its own work."""
    return HttpResponse("ok", content_type="text/plain")


@login_required
def bare_page(request: HttpRequest) -> HttpResponse:
    """The floor of a citizen page: session and user loaded, ``base.html`` rendered with no content."""
    return render(request, "base.html")


class BareApi(APIView):
    """The API baseline: token authentication, throttling, JSON parsing and rendering, no work of its own."""

    schema = None  # a bench URL, never in the published schema

    def post(self, request: Request) -> Response:
        return Response({"ok": bool(request.data.get("token"))})


urlpatterns = [
    path("bench/bare/", bare, name="bench_bare"),
    path("bench/bare-page/", bare_page, name="bench_bare_page"),
    path("bench/bare-api/", BareApi.as_view(), name="bench_bare_api"),
    *portal_urlpatterns,
]

"""Pages take GET and POST only (proof issue, security: the authorization matrix tries the other methods)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

# An HTML form sends GET or POST; HEAD is GET without the body.
PAGE_METHODS = ("GET", "HEAD", "POST")
# The API's views (DRF) answer each method themselves, with problem+json.
API_PREFIX = "/api/"


class PageMethodsMiddleware:
    """405 for PUT, PATCH, DELETE, OPTIONS… outside the API, before any view runs.

    Many page views branch on ``request.method == "POST"`` and treat every other method as GET, and Django's
    form views handle PUT as POST (allauth's login among them): one rule here instead of a decorator on each.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in PAGE_METHODS and not request.path_info.startswith(API_PREFIX):
            return HttpResponseNotAllowed(PAGE_METHODS)
        return self.get_response(request)

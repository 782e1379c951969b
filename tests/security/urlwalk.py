"""Every URL pattern of the project, found by walking the resolver (includes included)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.urls import URLPattern, URLResolver, get_resolver

# Decided and written down (proof issue, security): what the matrix leaves to its owners' own tests.
# - The admin's own pages beyond /admin/ itself: Django's admin checks is_staff and model permissions itself.
# - allauth's pages beyond login and signup (logout, e-mail, phone, password reset, 2FA): allauth's own tests.
# - Static files: whitenoise serves them outside the URL patterns; there is no media URL (R51: private files
#   are served by views, which are in the matrix).
ALLAUTH_KEPT = {"account_login", "account_signup"}
ADMIN_KEPT = {"admin:index"}


@dataclass(frozen=True)
class Route:
    key: str  # the URL name (namespaced), or the route itself for an unnamed pattern
    route: str
    module: str
    callback: Callable | None = field(default=None, compare=False, repr=False)  # the view


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(part for part in (namespace, pattern.namespace or "") if part)
            yield from _walk(pattern, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            key = f"{namespace}:{pattern.name}" if namespace and pattern.name else (pattern.name or route)
            yield Route(key=key, route=route, module=pattern.callback.__module__, callback=pattern.callback)


def project_routes() -> list[Route]:
    """The routes the authorization matrix must cover (see the decisions above)."""
    routes = []
    for route in _walk(get_resolver()):
        if route.route.startswith("admin/") and route.key not in ADMIN_KEPT:
            continue
        if route.module.startswith("allauth.") and route.key not in ALLAUTH_KEPT:
            continue
        routes.append(route)
    return routes

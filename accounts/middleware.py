"""Staff must have TOTP (allauth MFA) before any staff page opens, the admin included."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.decorators import has_totp

# Staff areas; later issues add their own prefixes (review workbench, counter).
STAFF_PREFIXES = ("/admin/", "/staff/", "/counter/")


class StaffMfaMiddleware:
    """A clerk, reviewer or admin without an authenticator is sent to set one up first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            settings.STAFF_REQUIRE_MFA
            and request.path.startswith(STAFF_PREFIXES)
            and user is not None
            and user.is_authenticated
            and user.is_staff_role
            and not has_totp(user)
        ):
            return redirect("mfa_activate_totp")
        return self.get_response(request)

"""Access helpers for views: roles, the real-name link, and MFA for staff."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode


def role_required(*roles: str) -> Callable:
    """Only these roles may open the view (403 for the others); staff must have TOTP set up when required."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            user = request.user
            if user.role not in roles:
                raise PermissionDenied
            if settings.STAFF_REQUIRE_MFA and user.is_staff_role and not has_totp(user):
                return redirect("mfa_activate_totp")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def has_totp(user) -> bool:
    """Whether the user has set up a TOTP authenticator (allauth MFA)."""
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def person_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Citizen pages that need the real-name link send the user to link first, then back."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.person_id:
            return redirect(f"{reverse('real_name')}?{urlencode({'next': request.get_full_path()})}")
        return view(request, *args, **kwargs)

    return wrapper

"""Every API error as application/problem+json (RFC 9457), naming the bad fields."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler

from accounts.errors import DomainError

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ProblemJSONRenderer(JSONRenderer):
    """Lets views answer problem+json even when the client asked for application/json."""

    media_type = PROBLEM_CONTENT_TYPE
    format = "problem+json"


def _flatten(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested error dicts/lists become a flat list of {field, message}."""
    errors: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            field = f"{prefix}.{name}" if prefix and name else (name or prefix)
            errors.extend(_flatten(value, field))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                errors.extend(_flatten(value, f"{prefix}[{index}]" if prefix else str(index)))
            else:
                errors.extend(_flatten(value, prefix))
    else:
        errors.append({"field": prefix or "__all__", "message": str(detail)})
    return errors


def problem_response(
    *, status_code: int, title: str, detail: str = "", errors: list[dict[str, str]] | None = None, code: str = ""
) -> Response:
    """Build one problem+json answer."""
    body: dict[str, Any] = {
        "type": f"/api/problems/{code}/" if code else "about:blank",
        "title": title,
        "status": status_code,
        "detail": detail or title,
    }
    if errors is not None:
        body["errors"] = errors
    return Response(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


_TITLES = {
    status.HTTP_400_BAD_REQUEST: lambda: _("The request has invalid fields."),
    status.HTTP_401_UNAUTHORIZED: lambda: _("Authentication is needed."),
    status.HTTP_403_FORBIDDEN: lambda: _("You may not do this."),
    status.HTTP_404_NOT_FOUND: lambda: _("Not found."),
    status.HTTP_405_METHOD_NOT_ALLOWED: lambda: _("This method is not allowed here."),
    status.HTTP_406_NOT_ACCEPTABLE: lambda: _("This response format is not available."),
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: lambda: _("This request format is not supported."),
    status.HTTP_429_TOO_MANY_REQUESTS: lambda: _("Too many requests; please wait a moment."),
}


def problem_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF exception handler: domain errors and DRF errors answer problem+json."""
    if isinstance(exc, DomainError):
        return problem_response(
            status_code=exc.status,
            title=exc.title,
            detail=exc.detail,
            errors=[{"field": e.field, "message": e.message} for e in exc.errors],
            code=exc.code,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    title_factory = _TITLES.get(response.status_code)
    title = str(title_factory()) if title_factory else str(exc.default_detail)
    errors = _flatten(exc.detail) if isinstance(exc, exceptions.ValidationError) else []
    detail = "" if isinstance(exc, exceptions.ValidationError) else str(exc.detail)
    problem = problem_response(
        status_code=response.status_code, title=title, detail=detail, errors=errors, code=exc.default_code
    )
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in response:
            problem[header] = response[header]
    return problem

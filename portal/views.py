"""Top-level pages: home, health check, and error pages for the API."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from family.models import Relation
from family.selectors import policy_in_force

NATIONAL = "*"


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """首页: what family sharing is, who may share with whom now in my region, and where to start."""
    user = request.user
    region = user.person.region if user.is_authenticated and user.person_id else None
    today = timezone.localdate()
    policy = policy_in_force(region_code=region.code if region else NATIONAL, on_date=today)
    relations = [Relation(value).label for value in (policy.relations if policy else [])]
    return render(
        request,
        "portal/home.html",
        {"region": region, "policy": policy, "relations": relations, "today": today},
    )


@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database (and the broker, when configured) answer; 503 otherwise."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"error: {type(error).__name__}"
    if settings.CELERY_BROKER_URL:
        checks["broker"] = _broker_status()
    else:
        checks["broker"] = "in-process"
    healthy = all(value in {"ok", "in-process"} for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503)


def _broker_status() -> str:
    from portal.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as error:
        return f"error: {type(error).__name__}"


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page says; resolved per request (the manifest is built later)."""
    return redirect(static("img/favicon.svg"), permanent=True)


def _wants_problem(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: problem+json under /api/, the portal's page elsewhere."""
    if _wants_problem(request):
        return JsonResponse(
            {"type": "about:blank", "title": _("Not found."), "status": 404, "detail": _("Not found."), "errors": []},
            status=404,
            content_type="application/problem+json",
        )
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: problem+json under /api/, the portal's page elsewhere."""
    if _wants_problem(request):
        title = _("Something went wrong on our side. Nothing was changed; please try again.")
        return JsonResponse(
            {"type": "about:blank", "title": title, "status": 500, "detail": title, "errors": []},
            status=500,
            content_type="application/problem+json",
        )
    return render(request, "500.html", status=500)

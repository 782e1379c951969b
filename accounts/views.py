"""Citizen pages of accounts: real-name link, my insurance, display preferences."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from accounts.context_processors import ELDERLY_COOKIE
from accounts.decorators import person_required
from accounts.errors import RealNameMismatch
from accounts.forms import RealNameForm
from accounts.models import InsuredPerson, LedgerEntry, Notification
from accounts.selectors import account_for_user, ledger_entries_for_account, notifications_for_user
from accounts.services import user_link_person

ENTRIES_PER_PAGE = 20


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


@login_required
def real_name(request: HttpRequest) -> HttpResponse:
    """实名认证: the citizen enters name and ID number; it must match an insured person."""
    if request.user.person_id:
        return redirect("my_insurance")
    form = RealNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user_link_person(
                user=request.user, name=form.cleaned_data["name"], id_number=form.cleaned_data["id_number"]
            )
        except RealNameMismatch as error:
            form.add_error(None, error.title)
        else:
            messages.success(request, _("Your real name is confirmed. Your insurance records are now shown to you."))
            return redirect(_safe_next(request, "my_insurance"))
    return render(request, "accounts/real_name.html", {"form": form, "next": request.GET.get("next", "")})


@require_safe
@person_required
def my_insurance(request: HttpRequest) -> HttpResponse:
    """我的医保: masked ID, insurance type and status, region, balances and entries (paginated)."""
    account = account_for_user(user=request.user)
    page = None
    if account is None:
        person = InsuredPerson.objects.select_related("region").get(pk=request.user.person_id)
    else:
        person = account.person
        page = Paginator(ledger_entries_for_account(account=account), ENTRIES_PER_PAGE).get_page(
            request.GET.get("page")
        )
    months = _by_month(page.object_list) if page is not None else []
    return render(
        request,
        "accounts/my_insurance.html",
        {"person": person, "account": account, "page": page, "months": months},
    )


def _by_month(entries: Iterable[LedgerEntry]) -> list[list[LedgerEntry]]:
    """The page's entries cut into runs of one local month, newest first as they come.

    What ``{% regroup ... by created_at|date:'Y-m' %}`` gave, for a tenth of the cost: the date filter
    was most of the time spent per entry.
    """
    months: list[list[LedgerEntry]] = []
    current = None
    for entry in entries:
        local = timezone.localtime(entry.created_at)
        if (local.year, local.month) != current:
            current = (local.year, local.month)
            months.append([])
        months[-1].append(entry)
    return months


@require_POST
def elderly_mode(request: HttpRequest) -> HttpResponse:
    """适老化: switch large text and high contrast on or off, kept for the user (or in a cookie before login)."""
    enabled = request.POST.get("enabled") == "1"
    response = redirect(_safe_next(request, "home"))
    if request.user.is_authenticated:
        request.user.elderly_mode = enabled
        request.user.save(update_fields=["elderly_mode"])
    response.set_cookie(ELDERLY_COOKIE, "1" if enabled else "0", max_age=365 * 24 * 3600, samesite="Lax")
    return response


@require_safe
@person_required
def notifications(request: HttpRequest) -> HttpResponse:
    """消息: every decision, payment from my account and reminder; opening the page marks them read."""
    page = Paginator(notifications_for_user(user=request.user), ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    unread_ids = [n.pk for n in page.object_list if n.read_at is None]
    response = render(request, "accounts/notifications.html", {"page": page, "unread_ids": set(unread_ids)})
    if unread_ids:
        Notification.objects.filter(pk__in=unread_ids).update(read_at=timezone.now())
    return response

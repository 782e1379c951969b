"""审计日志 The audit log for administrators (R51), under /staff/audit/: who did or saw what, when; filters; CSV.

Labels in the log are masked (R4), so a person is found the other way round: the full ID number (or the
exact name) finds the insured person, and the log is filtered on the rows about that person: rows whose
object is the person, and rows whose ``detail`` names the person as ``owner`` or ``relative`` (the
review workbench writes them so).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from django import forms
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_GET

from accounts.decorators import role_required
from accounts.models import AuditEvent, InsuredPerson, User
from accounts.services import audit_record

AUDIT_PAGE_SIZE = 50
ID_NUMBER = re.compile(r"^[0-9]{17}[0-9X]$")
PERSON_TYPE = InsuredPerson._meta.label_lower
# A cell that starts like a formula is run by Excel; a leading apostrophe keeps it text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_HEADER = ["time", "actor", "action", "object_type", "object_id", "object", "ip_address", "detail"]


# --- Reads --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    """What an administrator narrows the log to; empty values mean "any"."""

    person: str = ""
    actor: str = ""
    action: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None


def audit_person_ids(*, query: str) -> list[int]:
    """The insured persons a search names: by full ID number (exact), else by exact full name."""
    value = query.strip()
    if ID_NUMBER.match(value.upper()):
        persons = InsuredPerson.objects.filter(id_number=value.upper())
    else:
        persons = InsuredPerson.objects.filter(name=value)
    return list(persons.values_list("pk", flat=True))


def audit_events(*, filters: AuditFilters) -> QuerySet[AuditEvent]:
    """The log as filtered, newest first. Dates are whole local days (Asia/Shanghai), both ends included."""
    events = AuditEvent.objects.all()
    if filters.person:
        ids = audit_person_ids(query=filters.person)
        if not ids:
            return AuditEvent.objects.none()
        events = events.filter(
            Q(target_type=PERSON_TYPE, target_id__in=[str(pk) for pk in ids])
            | Q(detail__owner__in=ids)
            | Q(detail__relative__in=ids)
        )
    if filters.actor:
        events = events.filter(actor_label__iexact=filters.actor.strip())
    if filters.action:
        events = events.filter(action=filters.action)
    zone = timezone.get_current_timezone()
    if filters.date_from:
        events = events.filter(created_at__gte=dt.datetime.combine(filters.date_from, dt.time.min, tzinfo=zone))
    if filters.date_to:
        day_after = filters.date_to + dt.timedelta(days=1)
        events = events.filter(created_at__lt=dt.datetime.combine(day_after, dt.time.min, tzinfo=zone))
    return events.order_by("-created_at", "-pk")


def audit_actions() -> list[str]:
    """The actions the log holds, for the filter (one query on the indexed column)."""
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())


# --- Form ---------------------------------------------------------------------------------------


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class AuditFilterForm(forms.Form):
    person = forms.CharField(
        label=gettext_lazy("Person: full ID number or full name"),
        required=False,
        max_length=50,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    actor = forms.CharField(label=gettext_lazy("Who (user name)"), required=False, max_length=150)
    action = forms.ChoiceField(label=gettext_lazy("Action"), required=False)
    date_from = forms.DateField(label=pgettext_lazy("date range", "From"), required=False, widget=DateInput)
    date_to = forms.DateField(label=pgettext_lazy("date range", "Until"), required=False, widget=DateInput)

    def __init__(self, *args, actions: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", _("Any")), *[(action, action) for action in actions]]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("Choose a date on or after the start date."))
        return cleaned

    def filters(self) -> AuditFilters:
        if not self.is_bound or not self.is_valid():
            return AuditFilters()
        data = self.cleaned_data
        return AuditFilters(
            person=data["person"],
            actor=data["actor"],
            action=data["action"],
            date_from=data["date_from"],
            date_to=data["date_to"],
        )


def _form(request: HttpRequest) -> AuditFilterForm:
    bound = any(name in request.GET for name in AuditFilterForm.base_fields)
    return AuditFilterForm(request.GET if bound else None, actions=audit_actions())


# --- Pages --------------------------------------------------------------------------------------


@require_GET
@role_required(User.Role.ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    """审计日志: the filtered log, 50 rows a page, newest first."""
    form = _form(request)
    page = Paginator(audit_events(filters=form.filters()), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "staff/audit_log.html", {"form": form, "page": page, "query": query.urlencode()})


class _Echo:
    """A file-like object whose ``write`` returns the line, for csv.writer in a streaming response."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv_rows(events: QuerySet[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    # UTF-8 with a BOM: Excel then reads the Chinese names and reasons right.
    yield "\ufeff"
    yield writer.writerow(CSV_HEADER)
    for event in events.iterator(chunk_size=2000):
        yield writer.writerow(
            [
                _cell(timezone.localtime(event.created_at).isoformat(timespec="seconds")),
                _cell(event.actor_label),
                _cell(event.action),
                _cell(event.target_type),
                _cell(event.target_id),
                _cell(event.target_label),
                _cell(event.ip_address),
                _cell(json.dumps(event.detail, ensure_ascii=False, sort_keys=True) if event.detail else ""),
            ]
        )


@require_GET
@role_required(User.Role.ADMIN)
def audit_export(request: HttpRequest) -> HttpResponse:
    """The filtered rows as CSV, streamed (any size in bounded memory); the export is audited itself."""
    form = _form(request)
    filters = form.filters()
    events = audit_events(filters=filters)
    audit_record(
        actor=request.user,
        action="audit.exported",
        request=request,
        detail={
            "person_given": bool(filters.person),  # the search itself may be an ID number: not copied here
            "actor": filters.actor,
            "action": filters.action,
            "date_from": filters.date_from.isoformat() if filters.date_from else "",
            "date_to": filters.date_to.isoformat() if filters.date_to else "",
        },
    )
    response = StreamingHttpResponse(_csv_rows(events), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response

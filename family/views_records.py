"""Citizen pages of 共济使用明细 sharing records (R35) and of contributions paid for a relative (R31).

Each person sees only their own records: the selectors take the logged-in person's id, never an id from
the request, and a contribution of someone else answers 404 like one that does not exist.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_safe

from accounts.decorators import person_required
from accounts.models import InsuredPerson
from accounts.queueing import enqueue_on_commit
from accounts.selectors import account_for_user
from family import tasks
from family.forms_records import ContributionForm, RecordsFilterForm
from family.models import OfficeState
from family.selectors_payments import (
    ROLE_OWNER,
    ROLE_RELATIVE,
    RecordMonth,
    RecordTotal,
    SharingRecord,
    SharingRecords,
    contribution_bindings,
    contribution_for_person,
    sharing_records,
    sharing_records_all,
)
from family.services.contributions import contribution_pay
from family.services.payments import PaymentRefused

RECORDS_PER_PAGE = 20
SECTION_TITLES = {
    ROLE_OWNER: gettext_lazy("Paid from my account for my family"),
    ROLE_RELATIVE: gettext_lazy("Paid for me by my family"),
}
CONTRIBUTION_STEPS = (
    gettext_lazy("Details"),
    gettext_lazy("Confirm"),
    gettext_lazy("Paid"),
)


# --- 共济使用明细 sharing records -------------------------------------------------------------------


@dataclass
class Section:
    """One side of the records page, with its own page of rows and the links to the pages around it."""

    role: str
    title: str
    records: SharingRecords
    page: int
    pages: int
    previous_url: str
    next_url: str

    @property
    def total(self) -> RecordTotal:
        return self.records.owner if self.role == ROLE_OWNER else self.records.relative

    @property
    def months(self) -> list[tuple[RecordMonth, RecordTotal]]:
        """Each month on this page with its whole-month total on this side."""
        return [(month, month.total(self.role)) for month in self.records.months]


def _filters(form: RecordsFilterForm) -> dict:
    data = form.cleaned_data if form.is_bound else {}
    return {"date_from": data.get("from"), "date_until": data.get("until")}


def _page_number(request: HttpRequest, role: str) -> int:
    try:
        return max(1, int(request.GET.get(f"{role}_page", 1)))
    except ValueError:
        return 1


def _page_url(request: HttpRequest, role: str, page: int) -> str:
    query = request.GET.copy()
    query[f"{role}_page"] = str(page)
    return f"?{query.urlencode()}"


@require_safe
@person_required
def family_records(request: HttpRequest) -> HttpResponse:
    """共济使用明细: paid from my account for my family, and paid for me by my family, by month, with totals."""
    form = RecordsFilterForm(request.GET or None)
    sections: list[Section] = []
    if not form.is_bound or form.is_valid():
        role = form.cleaned_data.get("role") if form.is_bound else ""
        for section_role in (ROLE_OWNER, ROLE_RELATIVE):
            if role and role != section_role:
                continue
            page = _page_number(request, section_role)
            records = sharing_records(
                person_id=request.user.person_id,
                role=section_role,
                offset=(page - 1) * RECORDS_PER_PAGE,
                limit=RECORDS_PER_PAGE,
                **_filters(form),
            )
            pages = max(1, -(-records.count // RECORDS_PER_PAGE))
            sections.append(
                Section(
                    role=section_role,
                    title=str(SECTION_TITLES[section_role]),
                    records=records,
                    page=page,
                    pages=pages,
                    previous_url=_page_url(request, section_role, page - 1) if records.has_previous else "",
                    next_url=_page_url(request, section_role, page + 1) if records.has_next else "",
                )
            )
    export_query = urlencode({k: v for k, v in request.GET.items() if k in ("role", "from", "until") and v})
    return render(
        request,
        "family/records.html",
        {"form": form, "sections": sections, "export_query": export_query},
    )


class _Echo:
    """csv.writer writes into this and gets the line back, so rows stream without a buffer."""

    def write(self, value: str) -> str:
        return value


# Cells starting with these are formulas to a spreadsheet; names come from outside, so they are defused.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _csv_rows(records: Iterator[SharingRecord]) -> Iterator[list[str]]:
    office_words = dict(OfficeState.choices)
    roles = {ROLE_OWNER: _("Paid from my account"), ROLE_RELATIVE: _("Paid for me")}
    yield [
        _("Date and time"),
        _("Record"),
        _("What"),
        _("Where"),
        _("Institution code"),
        _("Paid for"),
        _("ID number of the person paid for"),
        _("From the account of"),
        _("ID number of the account owner"),
        _("Relationship"),
        _("Amount (yuan)"),
        _("Refunded (yuan)"),
        _("Payment number"),
        _("Insurance office"),
    ]
    for record in records:
        yield [
            timezone.localtime(record.time).strftime("%Y-%m-%d %H:%M"),
            str(roles[record.role]),
            record.kind_label,
            _text(record.institution_name or _("Online")),
            record.institution_code,
            _text(record.patient_name),
            record.patient_id_number,
            _text(record.owner_name),
            record.owner_id_number,
            record.relationship_label,
            # Amounts as plain numbers (no ¥, no thousands separator), so a spreadsheet can add them up.
            f"{record.amount:.2f}",
            f"{record.refunded_amount:.2f}",
            record.reference,
            str(office_words.get(record.office_state, "")) if record.office_state else "",
        ]


@require_safe
@person_required
def family_records_export(request: HttpRequest) -> HttpResponse:
    """共济使用明细 as CSV: UTF-8 with a BOM (Excel then reads Chinese), headers in the page's language, masked (R4)."""
    form = RecordsFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        messages.error(request, _("The filters are not valid; correct them and download again."))
        return redirect(f"{reverse('family_records')}?{request.GET.urlencode()}")
    role = (form.cleaned_data.get("role") if form.is_bound else "") or None
    records = sharing_records_all(person_id=request.user.person_id, role=role, **_filters(form))
    writer = csv.writer(_Echo())
    # The rows are written while the response streams, after this view has returned: keep its language.
    language = translation.get_language()

    def stream() -> Iterator[str]:
        with translation.override(language):
            yield "\ufeff"
            for row in _csv_rows(records):
                yield writer.writerow(row)

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    filename = f"sharing-records-{timezone.localdate():%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


# --- 缴费 contributions paid for a relative (R31) ---------------------------------------------------


def _steps(labels, current: int) -> list[dict]:
    """The stepper's steps: done before ``current`` (1-based), current, to do after; ``current`` past the end
    marks every step done."""
    return [
        {
            "number": number,
            "label": label,
            "state": "done" if number < current else "current" if number == current else "todo",
        }
        for number, label in enumerate(labels, start=1)
    ]


def _summary(form: ContributionForm) -> dict:
    data = form.cleaned_data
    binding = data["binding"]
    return {
        "relative": binding.relative.masked_name,
        "relationship": binding.get_relationship_display(),
        "kind": dict(form.fields["kind"].choices)[data["kind"]],
        "year": data["year"],
        "amount": data["amount"],
    }


@require_http_methods(["GET", "POST"])
@person_required
def contribution_start(request: HttpRequest) -> HttpResponse:
    """缴费: the owner pays a bound relative's resident-insurance or long-term-care contribution (R31):
    details, then confirm, then the progress page."""
    owner = InsuredPerson.objects.get(pk=request.user.person_id)
    account = account_for_user(user=request.user) if owner.is_employee else None
    form = ContributionForm(request.POST or None, bindings=contribution_bindings(owner_id=owner.pk))
    context = {"form": form, "account": account, "owner": owner}
    # "edit" on the confirmation goes back to the details, as they were entered.
    if request.method == "POST" and "edit" not in request.POST and form.is_valid():
        if "pay" not in request.POST:
            return render(
                request,
                "family/contribution_confirm.html",
                {**context, "summary": _summary(form), "steps": _steps(CONTRIBUTION_STEPS, 2), "step_number": 2},
            )
        data = form.cleaned_data
        try:
            receipt = contribution_pay(
                client=request.user,
                owner=owner,
                relative=data["binding"].relative,
                kind=data["kind"],
                year=data["year"],
                amount=data["amount"],
                idempotency_key=data["idempotency_key"],
            )
        except PaymentRefused as error:
            form.add_error(None, f"{error.title} {error.detail}".strip())
        else:
            payment_id = receipt.payment.pk
            # R31: the office is asked once the payment is committed (a broker failure is logged, and the
            # beat asks again within 10 minutes: the money has moved, the citizen sees success).
            enqueue_on_commit(tasks.contribution_confirm, payment_id)
            if not receipt.replayed:
                messages.success(
                    request,
                    _("Paid. We have sent it to the insurance office; you will get a message when it is confirmed."),
                )
            return redirect("contribution_detail", pk=payment_id)
    return render(
        request, "family/contribution_form.html", {**context, "steps": _steps(CONTRIBUTION_STEPS, 1), "step_number": 1}
    )


PROGRESS_STEPS = (
    gettext_lazy("Paid from the account"),
    gettext_lazy("Sent to the insurance office"),
    gettext_lazy("Confirmed by the insurance office"),
)


@require_safe
@person_required
def contribution_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """缴费进度: paid → sent to the insurance office → confirmed (with the office's reference)."""
    progress = contribution_for_person(person_id=request.user.person_id, payment_id=pk)
    current = len(PROGRESS_STEPS) + 1 if progress.confirmed else 2
    return render(
        request,
        "family/contribution_detail.html",
        {"progress": progress, "payment": progress.payment, "steps": _steps(PROGRESS_STEPS, current)},
    )

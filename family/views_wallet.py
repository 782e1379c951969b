"""Citizen pages of transfers (R36) and the medical-insurance wallet (R37), under /family/wallet/.

Views parse a form, call one service or read, and render or redirect. The transfer draft (receiver,
amount) lives in the session until it is made, so a citizen can go back a step without retyping.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.decorators import person_required
from accounts.errors import DomainError
from accounts.models import InsuredPerson, PersonalAccount
from accounts.services import wallet_open
from family.forms_wallet import (
    TransferAmountForm,
    TransferConfirmForm,
    TransferReceiverForm,
    WalletSendForm,
    new_idempotency_key,
)
from family.services.keys import request_fingerprint
from family.services.transfers import (
    account_transfer_for_key,
    account_transfer_get_for_user,
    account_transfer_make,
    transfer_mode_policy,
    transfer_receiver_check,
)
from family.services.wallet import (
    wallet_overview,
    wallet_send_allowance,
    wallet_send_bindings,
    wallet_transfer_accept,
    wallet_transfer_send,
)

DRAFT_KEY = "family_transfer_draft"
TRANSFER_STEPS = (
    ("transfer_receiver", gettext_lazy("Receiver (转移人员信息录入)")),
    ("transfer_amount", gettext_lazy("Amount")),
    ("transfer_confirm", gettext_lazy("Confirm")),
)


def _person(request: HttpRequest) -> InsuredPerson:
    return InsuredPerson.objects.select_related("region").get(pk=request.user.person_id)


def _show_refusal(form: forms.Form, error: DomainError) -> None:
    """A refusal next to the fields it names, and its whole text in the summary (ui.md)."""
    for field_error in error.errors:
        if field_error.field in form.fields:
            form.add_error(field_error.field, field_error.message)
    form.add_error(None, error.title if not error.detail else f"{error.title} {error.detail}")


# --- 医保钱包 my wallet ----------------------------------------------------------------------------


@require_safe
@person_required
def wallet_home(request: HttpRequest) -> HttpResponse:
    """医保钱包: the balance, transfers waiting for me to accept, entries; for owners, where to send from."""
    person = _person(request)
    today = timezone.localdate()
    transfer_mode = True
    try:
        transfer_mode_policy(owner=person, today=today)
    except DomainError:
        transfer_mode = False
    context = {
        "overview": wallet_overview(person=person),
        "person": person,
        "send_bindings": wallet_send_bindings(owner=person, today=today) if person.is_employee else [],
        "transfer_mode": transfer_mode and person.is_employee,
    }
    return render(request, "family/wallet_home.html", context)


@require_POST
@person_required
def wallet_open_view(request: HttpRequest) -> HttpResponse:
    """R37: open my own wallet, so family members in other provinces can send to it."""
    wallet_open(person=_person(request), opened_by=request.user)
    messages.success(
        request, _("Your medical-insurance wallet is open. Family members in other provinces can now send to it.")
    )
    return redirect("wallet_home")


@require_POST
@person_required
def wallet_transfer_accept_view(request: HttpRequest, pk: int) -> HttpResponse:
    """R37: accept a transfer into my wallet (a stranger gets 404 from the service)."""
    try:
        transfer = wallet_transfer_accept(transfer_id=pk, user=request.user)
    except DomainError as error:
        messages.error(request, error.title)
        return redirect("wallet_home")
    messages.success(
        request,
        _("%(amount)s is in your medical-insurance wallet.") % {"amount": f"¥{transfer.amount:,.2f}"},
    )
    return redirect("wallet_home")


@require_http_methods(["GET", "POST"])
@person_required
def wallet_send(request: HttpRequest) -> HttpResponse:
    """跨省共济 (R37): the owner sends to a family member's wallet in another province, within the limits."""
    owner = _person(request)
    bindings = wallet_send_bindings(owner=owner, today=timezone.localdate()) if owner.is_employee else []
    choices = [
        (
            binding.pk,
            f"{binding.relative.masked_name} · {binding.get_relationship_display()} · {binding.relative.region.name}"
            + ("" if binding.relative_wallet else " · " + _("has not opened a wallet yet")),
        )
        for binding in bindings
    ]
    form = WalletSendForm(request.POST or None, choices=choices, initial={"idempotency_key": new_idempotency_key()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            transfer = wallet_transfer_send(
                client=request.user,
                idempotency_key=data["idempotency_key"],
                request_hash=request_fingerprint(binding_id=data["binding"], amount=data["amount"]),
                owner=owner,
                binding_id=data["binding"],
                amount=data["amount"],
            )
        except DomainError as error:
            _show_refusal(form, error)
        else:
            due = timezone.localtime(transfer.return_due_at)
            messages.success(
                request,
                _(
                    "Sent %(amount)s to %(name)s. They must accept it by %(time)s; otherwise it comes back to your "
                    "account."
                )
                % {
                    "amount": f"¥{transfer.amount:,.2f}",
                    "name": transfer.wallet.person.masked_name,
                    "time": f"{due:%Y-%m-%d %H:%M}",
                },
            )
            return redirect("wallet_home")
    if form.is_bound:
        # A refused or invalid request stored nothing: the corrected one is a new request with a new key.
        form.data = form.data.copy()
        form.data["idempotency_key"] = new_idempotency_key()
    account = PersonalAccount.objects.filter(person=owner).first()
    context = {
        "form": form,
        "bindings": bindings,
        "allowance": wallet_send_allowance(owner=owner),
        "account": account,
    }
    return render(request, "family/wallet_send.html", context)


# --- 历年账户家庭共济 transfer (R36) -------------------------------------------------------------------


def _draft(request: HttpRequest) -> dict:
    """This person's transfer draft (one left by another login on the same browser is ignored)."""
    draft = request.session.get(DRAFT_KEY) or {}
    if draft.get("owner_id") != request.user.person_id:
        return {"owner_id": request.user.person_id}
    return dict(draft)


def _steps(draft: dict, current: int) -> list[dict]:
    """步骤条: done steps link back; the current one is marked."""
    done = [bool(draft.get("relative_id_number")), bool(draft.get("amount")), False]
    reachable = done.index(False)
    return [
        {
            "number": index + 1,
            "label": label,
            "url": reverse(name) if index <= reachable and index != current else "",
            "state": "current" if index == current else ("done" if done[index] else "todo"),
        }
        for index, (name, label) in enumerate(TRANSFER_STEPS)
    ]


def _step_context(draft: dict, step: int, **extra) -> dict:
    return {
        "steps": _steps(draft, step),
        "step_number": step + 1,
        "step_count": len(TRANSFER_STEPS),
        "draft": draft,
        **extra,
    }


def _mode_refusal(request: HttpRequest, owner: InsuredPerson) -> HttpResponse | None:
    """R36: in a region that shares by payment, say so (naming the policy) instead of showing the steps."""
    try:
        transfer_mode_policy(owner=owner, today=timezone.localdate())
    except DomainError as error:
        return render(request, "family/transfer_refused.html", {"refusal": error}, status=200)
    if not owner.is_employee:
        return render(
            request,
            "family/transfer_refused.html",
            {
                "refusal": DomainError(
                    title=_("Only employee medical insurance (职工医保) has a personal account to transfer from.")
                )
            },
        )
    return None


@require_http_methods(["GET", "POST"])
@person_required
def transfer_receiver(request: HttpRequest) -> HttpResponse:
    """Step 1, 转移人员信息录入: the receiver's name and ID number, checked against my family network."""
    owner = _person(request)
    if refused := _mode_refusal(request, owner):
        return refused
    draft = _draft(request)
    initial = {name: draft[name] for name in ("relative_name", "relative_id_number") if draft.get(name)}
    form = TransferReceiverForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            binding = transfer_receiver_check(
                owner=owner,
                relative_name=data["relative_name"],
                relative_id_number=data["relative_id_number"],
                today=timezone.localdate(),
            )
        except DomainError as error:
            _show_refusal(form, error)
        else:
            draft.update(
                relative_name=" ".join(data["relative_name"].split()),
                relative_id_number=data["relative_id_number"],
                relative_masked=binding.relative.masked_name,
                relative_masked_id=binding.relative.masked_id_number,
            )
            request.session[DRAFT_KEY] = draft
            return redirect("transfer_amount")
    return render(request, "family/transfer_receiver.html", _step_context(draft, 0, form=form))


def _available(owner: InsuredPerson) -> Decimal:
    account = PersonalAccount.objects.filter(person=owner).first()
    return account.historical_balance if account else Decimal(0)


@require_http_methods(["GET", "POST"])
@person_required
def transfer_amount(request: HttpRequest) -> HttpResponse:
    """Step 2: how much, from the previous years' part only (R36)."""
    owner = _person(request)
    if refused := _mode_refusal(request, owner):
        return refused
    draft = _draft(request)
    if not draft.get("relative_id_number"):
        messages.info(request, _("Please finish this step first."))
        return redirect("transfer_receiver")
    available = _available(owner)
    form = TransferAmountForm(
        request.POST or None,
        available=available,
        initial={"amount": draft.get("amount")} if draft.get("amount") else None,
    )
    if request.method == "POST" and form.is_valid():
        draft["amount"] = str(form.cleaned_data["amount"])
        request.session[DRAFT_KEY] = draft
        return redirect("transfer_confirm")
    return render(request, "family/transfer_amount.html", _step_context(draft, 1, form=form, available=available))


@require_http_methods(["GET", "POST"])
@person_required
def transfer_confirm(request: HttpRequest) -> HttpResponse:
    """Step 3: check and confirm; the key made with this page makes a double submit charge once (R34)."""
    owner = _person(request)
    form = TransferConfirmForm(request.POST or None, initial={"idempotency_key": new_idempotency_key()})
    if request.method == "POST" and form.is_valid():
        key = form.cleaned_data["idempotency_key"]
        # The same page sent twice: the first one made it (and cleared the draft); show that one.
        if (done := account_transfer_for_key(client=request.user, idempotency_key=key)) is not None:
            return redirect("transfer_detail", reference=done.reference)
    if refused := _mode_refusal(request, owner):
        return refused
    draft = _draft(request)
    if not (draft.get("relative_id_number") and draft.get("amount")):
        messages.info(request, _("Please finish this step first."))
        return redirect("transfer_amount" if draft.get("relative_id_number") else "transfer_receiver")
    amount = Decimal(draft["amount"])
    if request.method == "POST" and form.is_valid():
        try:
            transfer = account_transfer_make(
                client=request.user,
                idempotency_key=form.cleaned_data["idempotency_key"],
                request_hash=request_fingerprint(
                    relative_name=draft["relative_name"], relative_id_number=draft["relative_id_number"], amount=amount
                ),
                owner=owner,
                relative_name=draft["relative_name"],
                relative_id_number=draft["relative_id_number"],
                amount=amount,
            )
        except DomainError as error:
            _show_refusal(form, error)
            form.data = form.data.copy()
            form.data["idempotency_key"] = new_idempotency_key()
        else:
            request.session.pop(DRAFT_KEY, None)
            messages.success(request, _("Transferred. Both of you get a message."))
            return redirect("transfer_detail", reference=transfer.reference)
    available = _available(owner)
    context = _step_context(draft, 2, form=form, amount=amount, available=available, left=available - amount)
    return render(request, "family/transfer_confirm.html", context)


@require_safe
@person_required
def transfer_detail(request: HttpRequest, reference: str) -> HttpResponse:
    """One transfer I sent or received (strangers get 404)."""
    transfer = account_transfer_get_for_user(request.user, reference)
    return render(
        request,
        "family/transfer_done.html",
        {"transfer": transfer, "is_owner": transfer.owner_id == request.user.person_id},
    )

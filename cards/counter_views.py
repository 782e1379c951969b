"""柜台 The clerks' counter, under /counter/ (R22, R26, R31–R34, R42): made for a busy desk.

One card field takes the focus on every page where nothing else is typed; a swipe, a scan or a number and
Enter read the card. The person read stays in the session (a refresh keeps it) until "next patient".
From there: bind (R22, a stepper kept in the session), unbind (R26) and charge (R33 preview, then R34
payment once per key, then a printable receipt). Views parse a form, call a selector or service, and
render or redirect; every refusal is shown next to what the clerk entered, which stays in the form.
Clerks with an institution only: anonymous users log in first, every other role gets 403.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import role_required
from accounts.errors import DomainError
from accounts.masking import mask_name
from accounts.models import User
from cards.counter_forms import (
    ORIGINALS,
    BindConfirmForm,
    BindOwnerForm,
    BindRelationshipForm,
    BindRelativeForm,
    CardReadForm,
    ChargeConfirmForm,
    ChargeForm,
    UnbindForm,
)
from cards.counter_selectors import (
    counter_binding_get,
    counter_bindings_for,
    counter_card_read,
    counter_payment_for_key,
    counter_person_get,
)
from cards.payments import Presented, card_identify, client_institution
from family.eligibility import relation_label
from family.models import BindingMethod, PaymentKind, PaymentSource, PharmacyCategory
from family.selectors import binding_open_for_pair, eligibility_check, insured_person_matches
from family.selectors_payments import payment_for_client
from family.services import BindingRefused, DuplicateApplication, InvalidTransition, binding_end, binding_submit
from family.services.keys import request_fingerprint
from family.services.payments import Split, payment_make, payment_quote, payment_receipt

PERSON_KEY = "counter_person"
BIND_KEY = "counter_bind"
BIND_STEPS = (
    ("counter_bind_owner", gettext_lazy("Account owner's card")),
    ("counter_bind_relative", gettext_lazy("Relative")),
    ("counter_bind_relationship", gettext_lazy("Relationship")),
    ("counter_bind_confirm", gettext_lazy("Originals and confirmation")),
)


def clerk_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Clerks of a designated institution only (the counter acts for it); MFA as for all staff."""

    @role_required(User.Role.CLERK)
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.institution_id is None:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def _no_store(response: HttpResponse) -> HttpResponse:
    # Counter pages show persons and money: a shared desk's browser must not keep them.
    response["Cache-Control"] = "no-store"
    return response


def _add_domain_error(form, error: DomainError, *, default_field: str | None = None) -> None:
    """A service's refusal next to the field it names (or the given one), else above the form."""
    fields = [item.field for item in error.errors if item.field in form.fields]
    target = fields[0] if fields else (default_field if default_field in form.fields else None)
    message = error.title if not error.detail else f"{error.title} {error.detail}"
    form.add_error(target, message)


# --- The current person -------------------------------------------------------------------------


def _current(request: HttpRequest) -> dict | None:
    return request.session.get(PERSON_KEY)


def _current_set(request: HttpRequest, presented: Presented, *, how: str) -> None:
    request.session[PERSON_KEY] = {
        "person_id": presented.patient.pk,
        "card_number": presented.card_number,
        "qr_reference": presented.qr_reference,
        "how": how,
        "read_at": timezone.now().isoformat(),
    }


def _current_clear(request: HttpRequest) -> None:
    request.session.pop(PERSON_KEY, None)


def _home_context(request: HttpRequest, form: CardReadForm | None = None) -> dict:
    current = _current(request)
    person = counter_person_get(person_id=current["person_id"]) if current else None
    if current and person is None:
        _current_clear(request)
        current = None
    return {
        "form": form or CardReadForm(),
        "current": current,
        "person": person,
        "ecard": getattr(person, "ecard", None) if person is not None else None,
        "bindings": counter_bindings_for(person=person) if person is not None else None,
        "institution": request.user.institution,
    }


@require_GET
@clerk_required
def counter_home(request: HttpRequest) -> HttpResponse:
    """柜台: the card field, the person read (masked, no photo), their card and bindings, the actions."""
    return _no_store(render(request, "cards/counter.html", _home_context(request)))


@require_POST
@clerk_required
def counter_read(request: HttpRequest) -> HttpResponse:
    """Read a card (swipe, scan, typed): its holder becomes the current person."""
    form = CardReadForm(request.POST)
    if form.is_valid():
        card_input = form.cleaned_data["card"]
        try:
            presented = counter_card_read(client=request.user, card_input=card_input)
        except DomainError as error:
            _add_domain_error(form, error, default_field="card")
        else:
            _current_set(request, presented, how=card_input.how)
            return redirect("counter")
    # R32: a card that could not be read leaves no one at the desk, so nothing is charged to the last one.
    _current_clear(request)
    return _no_store(render(request, "cards/counter.html", _home_context(request, form)))


@require_POST
@clerk_required
def counter_next(request: HttpRequest) -> HttpResponse:
    """Next patient: forget the person read and any binding in progress."""
    _current_clear(request)
    request.session.pop(BIND_KEY, None)
    return redirect("counter")


# --- 柜台绑定 counter binding (R22) ---------------------------------------------------------------


def _draft(request: HttpRequest) -> dict:
    return dict(request.session.get(BIND_KEY) or {})


def _draft_save(request: HttpRequest, draft: dict) -> None:
    request.session[BIND_KEY] = draft


def _steps_done(draft: dict) -> list[bool]:
    return [bool(draft.get("owner_id")), bool(draft.get("relative_id")), bool(draft.get("relationship")), False]


def _first_unfinished(draft: dict) -> int:
    return _steps_done(draft).index(False)


def _bind_context(draft: dict, step: int, **extra) -> dict:
    done, reachable = _steps_done(draft), _first_unfinished(draft)
    steps = [
        {
            "number": index + 1,
            "label": label,
            "url": reverse(name) if index <= reachable and index != step else "",
            "state": "current" if index == step else ("done" if done[index] else "todo"),
        }
        for index, (name, label) in enumerate(BIND_STEPS)
    ]
    back = reverse(BIND_STEPS[step - 1][0]) if step > 0 else reverse("counter")
    return {
        "steps": steps,
        "step": step,
        "step_number": step + 1,
        "step_count": len(BIND_STEPS),
        "draft": draft,
        "back_url": back,
        "relationship_label": relation_label(draft["relationship"]) if draft.get("relationship") else "",
        **extra,
    }


def _step_guard(request: HttpRequest, draft: dict, step: int) -> HttpResponse | None:
    first = _first_unfinished(draft)
    if step > first:
        messages.info(request, _("Please finish this step first."))
        return redirect(BIND_STEPS[first][0])
    return None


def _render_step(request: HttpRequest, draft: dict, step: int, form, **extra) -> HttpResponse:
    context = _bind_context(draft, step, form=form, **extra)
    return _no_store(render(request, "cards/counter_bind.html", context))


@require_GET
@clerk_required
def counter_bind(request: HttpRequest) -> HttpResponse:
    """绑定: continue the binding in progress where it stopped."""
    return redirect(BIND_STEPS[_first_unfinished(_draft(request))][0])


@require_POST
@clerk_required
def counter_bind_restart(request: HttpRequest) -> HttpResponse:
    request.session.pop(BIND_KEY, None)
    return redirect("counter_bind_owner")


@require_http_methods(["GET", "POST"])
@clerk_required
def counter_bind_owner(request: HttpRequest) -> HttpResponse:
    """Step 1 (R22): the owner's card, the account that pays; or the card read at the desk just now."""
    draft = _draft(request)
    current = _current(request)
    current_person = counter_person_get(person_id=current["person_id"]) if current else None
    form = BindOwnerForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        presented = how = None
        if "use_current" in request.POST and current_person is not None:
            form = BindOwnerForm()
            presented = Presented(
                patient=current_person, card_number=current["card_number"], qr_reference=current["qr_reference"]
            )
            how = current["how"]
        elif form.is_valid():
            card_input = form.cleaned_data["owner_card"]
            try:
                presented = counter_card_read(client=request.user, card_input=card_input)
                how = card_input.how
            except DomainError as error:
                _add_domain_error(form, error, default_field="owner_card")
        if presented is not None:
            if draft.get("owner_id") != presented.patient.pk:
                # Another owner: what was chosen for the last one does not carry over.
                draft = {}
            draft.update(
                owner_id=presented.patient.pk,
                owner_label=f"{presented.patient.masked_name} {presented.patient.masked_id_number}",
                owner_card=presented.card_number,
                owner_read_by=how,
            )
            _draft_save(request, draft)
            return redirect("counter_bind_relative")
    return _render_step(request, draft, 0, form, current_person=current_person)


@require_http_methods(["GET", "POST"])
@clerk_required
def counter_bind_relative(request: HttpRequest) -> HttpResponse:
    """Step 2 (R22): the relative's card (or card or ID number typed) and the name as on the ID card."""
    draft = _draft(request)
    if guard := _step_guard(request, draft, 1):
        return guard
    initial = {"relative_name": draft.get("relative_name", "")}
    form = BindRelativeForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        card_input = form.cleaned_data["relative_card"]
        name = form.cleaned_data["relative_name"]
        try:
            presented = counter_card_read(client=request.user, card_input=card_input)
        except DomainError as error:
            _add_domain_error(form, error, default_field="relative_card")
        else:
            relative = presented.patient
            if relative.pk == draft["owner_id"]:
                form.add_error("relative_card", _("An owner cannot share with himself or herself (R11)."))
            elif not insured_person_matches(id_number=relative.id_number, name=name):
                form.add_error(
                    "relative_name",
                    _("This name is not the card holder's (R11): type it exactly as on the relative's ID card."),
                )
            else:
                draft.update(
                    relative_id=relative.pk,
                    relative_id_number=relative.id_number,
                    relative_label=f"{relative.masked_name} {relative.masked_id_number}",
                    relative_name=name,
                    relative_card=presented.card_number if card_input.kind != "id_number" else "",
                    relative_read_by=card_input.kind if card_input.kind == "id_number" else card_input.how,
                )
                _draft_save(request, draft)
                return redirect("counter_bind_relationship")
    return _render_step(request, draft, 1, form)


@require_http_methods(["GET", "POST"])
@clerk_required
def counter_bind_relationship(request: HttpRequest) -> HttpResponse:
    """Step 3 (C3): what the relative is to the owner."""
    draft = _draft(request)
    if guard := _step_guard(request, draft, 2):
        return guard
    form = BindRelationshipForm(
        request.POST if request.method == "POST" else None, initial={"relationship": draft.get("relationship")}
    )
    if request.method == "POST" and form.is_valid():
        draft["relationship"] = form.cleaned_data["relationship"]
        _draft_save(request, draft)
        return redirect("counter_bind_confirm")
    return _render_step(request, draft, 2, form)


def _draft_owner(draft: dict):
    owner = counter_person_get(person_id=draft["owner_id"])
    if owner is None:
        raise Http404
    return owner


@require_http_methods(["GET", "POST"])
@clerk_required
def counter_bind_confirm(request: HttpRequest) -> HttpResponse:
    """Step 4 (R22): the eligibility answer inline (R10–R16), the originals seen, the identity confirmed."""
    draft = _draft(request)
    if guard := _step_guard(request, draft, 3):
        return guard
    owner = _draft_owner(draft)
    decision = eligibility_check(
        owner_id_number=owner.id_number,
        relative_id_number=draft["relative_id_number"],
        relationship=draft["relationship"],
        on_date=timezone.localdate(),
    )
    existing = binding_open_for_pair(owner_id=owner.pk, relative_id_number=draft["relative_id_number"])
    initial = {"originals_seen": draft.get("originals_seen", [])}
    form = BindConfirmForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        draft["originals_seen"] = form.cleaned_data["originals_seen"]
        _draft_save(request, draft)
        if not decision.eligible:
            form.add_error(None, _("Not eligible: nothing was submitted. The reasons are above."))
        else:
            try:
                binding = binding_submit(
                    owner=owner,
                    relative_id_number=draft["relative_id_number"],
                    relative_name=draft["relative_name"],
                    relationship=draft["relationship"],
                    method=BindingMethod.COUNTER,
                    submitted_by=request.user,
                    institution=request.user.institution,
                    originals_seen=form.cleaned_data["originals_seen"],
                    counter_cards={
                        "owner": draft.get("owner_card", ""),
                        "owner_read_by": draft.get("owner_read_by", ""),
                        "relative": draft.get("relative_card", ""),
                        "relative_read_by": draft.get("relative_read_by", ""),
                    },
                )
            except DuplicateApplication as error:
                state = error.existing.get_state_display() if error.existing is not None else ""
                form.add_error(None, f"{error.title} ({state})" if state else error.title)
            except BindingRefused as error:
                _add_domain_error(form, error)
            else:
                request.session.pop(BIND_KEY, None)
                # The owner stays at the desk: their bindings, the new one included, are on the counter page.
                if draft.get("owner_card"):
                    request.session[PERSON_KEY] = {
                        "person_id": owner.pk,
                        "card_number": draft["owner_card"],
                        "qr_reference": "",
                        "how": draft.get("owner_read_by", ""),
                        "read_at": timezone.now().isoformat(),
                    }
                return redirect("counter_binding", pk=binding.pk)
    return _render_step(
        request,
        draft,
        3,
        form,
        decision=decision,
        existing=existing,
        originals=dict(ORIGINALS),
    )


@require_GET
@clerk_required
def counter_binding(request: HttpRequest, pk: int) -> HttpResponse:
    """The binding made at this institution: its state now (R25), with the card field for the next one."""
    binding = counter_binding_get(clerk=request.user, binding_id=pk)
    context = {
        "form": CardReadForm(),
        "binding": binding,
        "originals": [label for key, label in ORIGINALS if key in (binding.originals_seen or [])],
        "relationship_label": relation_label(binding.relationship),
    }
    return _no_store(render(request, "cards/counter_binding.html", context))


# --- 解绑 unbind (R26) ------------------------------------------------------------------------------


def _binding_label(binding, person) -> str:
    words = {"relationship": relation_label(binding.relationship)}
    if binding.owner_id == person.pk:
        words["relative"] = binding.relative.masked_name if binding.relative else mask_name(binding.newborn_name)
        return _("Pays for %(relative)s (%(relationship)s)") % words
    words["owner"] = binding.owner.masked_name
    return _("Paid for by %(owner)s (the card holder is their %(relationship)s)") % words


@require_http_methods(["GET", "POST"])
@clerk_required
def counter_unbind(request: HttpRequest) -> HttpResponse:
    """解绑: the card holder (owner or relative) ends one of their active bindings, at once (R26)."""
    current = _current(request)
    person = counter_person_get(person_id=current["person_id"]) if current else None
    if person is None:
        messages.info(request, _("Read the card of the owner or the relative first."))
        return redirect("counter")
    active = counter_bindings_for(person=person).active
    labels = {b.pk: _binding_label(b, person) for b in active}
    form = UnbindForm(request.POST if request.method == "POST" else None, bindings=active, labels=labels)
    if request.method == "POST" and form.is_valid():
        try:
            binding = binding_end(
                binding_id=form.cleaned_data["binding"], user=request.user, reason=form.cleaned_data["reason"]
            )
        except InvalidTransition as error:
            _add_domain_error(form, error, default_field="binding")
        else:
            messages.success(
                request,
                _("Unbound: %(binding)s. From now on that account does not pay for the relative.")
                % {"binding": labels[binding.pk]},
            )
            return redirect("counter")
    context = {"form": form, "person": person, "active": active}
    return _no_store(render(request, "cards/counter_unbind.html", context))


# --- 收费 charge (R31–R34) --------------------------------------------------------------------------


def _patient_presented(request: HttpRequest, current: dict) -> Presented:
    """R32: the card read at the desk, again: its number, or the reference of the QR code scanned (R42)."""
    if current.get("qr_reference"):
        return card_identify(client=request.user, qr_reference=current["qr_reference"])
    return card_identify(client=request.user, card_number=current.get("card_number") or "")


def _split_check(split: Split) -> str:
    """What the preview showed, as one value: the charge goes ahead only if it would charge the same."""
    lines = [[line.source, line.payer.pk, line.current, line.historical, line.wallet] for line in split.lines]
    return request_fingerprint(lines=lines, cash=split.cash)


def _line_label(line) -> str:
    if line.source == PaymentSource.OWN:
        return _("Own personal account")
    if line.source == PaymentSource.WALLET:
        return _("Own medical-insurance wallet")
    return _("Account of %(owner)s (account owner; the patient is their %(relationship)s)") % {
        "owner": line.payer.masked_name,
        "relationship": relation_label(line.relationship),
    }


def _split_rows(split: Split) -> list[dict]:
    return [{"line": line, "label": _line_label(line)} for line in split.lines]


def _charge_context(request: HttpRequest, person, **extra) -> dict:
    return {"person": person, "current": _current(request), "institution": request.user.institution, **extra}


def _render_charge(request: HttpRequest, person, form: ChargeForm) -> HttpResponse:
    return _no_store(render(request, "cards/counter_charge.html", _charge_context(request, person, form=form)))


def _render_preview(request: HttpRequest, person, split: Split, confirm: ChargeConfirmForm, **extra) -> HttpResponse:
    fields = extra.pop("fields")
    context = _charge_context(
        request,
        person,
        split=split,
        rows=_split_rows(split),
        confirm=confirm,
        kind_label=PaymentKind(fields["kind"]).label,
        category_label=PharmacyCategory(fields["category"]).label if fields["category"] else "",
        **extra,
    )
    return _no_store(render(request, "cards/counter_charge_preview.html", context))


def _charge_person(request: HttpRequest):
    current = _current(request)
    person = counter_person_get(person_id=current["person_id"]) if current else None
    return current, person


@require_http_methods(["GET", "POST"])
@clerk_required
def counter_charge(request: HttpRequest) -> HttpResponse:
    """收费 step 1: kind, category, amount; POST shows the split preview (R33), charging nothing."""
    current, person = _charge_person(request)
    if person is None:
        messages.info(request, _("Read the patient's card first."))
        return redirect("counter")
    institution = client_institution(client=request.user)
    form = ChargeForm(request.POST if request.method == "POST" else None, institution=institution)
    if request.method == "POST" and form.is_valid():
        fields = form.payment_fields()
        try:
            presented = _patient_presented(request, current)
            split = payment_quote(patient=presented.patient, institution=institution, **fields)
        except DomainError as error:
            _add_domain_error(form, error)
        else:
            # R34: the key is made with the preview; a second submit of this confirmation charges once.
            confirm = ChargeConfirmForm(
                initial={**fields, "idempotency_key": secrets.token_urlsafe(24), "split_check": _split_check(split)}
            )
            return _render_preview(request, presented.patient, split, confirm, fields=fields)
    return _render_charge(request, person, form)


@require_POST
@clerk_required
def counter_charge_confirm(request: HttpRequest) -> HttpResponse:
    """收费 step 2: charge what the preview showed (R34: once per key), then the receipt."""
    current, person = _charge_person(request)
    institution = client_institution(client=request.user)
    confirm = ChargeConfirmForm(request.POST)
    if person is None or not confirm.is_valid():
        messages.error(request, _("The charge was not made: read the patient's card and try again."))
        return redirect("counter_charge" if person is not None else "counter")
    fields = confirm.payment_fields()
    key = confirm.cleaned_data["idempotency_key"]
    fingerprint = request_fingerprint(patient=person.pk, **fields)
    existing = counter_payment_for_key(client=request.user, idempotency_key=key)
    try:
        if existing is not None:
            # A second submit: the first payment's receipt, without reading the card (or QR) again.
            receipt = payment_make(
                client=request.user,
                idempotency_key=key,
                request_hash=fingerprint,
                patient=existing.patient,
                card_number=existing.card_number,
                institution=existing.institution,
                qr_reference=existing.qr_reference,
                **fields,
            )
            return redirect("counter_receipt", pk=receipt.payment.pk)
        presented = _patient_presented(request, current)
        split = payment_quote(patient=presented.patient, institution=institution, **fields)
        if _split_check(split) != confirm.cleaned_data["split_check"]:
            # A balance or binding changed since the preview: show what would be charged now instead.
            fresh = ChargeConfirmForm(initial={**fields, "idempotency_key": key, "split_check": _split_check(split)})
            return _render_preview(request, presented.patient, split, fresh, fields=fields, changed=True)
        receipt = payment_make(
            client=request.user,
            idempotency_key=key,
            request_hash=fingerprint,
            patient=presented.patient,
            card_number=presented.card_number,
            institution=institution,
            qr_reference=presented.qr_reference,
            **fields,
        )
    except DomainError as error:
        form = ChargeForm(
            {"kind": fields["kind"], "category": fields["category"], "amount": fields["amount"]},
            institution=institution,
        )
        form.is_valid()
        _add_domain_error(form, error)
        return _render_charge(request, person, form)
    return redirect("counter_receipt", pk=receipt.payment.pk)


@require_GET
@clerk_required
def counter_receipt(request: HttpRequest, pk: int) -> HttpResponse:
    """The receipt (R35): payment number, each part from whose account, the cash to collect; printable."""
    try:
        payment = payment_for_client(client=request.user, payment_id=pk)
    except DomainError:
        raise Http404 from None
    receipt = payment_receipt(payment_id=payment.pk)
    context = {"form": CardReadForm(), "receipt": receipt, "payment": receipt.payment, "rows": _split_rows(receipt)}
    return _no_store(render(request, "cards/counter_receipt.html", context))

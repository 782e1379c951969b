"""柜台 The clerks' counter (R22, R26, R31–R34, R42), through its pages as a clerk uses them.

Forms are filled from the rendered page (tests.page_forms.submit), so a missing field or CSRF token fails.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse

from accounts.models import AuditEvent, InsuranceStatus, InsuranceType, User
from cards.services import qr_issue
from family.models import (
    Binding,
    BindingEvent,
    BindingMethod,
    BindingState,
    Payment,
    PaymentSource,
    PolicyVersion,
    Relation,
)
from family.services import InvalidTransition, binding_end
from tests.factories import InstitutionFactory, InsuredPersonFactory, UserFactory, give_account
from tests.page_forms import main_form, submit

OWNER_CARD = "A12345678"
SPOUSE_CARD = "B23456789"
CHILD_CARD = "C34567890"


@pytest.fixture
def owner(citizen_a):
    """Citizen A, the account owner: employee, ¥1,200.00 this year and ¥300.50 from previous years."""
    person = citizen_a.person
    person.card_number = OWNER_CARD
    person.save(update_fields=["card_number"])
    return person


@pytest.fixture
def spouse(citizen_a_family):
    person = citizen_a_family["spouse"]
    person.card_number = SPOUSE_CARD
    person.save(update_fields=["card_number"])
    return person


@pytest.fixture
def child(citizen_a_family):
    """A's child: a resident (no personal account of their own), under 16."""
    person = citizen_a_family["child"]
    person.card_number = CHILD_CARD
    person.save(update_fields=["card_number"])
    return person


@pytest.fixture
def counter(client, clerk_x):
    """A logged-in clerk of institution X (a designated clinic), reading English."""
    client.force_login(clerk_x)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def read(client, text: str):
    return client.post(reverse("counter_read"), {"card": text})


def html(response) -> str:
    return response.content.decode()


# --- Who reaches the counter -----------------------------------------------------------------------


def test_anonymous_users_log_in_first(client, db):
    response = client.get(reverse("counter"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


@pytest.mark.parametrize("url_name", ["counter", "counter_bind_owner", "counter_charge", "counter_unbind"])
def test_a_citizen_gets_403(client, citizen_a, url_name):
    client.force_login(citizen_a)
    assert client.get(reverse(url_name)).status_code == 403


def test_a_reviewer_gets_403(client, reviewer):
    client.force_login(reviewer)
    assert client.get(reverse("counter")).status_code == 403
    assert client.post(reverse("counter_read"), {"card": ";A12345678?"}).status_code == 403


def test_a_clerk_with_an_institution_gets_the_counter_with_the_card_field_focused(counter):
    response = counter.get(reverse("counter"))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = html(response)
    field = re.search(r'<input[^>]*name="card"[^>]*>', page).group(0)
    assert "autofocus" in field
    assert 'autocomplete="off"' in field
    assert "js/counter.js" in page and "css/counter.css" in page
    assert "<script>" not in page  # CSP: no inline script


def test_counter_pages_are_staff_pages_for_mfa():
    from accounts.middleware import STAFF_PREFIXES

    assert reverse("counter").startswith(STAFF_PREFIXES)


# --- Reading a card --------------------------------------------------------------------------------


def test_r4_a_swiped_card_shows_its_holder_masked_with_card_state_and_bindings(
    counter, owner, spouse, child, binding_active
):
    binding_active(owner, child, relationship=Relation.CHILD)
    pending = binding_active(owner, spouse, relationship=Relation.SPOUSE)
    Binding.objects.filter(pk=pending.pk).update(state=BindingState.AWAITING_FACE, activated_at=None)

    response = read(counter, f";{OWNER_CARD}=2512101?")
    assert response.status_code == 302 and response.url == reverse("counter")
    page = html(counter.get(reverse("counter")))

    assert "张*" in page and owner.masked_id_number in page
    assert owner.name not in page and owner.id_number not in page  # R4
    assert "张*" in page and child.name not in page
    assert 'data-testid="pays-for"' in page
    assert "employee medical insurance" in page.lower() or "职工医保" in page
    assert "not claimed" in page  # no e-card
    assert "李*" in page  # the pending one is listed too, with its state


def test_r32_an_unknown_card_says_so_keeps_what_was_typed_and_clears_the_desk(counter, owner):
    read(counter, f";{OWNER_CARD}?")
    response = read(counter, ";Z99999999?")
    page = html(response)
    assert response.status_code == 200
    assert "Unknown card number." in page
    assert 'value=";Z99999999?"' in page
    # Nobody stays at the desk after a failed read: a charge cannot go to the previous patient.
    assert counter.get(reverse("counter_charge")).status_code == 302


def test_r3_a_bank_card_is_refused_with_the_reason(counter, db):
    page = html(read(counter, "%B6222021234567890^ZHANG/WEI^2512?"))
    assert "bank card" in page


def test_the_person_stays_on_refresh_until_next_patient(counter, owner):
    read(counter, OWNER_CARD.lower())
    assert f'data-person="{owner.pk}"' in html(counter.get(reverse("counter")))
    assert f'data-person="{owner.pk}"' in html(counter.get(reverse("counter")))

    response = counter.post(reverse("counter_next"))
    assert response.status_code == 302
    page = html(counter.get(reverse("counter")))
    assert "data-person=" not in page
    assert 'data-testid="counter-empty"' in page


def test_the_counter_page_with_a_person_loaded_takes_a_fixed_number_of_queries(
    counter, owner, spouse, child, binding_active, django_assert_num_queries
):
    binding_active(owner, child)
    binding_active(owner, spouse, relationship=Relation.SPOUSE)
    read(counter, OWNER_CARD)
    # 1 session, 2 user, 3 person with region, account and e-card, 4 open bindings on both sides with
    # both persons, 5 the clerk's institution (its name in the header).
    with django_assert_num_queries(5):
        response = counter.get(reverse("counter"))
    assert response.status_code == 200


# --- 柜台绑定 counter binding (R22) ----------------------------------------------------------------


def _bind_to_confirm(client, *, owner_card: str, relative_card: str, name: str, relationship: str):
    response = submit(client, reverse("counter_bind_owner"), {"owner_card": owner_card})
    assert response.status_code == 302 and response.url == reverse("counter_bind_relative"), html(response)
    response = submit(client, reverse("counter_bind_relative"), {"relative_card": relative_card, "relative_name": name})
    assert response.status_code == 302 and response.url == reverse("counter_bind_relationship"), html(response)
    response = submit(client, reverse("counter_bind_relationship"), {"relationship": relationship})
    assert response.status_code == 302 and response.url == reverse("counter_bind_confirm")
    return client.get(reverse("counter_bind_confirm"))


def test_r22_a_counter_binding_records_clerk_institution_cards_and_originals_and_is_active(
    counter, clerk_x, institution_x, owner, spouse, django_capture_on_commit_callbacks
):
    confirm = _bind_to_confirm(
        counter, owner_card=f";{OWNER_CARD}?", relative_card=f";{SPOUSE_CARD}?", name="李娜", relationship="spouse"
    )
    page = html(confirm)
    assert 'data-eligible="true"' in page  # the eligibility answer, before confirming

    with django_capture_on_commit_callbacks(execute=True):
        response = submit(
            counter,
            reverse("counter_bind_confirm"),
            {"originals_seen": ["id_cards", "marriage_certificate"], "identity_confirmed": "on"},
        )
    binding = Binding.objects.get(owner=owner, relative=spouse)
    assert response.status_code == 302 and response.url == reverse("counter_binding", args=[binding.pk])
    assert binding.method == BindingMethod.COUNTER
    assert binding.state == BindingState.ACTIVE  # R22: no upload review, no face: identity seen in person
    assert binding.institution == institution_x
    assert binding.submitted_by == clerk_x
    assert binding.originals_seen == ["id_cards", "marriage_certificate"]
    assert binding.counter_cards["owner"] == OWNER_CARD
    assert binding.counter_cards["relative"] == SPOUSE_CARD
    assert BindingEvent.objects.filter(binding=binding, actor=clerk_x, to_state=BindingState.SUBMITTED).exists()

    result = html(counter.get(response.url))
    assert 'data-state="active"' in result
    assert 'name="card"' in result  # the next card can be read right away
    # The owner stays at the desk, with the new binding.
    assert "李*" in html(counter.get(reverse("counter")))


def test_r22_the_relative_may_be_given_by_id_number_without_a_card(counter, owner, spouse):
    confirm = _bind_to_confirm(
        counter, owner_card=OWNER_CARD, relative_card=spouse.id_number, name="李娜", relationship="spouse"
    )
    assert 'data-eligible="true"' in html(confirm)


def test_r12_a_refusal_is_shown_inline_naming_its_rule_and_nothing_is_submitted(counter, owner, spouse):
    # The region's policy in force allows only spouse, parents and children (as before 2024-07-01).
    PolicyVersion.objects.filter(region_id=owner.region_id, effective_to__isnull=True).update(
        relations=["spouse", "parent", "child"]
    )
    confirm = _bind_to_confirm(
        counter, owner_card=OWNER_CARD, relative_card=SPOUSE_CARD, name="李娜", relationship="sibling"
    )
    page = html(confirm)
    assert 'data-eligible="false"' in page
    refusals = re.search(r'data-testid="eligibility-refusals">(.*?)</ul>', page, re.S).group(1)
    assert "R12" in refusals
    assert 'data-testid="bind-submit"' not in page

    # Posting anyway submits nothing, and the step's choices stay.
    response = counter.post(
        reverse("counter_bind_confirm"), {"originals_seen": ["id_cards"], "identity_confirmed": "on"}
    )
    assert response.status_code == 200
    assert "Not eligible: nothing was submitted." in html(response)
    assert not Binding.objects.filter(owner=owner).exists()
    # Back to the relationship: what was entered is still there.
    page = html(counter.get(reverse("counter_bind_relationship")))
    assert re.search(r'value="sibling"[^>]*checked', page)


def test_r11_a_name_not_the_card_holders_is_refused_and_the_input_kept(counter, owner, spouse):
    submit(counter, reverse("counter_bind_owner"), {"owner_card": OWNER_CARD})
    response = submit(
        counter, reverse("counter_bind_relative"), {"relative_card": f";{SPOUSE_CARD}?", "relative_name": "李四"}
    )
    page = html(response)
    assert response.status_code == 200
    assert "R11" in page
    assert f'value=";{SPOUSE_CARD}?"' in page and 'value="李四"' in page


def test_r11_the_owner_cannot_bind_himself(counter, owner):
    submit(counter, reverse("counter_bind_owner"), {"owner_card": OWNER_CARD})
    response = submit(
        counter, reverse("counter_bind_relative"), {"relative_card": OWNER_CARD, "relative_name": owner.name}
    )
    assert "R11" in html(response)


def test_r22_originals_and_the_identity_check_are_required(counter, owner, spouse):
    _bind_to_confirm(counter, owner_card=OWNER_CARD, relative_card=SPOUSE_CARD, name="李娜", relationship="spouse")
    response = counter.post(reverse("counter_bind_confirm"), {})
    page = html(response)
    assert response.status_code == 200
    assert "at least one is needed (R22)" in page
    assert "Confirm the relative&#x27;s identity in person first (R22)." in page
    assert not Binding.objects.exists()


def test_a_later_step_opened_first_goes_back_to_the_first_unfinished_one(counter, db):
    response = counter.get(reverse("counter_bind_confirm"))
    assert response.status_code == 302 and response.url == reverse("counter_bind_owner")


def test_the_card_read_at_the_desk_can_be_the_owner(counter, owner):
    read(counter, OWNER_CARD)
    page = counter.get(reverse("counter_bind_owner"))
    assert 'data-testid="use-current"' in html(page)
    response = counter.post(reverse("counter_bind_owner"), {"use_current": "1"})
    assert response.status_code == 302 and response.url == reverse("counter_bind_relative")


def test_a_binding_made_at_another_institution_is_404(counter, owner, spouse, binding_active, region):
    elsewhere = InstitutionFactory(region=region)
    binding = binding_active(owner, spouse, relationship=Relation.SPOUSE, institution=elsewhere)
    assert counter.get(reverse("counter_binding", args=[binding.pk])).status_code == 404


# --- 解绑 unbind (R26) ---------------------------------------------------------------------------------


def test_r26_the_clerk_ends_the_card_holders_binding_at_once_and_it_is_recorded(
    counter, clerk_x, owner, spouse, child, binding_active
):
    keep = binding_active(owner, child)
    end = binding_active(owner, spouse, relationship=Relation.SPOUSE)
    read(counter, f";{SPOUSE_CARD}?")  # the relative leaves (退出) at the counter

    form = main_form(html(counter.get(reverse("counter_unbind"))))
    assert {"binding", "reason", "confirmed"} <= form.names
    response = submit(
        counter, reverse("counter_unbind"), {"binding": str(end.pk), "reason": "本人申请", "confirmed": "on"}
    )
    assert response.status_code == 302 and response.url == reverse("counter")

    end.refresh_from_db()
    keep.refresh_from_db()
    assert end.state == BindingState.ENDED and end.end_reason == "本人申请"
    assert keep.state == BindingState.ACTIVE  # not the card holder's: not offered, not touched
    event = BindingEvent.objects.get(binding=end, to_state=BindingState.ENDED)
    assert event.actor == clerk_x
    audit = AuditEvent.objects.get(action="binding.ended_at_counter")
    assert audit.actor == clerk_x and audit.detail == {"institution": clerk_x.institution_id}


def test_r26_only_the_card_holders_bindings_can_be_ended(counter, owner, spouse, child, binding_active, citizen_b):
    stranger = binding_active(citizen_b.person, child)
    binding_active(owner, spouse, relationship=Relation.SPOUSE)
    read(counter, OWNER_CARD)
    response = counter.post(reverse("counter_unbind"), {"binding": str(stranger.pk), "confirmed": "on"})
    assert response.status_code == 200
    stranger.refresh_from_db()
    assert stranger.state == BindingState.ACTIVE


def test_r26_a_clerk_without_an_institution_cannot_end_a_binding(owner, spouse, binding_active):
    binding = binding_active(owner, spouse, relationship=Relation.SPOUSE)
    # The database refuses to store such a clerk; the service refuses one all the same.
    clerk = User(username="loose-clerk", role=User.Role.CLERK)
    with pytest.raises(InvalidTransition):
        binding_end(binding_id=binding.pk, user=clerk)
    binding.refresh_from_db()
    assert binding.state == BindingState.ACTIVE


# --- 收费 charge (R31–R34) ----------------------------------------------------------------------------


def _preview(client, amount: str):
    response = submit(client, reverse("counter_charge"), {"kind": "medical", "amount": amount})
    assert response.status_code == 200, html(response)
    return response


def _confirm_data(preview) -> dict:
    page = html(preview)
    form = re.search(r'<form method="post" action="/counter/charge/confirm/".*?</form>', page, re.S).group(0)
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def _lines(page: str) -> list[tuple[str, str]]:
    return re.findall(r'data-testid="split-line" data-source="([^"]+)" data-amount="([^"]+)"', page)


def _cash(page: str) -> str:
    return re.search(r'data-testid="split-cash" data-amount="([^"]+)"', page).group(1)


def test_r33_the_preview_is_what_the_receipt_charges(counter, owner, child, binding_active):
    binding_active(owner, child)
    read(counter, f";{CHILD_CARD}?")
    preview = _preview(counter, "2000.00")
    shown = html(preview)
    assert _lines(shown) == [(PaymentSource.BINDING, "1500.50")]
    assert _cash(shown) == "499.50"
    assert not Payment.objects.exists()  # a preview charges nothing

    response = counter.post(reverse("counter_charge_confirm"), _confirm_data(preview))
    payment = Payment.objects.get()
    assert response.status_code == 302 and response.url == reverse("counter_receipt", args=[payment.pk])
    receipt = html(counter.get(response.url))
    assert payment.reference in receipt
    assert _lines(receipt) == _lines(shown)
    assert _cash(receipt) == _cash(shown)
    assert payment.cash_amount == Decimal("499.50") and payment.card_number == CHILD_CARD
    owner.account.refresh_from_db()
    assert owner.account.current_balance == 0 and owner.account.historical_balance == 0


def test_r34_a_double_submit_charges_once_and_shows_the_same_receipt(counter, owner, child, binding_active):
    binding_active(owner, child)
    read(counter, CHILD_CARD)
    data = _confirm_data(_preview(counter, "100.00"))

    first = counter.post(reverse("counter_charge_confirm"), data)
    second = counter.post(reverse("counter_charge_confirm"), data)
    assert first.status_code == second.status_code == 302
    assert first.url == second.url
    assert Payment.objects.count() == 1
    owner.account.refresh_from_db()
    assert owner.account.current_balance + owner.account.historical_balance == Decimal("1400.50")


def test_r34_a_changed_split_since_the_preview_is_shown_again_and_nothing_charged(
    counter, owner, child, binding_active
):
    binding = binding_active(owner, child)
    read(counter, CHILD_CARD)
    data = _confirm_data(_preview(counter, "100.00"))
    binding_end(binding_id=binding.pk, user=owner.user)  # the owner unbinds meanwhile (R26)

    response = counter.post(reverse("counter_charge_confirm"), data)
    page = html(response)
    assert response.status_code == 200
    assert 'data-testid="split-changed"' in page
    assert _cash(page) == "100.00"
    assert not Payment.objects.exists()


def test_r32_a_suspended_patient_is_refused_with_the_reason_and_the_amount_kept(counter, owner):
    read(counter, OWNER_CARD)
    owner.status = InsuranceStatus.SUSPENDED
    owner.save(update_fields=["status"])
    response = submit(counter, reverse("counter_charge"), {"kind": "medical", "amount": "88.80"})
    page = html(response)
    assert response.status_code == 200
    assert "insurance is suspended" in page
    assert 'value="88.80"' in page
    assert not Payment.objects.exists()


def test_r31_a_pharmacy_asks_for_the_category(client, owner, region):
    pharmacy = InstitutionFactory(region=region, kind="pharmacy")
    clerk = UserFactory(username="clerk_pharmacy", role=User.Role.CLERK, institution=pharmacy)
    client.force_login(clerk)
    read(client, OWNER_CARD)
    form = main_form(html(client.get(reverse("counter_charge"))))
    assert "category" in form.names
    response = submit(client, reverse("counter_charge"), {"kind": "pharmacy", "category": "drug", "amount": "30"})
    lines = _lines(html(response))
    assert lines == [(PaymentSource.OWN, "30.00")]


def test_r42_a_qr_code_read_at_the_counter_pays_by_its_reference_and_is_used_once(counter, owner, card_a):
    token, _row = qr_issue(card=card_a, viewer=owner.user)
    response = read(counter, token + "\n")
    assert response.status_code == 302
    preview = _preview(counter, "12.00")
    counter.post(reverse("counter_charge_confirm"), _confirm_data(preview))
    payment = Payment.objects.get()
    assert payment.patient == owner and payment.card_number == OWNER_CARD

    page = html(read(counter, token))  # the same code again
    assert 'data-testid="card-error"' in page


def test_a_receipt_of_another_institution_is_404(counter, owner, child, binding_active, client, region):
    binding_active(owner, child)
    read(counter, CHILD_CARD)
    counter.post(reverse("counter_charge_confirm"), _confirm_data(_preview(counter, "10.00")))
    payment = Payment.objects.get()
    other = UserFactory(username="clerk_y", role=User.Role.CLERK, institution=InstitutionFactory(region=region))
    counter.force_login(other)
    assert counter.get(reverse("counter_receipt", args=[payment.pk])).status_code == 404


def test_a_charge_without_a_card_read_goes_back_to_the_counter(counter, db):
    response = counter.get(reverse("counter_charge"))
    assert response.status_code == 302 and response.url == reverse("counter")


def test_a_resident_patient_without_a_binding_pays_cash_and_the_note_says_why(counter, region):
    patient = InsuredPersonFactory(region=region, insurance_type=InsuranceType.RESIDENT, card_number="D45678901")
    read(counter, "D45678901")
    page = html(_preview(counter, "50.00"))
    assert _lines(page) == []
    assert _cash(page) == "50.00"
    assert "R33" in page
    assert patient.masked_name in page


def test_an_employee_pays_from_their_own_account_first(counter, region):
    patient = InsuredPersonFactory(region=region, card_number="F56789012")
    give_account(patient, current="20.00")
    read(counter, "F56789012")
    page = html(_preview(counter, "50.00"))
    assert _lines(page) == [(PaymentSource.OWN, "20.00")]
    assert _cash(page) == "30.00"

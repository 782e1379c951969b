"""Suspending an e-card (已暂停) and lifting it: admins only, with the reason the holder reads; a suspended card
shows no QR code and none of its codes verifies (R42); every change is audited and the holder is told."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Notification
from cards.errors import CardRefused, QrRefused
from cards.models import CardState, ECard, QrToken
from cards.services import card_reactivate, card_suspend, qr_issue, qr_verify
from tests.cards.test_card_pages import client_for, text_of


def test_suspend_stops_the_code_and_reactivate_brings_it_back(card_a, citizen_a, admin_user, clerk_x):
    token, row = qr_issue(card=card_a, viewer=citizen_a)
    card = card_suspend(card_id=card_a.pk, actor=admin_user, reason="reported lost")
    assert (card.state, card.suspension_reason, card.suspended_by) == (CardState.SUSPENDED, "reported lost", admin_user)
    # R42: the code shown before is refused and stays unused; no new code is issued.
    with pytest.raises(QrRefused) as refused:
        qr_verify(token=token, verifier=clerk_x)
    assert refused.value.code == "card_not_active"
    assert QrToken.objects.get(pk=row.pk).used_at is None
    with pytest.raises(CardRefused) as no_code:
        qr_issue(card=card_a, viewer=citizen_a)
    assert no_code.value.code == "card_not_active"
    assert AuditEvent.objects.filter(action="card.suspended", actor=admin_user, target_id=str(citizen_a.person_id))
    assert Notification.objects.filter(person=citizen_a.person, kind="card.suspended", body__contains="reported lost")

    card = card_reactivate(card_id=card_a.pk, actor=admin_user)
    assert (card.state, card.suspended_at, card.suspension_reason) == (CardState.ACTIVE, None, "")
    assert AuditEvent.objects.get(action="card.reactivated").detail["was_suspended_for"] == "reported lost"
    assert Notification.objects.filter(person=citizen_a.person, kind="card.reactivated").exists()
    new_token, _row = qr_issue(card=card_a, viewer=citizen_a)
    assert qr_verify(token=new_token, verifier=clerk_x).card_state == CardState.ACTIVE


def test_only_admins_suspend_and_a_reason_is_needed(card_a, citizen_a, clerk_x, reviewer, admin_user):
    for who in (clerk_x, reviewer, citizen_a):
        with pytest.raises(CardRefused) as refused:
            card_suspend(card_id=card_a.pk, actor=who, reason="no")
        assert refused.value.status == 403
    with pytest.raises(CardRefused) as empty:
        card_suspend(card_id=card_a.pk, actor=admin_user, reason="   ")
    assert empty.value.code == "reason_required"
    assert ECard.objects.get(pk=card_a.pk).state == CardState.ACTIVE
    with pytest.raises(CardRefused) as not_suspended:
        card_reactivate(card_id=card_a.pk, actor=admin_user)
    assert not_suspended.value.code == "card_not_suspended"


def test_the_database_refuses_a_suspension_without_a_reason(card_a):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ECard.objects.filter(pk=card_a.pk).update(state=CardState.SUSPENDED)


def test_the_holders_page_says_why_and_what_to_do(card_a, citizen_a, admin_user):
    card_suspend(card_id=card_a.pk, actor=admin_user, reason="reported lost")
    page = client_for(citizen_a).get(reverse("card_home"))
    html, words = page.content.decode(), text_of(page)
    assert 'data-testid="card-not-usable"' in html and "<svg" not in html
    assert "Reason: reported lost" in words
    assert "Call 12393" in words
    assert not QrToken.objects.filter(card=card_a, created_at__gt=card_a.claimed_at).exclude(used_at=None).exists()
    assert client_for(citizen_a).get(reverse("card_qr_fragment")).status_code == 404


def test_admin_actions_suspend_with_a_reason_then_reactivate(card_a, citizen_a, admin_user):
    admin = client_for(admin_user)
    changelist = reverse("admin:cards_ecard_changelist")
    page = admin.get(changelist).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    base = {"csrfmiddlewaretoken": token, "_selected_action": [card_a.pk]}
    asked = admin.post(changelist, {**base, "action": "suspend_cards"})
    assert asked.status_code == 200 and 'name="reason"' in asked.content.decode()
    assert ECard.objects.get(pk=card_a.pk).state == CardState.ACTIVE  # nothing happens before the reason
    done = admin.post(changelist, {**base, "action": "suspend_cards", "reason": "reported stolen"})
    assert done.status_code == 302
    card = ECard.objects.get(pk=card_a.pk)
    assert (card.state, card.suspension_reason) == (CardState.SUSPENDED, "reported stolen")
    admin.post(changelist, {**base, "action": "reactivate_cards"})
    assert ECard.objects.get(pk=card_a.pk).state == CardState.ACTIVE

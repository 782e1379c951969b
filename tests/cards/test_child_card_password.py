"""R43/R41: a manager with an active family card link to a child under the face age changes the child's card
password knowing the old one, or resets it after the MANAGER's own fresh face verification; the trivial-password
rules and the lock are the holder's. A relative of 16 or over, a stranger or a pending link: no."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import check_password
from django.test import override_settings
from django.urls import reverse

from accounts.models import AuditEvent
from cards.errors import CardLocked, CardPasswordRefused, CardRefused
from cards.models import ECard
from cards.services import card_change_password_by_manager, card_reset_password_by_manager
from tests.cards.test_card_pages import client_for, face_file, text_of
from tests.page_forms import submit

OLD = "586217"
NEW = "739104"


@pytest.fixture
def child(citizen_a_family):
    return citizen_a_family["child"]  # born 2015


@pytest.fixture
def child_link(citizen_a, child, family_link_active, claim_card):
    claim_card(child, password=OLD)
    return family_link_active(citizen_a.person, child, relationship="child")


def test_r41_the_manager_changes_the_childs_password_through_the_page(citizen_a, child, child_link):
    alice = client_for(citizen_a)
    detail = alice.get(reverse("family_card_detail", args=[child_link.pk]))
    url = reverse("family_card_child_password_change", args=[child_link.pk])
    assert url in detail.content.decode()
    trivial = submit(alice, url, {"old_password": OLD, "new_password": "150101", "new_password_again": "150101"})
    assert "birth date" in text_of(trivial)  # the child's birth date, 2015-01-01
    wrong = submit(alice, url, {"old_password": "000001", "new_password": NEW, "new_password_again": NEW})
    assert "4 tries left" in text_of(wrong)
    response = submit(alice, url, {"old_password": OLD, "new_password": NEW, "new_password_again": NEW})
    assert response["Location"] == reverse("family_card_detail", args=[child_link.pk])
    card = ECard.objects.get(person=child)
    assert check_password(NEW, card.password) and card.failed_attempts == 0
    event = AuditEvent.objects.get(action="card.password_changed", target_id=str(child.pk))
    assert event.actor == citizen_a and event.detail["by_manager"] is True


@override_settings(CARD_PASSWORD_MAX_ATTEMPTS=2)
def test_r41_wrong_old_passwords_lock_the_childs_card(citizen_a, child, child_link):
    with pytest.raises(CardPasswordRefused):
        card_change_password_by_manager(
            link_id=child_link.pk, manager_user=citizen_a, old_password="000001", new_password=NEW
        )
    with pytest.raises(CardLocked):
        card_change_password_by_manager(
            link_id=child_link.pk, manager_user=citizen_a, old_password="000002", new_password=NEW
        )
    assert ECard.objects.get(person=child).locked_until is not None
    page = client_for(citizen_a).get(reverse("family_card_child_password_change", args=[child_link.pk]))
    assert 'data-testid="locked"' in page.content.decode()


def test_r41_the_manager_resets_it_after_their_own_face(citizen_a, child, child_link, face):
    card = ECard.objects.get(person=child)
    # The child's face does not count here: the manager's does.
    with pytest.raises(CardRefused):
        card_reset_password_by_manager(
            link_id=child_link.pk,
            manager_user=citizen_a,
            verification=face(child, "card_password_reset", card.pk),
            new_password=NEW,
        )
    with pytest.raises(CardPasswordRefused):
        card_reset_password_by_manager(
            link_id=child_link.pk,
            manager_user=citizen_a,
            verification=face(citizen_a.person, "card_password_reset", card.pk),
            new_password="111111",
        )
    ECard.objects.filter(pk=card.pk).update(failed_attempts=5)
    card_reset_password_by_manager(
        link_id=child_link.pk,
        manager_user=citizen_a,
        verification=face(citizen_a.person, "card_password_reset", card.pk),
        new_password=NEW,
    )
    card.refresh_from_db()
    assert check_password(NEW, card.password) and card.failed_attempts == 0 and card.locked_until is None
    event = AuditEvent.objects.get(action="card.password_reset", target_id=str(child.pk))
    assert event.actor == citizen_a and event.detail["face_of"] == citizen_a.person_id


def test_r41_the_reset_pages_take_the_managers_face_then_the_new_password(citizen_a, child, child_link):
    alice = client_for(citizen_a)
    url = reverse("family_card_child_password_reset", args=[child_link.pk])
    page = alice.get(url)
    assert 'data-testid="face-form"' in page.content.decode() and "guardian" in text_of(page)
    assert submit(alice, url, {"agree": "on", "photo": face_file()})["Location"] == url
    assert 'name="new_password"' in alice.get(url).content.decode()
    response = submit(alice, url, {"new_password": NEW, "new_password_again": NEW})
    assert response["Location"] == reverse("family_card_detail", args=[child_link.pk])
    assert check_password(NEW, ECard.objects.get(person=child).password)


def test_r43_not_for_a_relative_of_16_or_over_a_stranger_or_a_pending_link(
    citizen_a, citizen_b, citizen_a_family, child_link, family_link_active, claim_card
):
    parent = citizen_a_family["parent"]
    claim_card(parent, password=OLD)
    adult_link = family_link_active(citizen_a.person, parent)
    with pytest.raises(CardRefused) as adult:
        card_change_password_by_manager(
            link_id=adult_link.pk, manager_user=citizen_a, old_password=OLD, new_password=NEW
        )
    assert adult.value.code == "not_a_child"
    alice = client_for(citizen_a)
    assert alice.get(reverse("family_card_child_password_change", args=[adult_link.pk])).status_code == 404
    assert "child-password" not in alice.get(reverse("family_card_detail", args=[adult_link.pk])).content.decode()

    bob = client_for(citizen_b)
    for name in ("family_card_child_password_change", "family_card_child_password_reset"):
        assert bob.get(reverse(name, args=[child_link.pk])).status_code == 404
    with pytest.raises(CardRefused) as stranger:
        card_change_password_by_manager(
            link_id=child_link.pk, manager_user=citizen_b, old_password=OLD, new_password=NEW
        )
    assert stranger.value.code == "not_managed"

    child_link.state = "ended"
    child_link.save(update_fields=["state"])
    assert alice.get(reverse("family_card_child_password_change", args=[child_link.pk])).status_code == 404
    assert check_password(OLD, ECard.objects.get(person=child_link.relative).password)

"""R37 with R43: a family card manager opens the relative's medical-insurance wallet on their behalf."""

from __future__ import annotations

import pytest

from accounts.models import Wallet
from cards.errors import FamilyCardRefused
from cards.services import family_card_wallet_open

pytestmark = pytest.mark.django_db


def test_r37_a_manager_opens_the_relatives_wallet_once(client, citizen_a, citizen_a_family, family_link_active):
    parent = citizen_a_family["parent"]
    link = family_link_active(citizen_a.person, parent)
    client.force_login(citizen_a)
    page = client.get(f"/card/family/{link.pk}/")
    assert b'data-testid="open-relative-wallet"' in page.content

    response = client.post(f"/card/family/{link.pk}/wallet/")

    assert response.status_code == 302
    wallet = Wallet.objects.get(person=parent)
    assert wallet.opened_by == citizen_a and wallet.balance == 0
    assert family_card_wallet_open(link_id=link.pk, user=citizen_a).pk == wallet.pk  # idempotent
    assert b'data-testid="open-relative-wallet"' not in client.get(f"/card/family/{link.pk}/").content


def test_r43_only_the_manager_opens_it(client, citizen_a, citizen_b, citizen_a_family, family_link_active):
    link = family_link_active(citizen_a.person, citizen_a_family["parent"])
    client.force_login(citizen_b)
    assert client.post(f"/card/family/{link.pk}/wallet/").status_code == 404
    with pytest.raises(FamilyCardRefused):
        family_card_wallet_open(link_id=link.pk, user=citizen_b)
    assert not Wallet.objects.exists()

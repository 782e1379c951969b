"""Rate limits on guessing (proof issue, security): logins (allauth's rate limits, as configured) and the
e-card password (R41: 5 wrong attempts lock it; tests/cards/test_card_pages.py and test_password_rules.py
cover the lock itself, here only that it holds against the right password too).

Where the portal takes a card password, and what limits the guesses (cards/services.card_check_password counts
wrong ones on the card row, so across sessions and devices, and locks it for CARD_PASSWORD_LOCK_MINUTES):
- 修改密码, the holder's change of their own card password (card_password_change): the current one is checked;
- a manager's change of a child's card password (family_card_child_password_change, R43): the same check on
  the child's card, so the manager's guesses count toward the child's lock;
- the resets (card_password_reset, family_card_child_password_reset) take a fresh face check, not a password.
The counter takes no card password: it reads the card number or a QR code (R42, single use and signed), and
the API has no password endpoint.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.hashers import check_password
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cards.models import ECard
from tests.conftest import PASSWORD
from tests.security.world import CARD_PASSWORD


def _login(client: Client, login: str, password: str):
    return client.post(reverse("account_login"), {"login": login, "password": password}, HTTP_ACCEPT_LANGUAGE="en")


TOO_MANY = "Too many failed login attempts. Try again later."
WRONG = "The email address and/or password you specified are not correct."


@pytest.mark.django_db
def test_login_failures_are_rate_limited_per_account_even_with_the_right_password_after(citizen_a):
    """allauth's ``login_failed`` limit (5 in 5 minutes per account, its default; ACCOUNT_RATE_LIMITS is not
    overridden): after 5 wrong passwords, even the right one is refused without being checked."""
    client = Client()
    for _ in range(5):
        response = _login(client, citizen_a.email, "wrong password")
        assert WRONG in response.content.decode()
    refused = _login(client, citizen_a.email, PASSWORD)
    assert TOO_MANY in refused.content.decode()
    assert SESSION_KEY not in client.session
    # From another client (another cookie jar, the same address in the test) the account stays closed too.
    assert TOO_MANY in _login(Client(), citizen_a.email, PASSWORD).content.decode()


@pytest.mark.django_db
def test_a_right_password_logs_in_when_not_rate_limited(citizen_a):
    """The control: the same login with the right password at first logs in (so the test above can fail)."""
    client = Client()
    response = _login(client, citizen_a.email, PASSWORD)
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(citizen_a.pk)


NEW_CARD_PASSWORD = "739104"


def _change_card_password(client: Client, url: str, current: str):
    new = NEW_CARD_PASSWORD
    return client.post(url, {"old_password": current, "new_password": new, "new_password_again": new})


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _guess_until_locked(url: str, user, card: ECard) -> None:
    client = _logged_in(user)
    for _ in range(settings.CARD_PASSWORD_MAX_ATTEMPTS):
        assert _change_card_password(client, url, "000111").status_code == 200
    card.refresh_from_db()
    assert card.locked_until is not None and card.locked_until > timezone.now()


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["card_password_change", "family_card_child_password_change"])
def test_r41_wrong_current_card_passwords_lock_the_card_even_against_the_right_one(world, page):
    """5 wrong current passwords (CARD_PASSWORD_MAX_ATTEMPTS) on 修改密码, the holder's own or a manager's for a
    child (R43): then the right one, from this session or another, changes nothing until the lock ends."""
    citizen_a = world.users["citizen_a"]
    if page == "card_password_change":
        url, card = reverse(page), ECard.objects.get(person=citizen_a.person)
    else:
        url = reverse(page, args=[world.ids["link"]])
        card = ECard.objects.get(person__family_card_managers__pk=world.ids["link"])

    _guess_until_locked(url, citizen_a, card)

    for client in (_logged_in(citizen_a), _logged_in(citizen_a)):
        response = _change_card_password(client, url, CARD_PASSWORD)
        assert response.status_code == 200, "the right password was taken while locked"
        assert 'data-testid="locked"' in response.content.decode()
    card.refresh_from_db()
    assert check_password(CARD_PASSWORD, card.password)
    assert not check_password(NEW_CARD_PASSWORD, card.password)


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["card_password_change", "family_card_child_password_change"])
def test_r41_the_right_current_card_password_changes_it_when_not_locked(world, page):
    """The control: the same request with the right password at first is taken (so the test above can fail)."""
    args = [] if page == "card_password_change" else [world.ids["link"]]

    response = _change_card_password(_logged_in(world.users["citizen_a"]), reverse(page, args=args), CARD_PASSWORD)

    assert response.status_code == 302

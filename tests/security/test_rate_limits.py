"""Rate limits on guessing (proof issue, security): logins (allauth's rate limits, as configured) and the
e-card password (R41: 5 wrong attempts lock it; tests/cards/test_card_pages.py and test_password_rules.py
cover the lock itself, here only that it holds against the right password too)."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD


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

"""Staff accounts use TOTP (allauth MFA): without one, staff pages send them to set it up."""

import pytest
from allauth.mfa.models import Authenticator
from django.urls import reverse


@pytest.fixture
def mfa_required(settings):
    settings.STAFF_REQUIRE_MFA = True


@pytest.mark.parametrize("persona", ["reviewer", "admin_user", "clerk_x"])
def test_staff_without_totp_are_sent_to_set_it_up(client, request, mfa_required, persona):
    client.force_login(request.getfixturevalue(persona))
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")


def test_staff_with_totp_reach_the_admin(client, admin_user, mfa_required):
    Authenticator.objects.create(user=admin_user, type=Authenticator.Type.TOTP, data={"secret": "x"})
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200


def test_citizens_are_not_asked_for_totp(client, citizen_a, mfa_required):
    client.force_login(citizen_a)
    assert client.get(reverse("my_insurance")).status_code == 200

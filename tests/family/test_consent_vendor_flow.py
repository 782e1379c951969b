"""R23 with a vendor (FACE_PROVIDER=vendor): the consent page links out, and a passed outcome activates."""

import pytest
from django.conf import settings
from django.urls import reverse

from accounts.models import FaceVerification
from family.models import BindingState


@pytest.fixture
def settings_override_vendor(settings):
    settings.FACE_PROVIDER = "vendor"


def test_r23_the_consent_page_links_to_the_vendor_and_a_passed_outcome_activates(
    client, settings_override_vendor, citizen_a, citizen_a_family, binding_insert, django_user_model
):
    parent = citizen_a_family["parent"]
    login = django_user_model.objects.create_user(username="parent", password="x-long-pass-2025", person=parent)
    binding = binding_insert(citizen_a.person, parent, state=BindingState.AWAITING_FACE, relationship="parent")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(login)
    url = reverse("binding_consent", args=[binding.pk])
    body = client.get(url).content.decode()
    assert reverse("face_vendor_start") in body and 'type="file"' not in body
    FaceVerification.objects.create(
        person=parent, purpose="binding_consent", reference=str(binding.pk), provider="vendor", decision="passed"
    )
    response = client.get(url)
    assert response.status_code == 302
    binding.refresh_from_db()
    assert binding.state == BindingState.ACTIVE


def test_r23_a_failed_vendor_outcome_changes_nothing(
    client, settings_override_vendor, citizen_a, citizen_a_family, binding_insert, django_user_model
):
    parent = citizen_a_family["parent"]
    login = django_user_model.objects.create_user(username="parent", password="x-long-pass-2025", person=parent)
    binding = binding_insert(citizen_a.person, parent, state=BindingState.AWAITING_FACE, relationship="parent")
    FaceVerification.objects.create(
        person=parent,
        purpose="binding_consent",
        reference=str(binding.pk),
        provider="vendor",
        decision="failed",
        detail="no_face",
    )
    client.force_login(login)
    assert client.get(reverse("binding_consent", args=[binding.pk])).status_code == 200
    binding.refresh_from_db()
    assert binding.state == BindingState.AWAITING_FACE

"""消息 (R35): a payment from the owner's account is told on the notifications page: who, where, how much, a link."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Notification
from tests.family.test_records_selectors import at, make_payment

pytestmark = pytest.mark.django_db


def test_r35_owner_is_told_who_where_how_much_with_a_link_to_the_records(
    client, citizen_a, citizen_a_family, binding_active, institution_x, clerk_x, django_capture_on_commit_callbacks
):
    child = citizen_a_family["child"]
    binding_active(citizen_a.person, child)
    # The owners are told by a task queued on commit.
    with django_capture_on_commit_callbacks(execute=True):
        payment = make_payment(clerk_x, child, "1234.50", at(2025, 3, 15), institution=institution_x, key="n1")
    client.force_login(citizen_a)
    html = client.get(reverse("notifications")).content.decode()
    assert "¥1,234.50" in html  # how much
    assert "张*" in html and child.name not in html  # for whom, masked (R4)
    assert institution_x.name in html and payment.reference in html  # where, which payment
    assert f'href="{reverse("family_records")}"' in html  # the records, where the details are
    note = Notification.objects.get(person=citizen_a.person, kind="payment.from_account")
    assert note.link == reverse("family_records")


def test_r35_only_the_owner_whose_account_paid_is_told(
    citizen_a, citizen_a_family, binding_active, institution_x, clerk_x, django_capture_on_commit_callbacks
):
    child = citizen_a_family["child"]
    binding_active(citizen_a.person, child)
    with django_capture_on_commit_callbacks(execute=True):
        make_payment(clerk_x, child, "10.00", at(2025, 3, 15), institution=institution_x, key="n2")
    assert not Notification.objects.filter(person=child).exists()
    assert Notification.objects.filter(person=citizen_a.person).count() == 1

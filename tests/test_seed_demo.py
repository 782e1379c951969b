"""seed_demo: the demo data of the embedded set-up, idempotent."""

import io

import pytest
from django.core.management import call_command

from accounts.models import InsuredPerson, LedgerEntry, User
from family.models import Binding, BindingEvent, BindingState


def _counts():
    return (
        InsuredPerson.objects.count(),
        User.objects.count(),
        LedgerEntry.objects.count(),
        Binding.objects.count(),
        BindingEvent.objects.count(),
    )


@pytest.mark.django_db(transaction=True)  # each pipeline step runs when the one before has committed
def test_seed_demo_twice_changes_nothing_the_second_time():
    call_command("seed_demo", stdout=io.StringIO())
    first = _counts()
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert _counts() == first
    assert "13800000001" in out.getvalue()
    states = dict(Binding.objects.values_list("relationship", "state"))
    assert states == {"child": BindingState.ACTIVE, "parent": BindingState.UNDER_REVIEW}

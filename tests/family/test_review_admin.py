"""The plain review queue in the admin (R24, R25): oldest first, masked, decisions only through the service."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import translation

from accounts.models import Notification, User
from family.models import Binding, BindingMethod, BindingState, Relation
from tests.factories import InsuredPersonFactory, UserFactory

S = BindingState
NOW = dt.datetime(2026, 3, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
CHANGELIST = "/admin/family/binding/"


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def queue(citizen_a, citizen_a_family, citizen_b, binding_insert, time_machine):
    """Three applications waiting (submitted a day apart, oldest first), one active, one counter binding."""
    made = {}
    for index, (name, owner, relative, relationship) in enumerate(
        [
            ("child", citizen_a.person, citizen_a_family["child"], Relation.CHILD),
            ("spouse", citizen_a.person, citizen_a_family["spouse"], Relation.SPOUSE),
            ("parent", citizen_b.person, InsuredPersonFactory(birth="19600101"), Relation.PARENT),
        ]
    ):
        time_machine.move_to(NOW - dt.timedelta(days=3 - index), tick=False)
        made[name] = binding_insert(owner, relative, state=S.UNDER_REVIEW, relationship=relationship)
    time_machine.move_to(NOW, tick=False)
    made["active"] = binding_insert(
        citizen_a.person, citizen_a_family["parent"], state=S.ACTIVE, relationship=Relation.PARENT
    )
    made["counter"] = binding_insert(
        citizen_b.person, InsuredPersonFactory(birth="20180101"), state=S.UNDER_REVIEW, method=BindingMethod.COUNTER
    )
    return made


def logged_in(client, user):
    client.force_login(user)
    return client


def changelist_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'name="_selected_action" value="(\d+)"', response.content.decode())]


def act(client, action: str, bindings, **extra):
    data = {"action": action, "index": 0, "_selected_action": [b.pk for b in bindings], **extra}
    return client.post(CHANGELIST, data)


def test_the_queue_is_oldest_first_and_masked(client, admin_user, queue, citizen_a, citizen_a_family):
    response = logged_in(client, admin_user).get(CHANGELIST)

    assert response.status_code == 200
    assert changelist_ids(response) == [b.pk for b in sorted(queue.values(), key=lambda b: (b.created_at, b.pk))]
    text = response.content.decode()
    for person in (citizen_a.person, citizen_a_family["spouse"], citizen_a_family["child"]):
        assert person.id_number not in text and person.name not in text
    assert citizen_a.person.masked_id_number in text


def test_the_waiting_filter_shows_what_a_reviewer_must_decide(client, reviewer, queue):
    response = logged_in(client, reviewer).get(CHANGELIST, {"queue": "waiting"})
    assert changelist_ids(response) == [queue["child"].pk, queue["spouse"].pk, queue["parent"].pk]
    filtered = client.get(CHANGELIST, {"state__exact": "active"})
    assert changelist_ids(filtered) == [queue["active"].pk]
    by_relationship = client.get(CHANGELIST, {"relationship__exact": "spouse"})
    assert changelist_ids(by_relationship) == [queue["spouse"].pk]


def test_approve_selected_decides_through_the_service(client, reviewer, queue, pipeline):
    chosen = [queue["child"], queue["spouse"], queue["active"]]
    with pipeline():
        response = act(logged_in(client, reviewer), "approve_selected", chosen)

    assert response.status_code == 302
    for name in ("child", "spouse", "active"):
        queue[name].refresh_from_db()
    assert (queue["child"].reviewed_by, queue["spouse"].reviewed_by) == (reviewer, reviewer)
    # R23: under 16 becomes active; the adult spouse is asked for a face check.
    assert queue["child"].state == S.ACTIVE
    assert queue["spouse"].state == S.AWAITING_FACE
    assert queue["active"].state == S.ACTIVE and queue["active"].reviewed_by is None
    assert list(queue["child"].events.values_list("to_state", flat=True)) == [S.UNDER_REVIEW, S.ACTIVE]
    shown = [str(m) for m in response.wsgi_request._messages]
    assert shown == [
        "Approved 2 applications; they go on to the age check (R23).",
        "1 selected application was not waiting for review and was left as it was.",
    ]


def test_reject_selected_asks_for_the_reason_first(client, reviewer, queue):
    response = act(logged_in(client, reviewer), "reject_selected", [queue["spouse"], queue["parent"], queue["active"]])

    assert response.status_code == 200
    text = response.content.decode()
    assert 'name="reason"' in text and 'name="apply"' in text
    assert re.findall(r'name="_selected_action" value="(\d+)"', text) == [
        str(queue["spouse"].pk),
        str(queue["parent"].pk),
    ]
    assert queue["spouse"].relative.name not in text  # R4 on the confirmation page too
    assert "1 selected application is not waiting for review and is left out." in text
    assert Binding.objects.filter(state=S.REJECTED).count() == 0


def test_reject_without_a_reason_changes_nothing(client, reviewer, queue):
    logged_in(client, reviewer)
    response = client.post(
        CHANGELIST,
        {"action": "reject_selected", "_selected_action": [queue["spouse"].pk], "apply": "1", "reason": "  "},
    )
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    queue["spouse"].refresh_from_db()
    assert queue["spouse"].state == S.UNDER_REVIEW and queue["spouse"].reviewed_at is None


def test_reject_with_a_reason_tells_the_owner(client, reviewer, queue, citizen_a):
    logged_in(client, reviewer)
    reason = "The relative's register page is blurred."
    response = client.post(
        CHANGELIST,
        {
            "action": "reject_selected",
            "_selected_action": [queue["spouse"].pk, queue["active"].pk],
            "apply": "1",
            "reason": reason,
        },
    )

    assert response.status_code == 302
    queue["spouse"].refresh_from_db()
    assert (queue["spouse"].state, queue["spouse"].end_reason, queue["spouse"].reviewed_by) == (
        S.REJECTED,
        reason,
        reviewer,
    )
    event = queue["spouse"].events.last()
    assert (event.from_state, event.to_state, event.actor, event.reason) == (
        S.UNDER_REVIEW,
        S.REJECTED,
        reviewer,
        reason,
    )
    notification = Notification.objects.get(person=citizen_a.person, kind="binding.rejected")
    assert notification.body == reason
    queue["active"].refresh_from_db()
    assert queue["active"].state == S.ACTIVE
    assert [str(m) for m in response.wsgi_request._messages] == [
        "Rejected 1 application; the owner is told why.",
        "1 selected application was not waiting for review and was left as it was.",
    ]


def test_the_state_is_read_only_here(client, admin_user, queue):
    logged_in(client, admin_user)
    url = reverse("admin:family_binding_change", args=[queue["spouse"].pk])
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert 'name="_save"' not in text and 'name="state"' not in text
    assert "test set-up" in text  # the history inline (the set-up's event)
    assert queue["spouse"].relative.id_number not in text
    assert client.post(url, {"state": "active"}).status_code == 403
    assert client.get(reverse("admin:family_binding_add")).status_code == 403
    assert client.get(reverse("admin:family_binding_delete", args=[queue["spouse"].pk])).status_code == 403
    queue["spouse"].refresh_from_db()
    assert queue["spouse"].state == S.UNDER_REVIEW


def test_staff_who_are_not_reviewers_cannot_decide(client, queue, institution_x):
    clerk = UserFactory(username="clerk_staff", role=User.Role.CLERK, institution=institution_x, is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_binding"))
    logged_in(client, clerk)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "approve_selected" not in page.content.decode()
    act(client, "approve_selected", [queue["child"]])
    queue["child"].refresh_from_db()
    assert queue["child"].reviewed_at is None and queue["child"].state == S.UNDER_REVIEW


def test_citizens_do_not_get_into_the_admin(client, citizen_a, queue):
    response = logged_in(client, citizen_a).get(CHANGELIST)
    assert response.status_code == 302
    assert "login" in response["Location"]

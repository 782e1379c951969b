"""R17, R20–R27: the binding state machine (``family.services.bindings``) and its pipeline steps.

Celery is eager in tests and steps are queued on commit: ``with pipeline():`` runs them as a commit would;
a service called without it leaves the queued step unrun (the message "lost"), which lets a test run the
task functions by hand. Time is frozen at 2026-03-10 10:00 in Shanghai; messages are stored in English.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from accounts.errors import DomainError
from accounts.models import InsuranceStatus, InsuredPerson, Notification
from family import tasks
from family.models import Binding, BindingEvent, BindingMethod, BindingState, PolicyVersion
from family.services import (
    BindingRefused,
    DuplicateApplication,
    InvalidTransition,
    binding_cancel,
    binding_end,
    binding_face_verified,
    binding_review_decide,
    binding_submit,
    binding_transition,
    bindings_end_expired_authorizations,
    bindings_end_for_owner,
    bindings_expire_awaiting_face,
    bindings_reevaluate_pending,
    bindings_remind_authorization_end,
    bindings_requeue_stuck,
    policy_load,
)
from tests.factories import InsuredPersonFactory, RegionFactory, UserFactory

S = BindingState
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI)
TODAY = NOW.date()


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def owner(citizen_a) -> InsuredPerson:
    return citizen_a.person


@pytest.fixture
def spouse(citizen_a_family) -> InsuredPerson:
    """Adult (born 1982): 16 or over, so face verification is needed (R23)."""
    return citizen_a_family["spouse"]


@pytest.fixture
def child(citizen_a_family) -> InsuredPerson:
    """Born 2015-01-01: under 16 on TODAY."""
    return citizen_a_family["child"]


@pytest.fixture
def sibling(owner) -> InsuredPerson:
    return InsuredPersonFactory(name="张丽", region=owner.region, birth="19830101", male=False)


@pytest.fixture
def spouse_user(spouse):
    return UserFactory(username="spouse", person=spouse)


def submit(owner_user, relative: InsuredPerson, relationship: str, **fields) -> Binding:
    return binding_submit(
        owner=owner_user.person,
        relative_id_number=relative.id_number,
        relative_name=relative.name,
        relationship=relationship,
        submitted_by=owner_user,
        **fields,
    )


def transitions(binding: Binding) -> list[tuple[str, str]]:
    return list(BindingEvent.objects.filter(binding=binding).order_by("pk").values_list("from_state", "to_state"))


def last_event(binding: Binding) -> BindingEvent:
    return BindingEvent.objects.filter(binding=binding).latest("pk")


def notified(binding: Binding) -> set[tuple[str, str]]:
    """(dedup key, kind) of every notification about this binding."""
    return set(
        Notification.objects.filter(dedup_key__startswith=f"binding:{binding.pk}:").values_list("dedup_key", "kind")
    )


def fingerprint(binding: Binding) -> tuple:
    """The stored state of a binding and everything written about it, to show that nothing changed."""
    stored = Binding.objects.get(pk=binding.pk)
    return (
        stored.state,
        stored.updated_at,
        stored.end_reason,
        transitions(binding),
        notified(binding),
    )


def under_review(pipeline, owner_user, relative, relationship) -> Binding:
    with pipeline():
        binding = submit(owner_user, relative, relationship)
    binding.refresh_from_db()
    assert binding.state == S.UNDER_REVIEW, binding.reasons
    return binding


def awaiting_face(pipeline, owner_user, relative, relationship, reviewer) -> Binding:
    binding = under_review(pipeline, owner_user, relative, relationship)
    with pipeline():
        binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)
    binding.refresh_from_db()
    assert binding.state == S.AWAITING_FACE
    return binding


# Submission (R20) and the first pipeline step: eligibility (R10–R16).


def test_submit_creates_a_submitted_binding_with_one_event_and_queues_the_pipeline_on_commit(
    citizen_a, owner, spouse, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        binding = submit(citizen_a, spouse, "spouse", letter_signed_name="张伟")

    stored = Binding.objects.get()
    assert stored.pk == binding.pk
    assert (stored.owner, stored.relative, stored.relationship) == (owner, spouse, "spouse")
    assert stored.state == S.SUBMITTED
    assert stored.method == BindingMethod.ONLINE_ID
    assert stored.region_id == owner.region_id
    assert stored.submitted_by == citizen_a
    assert stored.letter_signed_at == NOW
    event = BindingEvent.objects.get()
    assert (event.binding_id, event.from_state, event.to_state) == (binding.pk, "", S.SUBMITTED)
    assert (event.actor, event.actor_label) == (citizen_a, "alice")
    # The eligibility step waits for the commit, it is never queued inside the transaction.
    assert len(queued) == 1


def test_eligible_application_goes_to_review(pipeline, citizen_a, spouse):
    with pipeline():
        binding = submit(citizen_a, spouse, "spouse")

    binding.refresh_from_db()
    assert binding.state == S.UNDER_REVIEW
    assert binding.policy_label == "320500@2024-12-02"
    assert binding.decision_date == TODAY
    assert binding.reasons == []
    assert binding.needs_review is False
    assert binding.needs_face_verification is True
    assert transitions(binding) == [("", S.SUBMITTED), (S.SUBMITTED, S.UNDER_REVIEW)]
    assert last_event(binding).actor_label == "system"
    assert "320500@2024-12-02" in last_event(binding).reason
    assert binding.reviewed_at is None  # R24: automation never approves alone
    assert notified(binding) == set()


def test_plausibility_doubt_goes_to_review_with_the_doubt_stored(pipeline, citizen_a, owner):
    """R16: a doubt is not a refusal; the reviewer sees it."""
    young_parent = InsuredPersonFactory(region=owner.region, birth="19700101", male=True)

    with pipeline():
        binding = submit(citizen_a, young_parent, "parent")

    binding.refresh_from_db()
    assert binding.state == S.UNDER_REVIEW
    assert binding.needs_review is True
    assert [reason["rule"] for reason in binding.reasons] == ["R16"]


def test_ineligible_application_is_rejected_with_reasons_naming_rules(pipeline, frozen, citizen_a, sibling):
    frozen.move_to(dt.datetime(2024, 6, 15, 10, 0, tzinfo=SHANGHAI), tick=False)

    with pipeline():
        binding = submit(citizen_a, sibling, "sibling")

    binding.refresh_from_db()
    message = "sibling is not allowed by policy 320500@2021-04-13. Region 320500 allows it from 2024-07-01."
    assert binding.state == S.REJECTED
    assert binding.reasons == [{"rule": "R12", "message": message}]
    assert binding.policy_label == "320500@2021-04-13"
    assert binding.decision_date == dt.date(2024, 6, 15)
    assert transitions(binding) == [("", S.SUBMITTED), (S.SUBMITTED, S.REJECTED)]
    assert last_event(binding).reason == f"R12: {message}"
    assert binding.end_reason == f"R12: {message}"[:200]
    assert notified(binding) == {(f"binding:{binding.pk}:rejected:owner", "binding.rejected")}
    notification = Notification.objects.get(dedup_key=f"binding:{binding.pk}:rejected:owner")
    assert notification.person == citizen_a.person
    assert notification.link == reverse("binding_detail", args=[binding.pk])
    assert "R12" in notification.body


def test_suspended_relative_is_rejected_under_r11(pipeline, citizen_a, spouse):
    InsuredPerson.objects.filter(pk=spouse.pk).update(status=InsuranceStatus.SUSPENDED)

    with pipeline():
        binding = submit(citizen_a, spouse, "spouse")

    binding.refresh_from_db()
    assert binding.state == S.REJECTED
    assert [reason["rule"] for reason in binding.reasons] == ["R11"]
    assert last_event(binding).reason.startswith("R11: ")


def test_counter_binding_goes_under_review_then_active_through_the_age_branch(
    pipeline, clerk_x, institution_x, owner, spouse
):
    """R22: the clerk saw the originals; no upload review, eligibility still applies."""
    with pipeline():
        binding = binding_submit(
            owner=owner,
            relative_id_number=spouse.id_number,
            relative_name=spouse.name,
            relationship="spouse",
            method=BindingMethod.COUNTER,
            submitted_by=clerk_x,
            institution=institution_x,
            originals_seen=["owner_id_card", "relative_id_card", "household_register"],
        )

    binding.refresh_from_db()
    assert binding.state == S.ACTIVE
    assert transitions(binding) == [("", S.SUBMITTED), (S.SUBMITTED, S.UNDER_REVIEW), (S.UNDER_REVIEW, S.ACTIVE)]
    assert BindingEvent.objects.get(binding=binding, from_state="").actor == clerk_x
    assert binding.institution == institution_x
    assert binding.originals_seen == ["owner_id_card", "relative_id_card", "household_register"]
    assert binding.policy_label == "320500@2024-12-02"
    assert binding.activated_at == NOW
    assert binding.reviewed_by is None
    assert notified(binding) == {
        (f"binding:{binding.pk}:active:owner", "binding.active"),
        (f"binding:{binding.pk}:active:relative", "binding.active"),
    }


def test_counter_binding_that_is_ineligible_is_rejected(pipeline, clerk_x, owner, spouse):
    InsuredPerson.objects.filter(pk=owner.pk).update(insurance_type="resident")

    with pipeline():
        binding = binding_submit(
            owner=owner,
            relative_id_number=spouse.id_number,
            relative_name=spouse.name,
            relationship="spouse",
            method=BindingMethod.COUNTER,
            submitted_by=clerk_x,
        )

    binding.refresh_from_db()
    assert binding.state == S.REJECTED
    assert [reason["rule"] for reason in binding.reasons] == ["R10"]


# Review (R24) and the age branch (R23).


def test_approved_relative_under_16_becomes_active(pipeline, citizen_a, child, reviewer, sms_outbox):
    binding = under_review(pipeline, citizen_a, child, "child")

    with pipeline():
        binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)

    binding.refresh_from_db()
    assert binding.state == S.ACTIVE
    assert binding.activated_at == NOW
    assert (binding.reviewed_by, binding.reviewed_at) == (reviewer, NOW)
    assert binding.face_deadline is None
    assert transitions(binding) == [("", S.SUBMITTED), (S.SUBMITTED, S.UNDER_REVIEW), (S.UNDER_REVIEW, S.ACTIVE)]
    assert notified(binding) == {
        (f"binding:{binding.pk}:active:owner", "binding.active"),
        (f"binding:{binding.pk}:active:relative", "binding.active"),
    }
    assert sms_outbox == []


def test_approved_relative_of_16_or_over_waits_for_face_with_a_deadline_and_is_told(
    pipeline, citizen_a, spouse, reviewer, sms_outbox
):
    InsuredPerson.objects.filter(pk=spouse.pk).update(phone="13812345678")
    binding = under_review(pipeline, citizen_a, spouse, "spouse")

    with pipeline():
        binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)

    binding.refresh_from_db()
    assert binding.state == S.AWAITING_FACE
    assert binding.face_deadline == NOW + dt.timedelta(days=7)
    assert binding.needs_face_verification is True
    assert binding.activated_at is None
    assert transitions(binding)[-1] == (S.UNDER_REVIEW, S.AWAITING_FACE)
    consent = Notification.objects.get(dedup_key=f"binding:{binding.pk}:consent")
    assert consent.person == spouse
    assert consent.kind == "binding.consent_needed"
    assert consent.link == settings.PORTAL_BASE_URL + reverse("binding_consent", args=[binding.pk])
    assert "2026-03-17" in consent.body
    assert notified(binding) == {(f"binding:{binding.pk}:consent", "binding.consent_needed")}  # not the owner
    assert [sms.phone for sms in sms_outbox] == ["13812345678"]
    assert consent.link in sms_outbox[0].text


def test_consent_sms_goes_to_the_relatives_login_phone_when_the_record_has_none(
    pipeline, citizen_a, spouse, spouse_user, reviewer, sms_outbox
):
    binding = under_review(pipeline, citizen_a, spouse, "spouse")

    with pipeline():
        binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)

    assert [sms.phone for sms in sms_outbox] == [spouse_user.phone]


def test_relative_without_any_phone_is_notified_without_sms(pipeline, citizen_a, spouse, reviewer, sms_outbox):
    binding = under_review(pipeline, citizen_a, spouse, "spouse")

    with pipeline():
        binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)

    assert Notification.objects.filter(dedup_key=f"binding:{binding.pk}:consent", person=spouse).exists()
    assert sms_outbox == []


def test_face_age_is_the_regions(pipeline, region_policy, reviewer):
    """R23: the face age comes from the policy in force (here 18), not a constant."""
    policy = region_policy(code="330100", face_age=18)
    owner = InsuredPersonFactory(region=policy.region, birth="19800101")
    owner_user = UserFactory(person=owner)
    seventeen = InsuredPersonFactory(region=policy.region, birth="20090101", insurance_type="resident")
    binding = under_review(pipeline, owner_user, seventeen, "child")

    with pipeline():
        binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)

    binding.refresh_from_db()
    assert binding.state == S.ACTIVE


def test_reject_needs_a_reason_and_writes_nothing_without_one(pipeline, citizen_a, spouse, reviewer):
    binding = under_review(pipeline, citizen_a, spouse, "spouse")
    before = fingerprint(binding)

    with pytest.raises(DomainError) as refused:
        binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=False, reason="   ")

    assert [error.field for error in refused.value.errors] == ["reason"]
    assert fingerprint(binding) == before
    assert Binding.objects.get(pk=binding.pk).reviewed_at is None


def test_reject_with_a_reason_tells_the_owner(pipeline, citizen_a, spouse, reviewer):
    binding = under_review(pipeline, citizen_a, spouse, "spouse")

    with pipeline():
        binding_review_decide(
            binding_id=binding.pk, reviewer=reviewer, approve=False, reason="The household register is unreadable."
        )

    binding.refresh_from_db()
    assert binding.state == S.REJECTED
    assert binding.end_reason == "The household register is unreadable."
    assert (binding.reviewed_by, binding.reviewed_at) == (reviewer, NOW)
    event = last_event(binding)
    assert (event.from_state, event.to_state, event.actor) == (S.UNDER_REVIEW, S.REJECTED, reviewer)
    assert event.reason == "The household register is unreadable."
    assert notified(binding) == {(f"binding:{binding.pk}:rejected:owner", "binding.rejected")}
    assert Notification.objects.get(dedup_key=f"binding:{binding.pk}:rejected:owner").body == (
        "The household register is unreadable."
    )


def test_a_decided_application_cannot_be_reviewed_again(pipeline, citizen_a, spouse, reviewer):
    binding = awaiting_face(pipeline, citizen_a, spouse, "spouse", reviewer)
    before = fingerprint(binding)

    for approve, reason in ((True, ""), (False, "changed my mind")):
        with pytest.raises(InvalidTransition):
            binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=approve, reason=reason)

    assert fingerprint(binding) == before


# Face verification (R23).


def test_face_verified_by_the_relative_activates(pipeline, citizen_a, spouse, spouse_user, reviewer):
    binding = awaiting_face(pipeline, citizen_a, spouse, "spouse", reviewer)

    with pipeline():
        binding_face_verified(binding_id=binding.pk, person=spouse, passed=True, actor=spouse_user)

    binding.refresh_from_db()
    assert binding.state == S.ACTIVE
    assert binding.activated_at == NOW
    event = last_event(binding)
    assert (event.from_state, event.to_state, event.actor) == (S.AWAITING_FACE, S.ACTIVE, spouse_user)
    assert {kind for _key, kind in notified(binding)} == {"binding.consent_needed", "binding.active"}


def test_face_verified_by_anyone_but_the_relative_changes_nothing(pipeline, citizen_a, owner, spouse, reviewer):
    binding = awaiting_face(pipeline, citizen_a, spouse, "spouse", reviewer)
    before = fingerprint(binding)

    with pytest.raises(InvalidTransition):
        binding_face_verified(binding_id=binding.pk, person=owner, passed=True, actor=citizen_a)

    assert fingerprint(binding) == before


def test_face_verified_outside_awaiting_face_changes_nothing(pipeline, citizen_a, spouse, reviewer):
    binding = under_review(pipeline, citizen_a, spouse, "spouse")
    before = fingerprint(binding)

    with pytest.raises(InvalidTransition):
        binding_face_verified(binding_id=binding.pk, person=spouse, passed=True, actor=None)

    assert fingerprint(binding) == before


def test_failed_face_check_leaves_the_application_waiting(pipeline, citizen_a, spouse, reviewer):
    binding = awaiting_face(pipeline, citizen_a, spouse, "spouse", reviewer)
    before = fingerprint(binding)

    binding_face_verified(binding_id=binding.pk, person=spouse, passed=False, actor=None)

    assert fingerprint(binding) == before


# Cancel (R25) and end (R26).


@pytest.mark.parametrize("stage", ["submitted", "under_review", "awaiting_face"])
def test_owner_cancels_a_pending_application(pipeline, citizen_a, spouse, reviewer, stage):
    if stage == "submitted":
        binding = submit(citizen_a, spouse, "spouse")  # the eligibility step is not run
    elif stage == "under_review":
        binding = under_review(pipeline, citizen_a, spouse, "spouse")
    else:
        binding = awaiting_face(pipeline, citizen_a, spouse, "spouse", reviewer)

    binding_cancel(binding_id=binding.pk, user=citizen_a)

    binding.refresh_from_db()
    assert binding.state == S.CANCELLED
    assert binding.ended_at == NOW
    event = last_event(binding)
    assert (event.from_state, event.to_state, event.actor) == (stage, S.CANCELLED, citizen_a)


def test_only_the_owner_cancels(pipeline, citizen_a, citizen_b, spouse, spouse_user):
    binding = under_review(pipeline, citizen_a, spouse, "spouse")
    before = fingerprint(binding)

    for user in (spouse_user, citizen_b):
        with pytest.raises(InvalidTransition) as refused:
            binding_cancel(binding_id=binding.pk, user=user)
        assert refused.value.status == 403

    assert fingerprint(binding) == before


def test_an_active_binding_cannot_be_cancelled(binding_activate, citizen_a, child):
    binding = binding_activate(citizen_a, child, "child")
    before = fingerprint(binding)

    with pytest.raises(InvalidTransition) as refused:
        binding_cancel(binding_id=binding.pk, user=citizen_a)

    assert refused.value.status == 409
    assert fingerprint(binding) == before


def test_owner_unbinds_at_once_and_both_are_told(binding_activate, citizen_a, child):
    binding = binding_activate(citizen_a, child, "child")

    binding_end(binding_id=binding.pk, user=citizen_a)

    binding.refresh_from_db()
    assert binding.state == S.ENDED
    assert binding.ended_at == NOW
    assert binding.end_reason == "Unbound by the owner."
    event = last_event(binding)
    assert (event.from_state, event.to_state, event.actor) == (S.ACTIVE, S.ENDED, citizen_a)
    ended = Notification.objects.filter(dedup_key__startswith=f"binding:{binding.pk}:ended:")
    assert {(n.person, n.kind) for n in ended} == {(citizen_a.person, "binding.ended"), (child, "binding.ended")}


def test_relative_leaves_the_network_and_both_are_told(binding_activate, citizen_a, spouse, spouse_user):
    binding = binding_activate(citizen_a, spouse, "spouse")

    binding_end(binding_id=binding.pk, user=spouse_user, reason="")

    binding.refresh_from_db()
    assert binding.state == S.ENDED
    assert binding.end_reason == "The relative left the family network."
    assert last_event(binding).actor == spouse_user
    ended = Notification.objects.filter(dedup_key__startswith=f"binding:{binding.pk}:ended:")
    assert {n.person for n in ended} == {citizen_a.person, spouse}


def test_a_stranger_cannot_end_a_binding(binding_activate, citizen_a, citizen_b, child):
    binding = binding_activate(citizen_a, child, "child")
    before = fingerprint(binding)

    with pytest.raises(InvalidTransition) as refused:
        binding_end(binding_id=binding.pk, user=citizen_b)

    assert refused.value.status == 403
    assert fingerprint(binding) == before


def test_only_an_active_binding_can_be_ended(pipeline, citizen_a, spouse, spouse_user):
    binding = under_review(pipeline, citizen_a, spouse, "spouse")
    before = fingerprint(binding)

    for user in (citizen_a, spouse_user):
        with pytest.raises(InvalidTransition):
            binding_end(binding_id=binding.pk, user=user)

    assert fingerprint(binding) == before


def test_an_ended_binding_cannot_be_ended_again(binding_activate, citizen_a, child):
    binding = binding_activate(citizen_a, child, "child")
    binding_end(binding_id=binding.pk, user=citizen_a)
    before = fingerprint(binding)

    with pytest.raises(InvalidTransition):
        binding_end(binding_id=binding.pk, user=citizen_a)

    assert fingerprint(binding) == before


@pytest.mark.parametrize(
    ("start", "to_state"),
    [
        (S.REJECTED, S.ACTIVE),
        (S.CANCELLED, S.UNDER_REVIEW),
        (S.EXPIRED, S.ACTIVE),
        (S.ENDED, S.ACTIVE),
        (S.ACTIVE, S.CANCELLED),
        (S.ACTIVE, S.AWAITING_FACE),
        (S.SUBMITTED, S.ENDED),
        (S.SUBMITTED, S.EXPIRED),
        (S.UNDER_REVIEW, S.SUBMITTED),
    ],
)
def test_invalid_transitions_raise_and_write_nothing(binding_insert, owner, spouse, start, to_state):
    binding = binding_insert(owner, spouse, state=start, relationship="spouse")
    before = fingerprint(binding)

    with pytest.raises(InvalidTransition) as refused:
        binding_transition(binding_id=binding.pk, to_state=to_state, reason="should not happen")

    assert refused.value.status == 409
    assert fingerprint(binding) == before


# Idempotent steps: a redelivered task acts once.


def test_eligibility_task_run_twice_acts_once(citizen_a, spouse):
    binding = submit(citizen_a, spouse, "spouse")  # the queued step is "lost"; run it by hand

    assert tasks.binding_check_eligibility(binding.pk) == S.UNDER_REVIEW
    assert tasks.binding_check_eligibility(binding.pk) is None

    assert transitions(binding) == [("", S.SUBMITTED), (S.SUBMITTED, S.UNDER_REVIEW)]


def test_refusing_eligibility_task_run_twice_notifies_once(pipeline, citizen_a, spouse):
    InsuredPerson.objects.filter(pk=spouse.pk).update(status=InsuranceStatus.SUSPENDED)
    binding = submit(citizen_a, spouse, "spouse")

    with pipeline():
        tasks.binding_check_eligibility(binding.pk)
        tasks.binding_check_eligibility(binding.pk)

    assert transitions(binding) == [("", S.SUBMITTED), (S.SUBMITTED, S.REJECTED)]
    assert notified(binding) == {(f"binding:{binding.pk}:rejected:owner", "binding.rejected")}


def test_age_branch_task_run_twice_acts_once(pipeline, citizen_a, spouse, reviewer, sms_outbox):
    InsuredPerson.objects.filter(pk=spouse.pk).update(phone="13812345678")
    binding = under_review(pipeline, citizen_a, spouse, "spouse")
    binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)  # age branch queued, not run

    with pipeline():
        assert tasks.binding_age_branch(binding.pk) == S.AWAITING_FACE
        assert tasks.binding_age_branch(binding.pk) is None

    assert transitions(binding) == [("", S.SUBMITTED), (S.SUBMITTED, S.UNDER_REVIEW), (S.UNDER_REVIEW, S.AWAITING_FACE)]
    assert notified(binding) == {(f"binding:{binding.pk}:consent", "binding.consent_needed")}
    assert len(sms_outbox) == 1


def test_age_branch_waits_for_the_reviewer(pipeline, citizen_a, child):
    """R24: automation never approves alone; an unreviewed application is left alone."""
    binding = under_review(pipeline, citizen_a, child, "child")
    before = fingerprint(binding)

    assert tasks.binding_age_branch(binding.pk) is None

    assert fingerprint(binding) == before


# One open application per pair; the relative must be who the owner says.


def test_second_submission_for_the_same_pair_gets_the_existing_one(pipeline, citizen_a, spouse):
    first = under_review(pipeline, citizen_a, spouse, "spouse")

    with pytest.raises(DuplicateApplication) as duplicate:
        submit(citizen_a, spouse, "spouse")

    assert duplicate.value.existing.pk == first.pk
    assert duplicate.value.status == 409
    assert Binding.objects.count() == 1
    assert BindingEvent.objects.count() == 2


def test_after_a_closed_application_the_pair_may_apply_again(pipeline, citizen_a, spouse):
    first = under_review(pipeline, citizen_a, spouse, "spouse")
    binding_cancel(binding_id=first.pk, user=citizen_a)

    second = under_review(pipeline, citizen_a, spouse, "spouse")

    assert second.pk != first.pk
    assert Binding.objects.get(pk=first.pk).state == S.CANCELLED


@pytest.mark.parametrize(
    "wrong",
    [
        {"relative_name": "李娜娜"},  # the right ID number, another name
        {"relative_id_number": "110105198206200024"},  # nobody is insured under it
    ],
)
def test_wrong_relative_is_refused_under_r11_without_creating_anything(owner, citizen_a, spouse, wrong):
    fields = {"relative_id_number": spouse.id_number, "relative_name": spouse.name, **wrong}

    with pytest.raises(BindingRefused) as refused:
        binding_submit(owner=owner, relationship="spouse", submitted_by=citizen_a, **fields)

    assert refused.value.code == "relative_not_found"
    assert "R11" in refused.value.title
    assert [error.field for error in refused.value.errors] == ["relative_id_number"]
    assert Binding.objects.count() == 0
    assert BindingEvent.objects.count() == 0


def test_both_wrong_relatives_get_the_same_answer(owner, citizen_a, spouse):
    """No telling whether an ID number is insured."""
    answers = []
    for fields in (
        {"relative_id_number": spouse.id_number, "relative_name": "李娜娜"},
        {"relative_id_number": "110105198206200024", "relative_name": "李娜"},
    ):
        with pytest.raises(BindingRefused) as refused:
            binding_submit(owner=owner, relationship="spouse", **fields)
        answers.append((refused.value.title, [(e.field, e.message) for e in refused.value.errors]))

    assert answers[0] == answers[1]


def test_owner_cannot_apply_for_himself(owner, citizen_a):
    with pytest.raises(BindingRefused) as refused:
        binding_submit(owner=owner, relative_id_number=owner.id_number, relative_name=owner.name, relationship="spouse")

    assert refused.value.code == "self"
    assert Binding.objects.count() == 0


# R17: a policy change re-evaluates pending applications; active bindings stay.


def test_r17_policy_that_removes_a_relation_rejects_pending_and_keeps_active(
    pipeline, binding_activate, citizen_a, owner, sibling, spouse
):
    active_sibling = binding_activate(citizen_a, sibling, "sibling")
    second_sibling = InsuredPersonFactory(name="张强", region=owner.region, birth="19850505")
    pending_sibling = under_review(pipeline, citizen_a, second_sibling, "sibling")
    pending_spouse = under_review(pipeline, citizen_a, spouse, "spouse")
    active_before = fingerprint(active_sibling)
    spouse_before = fingerprint(pending_spouse)

    result = policy_load(
        document={
            "regions": [{"code": "320500", "name": "苏州市", "province": "320000"}],
            "policies": [
                {
                    "region": "320500",
                    "effective_from": "2021-04-13",
                    "effective_to": None,
                    "relations": ["spouse", "parent", "child"],
                    "cross_province": True,
                    "max_members": None,
                    "multiple_owners": False,
                    "sharing_mode": "payment",
                    "face_age": 16,
                }
            ],
        }
    )
    with pipeline():
        rejected = bindings_reevaluate_pending(region_codes=result.policies_replaced)

    assert result.policies_replaced == ("320500",)
    assert rejected == 1
    pending_sibling.refresh_from_db()
    assert pending_sibling.state == S.REJECTED
    assert [reason["rule"] for reason in pending_sibling.reasons] == ["R12"]
    assert pending_sibling.policy_label == "320500@2021-04-13"
    assert pending_sibling.decision_date == TODAY
    event = last_event(pending_sibling)
    assert (event.from_state, event.to_state) == (S.UNDER_REVIEW, S.REJECTED)
    assert event.reason.startswith("The policy changed (R17): R12: ")
    assert notified(pending_sibling) == {(f"binding:{pending_sibling.pk}:rejected:owner", "binding.rejected")}
    # Made under the earlier policy: stays active, nothing written about it.
    assert fingerprint(active_sibling) == active_before
    # Still allowed under the new policy: still pending.
    assert fingerprint(pending_spouse) == spouse_before


def test_r17_other_regions_are_left_alone(pipeline, citizen_a, owner, sibling):
    pending = under_review(pipeline, citizen_a, sibling, "sibling")
    before = fingerprint(pending)
    PolicyVersion.objects.filter(region_id="320500").update(relations=["spouse"])

    assert bindings_reevaluate_pending(region_codes=["330100"]) == 0

    assert fingerprint(pending) == before
    assert bindings_reevaluate_pending(region_codes=["*"]) == 1
    assert Binding.objects.get(pk=pending.pk).state == S.REJECTED


# R27: the binding ends by itself when the owner can no longer share, or the authorization is over.


def test_r27_owner_suspended_ends_active_bindings_and_both_are_told(
    pipeline, binding_activate, citizen_a, owner, child, spouse
):
    active = binding_activate(citizen_a, child, "child")
    pending = under_review(pipeline, citizen_a, spouse, "spouse")
    InsuredPerson.objects.filter(pk=owner.pk).update(status=InsuranceStatus.SUSPENDED)

    assert bindings_end_for_owner(person_ids=[owner.pk]) == 2

    active.refresh_from_db()
    pending.refresh_from_db()
    reason = "The owner's insurance is suspended (R10, R27)."
    assert (active.state, active.end_reason, active.ended_at) == (S.ENDED, reason, NOW)
    assert (last_event(active).from_state, last_event(active).to_state, last_event(active).reason) == (
        S.ACTIVE,
        S.ENDED,
        reason,
    )
    assert pending.state == S.REJECTED
    assert last_event(pending).reason == reason
    ended = Notification.objects.filter(dedup_key__startswith=f"binding:{active.pk}:ended:")
    assert {(n.person, n.body) for n in ended} == {(owner, reason), (child, reason)}
    # Run again (a redelivered task): nothing more.
    assert bindings_end_for_owner(person_ids=[owner.pk]) == 0
    assert len(transitions(active)) == 4


def test_r27_owner_who_can_still_share_keeps_the_bindings(binding_activate, citizen_a, owner, child):
    active = binding_activate(citizen_a, child, "child")
    before = fingerprint(active)

    assert bindings_end_for_owner(person_ids=[owner.pk]) == 0

    assert fingerprint(active) == before


def test_r27_owner_no_longer_employee_or_moved_ends_too(binding_activate, citizen_a, citizen_b, owner, child):
    mine = binding_activate(citizen_a, child, "child")
    other_relative = InsuredPersonFactory(region=owner.region, birth="20120101", insurance_type="resident")
    theirs = binding_activate(citizen_b, other_relative, "child")
    InsuredPerson.objects.filter(pk=owner.pk).update(insurance_type="resident")
    moved_to = RegionFactory(code="330100", name="杭州市")
    InsuredPerson.objects.filter(pk=citizen_b.person.pk).update(region=moved_to)

    assert bindings_end_for_owner(person_ids=[owner.pk, citizen_b.person.pk]) == 2

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.state, mine.end_reason) == (
        S.ENDED,
        "The owner is no longer in employee medical insurance (R10, R27).",
    )
    assert (theirs.state, theirs.end_reason) == (S.ENDED, "The owner moved to another pooling region (R27).")


def test_r27_authorization_ends_after_its_last_day_not_on_it(binding_activate, citizen_a, child, spouse):
    limited = binding_activate(citizen_a, child, "child", authorized_from=TODAY, authorized_until=dt.date(2026, 4, 30))
    open_ended = binding_activate(citizen_a, spouse, "spouse")
    open_before = fingerprint(open_ended)

    assert bindings_end_expired_authorizations(today=dt.date(2026, 4, 30)) == 0
    assert Binding.objects.get(pk=limited.pk).state == S.ACTIVE

    assert bindings_end_expired_authorizations(today=dt.date(2026, 5, 1)) == 1

    limited.refresh_from_db()
    assert limited.state == S.ENDED
    assert limited.end_reason == "The authorization period ended (R27)."
    assert transitions(limited)[-1] == (S.ACTIVE, S.ENDED)
    ended = Notification.objects.filter(dedup_key__startswith=f"binding:{limited.pk}:ended:")
    assert {n.person for n in ended} == {citizen_a.person, child}
    assert fingerprint(open_ended) == open_before
    assert bindings_end_expired_authorizations(today=dt.date(2026, 5, 2)) == 0


def test_r27_owner_is_reminded_once_before_the_authorization_ends(binding_activate, citizen_a, child, spouse):
    limited = binding_activate(citizen_a, child, "child", authorized_from=TODAY, authorized_until=dt.date(2026, 4, 30))
    binding_activate(citizen_a, spouse, "spouse")  # open-ended: never reminded
    reminders = Notification.objects.filter(kind="binding.authorization_ending")

    assert bindings_remind_authorization_end(today=dt.date(2026, 4, 22)) == 0  # 8 days before
    assert bindings_remind_authorization_end(today=dt.date(2026, 4, 23)) == 1  # 7 days before
    assert bindings_remind_authorization_end(today=dt.date(2026, 4, 23)) == 0
    assert bindings_remind_authorization_end(today=dt.date(2026, 4, 30)) == 0

    reminder = reminders.get()
    assert reminder.person == citizen_a.person
    assert reminder.link == reverse("family_home")
    assert "2026-04-30" in reminder.title
    assert Binding.objects.get(pk=limited.pk).state == S.ACTIVE


# R23: an application waiting for the relative's face expires after its deadline.


def test_r23_awaiting_face_expires_after_the_deadline_only(pipeline, frozen, citizen_a, spouse, sibling, reviewer):
    first = awaiting_face(pipeline, citizen_a, spouse, "spouse", reviewer)
    frozen.move_to(NOW + dt.timedelta(days=1), tick=False)
    later = awaiting_face(pipeline, citizen_a, sibling, "sibling", reviewer)
    later_before = fingerprint(later)
    deadline = NOW + dt.timedelta(days=7)

    assert bindings_expire_awaiting_face(now=deadline) == 0
    assert Binding.objects.get(pk=first.pk).state == S.AWAITING_FACE

    assert bindings_expire_awaiting_face(now=deadline + dt.timedelta(seconds=1)) == 1

    first.refresh_from_db()
    assert first.state == S.EXPIRED
    assert transitions(first)[-1] == (S.AWAITING_FACE, S.EXPIRED)
    assert last_event(first).reason == "The relative did not complete face verification in time (R23)."
    expired = Notification.objects.filter(dedup_key__startswith=f"binding:{first.pk}:expired:")
    assert {(n.person, n.kind) for n in expired} == {(citizen_a.person, "binding.expired"), (spouse, "binding.expired")}
    assert fingerprint(later) == later_before
    assert bindings_expire_awaiting_face(now=deadline + dt.timedelta(seconds=2)) == 0


# Lost messages: the sweep re-queues only what is stuck.


def test_requeue_stuck_requeues_only_stuck_steps(
    pipeline, frozen, monkeypatch, citizen_a, clerk_x, owner, spouse, child, sibling, citizen_a_family, reviewer
):
    queued: list[tuple[str, int]] = []
    stuck_submitted = submit(citizen_a, spouse, "spouse")  # eligibility message lost
    stuck_approved = under_review(pipeline, citizen_a, child, "child")
    binding_review_decide(binding_id=stuck_approved.pk, reviewer=reviewer, approve=True)  # age-branch message lost
    waiting_reviewer = under_review(pipeline, citizen_a, sibling, "sibling")  # waits for a person, not the queue
    parent = citizen_a_family["parent"]
    stuck_counter = binding_submit(
        owner=owner,
        relative_id_number=parent.id_number,
        relative_name=parent.name,
        relationship="parent",
        method=BindingMethod.COUNTER,
        submitted_by=clerk_x,
    )
    tasks.binding_check_eligibility(stuck_counter.pk)  # its age-branch message lost
    frozen.move_to(NOW + dt.timedelta(minutes=10), tick=False)
    fresh = submit(citizen_a, InsuredPersonFactory(region=owner.region, birth="19880808"), "sibling")
    monkeypatch.setattr(tasks.binding_check_eligibility, "delay", lambda pk: queued.append(("eligibility", pk)))
    monkeypatch.setattr(tasks.binding_age_branch, "delay", lambda pk: queued.append(("age_branch", pk)))

    with pipeline():
        count = bindings_requeue_stuck(older_than_seconds=120)

    assert count == 3
    assert sorted(queued) == sorted(
        [("eligibility", stuck_submitted.pk), ("age_branch", stuck_approved.pk), ("age_branch", stuck_counter.pk)]
    )
    assert fresh.pk not in {pk for _step, pk in queued}
    assert waiting_reviewer.pk not in {pk for _step, pk in queued}


def test_r24_approving_the_application_accepts_its_pending_documents(pipeline, citizen_a, child, reviewer):
    from django.core.files.base import ContentFile

    from family.models import BindingDocument, DocumentKind, DocumentStatus

    binding = under_review(pipeline, citizen_a, child, "child")
    document = BindingDocument.objects.create(
        binding=binding,
        kind=DocumentKind.OWNER_HOUSEHOLD_REGISTER,
        file=ContentFile(b"%PDF-1.4 test", name="register.pdf"),
        content_type="application/pdf",
        size=13,
    )
    with pipeline():
        binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)
    document.refresh_from_db()
    assert document.status == DocumentStatus.APPROVED
    document.file.delete(save=False)


def test_a_stale_message_for_a_binding_that_is_gone_does_nothing(db):
    from family import tasks

    assert tasks.binding_check_eligibility(987654) is None
    assert tasks.binding_age_branch(987654) is None

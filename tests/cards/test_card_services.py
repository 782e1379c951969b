"""R40 (claim), R41 (card password) and R43 (family card service) through the services."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.contrib.auth.hashers import check_password, identify_hasher
from django.db import IntegrityError, connections, transaction
from django.test import override_settings
from django.utils import timezone

from accounts.models import AuditEvent, FaceVerification, InsuranceType
from cards.errors import CardLocked, CardPasswordRefused, CardRefused, FamilyCardRefused
from cards.models import CardState, ECard, FamilyCardLink, FamilyCardLinkState, FamilyCardVerifiedBy
from cards.selectors import card_for_person, family_card_links_for, payers_for_person
from cards.services import (
    card_accept_agreement,
    card_change_password,
    card_check_password,
    card_claim_for_child,
    card_claim_start,
    card_face_passed,
    card_password_attempts_left,
    card_reset_password,
    card_set_password,
    family_card_add,
    family_card_confirm,
    family_card_end,
)
from tests.cards.conftest import GOOD_PASSWORD
from tests.factories import InsuredPersonFactory, RegionFactory


@pytest.fixture(autouse=True)
def _private_storage(tmp_path, monkeypatch):
    """Documents of these tests go to a folder of their own: parallel tests count the shared folder's files."""
    from accounts.storage import PrivateStorage
    from cards.models import FamilyCardDocument

    monkeypatch.setattr(FamilyCardDocument._meta.get_field("file"), "storage", PrivateStorage(location=tmp_path))


# Tomorrow 09:00 UTC: after every row the fixtures wrote on the real clock.
START = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
WRONG = "302918"


@pytest.fixture
def frozen():
    """Time stands still at START; ``frozen.shift(...)`` moves it."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


# --- R40: claim ---


def test_r40_claim_steps_region_agreement_face_password(citizen_a, face, frozen):
    person = citizen_a.person
    card = card_claim_start(person=person, region_code="320500")
    assert (card.state, card.issuing_region_id, card.channel) == (CardState.PENDING, "320500", "portal")

    frozen.shift(1)
    with pytest.raises(CardRefused) as early_face:
        card_face_passed(card=card, verification=face(person, "card_claim", card.pk))
    assert early_face.value.code == "agreement_needed"
    with pytest.raises(CardRefused) as early_password:
        card_set_password(card=card, password=GOOD_PASSWORD)
    assert early_password.value.code == "claim_incomplete"

    card = card_accept_agreement(card=card)
    assert card.agreement_accepted_at == START + dt.timedelta(seconds=1)
    frozen.shift(1)
    card = card_face_passed(card=card, verification=face(person, "card_claim", card.pk))
    assert card.face_verified_at is not None
    card = card_set_password(card=card, password=GOOD_PASSWORD)

    stored = ECard.objects.get(pk=card.pk)
    assert stored.state == CardState.ACTIVE
    assert stored.claimed_at == stored.password_set_at == START + dt.timedelta(seconds=2)
    assert AuditEvent.objects.filter(action="card.claimed", target_id=str(person.pk), actor=citizen_a).exists()


def test_r40_the_issuing_region_must_exist(citizen_a):
    with pytest.raises(CardRefused) as refused:
        card_claim_start(person=citizen_a.person, region_code="999999")
    assert refused.value.code == "unknown_region"
    assert refused.value.errors[0].field == "region_code"
    assert not ECard.objects.exists()


def test_r40_claiming_again_shows_the_existing_card(card_a, citizen_a, wuhan):
    again = card_claim_start(person=citizen_a.person, region_code=wuhan.code, channel="alipay")
    assert again.pk == card_a.pk
    stored = ECard.objects.get()
    assert (stored.state, stored.issuing_region_id, stored.channel) == (CardState.ACTIVE, "320500", "portal")
    assert stored.password == card_a.password


def test_r40_a_claim_in_progress_is_resumed_with_the_region_chosen_now(citizen_a, wuhan):
    first = card_claim_start(person=citizen_a.person, region_code="320500")
    card_accept_agreement(card=first)
    resumed = card_claim_start(person=citizen_a.person, region_code=wuhan.code, channel="wechat")
    assert resumed.pk == first.pk
    assert (resumed.issuing_region_id, resumed.channel) == ("420100", "wechat")
    assert resumed.agreement_accepted_at is not None  # what was done stays done
    assert ECard.objects.count() == 1


@pytest.mark.parametrize(
    "problem", ["failed", "someone_else", "wrong_purpose", "another_card", "older_than_10_minutes", "before_the_claim"]
)
def test_r40_the_face_check_must_be_the_holders_passed_fresh_and_for_this_claim(
    citizen_a, citizen_b, face, frozen, problem
):
    person = citizen_a.person
    if problem == "before_the_claim":
        early = face(person, "card_claim", "")
        frozen.shift(1)
    card = card_accept_agreement(card=card_claim_start(person=person, region_code="320500"))
    if problem == "before_the_claim":
        FaceVerification.objects.filter(pk=early.pk).update(reference=str(card.pk))
        early.refresh_from_db()
    frozen.shift(1)
    verification = {
        "failed": lambda: face(person, "card_claim", card.pk, passed=False),
        "someone_else": lambda: face(citizen_b.person, "card_claim", card.pk),
        "wrong_purpose": lambda: face(person, "card_password_reset", card.pk),
        "another_card": lambda: face(person, "card_claim", card.pk + 1),
        "older_than_10_minutes": lambda: face(person, "card_claim", card.pk),
        "before_the_claim": lambda: early,
    }[problem]()
    if problem == "older_than_10_minutes":
        frozen.shift(dt.timedelta(minutes=10, seconds=1))
    with pytest.raises(CardRefused) as refused:
        card_face_passed(card=card, verification=verification)
    assert refused.value.code == "face_verification_needed"
    assert ECard.objects.get(pk=card.pk).face_verified_at is None


def test_r40_an_active_card_without_a_password_is_refused_by_the_database(card_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        ECard.objects.filter(pk=card_a.pk).update(password="")


def test_r40_an_unfinished_claim_cannot_be_made_active_by_the_database(citizen_a):
    card = card_claim_start(person=citizen_a.person, region_code="320500")
    with pytest.raises(IntegrityError), transaction.atomic():
        ECard.objects.filter(pk=card.pk).update(state=CardState.ACTIVE, password="pbkdf2_sha256$x")


def test_r40_one_card_per_person_in_the_database(card_a, region):
    with pytest.raises(IntegrityError), transaction.atomic():
        ECard.objects.create(person=card_a.person, issuing_region=region)


# --- R41: the card password ---


def test_r41_the_password_is_never_stored_in_plain_text(card_a):
    stored = ECard.objects.get(pk=card_a.pk)
    assert GOOD_PASSWORD not in stored.password
    assert identify_hasher(stored.password)  # Django's hasher output
    assert check_password(GOOD_PASSWORD, stored.password)
    for event in AuditEvent.objects.all():
        assert GOOD_PASSWORD not in str(event.detail)


def test_r41_a_trivial_password_is_refused_with_its_codes_and_the_claim_waits(citizen_a, face, frozen):
    person = citizen_a.person  # born 1980-03-15
    card = card_accept_agreement(card=card_claim_start(person=person, region_code="320500"))
    frozen.shift(1)
    card = card_face_passed(card=card, verification=face(person, "card_claim", card.pk))
    for password, code in [("800315", "birth_date"), ("123456", "ascending"), ("888888", "all_same")]:
        with pytest.raises(CardPasswordRefused) as refused:
            card_set_password(card=card, password=password)
        assert refused.value.problems == [code]
        assert refused.value.errors[0].field == "password"
    stored = ECard.objects.get(pk=card.pk)
    assert (stored.state, stored.password) == (CardState.PENDING, "")


def test_r41_five_wrong_lock_for_30_minutes_still_locked_at_29_59_open_at_30_00(card_a, frozen):
    for attempt in range(1, 5):
        assert card_check_password(card=card_a, password=WRONG) is False
        assert ECard.objects.get(pk=card_a.pk).failed_attempts == attempt
        assert ECard.objects.get(pk=card_a.pk).locked_until is None
    assert card_password_attempts_left(card=card_a) == 1
    assert card_check_password(card=card_a, password=WRONG) is False
    locked_until = START + dt.timedelta(minutes=30)
    assert ECard.objects.get(pk=card_a.pk).locked_until == locked_until
    assert AuditEvent.objects.filter(action="card.password_locked").count() == 1

    with pytest.raises(CardLocked) as locked:
        card_check_password(card=card_a, password=GOOD_PASSWORD)  # even the right one
    assert locked.value.locked_until == locked_until
    assert locked.value.status == 423

    frozen.move_to(START + dt.timedelta(minutes=29, seconds=59))
    with pytest.raises(CardLocked):
        card_check_password(card=card_a, password=GOOD_PASSWORD)

    frozen.move_to(START + dt.timedelta(minutes=30))
    assert card_check_password(card=card_a, password=GOOD_PASSWORD) is True
    stored = ECard.objects.get(pk=card_a.pk)
    assert (stored.failed_attempts, stored.locked_until) == (0, None)


def test_r41_failures_count_across_sessions_and_devices(card_a):
    phone = ECard.objects.get(pk=card_a.pk)
    counter = ECard.objects.get(pk=card_a.pk)
    for device in [phone, counter, phone, counter]:
        assert card_check_password(card=device, password=WRONG) is False
    assert ECard.objects.get(pk=card_a.pk).failed_attempts == 4
    assert card_check_password(card=ECard.objects.get(pk=card_a.pk), password=WRONG) is False
    with pytest.raises(CardLocked):
        card_check_password(card=phone, password=GOOD_PASSWORD)


def test_r41_a_right_password_resets_the_count(card_a):
    for _ in range(4):
        card_check_password(card=card_a, password=WRONG)
    assert card_check_password(card=card_a, password=GOOD_PASSWORD) is True
    assert card_check_password(card=card_a, password=WRONG) is False
    assert ECard.objects.get(pk=card_a.pk).failed_attempts == 1


def test_r41_after_the_lock_runs_out_a_fresh_count_starts(card_a, frozen):
    for _ in range(5):
        card_check_password(card=card_a, password=WRONG)
    frozen.shift(dt.timedelta(minutes=31))
    assert card_check_password(card=card_a, password=WRONG) is False
    stored = ECard.objects.get(pk=card_a.pk)
    assert (stored.failed_attempts, stored.locked_until) == (1, None)


@override_settings(CARD_PASSWORD_MAX_ATTEMPTS=3, CARD_PASSWORD_LOCK_MINUTES=5)
def test_r41_attempts_and_lock_are_configurable(card_a, frozen):
    for _ in range(3):
        card_check_password(card=card_a, password=WRONG)
    assert ECard.objects.get(pk=card_a.pk).locked_until == START + dt.timedelta(minutes=5)


def test_r41_change_needs_the_old_password_and_a_wrong_one_counts(card_a):
    with pytest.raises(CardPasswordRefused) as wrong:
        card_change_password(card=card_a, old_password=WRONG, new_password="749135")
    assert wrong.value.code == "password_wrong"
    assert wrong.value.errors[0].field == "old_password"
    assert card_password_attempts_left(card=card_a) == 4
    assert ECard.objects.get(pk=card_a.pk).failed_attempts == 1  # committed despite the refusal

    with pytest.raises(CardPasswordRefused) as trivial:
        card_change_password(card=card_a, old_password=GOOD_PASSWORD, new_password="111111")
    assert trivial.value.problems == ["all_same"]
    assert ECard.objects.get(pk=card_a.pk).failed_attempts == 1  # a trivial new one costs no try

    card_change_password(card=card_a, old_password=GOOD_PASSWORD, new_password="749135")
    stored = ECard.objects.get(pk=card_a.pk)
    assert check_password("749135", stored.password)
    assert stored.failed_attempts == 0
    assert AuditEvent.objects.filter(action="card.password_changed").count() == 1


def test_r41_change_while_locked_says_until_when(card_a):
    for _ in range(5):
        card_check_password(card=card_a, password=WRONG)
    with pytest.raises(CardLocked):
        card_change_password(card=card_a, old_password=GOOD_PASSWORD, new_password="749135")


def test_r41_reset_needs_a_face_check_of_the_last_10_minutes_and_lifts_the_lock(card_a, face, frozen):
    person = card_a.person
    for _ in range(5):
        card_check_password(card=card_a, password=WRONG)
    frozen.shift(1)
    old = face(person, "card_password_reset", card_a.pk)
    frozen.shift(dt.timedelta(minutes=10, seconds=1))
    with pytest.raises(CardRefused) as stale:
        card_reset_password(card=card_a, verification=old, new_password="749135")
    assert stale.value.code == "face_verification_needed"
    with pytest.raises(CardRefused):
        card_reset_password(
            card=card_a, verification=face(person, "card_claim", card_a.pk), new_password="749135"
        )  # a claim's face check is not a reset's

    fresh = face(person, "card_password_reset", card_a.pk)
    frozen.shift(1)
    card_reset_password(card=card_a, verification=fresh, new_password="749135")
    stored = ECard.objects.get(pk=card_a.pk)
    assert check_password("749135", stored.password)
    assert (stored.failed_attempts, stored.locked_until) == (0, None)
    assert card_check_password(card=card_a, password="749135") is True

    with pytest.raises(CardRefused):  # one face check, one reset
        card_reset_password(card=card_a, verification=fresh, new_password="271828")


def test_r41_reset_refuses_a_trivial_password(card_a, face, frozen):
    frozen.shift(1)
    verification = face(card_a.person, "card_password_reset", card_a.pk)
    with pytest.raises(CardPasswordRefused) as refused:
        card_reset_password(card=card_a, verification=verification, new_password="031580")
    assert refused.value.problems == ["birth_date"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r41_concurrent_wrong_guesses_all_count(citizen_a, claim_card):
    """Eight wrong guesses from eight connections at once: five count, the card locks, three are refused."""
    card = claim_card(citizen_a.person)
    barrier = threading.Barrier(8)
    results: list[object] = [None] * 8

    def guess(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = card_check_password(card=ECard.objects.get(pk=card.pk), password=WRONG)
        except Exception as error:  # the test inspects it
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results.count(False) == 5
    assert sum(isinstance(r, CardLocked) for r in results) == 3
    stored = ECard.objects.get(pk=card.pk)
    assert stored.failed_attempts == 5
    assert stored.locked_until is not None


# --- R43: family card service ---


def _relatives(count: int, region) -> list:
    return [InsuredPersonFactory(region=region, birth=f"19{60 + n:02d}0101") for n in range(count)]


def test_r43_at_most_8_relatives_and_ending_one_frees_a_place(citizen_a, region):
    relatives = _relatives(9, region)
    for relative in relatives[:8]:
        family_card_add(
            manager=citizen_a.person,
            relative_id_number=relative.id_number,
            relative_name=relative.name,
            relationship="sibling",
            user=citizen_a,
        )
    with pytest.raises(FamilyCardRefused) as refused:
        family_card_add(
            manager=citizen_a.person,
            relative_id_number=relatives[8].id_number,
            relative_name=relatives[8].name,
            relationship="sibling",
            user=citizen_a,
        )
    assert (refused.value.code, refused.value.status) == ("limit", 409)
    assert "8" in refused.value.title

    first = FamilyCardLink.objects.filter(manager=citizen_a.person).first()
    family_card_end(link_id=first.pk, user=citizen_a)
    link = family_card_add(
        manager=citizen_a.person,
        relative_id_number=relatives[8].id_number,
        relative_name=relatives[8].name,
        relationship="sibling",
        user=citizen_a,
    )
    assert link.state == FamilyCardLinkState.PENDING
    assert FamilyCardLink.objects.filter(manager=citizen_a.person, state=FamilyCardLinkState.PENDING).count() == 8


@override_settings(FAMILY_CARD_MAX_RELATIVES=5)
def test_r43_the_limit_is_configurable(citizen_a, region):
    for relative in _relatives(5, region):
        family_card_add(
            manager=citizen_a.person,
            relative_id_number=relative.id_number,
            relative_name=relative.name,
            relationship="sibling",
            user=citizen_a,
        )
    extra = _relatives(1, region)[0]
    with pytest.raises(FamilyCardRefused) as refused:
        family_card_add(
            manager=citizen_a.person,
            relative_id_number=extra.id_number,
            relative_name=extra.name,
            relationship="sibling",
            user=citizen_a,
        )
    assert refused.value.code == "limit"
    assert FamilyCardLink.objects.filter(manager=citizen_a.person).count() == 5


def test_r43_an_unknown_number_and_a_wrong_name_get_the_same_answer(citizen_a, citizen_a_family):
    spouse = citizen_a_family["spouse"]
    answers = []
    for id_number, name in [("110101199003077777", "李娜"), (spouse.id_number, "李娜娜")]:
        with pytest.raises(FamilyCardRefused) as refused:
            family_card_add(
                manager=citizen_a.person,
                relative_id_number=id_number,
                relative_name=name,
                relationship="spouse",
                user=citizen_a,
            )
        answers.append((refused.value.code, refused.value.title, refused.value.errors))
    assert answers[0] == answers[1]
    assert not FamilyCardLink.objects.exists()


def test_r43_oneself_a_second_open_link_and_someone_elses_login_are_refused(citizen_a, citizen_b, citizen_a_family):
    spouse = citizen_a_family["spouse"]
    person = citizen_a.person
    with pytest.raises(FamilyCardRefused) as oneself:
        _add(citizen_a, person, "spouse")
    assert oneself.value.code == "self"
    _add(citizen_a, spouse, "spouse")
    with pytest.raises(FamilyCardRefused) as duplicate:
        _add(citizen_a, spouse, "spouse")
    assert duplicate.value.code == "duplicate"
    with pytest.raises(FamilyCardRefused) as stranger:
        family_card_add(
            manager=person,
            relative_id_number=spouse.id_number,
            relative_name=spouse.name,
            relationship="spouse",
            user=citizen_b,
        )
    assert stranger.value.status == 403


def test_r43_one_open_link_per_pair_in_the_database(citizen_a, citizen_a_family, family_link_active):
    family_link_active(citizen_a.person, citizen_a_family["parent"])
    with pytest.raises(IntegrityError), transaction.atomic():
        FamilyCardLink.objects.create(
            manager=citizen_a.person, relative=citizen_a_family["parent"], relationship="parent"
        )


def _add(user, relative, relationship):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.attack_files import png_scan

    return family_card_add(
        manager=user.person,
        relative_id_number=relative.id_number,
        relative_name=relative.name,
        relationship=relationship,
        user=user,
        # R43 via R20/R21: a link is confirmed only with its document.
        document=SimpleUploadedFile("register.png", png_scan(), "image/png"),
    )


def _approve_document(link, reviewer):
    """R24: the reviewer's approval of the link's document, the other half of a confirmation."""
    from cards.services import family_card_document_approve

    return family_card_document_approve(document_id=link.documents.get().pk, reviewer=reviewer)


def test_r43_a_relative_of_16_or_over_confirms_with_their_own_face(citizen_a, citizen_a_family, face, frozen, reviewer):
    parent = citizen_a_family["parent"]
    link = _add(citizen_a, parent, "parent")
    frozen.shift(1)
    for wrong in [
        face(parent, "family_card_photo", link.pk),  # a photo is for children
        face(citizen_a.person, "family_card_consent", link.pk),  # the manager's own face is no consent
        face(parent, "family_card_consent", link.pk, passed=False),
    ]:
        with pytest.raises(CardRefused):
            family_card_confirm(link_id=link.pk, verification=wrong)
    assert FamilyCardLink.objects.get(pk=link.pk).state == FamilyCardLinkState.PENDING

    _approve_document(link, reviewer)
    confirmed = family_card_confirm(link_id=link.pk, verification=face(parent, "family_card_consent", link.pk))
    assert (confirmed.state, confirmed.verified_by) == (FamilyCardLinkState.ACTIVE, FamilyCardVerifiedBy.FACE)
    assert confirmed.activated_at is not None
    with pytest.raises(FamilyCardRefused) as again:
        family_card_confirm(link_id=link.pk, verification=face(parent, "family_card_consent", link.pk))
    assert again.value.code == "not_pending"


def test_r43_a_child_under_16_is_confirmed_by_a_frontal_photo(citizen_a, citizen_a_family, face, frozen, reviewer):
    child = citizen_a_family["child"]  # born 2015
    link = _add(citizen_a, child, "child")
    frozen.shift(1)
    with pytest.raises(CardRefused):
        family_card_confirm(link_id=link.pk, verification=face(child, "family_card_consent", link.pk))
    confirmed = family_card_confirm(link_id=link.pk, verification=face(child, "family_card_photo", link.pk))
    assert confirmed.verified_by == FamilyCardVerifiedBy.PHOTO
    # R24: the photo alone does not activate it; the reviewer's approval coming last does.
    assert confirmed.state == FamilyCardLinkState.PENDING
    _approve_document(link, reviewer)
    assert FamilyCardLink.objects.get(pk=link.pk).state == FamilyCardLinkState.ACTIVE
    assert AuditEvent.objects.filter(action="family_card.confirmed", target_id=str(child.pk)).exists()


def test_r43_the_relative_may_end_the_link_and_a_stranger_may_not(
    citizen_a, citizen_b, citizen_a_family, family_link_active
):
    from tests.factories import UserFactory

    parent = citizen_a_family["parent"]
    link = family_link_active(citizen_a.person, parent)
    with pytest.raises(FamilyCardRefused) as stranger:
        family_card_end(link_id=link.pk, user=citizen_b)
    assert stranger.value.status == 403
    parent_user = UserFactory(username="parent", person=parent)
    ended = family_card_end(link_id=link.pk, user=parent_user)
    assert (ended.state, ended.ended_by) == (FamilyCardLinkState.ENDED, parent_user)
    with pytest.raises(FamilyCardRefused):
        family_card_end(link_id=link.pk, user=citizen_a)


def test_r43_links_list_masks_the_relatives(citizen_a, citizen_a_family, family_link_active):
    family_link_active(citizen_a.person, citizen_a_family["parent"])
    [link] = family_card_links_for(person=citizen_a.person)
    assert link.relative.masked_name == "张*"
    assert link.relative.masked_id_number.count("*") == 11
    assert link.relative_card_state is None


def test_r43_a_manager_claims_a_childs_card_and_sets_its_password(
    citizen_a, citizen_a_family, family_link_active, face, frozen
):
    child = citizen_a_family["child"]
    with pytest.raises(CardRefused) as unmanaged:
        card_claim_for_child(manager_user=citizen_a, child=child, region_code="320500")
    assert unmanaged.value.code == "not_managed"

    family_link_active(citizen_a.person, child, relationship="child")
    card = card_claim_for_child(manager_user=citizen_a, child=child, region_code="320500")
    assert (card.person, card.guardian, card.state) == (child, citizen_a.person, CardState.PENDING)
    card = card_accept_agreement(card=card)
    frozen.shift(1)
    with pytest.raises(CardRefused):  # the manager verifies, not the child
        card_face_passed(card=card, verification=face(child, "card_claim", card.pk))
    card = card_face_passed(card=card, verification=face(citizen_a.person, "card_claim", card.pk))
    card = card_set_password(card=card, password=GOOD_PASSWORD)
    assert card_for_person(person=child).state == CardState.ACTIVE
    assert AuditEvent.objects.get(action="card.claimed").actor == citizen_a


def test_r43_from_16_a_person_claims_their_own_card(citizen_a, citizen_a_family, family_link_active):
    parent = citizen_a_family["parent"]
    family_link_active(citizen_a.person, parent)
    with pytest.raises(CardRefused) as refused:
        card_claim_for_child(manager_user=citizen_a, child=parent, region_code="320500")
    assert refused.value.code == "not_a_child"
    assert not ECard.objects.exists()


def test_r43_the_family_card_service_gives_no_right_to_spend(
    citizen_a, citizen_a_family, family_link_active, binding_active
):
    spouse = citizen_a_family["spouse"]
    parent = citizen_a_family["parent"]
    family_link_active(citizen_a.person, spouse, relationship="spouse")
    family_link_active(citizen_a.person, parent)
    today = timezone.localdate()
    assert [p.person for p in payers_for_person(person=spouse, on_date=today)] == []
    assert [p.person for p in payers_for_person(person=parent, on_date=today)] == []
    binding_active(citizen_a.person, parent, relationship="parent")
    assert [p.person for p in payers_for_person(person=parent, on_date=today)] == [citizen_a.person]


def test_r33_a_resident_has_no_own_account_an_employee_has(citizen_a, citizen_a_family):
    today = timezone.localdate()
    assert [p.kind for p in payers_for_person(person=citizen_a.person, on_date=today)] == ["own"]
    parent = citizen_a_family["parent"]
    assert parent.insurance_type == InsuranceType.RESIDENT
    assert payers_for_person(person=parent, on_date=today) == []


def test_r27_a_binding_outside_its_authorization_period_does_not_pay(citizen_a, citizen_a_family, binding_active):
    parent = citizen_a_family["parent"]
    today = timezone.localdate()
    binding_active(citizen_a.person, parent, relationship="parent", authorized_from=today + dt.timedelta(days=1))
    assert payers_for_person(person=parent, on_date=today) == []
    assert len(payers_for_person(person=parent, on_date=today + dt.timedelta(days=1))) == 1


def test_r40_a_card_of_another_region_still_belongs_to_the_person(citizen_a, claim_card):
    RegionFactory(code="320200", name="无锡市", province="320000")
    card = claim_card(citizen_a.person, region_code="320200")
    assert card.issuing_region_id == "320200"
    assert card_for_person(person=citizen_a.person).pk == card.pk

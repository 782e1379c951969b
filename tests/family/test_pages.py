"""The citizen pages of family sharing: who sees what, in both languages, and what each action does."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, FaceVerification, InsuranceType
from family.letters import commitment_letter_pdf, commitment_letter_text, letter_store
from family.models import (
    Binding,
    BindingDocument,
    BindingEvent,
    BindingState,
    DocumentKind,
    DocumentStatus,
    PolicyVersion,
    Relation,
)
from family.views import FACE_PURPOSE
from tests.face_images import make_blank_png, make_face_png
from tests.factories import InsuredPersonFactory, UserFactory, make_id_number

S = BindingState


def in_language(client, language: str):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def page(response) -> str:
    return response.content.decode()


@pytest.fixture
def child(region):
    """A 10-year-old on 2026-11-26 (no face verification, R23)."""
    return InsuredPersonFactory(name="张小红", region=region, birth="20160501", insurance_type=InsuranceType.RESIDENT)


@pytest.fixture
def parent_user(citizen_a_family):
    """A's parent with a login of their own (a relative aged 16 or over confirms with their own face)."""
    return UserFactory(username="parent", person=citizen_a_family["parent"])


@pytest.fixture
def awaiting_parent(binding_insert, citizen_a, citizen_a_family):
    return binding_insert(
        citizen_a.person,
        citizen_a_family["parent"],
        state=S.AWAITING_FACE,
        relationship=Relation.PARENT,
        face_deadline=timezone.now() + dt.timedelta(days=7),
        needs_face_verification=True,
    )


@pytest.fixture
def stored_letter(citizen_a):
    def store(binding: Binding) -> BindingDocument:
        text = commitment_letter_text(
            owner_name=binding.owner.name,
            owner_id_number=binding.owner.id_number,
            relative_name=binding.relative.name,
            relative_id_number=binding.relative.id_number,
            relationship=binding.relationship,
            on_date=timezone.localdate(),
        )
        pdf = commitment_letter_pdf(
            text=text, signed_name=binding.owner.name, signed_at=timezone.now(), signature_png=None
        )
        return letter_store(binding=binding, pdf_bytes=pdf, user=citizen_a)

    return store


# --- Each page renders for its user, in Chinese and in English ---------------------------------------

ENGLISH = {
    "family_home": "Add a family member",
    "family_precheck": "Can I share with this person?",
    "binding_add_notice": "Notice on adding a family member",
    "binding_newborn": "birth medical certificate",
}


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("name", list(ENGLISH))
def test_it_renders_the_owners_pages_in_both_languages(client, citizen_a, language, name):
    in_language(client, language).force_login(citizen_a)

    response = client.get(reverse(name))

    assert response.status_code == 200
    body = page(response)
    if language == "en":
        assert '<html lang="en">' in body
        assert ENGLISH[name] in body
    else:
        assert '<html lang="zh-CN">' in body
        assert "家庭共济" in body  # the brand line, from the Chinese catalogue


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_it_renders_status_consent_and_confirm_pages_in_both_languages(
    client, citizen_a, parent_user, awaiting_parent, language
):
    in_language(client, language).force_login(citizen_a)
    for url in (
        reverse("binding_detail", args=[awaiting_parent.pk]),
        reverse("binding_cancel", args=[awaiting_parent.pk]),
    ):
        assert client.get(url).status_code == 200, url
    in_language(client, language).force_login(parent_user)
    for url in (
        reverse("binding_detail", args=[awaiting_parent.pk]),
        reverse("binding_consent", args=[awaiting_parent.pk]),
        reverse("family_home"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert ('<html lang="en">' in page(response)) == (language == "en")


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_it_renders_every_add_step_in_both_languages(client, citizen_a, child, language):
    in_language(client, language).force_login(citizen_a)
    client.post(reverse("binding_add_notice"), {"accept": "on"})
    client.post(
        reverse("binding_add_member"),
        {"relative_name": child.name, "relative_id_number": child.id_number, "relationship": "child"},
    )
    client.post(reverse("binding_add_letter"), {"signed_name": citizen_a.person.name, "confirm": "on"})

    for name in ("binding_add_notice", "binding_add_member", "binding_add_letter", "binding_add_upload"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        body = page(response)
        assert 'aria-current="step"' in body
        assert ('<html lang="en">' in body) == (language == "en")
        if name in ("binding_add_notice", "binding_add_upload"):
            assert child.id_number not in body  # R4: only the form that takes it and the letter show it in full


def test_starting_again_deletes_the_draft(client, citizen_a):
    client.force_login(citizen_a)
    client.post(reverse("binding_add_notice"), {"accept": "on"})
    assert client.get(reverse("binding_add"))["Location"] == reverse("binding_add_member")

    response = client.post(reverse("binding_add_restart"))

    assert response["Location"] == reverse("binding_add_notice")
    assert "family_add_draft" not in client.session
    assert client.get(reverse("binding_add"))["Location"] == reverse("binding_add_notice")


# --- Strangers, wrong roles, anonymous --------------------------------------------------------------


def object_urls(pk: int) -> list[tuple[str, str]]:
    return [
        ("get", reverse("binding_detail", args=[pk])),
        ("get", reverse("binding_consent", args=[pk])),
        ("post", reverse("binding_consent", args=[pk])),
        ("get", reverse("binding_cancel", args=[pk])),
        ("post", reverse("binding_cancel", args=[pk])),
        ("get", reverse("binding_end", args=[pk])),
        ("post", reverse("binding_end", args=[pk])),
        ("get", reverse("binding_letter", args=[pk])),
        ("post", reverse("binding_document_upload", args=[pk])),
    ]


def test_a_stranger_gets_404_on_every_object_url(client, citizen_a, citizen_b, awaiting_parent, stored_letter):
    stored_letter(awaiting_parent)
    client.force_login(citizen_b)

    for method, url in object_urls(awaiting_parent.pk):
        assert getattr(client, method)(url).status_code == 404, (method, url)

    awaiting_parent.refresh_from_db()
    assert awaiting_parent.state == S.AWAITING_FACE  # nothing happened


def test_a_missing_binding_is_the_same_404_as_someone_elses(client, citizen_b):
    client.force_login(citizen_b)
    for method, url in object_urls(999_999):
        assert getattr(client, method)(url).status_code == 404, (method, url)


def test_anonymous_users_are_sent_to_log_in(client, awaiting_parent):
    urls = [
        ("get", reverse(name))
        for name in (
            "family_home",
            "family_precheck",
            "binding_add",
            "binding_add_notice",
            "binding_add_member",
            "binding_add_letter",
            "binding_add_upload",
            "binding_newborn",
        )
    ] + object_urls(awaiting_parent.pk)
    for method, url in urls:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("account_login")), url


def test_the_relative_cannot_cancel_or_upload_for_the_owner(client, parent_user, awaiting_parent):
    client.force_login(parent_user)
    assert client.get(reverse("binding_cancel", args=[awaiting_parent.pk])).status_code == 403
    assert client.post(reverse("binding_cancel", args=[awaiting_parent.pk])).status_code == 403
    assert client.post(reverse("binding_document_upload", args=[awaiting_parent.pk])).status_code == 403
    awaiting_parent.refresh_from_db()
    assert awaiting_parent.state == S.AWAITING_FACE


def test_the_owner_cannot_open_the_relatives_consent_page(client, citizen_a, awaiting_parent):
    client.force_login(citizen_a)
    assert client.get(reverse("binding_consent", args=[awaiting_parent.pk])).status_code == 404


# --- 家庭共济 family page ----------------------------------------------------------------------------


@pytest.mark.parametrize("members", [1, 10])
def test_the_family_page_costs_the_same_queries_for_1_or_10_members(
    client, citizen_a, region, binding_insert, django_assert_num_queries, members
):
    owner = citizen_a.person
    for index in range(members):
        relative = InsuredPersonFactory(region=region, birth=f"20{10 + index:02d}0101")
        state = S.ACTIVE if index % 2 == 0 else S.UNDER_REVIEW
        binding_insert(owner, relative, state=state, activated_at=timezone.now())
    ended = binding_insert(owner, InsuredPersonFactory(region=region), state=S.ENDED, ended_at=timezone.now())
    client.force_login(citizen_a)

    # 1 session, 2 user, 3 the user's insured person (may they own a network? R10),
    # 4 the bindings of either side, open and closed, with both persons.
    with django_assert_num_queries(4):
        response = client.get(reverse("family_home"))

    assert response.status_code == 200
    assert page(response).count('data-testid="owned-binding"') == members
    assert reverse("binding_detail", args=[ended.pk]) in page(response)


def test_the_family_page_masks_members_and_offers_unbind_and_cancel(
    client, citizen_a, citizen_a_family, binding_insert
):
    spouse, child = citizen_a_family["spouse"], citizen_a_family["child"]
    active = binding_insert(
        citizen_a.person,
        spouse,
        state=S.ACTIVE,
        relationship=Relation.SPOUSE,
        activated_at=timezone.now(),
        authorized_until=dt.date(2027, 3, 15),
    )
    pending = binding_insert(citizen_a.person, child, state=S.UNDER_REVIEW)
    in_language(client, "en").force_login(citizen_a)

    body = page(client.get(reverse("family_home")))

    assert spouse.id_number not in body and spouse.name not in body  # R4
    assert spouse.masked_id_number in body and spouse.masked_name in body
    assert "15 Mar 2027" in body  # until when (R27)
    assert reverse("binding_end", args=[active.pk]) in body
    assert reverse("binding_cancel", args=[pending.pk]) in body
    assert "What it does NOT do" in body  # R43
    assert "See the sharing records" in body


def test_a_relative_sees_networks_they_are_in_and_asked_to_join(
    client, citizen_a, parent_user, awaiting_parent, binding_insert, citizen_b
):
    joined = binding_insert(
        citizen_b.person, parent_user.person, state=S.ACTIVE, relationship=Relation.PARENT, activated_at=timezone.now()
    )
    in_language(client, "en").force_login(parent_user)

    body = page(client.get(reverse("family_home")))

    assert "Networks you are asked to join" in body
    assert 'data-testid="cannot-own"' in body  # resident insurance has no account to share (R10)
    assert 'data-testid="add-member"' not in body
    assert reverse("binding_consent", args=[awaiting_parent.pk]) in body
    assert citizen_a.person.masked_name in body
    assert reverse("binding_end", args=[joined.pk]) in body  # 退出
    assert "Leave the network" in body


# --- 能否共济 pre-check ------------------------------------------------------------------------------


def test_the_precheck_explains_each_answer_and_writes_nothing(client, citizen_a, citizen_a_family):
    in_language(client, "en").force_login(citizen_a)
    events = BindingEvent.objects.count()

    response = client.post(
        reverse("family_precheck"),
        {"relative_id_number": citizen_a_family["parent"].id_number, "relationship": "parent"},
    )

    body = page(response)
    assert "You can share with this person." in body
    for rule in ("R10", "R11", "R12", "R14", "R15", "R23"):
        assert f'data-rule="{rule}"' in body
    assert "320500@2024-12-02" in body  # the policy in force, by name (R13)
    assert "face verification" in body  # a parent is over 16 (R23)
    assert reverse("binding_add") in body
    assert Binding.objects.count() == 0 and BindingEvent.objects.count() == events


def test_the_precheck_says_no_insured_person_matches_without_revealing_more(client, citizen_a):
    in_language(client, "en").force_login(citizen_a)

    response = client.post(
        reverse("family_precheck"),
        {"relative_id_number": make_id_number("320505", "19900101"), "relationship": "spouse"},
    )

    body = page(response)
    assert "Sharing with this person is not possible now." in body
    assert "no insured person matches" in body
    assert 'class="check-item check-unknown" data-rule="R14"' in body


def test_the_precheck_names_the_regions_minimum_balance(client, citizen_a, citizen_a_family):
    PolicyVersion.objects.filter(region_id="320500", effective_to=None).update(min_owner_balance=Decimal("2000"))
    in_language(client, "en").force_login(citizen_a)

    body = page(
        client.post(
            reverse("family_precheck"),
            {"relative_id_number": citizen_a_family["spouse"].id_number, "relationship": "spouse"},
        )
    )

    r15 = re.search(r'data-rule="R15">.*?</li>', body, re.S).group(0)
    assert "check-refused" in body and "Region 320500 asks for an owner balance of at least ¥2,000.00." in r15


def test_a_plausibility_doubt_is_not_a_refusal(client, citizen_a, citizen_b):
    in_language(client, "en").force_login(citizen_a)

    body = page(
        client.post(
            reverse("family_precheck"), {"relative_id_number": citizen_b.person.id_number, "relationship": "parent"}
        )
    )

    assert "You can share with this person." in body
    r16 = re.search(r'data-rule="R16">.*?</li>', body, re.S).group(0)
    assert "A reviewer will look" in r16 and "This is not a refusal" in r16


def test_checks_are_limited_per_day(client, citizen_a, citizen_a_family, settings):
    settings.FAMILY_CHECKS_PER_DAY = 2
    client.force_login(citizen_a)
    data = {"relative_id_number": citizen_a_family["spouse"].id_number, "relationship": "spouse"}
    assert [client.post(reverse("family_precheck"), data).status_code for _ in range(3)] == [200, 200, 429]


def test_the_precheck_refuses_a_bad_id_number_next_to_the_field(client, citizen_a):
    in_language(client, "en").force_login(citizen_a)
    response = client.post(
        reverse("family_precheck"), {"relative_id_number": "11010519491231002Y", "relationship": "x"}
    )
    body = page(response)
    assert "error-summary" in body
    assert "Choose what this person is to you." in body or "valid choice" in body


# --- 申请进度, cancel, end ---------------------------------------------------------------------------


def test_the_status_page_shows_timeline_and_what_is_awaited(client, citizen_a, parent_user, awaiting_parent):
    in_language(client, "en").force_login(citizen_a)
    body = page(client.get(reverse("binding_detail", args=[awaiting_parent.pk])))
    assert "Waiting for: 张*, the family member" in body
    assert 'data-testid="timeline"' in body and "test set-up" not in body  # roles, not user names
    in_language(client, "en").force_login(parent_user)
    body = page(client.get(reverse("binding_detail", args=[awaiting_parent.pk])))
    assert "Waiting for: you" in body
    assert reverse("binding_consent", args=[awaiting_parent.pk]) in body


def test_the_owner_cancels_a_pending_application_after_confirming(client, citizen_a, awaiting_parent):
    in_language(client, "en").force_login(citizen_a)
    url = reverse("binding_cancel", args=[awaiting_parent.pk])

    assert "Cancel the application?" in page(client.get(url))
    awaiting_parent.refresh_from_db()
    assert awaiting_parent.state == S.AWAITING_FACE  # GET only asks

    response = client.post(url)

    assert response.status_code == 302 and response["Location"] == reverse("family_home")
    awaiting_parent.refresh_from_db()
    assert awaiting_parent.state == S.CANCELLED
    event = awaiting_parent.events.last()
    assert event.to_state == S.CANCELLED and event.actor == citizen_a


def test_the_owner_unbinds_and_the_relative_leaves(client, citizen_a, citizen_a_family, parent_user, binding_insert):
    spouse_binding = binding_insert(citizen_a.person, citizen_a_family["spouse"], relationship=Relation.SPOUSE)
    parent_binding = binding_insert(citizen_a.person, parent_user.person, relationship=Relation.PARENT)

    client.force_login(citizen_a)
    client.post(reverse("binding_end", args=[spouse_binding.pk]))
    in_language(client, "en").force_login(parent_user)
    client.post(reverse("binding_end", args=[parent_binding.pk]))

    spouse_binding.refresh_from_db()
    parent_binding.refresh_from_db()
    assert spouse_binding.state == S.ENDED and spouse_binding.events.last().actor == citizen_a
    assert parent_binding.state == S.ENDED and parent_binding.events.last().actor == parent_user
    assert "left" in parent_binding.end_reason


def test_ending_what_is_not_active_shows_the_reason_and_changes_nothing(client, citizen_a, awaiting_parent):
    in_language(client, "en").force_login(citizen_a)
    response = client.post(reverse("binding_end", args=[awaiting_parent.pk]), follow=True)
    assert "Only an active binding can be ended." in page(response)
    awaiting_parent.refresh_from_db()
    assert awaiting_parent.state == S.AWAITING_FACE


# --- 人脸识别 consent (R23, R50, R52) ----------------------------------------------------------------


def test_the_relative_confirms_with_a_face_and_sharing_is_active(client, parent_user, awaiting_parent):
    in_language(client, "en").force_login(parent_user)
    url = reverse("binding_consent", args=[awaiting_parent.pk])
    body = page(client.get(url))
    assert 'capture="user"' in body and 'accept="image/*"' in body
    assert 'data-testid="local-provider"' in body  # the local check is not identity proof: say so

    response = client.post(
        url, {"agree": "on", "photo": SimpleUploadedFile("me.png", make_face_png(), "image/png")}, follow=True
    )

    assert "Family sharing is active." in page(response)
    awaiting_parent.refresh_from_db()
    assert awaiting_parent.state == S.ACTIVE
    verification = FaceVerification.objects.get(person=parent_user.person)
    assert verification.decision == "passed" and verification.reference == str(awaiting_parent.pk)


def test_a_failed_face_check_says_what_to_change_and_how_many_tries_are_left(client, parent_user, awaiting_parent):
    in_language(client, "en").force_login(parent_user)
    url = reverse("binding_consent", args=[awaiting_parent.pk])

    response = client.post(url, {"agree": "on", "photo": SimpleUploadedFile("me.png", make_blank_png(), "image/png")})

    body = page(response)
    assert 'data-testid="face-failed"' in body
    assert "No face was found" in body
    assert "You have 4 tries left today." in body
    assert "A family member may help you" in body
    assert "medical-insurance service hall" in body
    awaiting_parent.refresh_from_db()
    assert awaiting_parent.state == S.AWAITING_FACE


def test_no_tries_left_hides_the_form_and_verifies_nothing(client, parent_user, awaiting_parent):
    for _ in range(5):
        FaceVerification.objects.create(
            person=parent_user.person,
            purpose=FACE_PURPOSE,
            reference=str(awaiting_parent.pk),
            provider="local",
            decision="failed",
            detail="no_face",
        )
    in_language(client, "en").force_login(parent_user)
    url = reverse("binding_consent", args=[awaiting_parent.pk])

    response = client.post(url, {"agree": "on", "photo": SimpleUploadedFile("me.png", make_face_png(), "image/png")})

    assert 'data-testid="no-tries-left"' in page(response)
    assert FaceVerification.objects.filter(person=parent_user.person).count() == 5
    awaiting_parent.refresh_from_db()
    assert awaiting_parent.state == S.AWAITING_FACE


# --- Commitment letter PDF, re-upload -----------------------------------------------------------------


def test_the_owner_and_a_reviewer_open_the_letter_but_not_the_relative(
    client, citizen_a, parent_user, reviewer, awaiting_parent, stored_letter
):
    stored_letter(awaiting_parent)
    url = reverse("binding_letter", args=[awaiting_parent.pk])

    client.force_login(citizen_a)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF-")
    assert not AuditEvent.objects.filter(action="document.viewed").exists()

    client.force_login(parent_user)
    assert client.get(url).status_code == 404  # R4: the letter carries the owner's full ID number

    client.force_login(reviewer)
    assert client.get(url).status_code == 200
    assert AuditEvent.objects.filter(action="document.viewed", actor=reviewer).count() == 1  # R51


def test_a_rejected_document_is_uploaded_again(client, citizen_a, child, binding_insert):
    from family.documents import document_attach

    binding = binding_insert(citizen_a.person, child, state=S.UNDER_REVIEW)
    png = make_face_png()
    first = document_attach(
        binding=binding,
        kind=DocumentKind.OWNER_HOUSEHOLD_REGISTER,
        uploaded=SimpleUploadedFile("a.png", png, "image/png"),
        user=citizen_a,
    )
    BindingDocument.objects.filter(pk=first.pk).update(status=DocumentStatus.REJECTED, rejection_reason="Blurred")
    in_language(client, "en").force_login(citizen_a)
    detail = page(client.get(reverse("binding_detail", args=[binding.pk])))
    assert "Blurred" in detail and reverse("binding_document_upload", args=[binding.pk]) in detail

    refused = client.post(
        reverse("binding_document_upload", args=[binding.pk]),
        {"kind": DocumentKind.OWNER_HOUSEHOLD_REGISTER, "file": SimpleUploadedFile("b.png", b"not a picture")},
    )
    assert refused.status_code == 400 and "is not a JPEG, PNG or WebP picture" in page(refused)

    response = client.post(
        reverse("binding_document_upload", args=[binding.pk]),
        {"kind": DocumentKind.OWNER_HOUSEHOLD_REGISTER, "file": SimpleUploadedFile("c.png", png, "image/png")},
    )

    assert response.status_code == 302
    latest = binding.documents.filter(kind=DocumentKind.OWNER_HOUSEHOLD_REGISTER).order_by("-pk")
    assert [d.status for d in latest] == [DocumentStatus.PENDING, DocumentStatus.REJECTED]


# --- 新生儿 (R21): by birth medical certificate, the mother's face, the ID number later ------------------


@pytest.fixture
def mother_user(citizen_a_family):
    """A's wife, the newborn's mother, with a login of her own."""
    return UserFactory(username="mother", person=citizen_a_family["spouse"])


def newborn_data(mother, **extra) -> dict:
    return {
        "newborn_name": "张宝宝",
        "mother_name": mother.name,
        "mother_id_number": mother.id_number,
        "birth_certificate_number": "p440123456",
        **extra,
    }


def test_a_father_adds_a_newborn_the_mother_confirms_and_the_id_number_comes_later(
    client, citizen_a, mother_user, region, pipeline
):
    mother = mother_user.person
    in_language(client, "en").force_login(citizen_a)

    with pipeline():
        response = client.post(reverse("binding_newborn"), newborn_data(mother))

    binding = Binding.objects.get(owner=citizen_a.person, method="newborn")
    assert response["Location"] == reverse("binding_detail", args=[binding.pk])
    assert binding.relative is None and binding.birth_certificate_number == "P440123456"
    assert binding.state == S.AWAITING_FACE  # R21: eligible; the mother's face completes it
    detail = page(client.get(response["Location"]))
    assert "The mother confirms it with her own face verification" in detail
    assert "Waiting for: 李*, the mother" in detail
    assert reverse("binding_consent", args=[binding.pk]) not in detail  # the father cannot confirm for her
    assert client.get(reverse("binding_consent", args=[binding.pk])).status_code == 404

    in_language(client, "en").force_login(mother_user)
    home = page(client.get(reverse("family_home")))
    assert reverse("binding_consent", args=[binding.pk]) in home  # asked to confirm
    with pipeline():
        client.post(
            reverse("binding_consent", args=[binding.pk]),
            {"agree": "on", "photo": SimpleUploadedFile("me.png", make_face_png(), "image/png")},
        )
    binding.refresh_from_db()
    assert binding.state == S.ACTIVE
    assert "The mother 李*" in page(client.get(reverse("binding_detail", args=[binding.pk])))  # timeline: who

    baby = InsuredPersonFactory(name="张宝宝", region=region, birth="20260101", insurance_type=InsuranceType.RESIDENT)
    client.force_login(citizen_a)
    response = client.post(reverse("binding_newborn_id", args=[binding.pk]), {"id_number": baby.id_number})
    assert response.status_code == 302
    binding.refresh_from_db()
    assert binding.relative == baby


def test_a_mother_who_owns_the_account_confirms_herself(client, citizen_b, pipeline):
    in_language(client, "en").force_login(citizen_b)
    with pipeline():
        response = client.post(reverse("binding_newborn"), newborn_data(citizen_b.person))
    binding = Binding.objects.get(owner=citizen_b.person, method="newborn")
    detail = page(client.get(response["Location"]))
    assert "Waiting for: you" in detail and reverse("binding_consent", args=[binding.pk]) in detail
    assert client.get(reverse("binding_consent", args=[binding.pk])).status_code == 200


def test_a_newborn_application_with_an_unknown_mother_is_refused_and_saves_nothing(client, citizen_a, mother_user):
    in_language(client, "en").force_login(citizen_a)

    body = page(client.post(reverse("binding_newborn"), newborn_data(mother_user.person, mother_name="王五")))

    assert "No insured person matches this name and ID number." in body and "error-summary" in body
    assert Binding.objects.count() == 0
    man = make_id_number("320505", "19900101", seq=1)
    body = page(client.post(reverse("binding_newborn"), newborn_data(mother_user.person, mother_id_number=man)))
    assert "This ID number is a man&#x27;s" in body


def test_strangers_do_not_see_a_newborns_application(client, citizen_a, mother_user, citizen_b, pipeline):
    client.force_login(citizen_a)
    with pipeline():
        client.post(reverse("binding_newborn"), newborn_data(mother_user.person))
    binding = Binding.objects.get(method="newborn")
    client.force_login(citizen_b)
    for method, url in [*object_urls(binding.pk), ("post", reverse("binding_newborn_id", args=[binding.pk]))]:
        assert getattr(client, method)(url).status_code == 404, (method, url)
    client.force_login(mother_user)
    assert client.get(reverse("binding_detail", args=[binding.pk])).status_code == 200
    assert client.post(reverse("binding_newborn_id", args=[binding.pk])).status_code == 403

"""R43 via R20/R21, R24, R51: family card documents are decided by a reviewer at /staff/family-cards/.

The queue (oldest first), the audited review screen with the page image and the pre-check report, approve and
reject with the reason the manager reads, re-upload after a rejection, and who may open what. A link is usable
only when its document is approved AND the face (16+) or the child's photo is done, whichever comes last.
"""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Notification, User
from accounts.storage import PrivateStorage
from cards.errors import FamilyCardRefused
from cards.models import (
    FamilyCardDocument,
    FamilyCardDocumentStatus,
    FamilyCardLink,
    FamilyCardLinkState,
    FamilyCardPrecheckStatus,
)
from cards.services import (
    family_card_add,
    family_card_confirm,
    family_card_document_approve,
    family_card_document_precheck_run,
    family_card_document_reject,
    family_card_document_replace,
    family_card_document_take_next,
)
from family.models import ReviewReason
from tests.attack_files import png_scan
from tests.cards.test_card_pages import client_for, text_of
from tests.factories import UserFactory

QUEUE = "/staff/family-cards/"
REGISTER = "relative_register"


@pytest.fixture(autouse=True)
def storage(tmp_path, monkeypatch) -> PrivateStorage:
    """Documents go to a private folder of this test (the field's storage is built at import)."""
    private = PrivateStorage(location=tmp_path / "private")
    monkeypatch.setattr(FamilyCardDocument._meta.get_field("file"), "storage", private)
    return private


@pytest.fixture
def child(citizen_a_family):
    return citizen_a_family["child"]  # 张小明, born 2015: under 16


@pytest.fixture
def parent(citizen_a_family):
    return citizen_a_family["parent"]  # 张建国, born 1952


def scan() -> SimpleUploadedFile:
    return SimpleUploadedFile("register.png", png_scan(), "image/png")


def add(citizen, relative, relationship="parent") -> FamilyCardLink:
    return family_card_add(
        manager=citizen.person,
        relative_id_number=relative.id_number,
        relative_name=relative.name,
        relationship=relationship,
        user=citizen,
        document=scan(),
    )


def post_from(client, page_url: str, action_url: str, data: dict | None = None):
    """Post to a form of ``page_url`` that posts to ``action_url``, with the page's CSRF token (so it must be there)."""
    html = client.get(page_url).content.decode()
    assert f'action="{action_url}"' in html, f"no form posting to {action_url}"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    return client.post(action_url, {"csrfmiddlewaretoken": token, **(data or {})})


def review_url(document) -> str:
    return reverse("staff_family_card_review", args=[document.pk])


# --- the queue and the review screen ------------------------------------------------------------


def test_r24_the_queue_lists_waiting_documents_oldest_first_masked(reviewer, citizen_a, parent, child, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    older = add(citizen_a, parent).documents.get()
    time_machine.shift(60)
    newer = add(citizen_a, child, "child").documents.get()
    page = client_for(reviewer).get(QUEUE)
    assert page.status_code == 200
    html = page.content.decode()
    rows = re.findall(r'data-testid="queue-item" data-document="(\d+)"', html)
    assert rows == [str(older.pk), str(newer.pk)]
    assert 'data-total="2"' in html
    assert parent.masked_name in html and parent.name not in html  # R4 in the queue
    assert parent.id_number not in html


def test_r51_the_review_screen_shows_full_ids_and_the_page_image_and_audits_both(reviewer, citizen_a, parent):
    document = add(citizen_a, parent).documents.get()
    client = client_for(reviewer)
    page = client.get(review_url(document))
    html = page.content.decode()
    assert page.status_code == 200
    assert parent.id_number in html and citizen_a.person.id_number in html  # R4: the reviewer's document view
    assert 'data-testid="precheck"' in html and "Checked by content on upload: image/png" in text_of(page)
    assert AuditEvent.objects.filter(
        action="family_card.document_opened", actor=reviewer, target_id=str(document.pk)
    ).exists()

    image_url = reverse("staff_family_card_page_image", args=[document.pk, 1])
    assert image_url in html
    image = client.get(image_url)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert image.content.startswith(b"\x89PNG") and image["Cache-Control"] == "private, no-store"
    viewed = AuditEvent.objects.get(action="document.viewed", actor=reviewer, target_id=str(document.pk))
    assert viewed.detail["relative"] == parent.pk and viewed.detail["family_card_link"] == document.link_id
    assert client.get(reverse("staff_family_card_page_image", args=[document.pk, 2])).status_code == 404


def test_r24_the_precheck_reads_the_page_and_never_decides(citizen_a, parent):
    document = add(citizen_a, parent).documents.get()
    assert document.precheck_status == FamilyCardPrecheckStatus.PENDING
    checked = family_card_document_precheck_run(document_id=document.pk)
    assert checked.precheck_status in (
        FamilyCardPrecheckStatus.DONE,
        FamilyCardPrecheckStatus.UNREADABLE,
        FamilyCardPrecheckStatus.FAILED,
    )
    assert "readability" in checked.precheck or "error" in checked.precheck
    assert checked.status == FamilyCardDocumentStatus.PENDING  # R24: automation never approves
    assert family_card_document_precheck_run(document_id=document.pk) is None  # once


def test_r24_an_upload_queues_its_precheck_once_committed(citizen_a, parent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        link = add(citizen_a, parent)
    document = link.documents.get()
    assert document.precheck_status != FamilyCardPrecheckStatus.PENDING  # the (eager) task ran


# --- decisions ----------------------------------------------------------------------------------


def test_r24_approve_before_the_face_waits_then_the_face_confirms(reviewer, citizen_a, parent, face, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    link = add(citizen_a, parent)
    document = link.documents.get()
    client = client_for(reviewer)
    response = post_from(client, review_url(document), reverse("staff_family_card_approve", args=[document.pk]))
    assert response["Location"] == QUEUE
    document.refresh_from_db()
    assert (document.status, document.decided_by) == (FamilyCardDocumentStatus.APPROVED, reviewer)
    assert document.decided_at is not None
    link.refresh_from_db()
    assert link.state == FamilyCardLinkState.PENDING  # the relative's face is still due
    assert AuditEvent.objects.filter(action="family_card.document_approved", actor=reviewer).exists()
    notice = Notification.objects.get(person=citizen_a.person, kind="family_card.document_approved")
    assert notice.link == reverse("family_card_detail", args=[link.pk])

    time_machine.shift(1)
    confirmed = family_card_confirm(link_id=link.pk, verification=face(parent, "family_card_consent", link.pk))
    assert confirmed.state == FamilyCardLinkState.ACTIVE and confirmed.activated_at is not None
    assert Notification.objects.filter(person=citizen_a.person, kind="family_card.confirmed").exists()
    # Decided once: a second decision is refused.
    with pytest.raises(FamilyCardRefused) as again:
        family_card_document_approve(document_id=document.pk, reviewer=reviewer)
    assert again.value.code in ("decided_already", "not_pending")


def test_r24_reject_with_a_reason_the_manager_reads_and_uploads_again(reviewer, citizen_a, child, face, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    reason = ReviewReason.objects.create(text_zh="照片模糊", text_en="The photo is blurred", position=99)
    link = add(citizen_a, child, "child")
    time_machine.shift(1)
    # The child's photo first: still waiting for the review.
    family_card_confirm(link_id=link.pk, verification=face(child, "family_card_photo", link.pk))
    first = link.documents.get()
    client = client_for(reviewer)
    reject_url = reverse("staff_family_card_reject", args=[first.pk])
    no_reason = post_from(client, review_url(first), reject_url, {"language": "en"})
    assert no_reason.status_code == 400 and "Choose a reason or write one." in text_of(no_reason)
    response = post_from(
        client, review_url(first), reject_url, {"reason": reason.pk, "note": "Whole page please", "language": "en"}
    )
    assert response["Location"] == QUEUE
    first.refresh_from_db()
    assert first.status == FamilyCardDocumentStatus.REJECTED
    assert first.rejection_reason == "The photo is blurred Whole page please"
    event = AuditEvent.objects.get(action="family_card.document_rejected", actor=reviewer)
    assert event.detail["reason"] == first.rejection_reason
    assert Notification.objects.filter(
        person=citizen_a.person, kind="family_card.document_rejected", body__contains="Whole page please"
    ).exists()
    link.refresh_from_db()
    assert link.state == FamilyCardLinkState.PENDING

    # The manager's page says why and takes a new upload, which waits for review like the first.
    alice = client_for(citizen_a)
    detail_url = reverse("family_card_detail", args=[link.pk])
    page = alice.get(detail_url)
    assert "The photo is blurred Whole page please" in text_of(page)
    assert 'data-testid="reupload"' in page.content.decode()
    response = post_from(
        alice,
        detail_url,
        reverse("family_card_document_upload", args=[link.pk]),
        {"document_kind": "relative_register", "file": scan()},
    )
    assert response["Location"] == detail_url
    second = link.documents.latest("created_at")
    assert second.pk != first.pk and second.status == FamilyCardDocumentStatus.PENDING
    assert 'data-testid="reupload"' not in alice.get(detail_url).content.decode()
    with pytest.raises(FamilyCardRefused) as twice:
        family_card_document_replace(
            link_id=link.pk, user=citizen_a, document=scan(), document_kind="relative_register"
        )
    assert twice.value.code == "document_already_uploaded"

    # Approving the new one, coming last, activates the link (the photo is already there).
    family_card_document_approve(document_id=second.pk, reviewer=reviewer)
    link.refresh_from_db()
    assert link.state == FamilyCardLinkState.ACTIVE


def test_r24_the_database_holds_one_live_document_per_link(citizen_a, parent, reviewer):
    from django.db import IntegrityError, transaction

    link = add(citizen_a, parent)
    with pytest.raises(IntegrityError), transaction.atomic():
        FamilyCardDocument.objects.create(link=link, kind="relative_register", file="x.png", content_type="x", size=1)
    document = link.documents.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        FamilyCardDocument.objects.filter(pk=document.pk).update(status="rejected", decided_at=timezone.now())


# --- who may ------------------------------------------------------------------------------------


def test_only_reviewers_and_admins_open_the_queue(client, citizen_a, clerk_x, admin_user, parent):
    document = add(citizen_a, parent).documents.get()
    urls = [
        QUEUE,
        review_url(document),
        reverse("staff_family_card_page_image", args=[document.pk, 1]),
    ]
    for url in urls:
        assert client.get(url).status_code == 302  # to log in
        assert client_for(citizen_a).get(url).status_code == 403
        assert client_for(clerk_x).get(url).status_code == 403
        assert client_for(admin_user).get(url).status_code == 200
    assert client_for(admin_user).get(reverse("staff_family_card_review", args=[999999])).status_code == 404
    with pytest.raises(FamilyCardRefused) as refused:
        family_card_document_approve(document_id=document.pk, reviewer=clerk_x)
    assert refused.value.status == 403
    with pytest.raises(FamilyCardRefused):
        family_card_document_reject(document_id=document.pk, reviewer=citizen_a, note="no")
    document.refresh_from_db()
    assert document.status == FamilyCardDocumentStatus.PENDING


def test_a_stranger_cannot_upload_to_someone_elses_link(citizen_a, citizen_b, parent, reviewer):
    link = add(citizen_a, parent)
    family_card_document_reject(document_id=link.documents.get().pk, reviewer=reviewer, note="blurred")
    bob = client_for(citizen_b)
    assert bob.get(reverse("family_card_detail", args=[link.pk])).status_code == 404
    own_page = bob.get(reverse("family_card_home")).content.decode()  # a page of bob's own, for a valid CSRF token
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', own_page).group(1)
    upload_url = reverse("family_card_document_upload", args=[link.pk])
    assert bob.post(upload_url, {"csrfmiddlewaretoken": token, "file": scan()}).status_code == 404
    with pytest.raises(FamilyCardRefused):
        family_card_document_replace(
            link_id=link.pk, user=citizen_b, document=scan(), document_kind="relative_register"
        )
    assert link.documents.count() == 1


def test_the_admin_lists_family_card_documents_read_only(admin_user, citizen_a, parent):
    document = add(citizen_a, parent).documents.get()
    admin = client_for(admin_user)
    listing = admin.get(reverse("admin:cards_familycarddocument_changelist"), {"status__exact": "pending"})
    assert listing.status_code == 200 and f"/{document.pk}/" in listing.content.decode()
    page = admin.get(reverse("admin:cards_familycarddocument_change", args=[document.pk]))
    assert page.status_code == 200
    assert 'type="file"' not in page.content.decode() and document.file.name in page.content.decode()


# --- 取下一份: a reviewer takes the next document; two never get the same one ----------------------


def take_next(client):
    return post_from(client, QUEUE, reverse("staff_family_card_take_next"))


def test_r24_take_next_holds_the_oldest_for_one_reviewer_and_the_next_for_another(
    reviewer, citizen_a, parent, child, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    older = add(citizen_a, parent).documents.get()
    time_machine.shift(60)
    newer = add(citizen_a, child, "child").documents.get()
    other = UserFactory(username="reviewer2", role=User.Role.REVIEWER, is_staff=True)
    first, second = client_for(reviewer), client_for(other)

    assert take_next(first)["Location"] == review_url(older)
    assert take_next(second)["Location"] == review_url(newer)  # the oldest is held: the next one
    assert take_next(first)["Location"] == review_url(older)  # a reload keeps what I hold
    older.refresh_from_db()
    assert (older.claimed_by, older.claimed_at) == (reviewer, timezone.now())
    assert AuditEvent.objects.filter(action="family_card.document_taken", actor=other).count() == 1
    queue = first.get(QUEUE).content.decode()
    assert queue.count('data-testid="taken-by"') == 2 and "reviewer2" in queue
    # A third reviewer finds nothing left to take.
    third = client_for(UserFactory(username="reviewer3", role=User.Role.REVIEWER, is_staff=True))
    response = take_next(third)
    assert response["Location"] == QUEUE
    assert "Nothing left to review." in third.get(QUEUE).content.decode()


def test_r24_a_held_document_is_decided_only_by_its_holder_or_an_admin(reviewer, admin_user, citizen_a, parent):
    document = add(citizen_a, parent).documents.get()
    take_next(client_for(reviewer))
    other = UserFactory(username="reviewer2", role=User.Role.REVIEWER, is_staff=True)

    page = client_for(other).get(review_url(document)).content.decode()
    assert 'data-testid="held-by-other"' in page and 'data-testid="approve"' not in page
    with pytest.raises(FamilyCardRefused) as refused:
        family_card_document_approve(document_id=document.pk, reviewer=other)
    assert refused.value.code == "held_by_other" and refused.value.status == 409
    document.refresh_from_db()
    assert document.status == FamilyCardDocumentStatus.PENDING and document.claimed_by == reviewer

    family_card_document_approve(document_id=document.pk, reviewer=admin_user)  # admins are never held back
    document.refresh_from_db()
    assert document.status == FamilyCardDocumentStatus.APPROVED
    assert (document.claimed_by, document.claimed_at) == (None, None)  # a decision ends the hold


def test_r24_a_lapsed_hold_goes_to_the_next_reviewer_and_a_decision_ends_it(
    reviewer, citizen_a, parent, time_machine, settings
):
    settings.REVIEW_CLAIM_IDLE_MINUTES = 15
    time_machine.move_to(timezone.now(), tick=False)
    document = add(citizen_a, parent).documents.get()
    assert family_card_document_take_next(reviewer=reviewer) == document
    other = UserFactory(username="reviewer2", role=User.Role.REVIEWER, is_staff=True)
    assert family_card_document_take_next(reviewer=other) is None  # held, nothing else waits
    time_machine.shift(16 * 60)
    assert family_card_document_take_next(reviewer=other) == document  # the hold lapsed
    family_card_document_reject(document_id=document.pk, reviewer=other, note="看不清")
    document.refresh_from_db()
    assert document.claimed_by is None and document.status == FamilyCardDocumentStatus.REJECTED
    assert family_card_document_take_next(reviewer=reviewer) is None


def test_r24_only_reviewers_take_documents(citizen_a, parent):
    add(citizen_a, parent)
    with pytest.raises(FamilyCardRefused) as refused:
        family_card_document_take_next(reviewer=citizen_a)
    assert refused.value.status == 403

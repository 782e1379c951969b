"""审核 The reviewers' workbench (R4, R16, R24, R25, R51), functionally: the real rendered forms, CSRF on.

The queue with its filters and counts, "take next", the audited review screen with full ID numbers, the
three decisions and what the citizen sees of them, the page images, and who may open what.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import translation
from PIL import Image, ImageDraw

from accounts.models import AuditEvent, InsuranceType, Notification, User
from accounts.storage import PrivateStorage
from family import tasks
from family.documents import document_store, read_document_content
from family.models import (
    Binding,
    BindingDocument,
    BindingMethod,
    BindingState,
    DocumentKind,
    DocumentStatus,
    PrecheckStatus,
    Relation,
    ReviewReason,
)
from family.selectors_review import ReviewFilters, review_queue, review_queue_counts
from family.services.review import review_claim_next, review_release_idle
from family.staff_views import marked_text
from tests.factories import InsuredPersonFactory, RegionFactory, UserFactory

S = BindingState
NOW = dt.datetime(2026, 3, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
QUEUE = "/staff/review/"
OWNER_REGISTER = DocumentKind.OWNER_HOUSEHOLD_REGISTER
RELATIVE_REGISTER = DocumentKind.RELATIVE_HOUSEHOLD_REGISTER
MISMATCH_REPORT = {
    "readability": {"verdict": "ok", "reasons": [], "pages": []},
    "text": "姓名 李娜 公民身份号码 320505198206200000 与户主关系 妻",
    "checks": [
        {"code": "name_found", "ok": True, "message": "The name 李娜 is on the page.", "evidence": "李娜"},
        {"code": "id_number_found", "ok": False, "message": "The ID number differs.", "evidence": "320505198206200000"},
    ],
    "highlights": ["李娜", "320505198206200000"],
}
UNREADABLE_REPORT = {"readability": {"verdict": "unreadable", "reasons": ["blurred"], "pages": []}, "checks": []}


# --- Set-up ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def storage(tmp_path, monkeypatch) -> PrivateStorage:
    """Documents go to a private folder of this test (the fields' storage is built at import)."""
    private = PrivateStorage(location=tmp_path / "private")
    for name in ("file", "thumbnail"):
        monkeypatch.setattr(BindingDocument._meta.get_field(name), "storage", private)
    return private


@pytest.fixture(autouse=True)
def no_automatic_precheck(monkeypatch):
    """The OCR pre-check is not this module's subject: its reports are written here by hand."""

    class Queued:
        @staticmethod
        def delay(document_id: int) -> None:
            return None

    monkeypatch.setattr(tasks, "document_precheck", Queued, raising=False)


def register_png(line: str, size=(900, 640)) -> bytes:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([20, 20, size[0] - 20, size[1] - 20], outline="black", width=4)
    draw.text((60, 60), line, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def attach(binding: Binding, kind: str, *, report: dict | None = None, status: str = PrecheckStatus.DONE):
    document = document_store(binding=binding, kind=kind, content=read_document_content(register_png(kind)), user=None)
    BindingDocument.objects.filter(pk=document.pk).update(precheck=report or {}, precheck_status=status)
    document.refresh_from_db()
    return document


@pytest.fixture
def application(binding_insert, time_machine):
    """An online application waiting for review with both household registers, submitted ``days_ago``."""

    def make(owner, relative, relationship, *, days_ago=0, reports=None, statuses=None, **fields) -> Binding:
        time_machine.move_to(NOW - dt.timedelta(days=days_ago), tick=False)
        binding = binding_insert(owner, relative, state=S.UNDER_REVIEW, relationship=relationship, **fields)
        for kind in (OWNER_REGISTER, RELATIVE_REGISTER):
            attach(
                binding,
                kind,
                report=(reports or {}).get(kind),
                status=(statuses or {}).get(kind, PrecheckStatus.DONE),
            )
        time_machine.move_to(NOW, tick=False)
        return binding

    return make


@pytest.fixture
def hangzhou_person(db):
    region = RegionFactory(code="330100", name="杭州市", province="330000")
    return InsuredPersonFactory(name="钱七", region=region, birth="19580101", insurance_type=InsuranceType.RESIDENT)


@pytest.fixture
def queue(citizen_a, citizen_a_family, citizen_b, hangzhou_person, application, binding_insert):
    """Three waiting (oldest first: child, spouse with an R16 doubt and a mismatch, parent unreadable),
    and three that are not: a counter binding, an active one, one waiting for the citizen's re-upload."""
    made = {
        "child": application(citizen_a.person, citizen_a_family["child"], Relation.CHILD, days_ago=3),
        "spouse": application(
            citizen_a.person,
            citizen_a_family["spouse"],
            Relation.SPOUSE,
            days_ago=2,
            needs_review=True,
            reasons=[{"rule": "R16", "message": "Spouses of the same sex by ID number."}],
            reports={RELATIVE_REGISTER: MISMATCH_REPORT},
        ),
        "parent": application(
            citizen_b.person,
            hangzhou_person,
            Relation.PARENT,
            days_ago=1,
            reports={OWNER_REGISTER: UNREADABLE_REPORT},
            statuses={OWNER_REGISTER: PrecheckStatus.UNREADABLE},
        ),
    }
    made["counter"] = binding_insert(
        citizen_b.person, InsuredPersonFactory(birth="20180101"), state=S.UNDER_REVIEW, method=BindingMethod.COUNTER
    )
    made["active"] = binding_insert(citizen_a.person, citizen_a_family["parent"], relationship=Relation.PARENT)
    waiting_upload = application(citizen_b.person, InsuredPersonFactory(birth="20160101"), Relation.CHILD, days_ago=5)
    waiting_upload.documents.filter(kind=RELATIVE_REGISTER).update(
        status=DocumentStatus.REJECTED, rejection_reason="blurred"
    )
    made["waiting_upload"] = waiting_upload
    return made


@pytest.fixture
def reviewer_client(reviewer) -> Client:
    return logged_in(reviewer)


def logged_in(user: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(user)
    return client


def text(response) -> str:
    return response.content.decode()


def queue_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-testid="queue-item" data-binding="(\d+)"', text(response))]


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.wsgi_request._messages]


# --- Real forms ---------------------------------------------------------------------------------


class Form:
    """One <form> as rendered: where it posts, its fields, the values and choices the page put in them."""

    def __init__(self, attrs: dict) -> None:
        self.action = attrs.get("action") or ""
        self.method = (attrs.get("method") or "get").lower()
        self.values: dict[str, list[str]] = {}
        self.choices: dict[str, set[str]] = {}

    def fill(self, **data) -> dict:
        """The page's own values with ``data`` over them; every field and choice must be on the page."""
        posted = {name: list(values) for name, values in self.values.items()}
        for name, value in data.items():
            assert name in self.choices or name in self.values, f"no field {name!r} on the form {self.action}"
            values = [str(v) for v in (value if isinstance(value, list | tuple) else [value])]
            offered = self.choices.get(name)
            if offered is not None:
                assert set(values) <= offered, f"{values} not offered for {name!r}: {offered}"
            posted[name] = values
        return posted


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.form: Form | None = None
        self.select: str | None = None
        self.select_first: str | None = None
        self.selected = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.form = Form(attrs)
            self.forms.append(self.form)
            return
        if self.form is None:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                self.form.choices.setdefault(name, set()).add(attrs.get("value", "on"))
                self.form.values.setdefault(name, [])
                if "checked" in attrs:
                    self.form.values[name].append(attrs.get("value", "on"))
            elif kind not in ("submit", "button", "file"):
                self.form.values[name] = [attrs.get("value") or ""]
        elif tag == "select" and name:
            self.select, self.select_first, self.selected = name, None, False
            self.form.choices[name] = set()
            self.form.values[name] = []
        elif tag == "option" and self.select:
            value = attrs.get("value", "")
            self.form.choices[self.select].add(value)
            if self.select_first is None:
                self.select_first = value
            if "selected" in attrs:
                self.form.values[self.select] = [value]
                self.selected = True
        elif tag == "textarea" and name:
            self.form.values[name] = [""]

    def handle_endtag(self, tag):
        if tag == "select" and self.select:
            if not self.selected and self.select_first is not None:
                self.form.values[self.select] = [self.select_first]
            self.select = None
        elif tag == "form":
            self.form = None


def form_posting_to(response, action: str) -> Form:
    parser = FormParser()
    parser.feed(text(response))
    forms = [f for f in parser.forms if f.action == action]
    assert forms, f"no form posting to {action}"
    return forms[0]


def submit(client: Client, page, action: str, **data):
    """Fill the form of ``page`` that posts to ``action`` and post it with the page's CSRF token."""
    form = form_posting_to(page, action)
    if form.method == "get":
        return client.get(action, form.fill(**data))
    assert form.values.get("csrfmiddlewaretoken"), "no CSRF token on the form"
    return client.post(action, form.fill(**data))


def take_next(client: Client, **filters):
    """Take the next application from the queue page as it is shown with ``filters``."""
    page = client.get(QUEUE, filters)
    return submit(client, page, reverse("staff_review_take_next"))


def detail_url(binding: Binding) -> str:
    return reverse("staff_review_detail", args=[binding.pk])


# --- 审核队列 the queue ---------------------------------------------------------------------------


def test_the_queue_is_oldest_first_without_what_is_not_a_reviewers_turn(reviewer_client, queue, citizen_a_family):
    response = reviewer_client.get(QUEUE)

    assert response.status_code == 200
    # Counter bindings (R22), active ones and those waiting for the citizen's re-upload are not in it.
    assert queue_ids(response) == [queue["child"].pk, queue["spouse"].pk, queue["parent"].pk]
    page = text(response)
    for person in (citizen_a_family["child"], citizen_a_family["spouse"]):  # R4: masked in the list
        assert person.name not in page and person.id_number not in page
        assert person.masked_name in page and person.masked_id_number in page
    assert 'data-total="3"' in page


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"flags": "doubt"}, ["spouse"]),
        ({"flags": "mismatch"}, ["spouse"]),
        ({"flags": "unreadable"}, ["parent"]),
        ({"flags": ["doubt", "unreadable"]}, []),
        ({"region": "320500"}, ["child", "spouse", "parent"]),
        ({"relationship": "parent"}, ["parent"]),
        ({"method": "online_id", "relationship": "child"}, ["child"]),
    ],
)
def test_filters_narrow_the_queue_through_the_filter_form(reviewer_client, queue, filters, expected):
    page = reviewer_client.get(QUEUE)
    response = submit(reviewer_client, page, QUEUE, **filters)

    assert queue_ids(response) == [queue[name].pk for name in expected]
    assert f'data-matching="{len(expected)}"' in text(response)
    if not expected:
        assert "No application matches these filters." in text(response)


def test_every_filter_value_shows_its_count(reviewer_client, queue):
    page = text(reviewer_client.get(QUEUE, {"flags": "doubt"}))

    assert "Plausibility doubt (R16) · 1" in page
    assert "Pre-check mismatch · 1" in page
    assert "Unreadable document · 1" in page
    # Regions are the owners' (R12: the owner's policy) and only those with applications waiting.
    assert "苏州市 (320500) · 3" in page and "330100" not in page
    assert re.search(r"child \(子女\) · 1", page) and re.search(r"spouse \(配偶\) · 1", page)
    assert 'data-total="3" data-matching="1" data-claimable="1"' in page


@pytest.mark.parametrize("size", [1, 10])
def test_the_queue_costs_the_same_queries_for_1_or_10_applications(
    citizen_a, citizen_a_family, application, reviewer, django_assert_num_queries, size
):
    for index in range(size):
        relative = InsuredPersonFactory(birth="20150101", region=citizen_a.person.region)
        application(citizen_a.person, relative, Relation.CHILD, days_ago=index)
    filters = ReviewFilters(flags=("mismatch",))
    # 1. every fixed count in one aggregate, 2. the regions with their counts
    with django_assert_num_queries(2):
        counts = review_queue_counts(filters=filters, reviewer=reviewer)
    # 3. the page of the queue with persons, region, claim holder and flags
    with django_assert_num_queries(1):
        rows = list(review_queue(filters=ReviewFilters())[:50])
    assert counts.total == len(rows) == size


# --- Take next, open, release ----------------------------------------------------------------------


def test_take_next_claims_the_oldest_and_opens_it_audited_with_full_id_numbers(
    reviewer_client, reviewer, queue, citizen_a, citizen_a_family
):
    response = take_next(reviewer_client)

    child = queue["child"]
    assert response.status_code == 302 and response["Location"] == detail_url(child)
    child.refresh_from_db()
    assert child.claimed_by == reviewer and child.claimed_at == NOW
    page = reviewer_client.get(detail_url(child))
    assert page.status_code == 200
    html = text(page)
    # R4's exception: the reviewer compares the full names and ID numbers with the documents.
    for person in (citizen_a.person, citizen_a_family["child"]):
        assert person.name in html and person.id_number in html
    assert html.count('data-testid="page-image"') == 2
    opened = AuditEvent.objects.filter(action="binding.reviewed_opened")
    assert [(e.actor, e.target_type, e.target_id) for e in opened] == [(reviewer, "family.binding", str(child.pk))]
    assert opened[0].detail == {"owner": citizen_a.person.pk, "relative": citizen_a_family["child"].pk}
    assert opened[0].ip_address == "127.0.0.1"
    assert citizen_a_family["child"].id_number not in opened[0].target_label  # the log itself stays masked


def test_the_review_screen_shows_doubts_the_precheck_with_marks_and_the_history(
    reviewer_client, reviewer, queue, citizen_a_family
):
    take_next(reviewer_client, flags="doubt")
    html = text(reviewer_client.get(detail_url(queue["spouse"])))

    assert "Spouses of the same sex by ID number." in html and "(R16)" in html
    assert "<mark>李娜</mark>" in html and "<mark>320505198206200000</mark>" in html
    assert 'data-check="id_number_found" data-ok="false"' in html
    assert "1 mismatch" in html
    assert 'data-testid="history"' in html and "Under review" in html
    for key in ("A", "S", "R", "N"):
        assert f"<kbd>{key}</kbd>" in html
    assert 'accesskey="a"' in html and 'accesskey="s"' in html and 'accesskey="r"' in html


def test_take_next_leaves_what_another_reviewer_holds_until_the_claim_lapses(
    reviewer_client, reviewer, queue, settings, time_machine
):
    settings.REVIEW_CLAIM_IDLE_MINUTES = 15
    other = UserFactory(username="reviewer2", role=User.Role.REVIEWER, is_staff=True)
    assert review_claim_next(reviewer=other).pk == queue["child"].pk

    assert take_next(reviewer_client)["Location"] == detail_url(queue["spouse"])
    # Another reviewer's screen is not mine to open.
    refused = reviewer_client.get(detail_url(queue["child"]))
    assert refused.status_code == 302 and refused["Location"].startswith(QUEUE)
    assert not AuditEvent.objects.filter(action="binding.reviewed_opened", target_id=str(queue["child"].pk)).exists()

    # 16 minutes without activity: the claim lapsed and a third reviewer may take it.
    time_machine.move_to(NOW + dt.timedelta(minutes=16), tick=False)
    third = UserFactory(username="reviewer3", role=User.Role.REVIEWER, is_staff=True)
    assert review_claim_next(reviewer=third).pk == queue["child"].pk


def test_a_reviewer_holds_one_application_at_a_time(reviewer_client, queue):
    assert take_next(reviewer_client)["Location"] == detail_url(queue["child"])
    # Taking with filters the held one does not match puts it back.
    assert take_next(reviewer_client, flags="unreadable")["Location"] == detail_url(queue["parent"])
    queue["child"].refresh_from_db()
    assert queue["child"].claimed_by is None


def test_a_reload_of_take_next_gives_back_the_application_already_held(reviewer_client, queue):
    first = take_next(reviewer_client)["Location"]
    assert take_next(reviewer_client)["Location"] == first


def test_skip_puts_it_back_and_opens_the_next_one(reviewer_client, reviewer, queue):
    take_next(reviewer_client)
    page = reviewer_client.get(detail_url(queue["child"]))
    response = submit(reviewer_client, page, reverse("staff_review_release", args=[queue["child"].pk]))

    assert response["Location"] == detail_url(queue["spouse"])
    queue["child"].refresh_from_db()
    assert queue["child"].claimed_by is None
    assert AuditEvent.objects.filter(action="binding.review_released", actor=reviewer).count() == 1


def test_idle_claims_are_released(queue, reviewer, time_machine):
    review_claim_next(reviewer=reviewer)
    time_machine.move_to(NOW + dt.timedelta(minutes=10), tick=False)
    assert review_release_idle(older_than_minutes=15) == 0
    time_machine.move_to(NOW + dt.timedelta(minutes=16), tick=False)
    assert review_release_idle(older_than_minutes=15) == 1
    assert not Binding.objects.filter(claimed_by__isnull=False).exists()


def test_an_admin_opens_any_application_and_it_is_audited(admin_user, queue):
    client = logged_in(admin_user)
    response = client.get(detail_url(queue["parent"]))

    assert response.status_code == 200
    assert queue["parent"].relative.id_number in text(response)
    assert AuditEvent.objects.filter(action="binding.reviewed_opened", actor=admin_user).count() == 1
    decided = client.get(detail_url(queue["active"]))
    assert 'data-testid="not-waiting"' in text(decided) and 'data-testid="approve"' not in text(decided)


# --- Decisions --------------------------------------------------------------------------------------


def test_approve_accepts_every_document_and_the_pipeline_goes_on(reviewer_client, reviewer, queue, pipeline, citizen_a):
    take_next(reviewer_client)
    child = queue["child"]
    page = reviewer_client.get(detail_url(child))
    with pipeline():
        response = submit(reviewer_client, page, reverse("staff_review_approve", args=[child.pk]))

    # The next application opens at once (claimed for me).
    assert response["Location"] == detail_url(queue["spouse"])
    assert shown_messages(response) == [f"Application {child.pk} approved; it goes on to the age check (R23)."]
    child.refresh_from_db()
    assert child.state == S.ACTIVE  # R23: under 16, no face verification
    assert (child.reviewed_by, child.claimed_by) == (reviewer, None)
    assert list(child.documents.values_list("status", "decided_by", "decided_at")) == [
        (DocumentStatus.APPROVED, reviewer.pk, NOW),
        (DocumentStatus.APPROVED, reviewer.pk, NOW),
    ]
    assert AuditEvent.objects.filter(action="binding.review_approved", actor=reviewer, target_id=str(child.pk)).exists()


def test_an_adult_relative_is_asked_for_face_verification_after_approval(reviewer_client, queue, pipeline):
    take_next(reviewer_client, flags="doubt")
    spouse = queue["spouse"]
    page = reviewer_client.get(detail_url(spouse))
    with pipeline():
        submit(reviewer_client, page, reverse("staff_review_approve", args=[spouse.pk]))

    spouse.refresh_from_db()
    assert spouse.state == S.AWAITING_FACE
    assert Notification.objects.filter(person=spouse.relative, kind="binding.consent_needed").exists()


def test_send_back_rejects_the_chosen_documents_the_citizen_uploads_again_and_it_returns_to_the_queue(
    reviewer_client, reviewer, queue, citizen_a
):
    take_next(reviewer_client, flags="doubt")
    spouse = queue["spouse"]
    reason = ReviewReason.objects.order_by("position").first()
    relative_register = spouse.documents.get(kind=RELATIVE_REGISTER)
    page = reviewer_client.get(detail_url(spouse))

    response = submit(
        reviewer_client,
        page,
        reverse("staff_review_send_back", args=[spouse.pk]),
        documents=relative_register.pk,
        reason=reason.pk,
        note="请拍整页。",
    )

    assert response.status_code == 302
    relative_register.refresh_from_db()
    spouse.refresh_from_db()
    # Chinese by default (the form's language), then the reviewer's note.
    expected = f"{reason.text_zh} 请拍整页。"
    assert (relative_register.status, relative_register.rejection_reason) == (DocumentStatus.REJECTED, expected)
    assert (relative_register.decided_by, relative_register.decided_at) == (reviewer, NOW)
    assert spouse.documents.get(kind=OWNER_REGISTER).status == DocumentStatus.PENDING
    assert (spouse.state, spouse.reviewed_at, spouse.claimed_by) == (S.UNDER_REVIEW, None, None)
    notice = Notification.objects.get(person=citizen_a.person, kind="binding.documents_rejected")
    assert expected in notice.body and notice.link == reverse("binding_detail", args=[spouse.pk])
    sent_back = AuditEvent.objects.get(action="binding.review_sent_back")
    assert sent_back.detail["documents"] == [relative_register.pk] and sent_back.actor == reviewer
    assert spouse.pk not in queue_ids(reviewer_client.get(QUEUE))  # the citizen's turn now

    # The citizen sees the reason and the re-upload form on the status page, and uploads again.
    owner = logged_in(citizen_a)
    status_page = owner.get(reverse("binding_detail", args=[spouse.pk]))
    assert expected in text(status_page)
    upload_form = form_posting_to(status_page, reverse("binding_document_upload", args=[spouse.pk]))
    assert upload_form.values["kind"] == [RELATIVE_REGISTER]
    uploaded = owner.post(
        reverse("binding_document_upload", args=[spouse.pk]),
        {
            **upload_form.fill(),
            "file": SimpleUploadedFile("new.png", register_png("李娜 again"), "image/png"),
        },
    )
    assert uploaded.status_code == 302
    assert spouse.documents.filter(kind=RELATIVE_REGISTER, status=DocumentStatus.PENDING).count() == 1

    # Back in the queue, at its place (submitted earlier than the parent's).
    assert queue_ids(reviewer_client.get(QUEUE)) == [queue["child"].pk, spouse.pk, queue["parent"].pk]
    assert take_next(reviewer_client, flags="doubt")["Location"] == detail_url(spouse)
    history = text(reviewer_client.get(detail_url(spouse)))
    assert "Household register page of the relative sent back" in history and expected in history


def test_send_back_in_english_when_the_reviewer_chooses_it(reviewer_client, queue):
    take_next(reviewer_client)
    child = queue["child"]
    reason = ReviewReason.objects.order_by("position").first()
    page = reviewer_client.get(detail_url(child))
    submit(
        reviewer_client,
        page,
        reverse("staff_review_send_back", args=[child.pk]),
        documents=[d.pk for d in child.documents.all()],
        reason=reason.pk,
        language="en",
    )
    assert set(child.documents.values_list("rejection_reason", flat=True)) == {reason.text_en}


def test_send_back_without_documents_or_reason_says_what_is_missing_and_changes_nothing(reviewer_client, queue):
    take_next(reviewer_client)
    child = queue["child"]
    page = reviewer_client.get(detail_url(child))
    response = submit(reviewer_client, page, reverse("staff_review_send_back", args=[child.pk]))

    assert response.status_code == 400
    html = text(response)
    assert "This field is required." in html and "Choose a reason or write one." in html
    assert not child.documents.filter(status=DocumentStatus.REJECTED).exists()
    child.refresh_from_db()
    assert child.claimed_by is not None  # still mine


def test_the_signed_letter_is_not_offered_for_re_upload(reviewer_client, queue):
    take_next(reviewer_client)
    child = queue["child"]
    letter = BindingDocument.objects.create(
        binding=child, kind=DocumentKind.COMMITMENT_LETTER, file="x.pdf", content_type="application/pdf", size=1
    )
    page = reviewer_client.get(detail_url(child))
    form = form_posting_to(page, reverse("staff_review_send_back", args=[child.pk]))
    assert str(letter.pk) not in form.choices["documents"]
    forged = reviewer_client.post(
        reverse("staff_review_send_back", args=[child.pk]),
        {**form.fill(reason=ReviewReason.objects.first().pk), "documents": [str(letter.pk)]},
    )
    assert forged.status_code == 400
    letter.refresh_from_db()
    assert letter.status == DocumentStatus.PENDING


def test_refuse_rejects_the_application_with_the_reason_the_owner_sees(reviewer_client, reviewer, queue, citizen_a):
    take_next(reviewer_client)
    child = queue["child"]
    reason = ReviewReason.objects.order_by("position")[2]
    page = reviewer_client.get(detail_url(child))
    response = submit(
        reviewer_client, page, reverse("staff_review_refuse", args=[child.pk]), reason=reason.pk, note="另附说明"
    )

    assert response["Location"] == detail_url(queue["spouse"])
    child.refresh_from_db()
    expected = f"{reason.text_zh} 另附说明"
    assert (child.state, child.end_reason, child.reviewed_by) == (S.REJECTED, expected, reviewer)
    assert list(child.events.values_list("to_state", "reason", "actor")) == [
        (S.UNDER_REVIEW, "", None),
        (S.REJECTED, expected, reviewer.pk),
    ]
    notice = Notification.objects.get(person=citizen_a.person, kind="binding.rejected")
    # In the language chosen for the reason (Chinese by default), though the reviewer works in English.
    assert (notice.title, notice.body) == ("您的家庭共济申请未通过审核", expected)
    assert AuditEvent.objects.filter(action="binding.review_refused", target_id=str(child.pk)).exists()
    owner_page = text(logged_in(citizen_a).get(reverse("binding_detail", args=[child.pk])))
    assert expected in owner_page


def test_after_the_last_decision_the_queue_says_nothing_left(reviewer_client, citizen_a, citizen_a_family, application):
    only = application(citizen_a.person, citizen_a_family["child"], Relation.CHILD)
    take_next(reviewer_client)
    page = reviewer_client.get(detail_url(only))
    response = submit(reviewer_client, page, reverse("staff_review_approve", args=[only.pk]))

    assert response["Location"] == QUEUE
    after = reviewer_client.get(response["Location"])
    assert "Nothing left to review with these filters." in shown_messages(after)
    assert 'data-testid="queue-empty"' in text(after) and "Nothing left to review." in text(after)


def test_only_the_claim_holder_decides(reviewer_client, reviewer, queue):
    other = UserFactory(username="reviewer2", role=User.Role.REVIEWER, is_staff=True)
    take_next(reviewer_client)
    child = queue["child"]
    page = reviewer_client.get(detail_url(child))
    intruder = logged_in(other)
    intruder.get(QUEUE)  # a CSRF cookie of their own
    response = intruder.post(
        reverse("staff_review_approve", args=[child.pk]),
        {"csrfmiddlewaretoken": intruder.cookies["csrftoken"].value},
    )
    assert response.status_code == 302 and response["Location"].startswith(QUEUE)
    assert "You no longer hold this application" in shown_messages(response)[0]
    child.refresh_from_db()
    assert child.reviewed_at is None and child.claimed_by == reviewer
    assert form_posting_to(page, reverse("staff_review_approve", args=[child.pk]))


# --- Page images (R51) --------------------------------------------------------------------------------


def test_every_page_image_view_is_audited(reviewer_client, reviewer, queue):
    take_next(reviewer_client)
    document = queue["child"].documents.get(kind=OWNER_REGISTER)
    url = reverse("staff_review_page_image", args=[document.pk, 1])

    first, second = reviewer_client.get(url), reviewer_client.get(url)

    assert first.status_code == second.status_code == 200
    assert first["Content-Type"] == "image/png" and first.content.startswith(b"\x89PNG")
    assert first["Cache-Control"] == "private, no-store"
    with Image.open(io.BytesIO(first.content)) as image:
        assert image.size == (900, 640)
    views = AuditEvent.objects.filter(action="document.viewed", actor=reviewer, target_id=str(document.pk))
    assert views.count() == 2
    assert reviewer_client.get(reverse("staff_review_page_image", args=[document.pk, 2])).status_code == 404


def test_page_images_are_only_for_the_claim_holder_or_an_admin(reviewer_client, reviewer, admin_user, queue):
    take_next(reviewer_client)
    other_document = queue["spouse"].documents.first()  # not claimed by the reviewer
    url = reverse("staff_review_page_image", args=[other_document.pk, 1])

    assert reviewer_client.get(url).status_code == 404
    assert logged_in(admin_user).get(url).status_code == 200
    assert list(AuditEvent.objects.filter(action="document.viewed").values_list("actor", flat=True)) == [admin_user.pk]


# --- Who may open the workbench -----------------------------------------------------------------------


def staff_urls(queue) -> list[tuple[str, str]]:
    pk = queue["child"].pk
    document = queue["child"].documents.first().pk
    return [
        ("get", QUEUE),
        ("post", reverse("staff_review_take_next")),
        ("get", reverse("staff_review_detail", args=[pk])),
        ("post", reverse("staff_review_approve", args=[pk])),
        ("post", reverse("staff_review_send_back", args=[pk])),
        ("post", reverse("staff_review_refuse", args=[pk])),
        ("post", reverse("staff_review_release", args=[pk])),
        ("get", reverse("staff_review_page_image", args=[document, 1])),
    ]


@pytest.mark.parametrize("persona", ["citizen_a", "citizen_b", "clerk_x"])
def test_citizens_and_clerks_get_403_on_every_staff_url(client, queue, persona, request):
    client.force_login(request.getfixturevalue(persona))
    for method, url in staff_urls(queue):
        assert getattr(client, method)(url).status_code == 403, url
    assert not Binding.objects.filter(claimed_by__isnull=False).exists()
    assert not AuditEvent.objects.filter(action__in=["document.viewed", "binding.reviewed_opened"]).exists()


def test_anonymous_users_are_sent_to_log_in(client, queue):
    for method, url in staff_urls(queue):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("account_login")), url


# --- The pre-check text with its marks ------------------------------------------------------------------


def test_marked_text_escapes_and_merges_highlights():
    marked = marked_text("<b>张伟</b> 张伟 3205", ["张伟", [13, 17], {"start": 10, "end": 12}, {"text": ""}])
    assert marked == "&lt;b&gt;<mark>张伟</mark>&lt;/b&gt; <mark>张伟</mark> <mark>3205</mark>"
    assert marked_text("abc", None) == "abc"

"""审核 in the browser: a reviewer works through the queue with the keyboard only (take next, zoom and rotate,
send documents back with a canned reason, approve); the citizen sees the reason on the phone and uploads a
new photo; the reviewer takes the application again and approves it."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from PIL import Image, ImageDraw, ImageFont
from playwright.sync_api import Page, expect

from accounts.models import InsuranceType, User
from family.documents import document_store, read_document_content
from family.models import (
    Binding,
    BindingDocument,
    BindingState,
    DocumentKind,
    DocumentStatus,
    PrecheckStatus,
    Relation,
    ReviewReason,
)
from family.services import binding_submit
from family.services.review import review_claim_next, review_open
from tests.conftest import PASSWORD
from tests.factories import InsuredPersonFactory, RegionFactory, UserFactory, give_account

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
# The canned reasons come from a data migration, which a transactional test's flush removes: put one back.
REASON = (
    "户口本页面不清晰，请重新拍照上传（整页、对焦、光线充足）。",
    "The household register page is not readable; take a new photo (whole page, in focus, good light).",
)


def register_png(lines: list[str], *, tilt: float = 0) -> bytes:
    """A household register page (常住人口登记卡), drawn; ``tilt`` turns it as a careless photo would."""
    image = Image.new("RGB", (1000, 700), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(CJK_FONT), 40) if CJK_FONT.exists() else ImageFont.load_default()
    draw.rectangle([30, 30, 970, 670], outline=(60, 60, 60), width=5)
    draw.text((300, 60), "常住人口登记卡", fill="black", font=font)
    for index, line in enumerate(lines):
        draw.text((80, 180 + index * 80), line, fill="black", font=font)
    if tilt:
        image = image.rotate(tilt, expand=True, fillcolor=(200, 200, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def log_in(page: Page, base_url: str, email: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form.form button[type=submit]").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


@pytest.fixture
def suzhou(db):
    call_command("load_policy", str(settings.BASE_DIR / "family" / "data" / "default_policy.json"), verbosity=0)
    return RegionFactory(code="320500", name="苏州市", province="320000")


@pytest.fixture
def owner_user(suzhou):
    person = InsuredPersonFactory(name="张伟", region=suzhou, birth="19800315", male=True)
    give_account(person, current="1200.00", historical="300.50")
    return UserFactory(username="owner", email="owner@example.com", person=person)


@pytest.fixture
def reviewer_user(db):
    return UserFactory(username="reviewer", email="reviewer@example.com", role=User.Role.REVIEWER, is_staff=True)


def submitted_application(owner_user, child_name: str, birth: str, *, tilt: float = 0) -> Binding:
    """An application through the services (eligibility runs at once), with both registers uploaded."""
    owner = owner_user.person
    child = InsuredPersonFactory(
        name=child_name, region=owner.region, birth=birth, male=False, insurance_type=InsuranceType.RESIDENT
    )
    binding = binding_submit(
        owner=owner,
        relative_id_number=child.id_number,
        relative_name=child.name,
        relationship=Relation.CHILD,
        submitted_by=owner_user,
        letter_signed_name=owner.name,
    )
    binding.refresh_from_db()
    assert binding.state == BindingState.UNDER_REVIEW, binding.reasons
    pages = {
        DocumentKind.OWNER_HOUSEHOLD_REGISTER: [
            f"姓名 {owner.name}",
            "与户主关系 户主",
            f"公民身份号码 {owner.id_number}",
        ],
        DocumentKind.RELATIVE_HOUSEHOLD_REGISTER: [
            f"姓名 {child.name}",
            "与户主关系 女",
            f"公民身份号码 {child.id_number}",
        ],
    }
    for kind, lines in pages.items():
        document = document_store(
            binding=binding,
            kind=kind,
            content=read_document_content(
                register_png(lines, tilt=tilt if kind == DocumentKind.RELATIVE_HOUSEHOLD_REGISTER else 0)
            ),
            user=owner_user,
        )
        # The automatic pre-check's report, as the OCR step writes it (its own tests are elsewhere).
        name = owner.name if kind == DocumentKind.OWNER_HOUSEHOLD_REGISTER else child.name
        report = {
            "readability": {"verdict": "ok", "reasons": [], "pages": []},
            "text": "\n".join(lines),
            "checks": [{"code": "name_found", "ok": True, "message": f"{name} 出现在页面上", "evidence": name}],
            "highlights": [name],
        }
        status = PrecheckStatus.DONE
        if tilt and kind == DocumentKind.RELATIVE_HOUSEHOLD_REGISTER:
            report = {"readability": {"verdict": "unreadable", "reasons": ["blurred"], "pages": []}, "checks": []}
            status = PrecheckStatus.UNREADABLE
        BindingDocument.objects.filter(pk=document.pk).update(precheck_status=status, precheck=report)
    return binding


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_works_through_the_queue_with_the_keyboard_and_the_citizen_uploads_again(
    live_server, desktop_page: Page, page: Page, screenshot, owner_user, reviewer_user
):
    reason = ReviewReason.objects.first() or ReviewReason.objects.create(text_zh=REASON[0], text_en=REASON[1])
    blurred = submitted_application(owner_user, "张小红", "20160501", tilt=90)
    clear = submitted_application(owner_user, "张小兰", "20180808")
    reviewer = desktop_page
    base = live_server.url

    # --- The reviewer: the queue, then N takes the oldest application.
    log_in(reviewer, base, "reviewer@example.com")
    reviewer.goto(base + "/staff/review/")
    expect(reviewer.get_by_test_id("queue-item")).to_have_count(2)
    expect(reviewer.locator(f"[data-binding='{blurred.pk}'] [data-flag=unreadable]")).to_be_visible()
    expect(reviewer.get_by_test_id("queue")).not_to_contain_text("张小红")  # R4: masked in the list
    screenshot(reviewer, "queue")
    reviewer.keyboard.press("n")
    expect(reviewer).to_have_url(re.compile(rf"/staff/review/{blurred.pk}/$"))
    expect(reviewer.get_by_test_id("claimed-data")).to_contain_text(blurred.relative.id_number)  # R4's exception
    relative_doc = reviewer.locator("[data-testid=document][data-kind=relative_register]")
    expect(relative_doc.locator("img")).to_have_js_property("complete", True)
    screenshot(reviewer, "review-opened")

    # Zoom and rotate the sideways photo: click it, then + and ] (CSS transforms), then 0 resets.
    relative_doc.locator("figcaption").click()
    reviewer.keyboard.type("+")
    reviewer.keyboard.type("]")
    expect(relative_doc).to_have_attribute("data-zoom", "1.25")
    expect(relative_doc).to_have_attribute("data-rotation", "90")
    expect(relative_doc.locator("img")).to_have_attribute("style", re.compile(r"rotate\(90deg\)"))
    reviewer.wait_for_timeout(300)  # the turn is animated: let it end before the picture
    screenshot(reviewer, "review-zoomed-and-rotated")
    reviewer.keyboard.type("0")
    expect(relative_doc).to_have_attribute("data-rotation", "0")

    # S: send back. Tab to the relative's register, Space ticks it, Tab to the reason, ↓ chooses, note, Enter.
    reviewer.keyboard.press("s")
    expect(reviewer.locator("#send-back-documents_0")).to_be_focused()
    reviewer.keyboard.press("Tab")
    expect(reviewer.locator("#send-back-documents_1")).to_be_focused()
    reviewer.keyboard.press("Space")
    reviewer.keyboard.press("Tab")
    expect(reviewer.locator("#send-back-reason")).to_be_focused()
    reviewer.keyboard.press("ArrowDown")
    expect(reviewer.locator("#send-back-reason")).to_have_value(str(reason.pk))
    reviewer.keyboard.press("Tab")
    reviewer.keyboard.type("照片是横的，请竖着拍。")
    screenshot(reviewer, "send-back-filled")
    reviewer.keyboard.press("Enter")

    # The next application opens by itself; A then Enter approves it; nothing is left.
    expect(reviewer).to_have_url(re.compile(rf"/staff/review/{clear.pk}/$"))
    screenshot(reviewer, "next-application")
    reviewer.keyboard.press("a")
    expect(reviewer.get_by_test_id("approve")).to_be_focused()
    reviewer.keyboard.press("Enter")
    expect(reviewer.get_by_test_id("queue-empty")).to_be_visible()
    screenshot(reviewer, "queue-nothing-left")

    sent_back = blurred.documents.get(kind=DocumentKind.RELATIVE_HOUSEHOLD_REGISTER)
    expected = f"{reason.text_zh} 照片是横的，请竖着拍。"
    assert (sent_back.status, sent_back.rejection_reason) == (DocumentStatus.REJECTED, expected)
    clear.refresh_from_db()
    assert clear.state == BindingState.ACTIVE  # R23: under 16

    # --- The citizen, on the phone: the reason on the status page, a new photo.
    log_in(page, base, "owner@example.com")
    page.goto(f"{base}/family/bindings/{blurred.pk}/")
    expect(page.locator(".document.document-rejected")).to_contain_text(expected)
    screenshot(page, "citizen-sees-the-reason")
    page.locator("#reupload-relative_register").set_input_files(
        {
            "name": "register.png",
            "mimeType": "image/png",
            "buffer": register_png(["姓名 张小红", "与户主关系 女", f"公民身份号码 {blurred.relative.id_number}"]),
        }
    )
    page.locator("form.reupload button[type=submit]").click()
    expect(page.locator(".messages .message-success")).to_be_visible()
    expect(page.locator(".document.document-rejected")).to_have_count(0)
    screenshot(page, "citizen-uploaded-again")

    # --- The reviewer takes it again (N) and approves it (A, Enter).
    reviewer.goto(base + "/staff/review/")
    expect(reviewer.get_by_test_id("queue-item")).to_have_count(1)
    reviewer.keyboard.press("n")
    expect(reviewer).to_have_url(re.compile(rf"/staff/review/{blurred.pk}/$"))
    expect(reviewer.get_by_test_id("history")).to_contain_text(expected)
    screenshot(reviewer, "review-after-re-upload")
    reviewer.keyboard.press("a")
    reviewer.keyboard.press("Enter")
    expect(reviewer.get_by_test_id("queue-empty")).to_be_visible()
    screenshot(reviewer, "queue-done")

    blurred.refresh_from_db()
    assert blurred.state == BindingState.ACTIVE and blurred.reviewed_by == reviewer_user
    page.reload()
    expect(page.get_by_test_id("binding-state")).to_have_attribute("data-state", BindingState.ACTIVE)
    screenshot(page, "citizen-sees-active")


@pytest.mark.django_db(transaction=True)
def test_an_admin_finds_who_opened_a_persons_application_and_exports_it(
    live_server, desktop_page: Page, screenshot, owner_user, reviewer_user
):
    binding = submitted_application(owner_user, "张小红", "20160501")
    review_open(binding_id=review_claim_next(reviewer=reviewer_user).pk, reviewer=reviewer_user)
    UserFactory(username="admin", email="admin@example.com", role=User.Role.ADMIN, is_staff=True)
    admin = desktop_page

    log_in(admin, live_server.url, "admin@example.com")
    admin.goto(live_server.url + "/staff/audit/")
    admin.locator("input[name=person]").fill(binding.relative.id_number)
    admin.locator("input[name=person]").press("Enter")
    rows = admin.get_by_test_id("audit-row")
    expect(rows).to_have_count(2)  # claimed, then opened: both name the relative
    expect(rows.first).to_contain_text("binding.reviewed_opened")
    expect(rows.first).to_contain_text("reviewer")
    expect(admin.get_by_test_id("audit-rows")).not_to_contain_text(binding.relative.id_number)  # R4
    screenshot(admin, "audit-log-by-person")

    with admin.expect_download() as download:
        admin.get_by_test_id("export").click()
    content = Path(download.value.path()).read_bytes()
    assert content.startswith(b"\xef\xbb\xbf")
    assert content.decode("utf-8-sig").count("binding.review") == 2


@pytest.mark.django_db(transaction=True)
def test_without_javascript_the_pages_show_and_the_tools_stay_hidden(
    live_server, browser, screenshot, owner_user, reviewer_user
):
    binding = submitted_application(owner_user, "张小红", "20160501")
    context = browser.new_context(java_script_enabled=False, locale="zh-CN", viewport={"width": 1280, "height": 800})
    reviewer = context.new_page()
    try:
        log_in(reviewer, live_server.url, "reviewer@example.com")
        reviewer.goto(live_server.url + "/staff/review/")
        reviewer.get_by_test_id("take-next").click()
        expect(reviewer).to_have_url(re.compile(rf"/staff/review/{binding.pk}/$"))
        images = reviewer.get_by_test_id("page-image")
        expect(images).to_have_count(2)
        for index in range(2):
            expect(images.nth(index)).to_be_visible()
            assert images.nth(index).bounding_box()["height"] > 100
        expect(reviewer.locator("[data-doc-tools]").first).to_be_hidden()
        screenshot(reviewer, "review-without-javascript")
    finally:
        context.close()

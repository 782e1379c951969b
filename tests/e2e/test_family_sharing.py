"""家庭共济 in the browser, on a phone: an owner adds a family member through every step of the stepper,
signs the commitment letter on the canvas, uploads the household registers; a reviewer approves; a
child's binding becomes active at once, an adult parent's after the parent's own face verification."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont
from playwright.sync_api import Browser, Page, expect

from accounts.models import InsuranceType, Notification
from family.models import Binding, BindingEvent, BindingMethod, BindingState, DocumentKind, Relation
from family.services import binding_review_decide
from tests.conftest import PASSWORD
from tests.e2e.conftest import PHONE
from tests.face_images import make_blank_png, make_face_png
from tests.factories import InsuredPersonFactory, RegionFactory, UserFactory, give_account, make_id_number

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


def register_page_png(lines: list[str]) -> bytes:
    """A household register page (常住人口登记卡), drawn: a frame, a title and the person's lines."""
    image = Image.new("RGB", (1000, 700), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(CJK_FONT), 40) if CJK_FONT.exists() else ImageFont.load_default()
    draw.rectangle([30, 30, 970, 670], outline=(60, 60, 60), width=5)
    draw.text((300, 60), "常住人口登记卡", fill="black", font=font)
    for index, line in enumerate(lines):
        draw.text((80, 180 + index * 80), line, fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_file(name: str, data: bytes) -> dict:
    return {"name": name, "mimeType": "image/png", "buffer": data}


def log_in(page: Page, base_url: str, email: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form.form button[type=submit]").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


def submit_step(page: Page) -> None:
    """The step's own primary button (not the language or large-text switches, not "start again")."""
    page.locator("main form.form button.btn-primary[type=submit]").click()


def draw_signature(page: Page) -> None:
    canvas = page.locator("canvas.signature-canvas")
    expect(canvas).to_be_visible()
    canvas.scroll_into_view_if_needed()  # the mouse works in the viewport's coordinates
    box = canvas.bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    # Two strokes, as a finger would write a short name.
    page.mouse.move(x + w * 0.1, y + h * 0.7)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(x + w * (0.1 + 0.02 * step), y + h * (0.7 - 0.025 * step), steps=2)
    page.mouse.up()
    page.mouse.move(x + w * 0.55, y + h * 0.3)
    page.mouse.down()
    for step in range(1, 16):
        page.mouse.move(x + w * (0.55 + 0.02 * step), y + h * (0.3 + 0.03 * step), steps=2)
    page.mouse.up()
    expect(page.locator("[data-signature-status]")).not_to_be_empty()


def add_member_in_browser(page: Page, base_url: str, relative, relationship: str, owner, shot) -> Binding:
    """Walk 告知书 → 成员信息 → 承诺书 → 上传材料 → 提交, with a screenshot of each step."""
    page.goto(base_url + "/family/")
    shot(page, "family-page-before")
    page.get_by_test_id("add-member").click()

    expect(page).to_have_url(re.compile(r"/family/add/notice/$"))
    expect(page.locator(".stepper [aria-current=step] .step-mark")).to_have_text("1")
    page.locator("input[name=accept]").check()
    shot(page, "step-1-notice")
    submit_step(page)

    expect(page).to_have_url(re.compile(r"/family/add/member/$"))
    page.locator("input[name=relative_name]").fill(relative.name)
    page.locator("input[name=relative_id_number]").fill(relative.id_number)
    page.locator(f"input[name=relationship][value={relationship}]").check()
    shot(page, "step-2-member")
    submit_step(page)

    expect(page).to_have_url(re.compile(r"/family/add/letter/$"))
    expect(page.get_by_test_id("letter-text")).to_contain_text("个人承诺书")
    expect(page.get_by_test_id("letter-text")).to_contain_text(relative.name)
    draw_signature(page)
    page.locator("input[name=confirm]").check()
    shot(page, "step-3-letter-signed")
    submit_step(page)

    expect(page).to_have_url(re.compile(r"/family/add/upload/$"))
    page.locator("input[name=owner_register]").set_input_files(
        png_file("owner.png", register_page_png([f"姓名 {owner.name}", "与户主关系 户主"]))
    )
    page.locator("input[name=relative_register]").set_input_files(
        png_file("relative.png", register_page_png([f"姓名 {relative.name}", "与户主关系 子女"]))
    )
    shot(page, "step-4-upload")
    submit_step(page)

    expect(page).to_have_url(re.compile(r"/family/bindings/\d+/$"))
    binding = Binding.objects.get(owner=owner, relative=relative)
    expect(page.get_by_test_id("binding-state")).to_have_attribute("data-state", BindingState.UNDER_REVIEW)
    shot(page, "status-under-review")
    return binding


@pytest.fixture
def suzhou(db):
    """苏州市 under the shipped default policy. A transactional test empties the tables its neighbours
    leave behind, data migration included, so the policy is loaded here through C2 as an operator would."""
    call_command("load_policy", str(settings.BASE_DIR / "family" / "data" / "default_policy.json"), verbosity=0)
    return RegionFactory(code="320500", name="苏州市", province="320000")


@pytest.fixture
def owner_user(suzhou):
    person = InsuredPersonFactory(name="张伟", region=suzhou, birth="19800315", male=True)
    give_account(person, current="1200.00", historical="300.50")
    return UserFactory(username="owner", email="owner@example.com", person=person)


@pytest.mark.django_db(transaction=True)
def test_an_owner_binds_a_10_year_old_child_from_start_to_active(live_server, page, screenshot, owner_user, reviewer):
    owner = owner_user.person
    child = InsuredPersonFactory(
        name="张小红", region=owner.region, birth="20160501", male=False, insurance_type=InsuranceType.RESIDENT
    )
    log_in(page, live_server.url, "owner@example.com")

    binding = add_member_in_browser(page, live_server.url, child, Relation.CHILD, owner, screenshot)

    assert binding.letter_signed_name == "张伟"
    letter = binding.documents.get(kind=DocumentKind.COMMITMENT_LETTER)
    with letter.file.open("rb") as pdf:
        assert b"/Subtype /Image" in pdf.read()  # the signature drawn on the canvas is in the letter
    assert binding.documents.count() == 3

    binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)  # the reviewer UI comes later

    page.reload()
    expect(page.get_by_test_id("binding-state")).to_have_attribute("data-state", BindingState.ACTIVE)
    screenshot(page, "status-active")
    page.goto(live_server.url + "/family/")
    expect(page.get_by_test_id("owned-binding")).to_contain_text(child.masked_name)
    assert child.id_number not in page.content()  # R4
    screenshot(page, "family-page-after")


@pytest.mark.django_db(transaction=True)
def test_an_adult_parent_confirms_with_face_verification_and_sharing_becomes_active(
    live_server, page, browser: Browser, screenshot, owner_user, reviewer
):
    owner = owner_user.person
    parent = InsuredPersonFactory(
        name="张建国", region=owner.region, birth="19520303", male=True, insurance_type=InsuranceType.RESIDENT
    )
    UserFactory(username="parent", email="parent@example.com", person=parent)
    log_in(page, live_server.url, "owner@example.com")

    binding = add_member_in_browser(page, live_server.url, parent, Relation.PARENT, owner, screenshot)
    binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)
    page.reload()
    expect(page.get_by_test_id("binding-state")).to_have_attribute("data-state", BindingState.AWAITING_FACE)
    screenshot(page, "owner-sees-awaiting-face")

    # The parent, on their own phone: the message carries the consent link.
    link = Notification.objects.get(person=parent, kind="binding.consent_needed").link
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **PHONE)
    parent_page = context.new_page()
    try:
        log_in(parent_page, live_server.url, "parent@example.com")
        parent_page.goto(live_server.url + urlparse(link).path)
        expect(parent_page.get_by_test_id("local-provider")).to_be_visible()  # not identity proof: said so
        screenshot(parent_page, "parent-consent-page")
        parent_page.locator("input[name=agree]").check()
        parent_page.locator("input[name=photo]").set_input_files(png_file("face.png", make_face_png()))
        screenshot(parent_page, "parent-consent-photo-chosen")
        parent_page.locator("main form.form button.btn-primary[type=submit]").click()

        expect(parent_page.get_by_test_id("consent-done")).to_be_visible()
        screenshot(parent_page, "parent-consent-active")
        parent_page.goto(live_server.url + "/family/")
        expect(parent_page.get_by_test_id("joined")).to_contain_text(owner.masked_name)
        screenshot(parent_page, "parent-family-page")
    finally:
        context.close()

    binding.refresh_from_db()
    assert binding.state == BindingState.ACTIVE
    page.reload()
    expect(page.get_by_test_id("binding-state")).to_have_attribute("data-state", BindingState.ACTIVE)
    screenshot(page, "owner-sees-active")


@pytest.mark.django_db(transaction=True)
def test_refusals_and_a_failed_face_check_say_why_and_what_to_do_in_large_text(
    live_server, page, browser: Browser, screenshot, owner_user
):
    owner = owner_user.person
    log_in(page, live_server.url, "owner@example.com")
    page.goto(live_server.url + "/family/check/")
    page.get_by_role("button", name=re.compile("长辈模式|Large text")).click()  # 适老化
    page.locator("input[name=relative_id_number]").fill(make_id_number("320505", "19900101"))
    page.locator("input[name=relationship][value=spouse]").check()
    page.locator("main form.form button.btn-primary[type=submit]").click()
    expect(page.get_by_test_id("precheck-result")).to_contain_text("R11")
    expect(page.locator("body")).to_have_class("elderly")
    screenshot(page, "precheck-refused-large-text")

    # A parent waiting for their face check (set-up: the way there is the other tests' subject).
    parent = InsuredPersonFactory(
        name="张建国", region=owner.region, birth="19520303", insurance_type=InsuranceType.RESIDENT
    )
    UserFactory(username="parent", email="parent@example.com", person=parent)
    binding = Binding.objects.create(
        owner=owner,
        relative=parent,
        relationship=Relation.PARENT,
        method=BindingMethod.ONLINE_ID,
        state=BindingState.AWAITING_FACE,
        region_id=owner.region_id,
        face_deadline=timezone.now() + dt.timedelta(days=7),
        needs_face_verification=True,
    )
    BindingEvent.objects.create(binding=binding, actor_label="test set-up", from_state="", to_state=binding.state)
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **PHONE)
    parent_page = context.new_page()
    try:
        log_in(parent_page, live_server.url, "parent@example.com")
        parent_page.goto(live_server.url + "/family/")
        expect(parent_page.get_by_test_id("asked")).to_be_visible()
        screenshot(parent_page, "parent-asked-to-join")
        parent_page.get_by_test_id("asked").locator("a.btn-primary").click()
        parent_page.locator("input[name=agree]").check()
        parent_page.locator("input[name=photo]").set_input_files(png_file("dark.png", make_blank_png()))
        parent_page.locator("main form.form button.btn-primary[type=submit]").click()
        expect(parent_page.get_by_test_id("face-failed")).to_be_visible()
        screenshot(parent_page, "parent-face-check-failed")
    finally:
        context.close()
    binding.refresh_from_db()
    assert binding.state == BindingState.AWAITING_FACE

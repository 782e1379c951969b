"""Accessibility (ui.md, 适老化), the rest: the pages test_a11y.py and test_a11y_more.py do not reach. The end of
the transfer (its result, seen by both sides, and a refused receiver), the contribution's confirmation step,
the counter's binding steps after the owner's card with their result and the unbind page, the sharing records
seen by a relative, the citizen pages off the main paths (real name, pre-check, newborn, cancel and end
confirmations, e-card password pages, family-card add and end, the 404 page, allauth's account pages) and the
Django admin. Then two walks by keyboard only: the counter binding and the transfer, the focus visible on
every control it lands on.

Same rules and helpers as test_a11y.py: axe (AAA contrast, target size) and the 48 px check on each page in
zh, en and elderly mode; serious and critical violations, small targets, CSP refusals and script errors fail.
The admin is a staff tool built from Django's own templates: it gets the same run and the same rules (see
AXE_IMPORT_REFUSAL for the one thing let through there, which is axe's doing).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from accounts.models import InsuranceType, User
from cards.models import FamilyCardLink, FamilyCardLinkState, FamilyCardVerifiedBy
from family.models import BindingMethod, Relation
from family.services.keys import request_fingerprint
from family.services.payments import payment_make
from family.services.transfers import account_transfer_make
from tests.e2e.test_a11y import (
    MODES,
    SCREENSHOTS,
    _audit,
    _binding,
    _claim_card,
    _context,
    _watch,
)
from tests.e2e.test_a11y_more import COUNTER_PERSON_KEY, _session
from tests.factories import InstitutionFactory, InsuredPersonFactory, RegionFactory, UserFactory, give_account
from tests.family.wallet_setup import transfer_region_people

# allauth.account.internal.flows.login: the session's record of how (and when) the user authenticated.
AUTH_RECORDS_KEY = "account_authentication_methods"
AUTH_RECORDS_USER_KEY = "account_authentication_methods_user"
COUNTER_BIND_KEY = "counter_bind"  # cards.counter_views.BIND_KEY: the counter binding's draft
OWNER_CARD = "A12345678"
CHILD_CARD = "C34567890"
SPOUSE_CARD = "S23456789"
PARENT_CARD = "P45678901"
NEW_CARD = "D56789012"  # a child bound at the counter by keyboard

# The admin (staff only) is Django's own templates with ours in templates/admin/ and static/css/admin.css, which
# fix what axe and the 48 px check found there (contrast, underlined breadcrumbs, the search field's label,
# the filter links' size, inline tables that scrolled in a box, control sizes). One finding is axe's own doing
# and is let through on the signed-in /admin/ pages only: axe reads a stylesheet's @import (the admin's
# forms.css imports widgets.css, on change forms) by putting its text in a <style> element, which the CSP
# refuses ("Applying inline style violates ..."); the page itself has no inline style. Refusals before axe runs
# still fail everywhere.
AXE_IMPORT_REFUSAL = "CSP: Applying inline style violates"


@dataclass
class Visit:
    name: str  # screenshot a11y-<name>-*.png
    user: str  # a key of the sessions ("" for a visitor)
    path: str
    shows: str  # a selector the page must show, so a refusal or an empty state is not what axe checked
    prepare: Callable[[Page], None] | None = None  # a form to fill and send first
    status: int = 200
    lands: str = ""  # where the page ends up if not at ``path`` (a redirect)


@dataclass
class World:
    users: dict[str, User]
    sessions: dict[str, dict]  # user key -> what the session holds besides the login
    visits: list[Visit]


# --- forms sent before axe runs -----------------------------------------------------------------------------


def _contribution_details(page: Page) -> None:
    """缴费 step 1 filled in and sent: the confirmation step (nothing is paid yet)."""
    form = page.get_by_test_id("contribution-form")
    form.locator("input[name=binding]").first.check()
    form.locator("input[name=kind]").first.check()
    form.locator("input[name=amount]").fill("380.00")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()


def _wrong_receiver(page: Page) -> None:
    """转移人员信息录入 with a name that is not the family member's: the refusal, next to the fields."""
    page.fill("input[name=relative_name]", "王小二")
    page.fill("input[name=relative_id_number]", "110101199003074514")
    with page.expect_navigation():
        page.click("main form button[type=submit]")


# --- the world ------------------------------------------------------------------------------------------------


@pytest.fixture
def world(db) -> World:
    call_command("load_policy", str(settings.BASE_DIR / "family" / "data" / "default_policy.json"), verbosity=0)
    suzhou = RegionFactory(code="320500", name="苏州市", province="320000")
    owner = InsuredPersonFactory(name="张伟", region=suzhou, birth="19800315", male=True, card_number=OWNER_CARD)
    give_account(owner, current="1200.00", historical="300.50")
    child = InsuredPersonFactory(
        name="张小明", region=suzhou, birth="20150101", insurance_type=InsuranceType.RESIDENT, card_number=CHILD_CARD
    )
    spouse = InsuredPersonFactory(name="李娜", region=suzhou, birth="19820620", male=False, card_number=SPOUSE_CARD)
    parent = InsuredPersonFactory(
        name="张建国",
        region=suzhou,
        birth="19520303",
        male=True,
        insurance_type=InsuranceType.RESIDENT,
        card_number=PARENT_CARD,
    )
    citizen = UserFactory(username="owner", email="owner@example.com", person=owner)
    relative = UserFactory(username="parent", email="parent@example.com", person=parent)
    unverified = UserFactory(username="newcomer", email="newcomer@example.com", person=None)
    institution = InstitutionFactory(code="H320500001", name="苏州市立医院", region=suzhou)
    clerk = UserFactory(username="clerk", role=User.Role.CLERK, institution=institution)
    admin = UserFactory(username="admin", role=User.Role.ADMIN, is_staff=True, is_superuser=True)
    _claim_card(owner)

    child_binding = _binding(owner, child, "active", Relation.CHILD, activated_at=timezone.now())
    _binding(owner, parent, "active", Relation.PARENT, activated_at=timezone.now())
    under_review = _binding(owner, spouse, "under_review", Relation.SPOUSE)
    # A binding made at this counter, for its result page (R25).
    counter_made = _binding(
        owner,
        InsuredPersonFactory(name="张小红", region=suzhou, birth="20120808", insurance_type=InsuranceType.RESIDENT),
        "active",
        Relation.CHILD,
        activated_at=timezone.now(),
    )
    counter_made.method = BindingMethod.COUNTER
    counter_made.institution = institution
    counter_made.submitted_by = clerk
    counter_made.originals_seen = ["id_cards", "household_registers"]
    counter_made.save()

    # The owner manages the parent's card in 亲情服务 (R43), for the page that ends it.
    link = FamilyCardLink.objects.create(
        manager=owner,
        relative=parent,
        relationship=Relation.PARENT,
        state=FamilyCardLinkState.ACTIVE,
        verified_by=FamilyCardVerifiedBy.FACE,
        activated_at=timezone.now(),
    )

    # 亲情服务 links waiting for the face (16 or over) or the child's photo, and a child's card to claim (R43).
    little = counter_made.relative
    photo_link = FamilyCardLink.objects.create(
        manager=owner, relative=child, relationship=Relation.CHILD, state=FamilyCardLinkState.PENDING
    )
    claim_link = FamilyCardLink.objects.create(
        manager=owner,
        relative=little,
        relationship=Relation.CHILD,
        state=FamilyCardLinkState.ACTIVE,
        verified_by=FamilyCardVerifiedBy.PHOTO,
        activated_at=timezone.now(),
    )

    # The parent's visit paid from the owner's account: a row on the relative's side of the records (R35).
    payment_make(
        client=clerk,
        idempotency_key=uuid.uuid4().hex,
        request_hash="a11y-relative-record",
        patient=parent,
        card_number=PARENT_CARD,
        institution=institution,
        kind="medical",
        amount=Decimal("86.00"),
    )

    # 南昌 shares by transfer (R36): a transfer made to the daughter, for both sides of its result page.
    nanchang = transfer_region_people()
    daughter = nanchang["daughter"]
    transfer = account_transfer_make(
        client=nanchang["owner_user"],
        idempotency_key=uuid.uuid4().hex,
        request_hash=request_fingerprint(
            relative_name=daughter.name, relative_id_number=daughter.id_number, amount=Decimal("100.00")
        ),
        owner=nanchang["owner"],
        relative_name=daughter.name,
        relative_id_number=daughter.id_number,
        amount=Decimal("100.00"),
    )

    consent_link = FamilyCardLink.objects.create(
        manager=nanchang["owner"], relative=daughter, relationship=Relation.CHILD, state=FamilyCardLinkState.PENDING
    )

    # The counter's binding steps: the owner's card read, the spouse's card read, the relationship chosen.
    spouse_step = {
        "owner_id": owner.pk,
        "owner_label": f"{owner.masked_name} {owner.masked_id_number}",
        "owner_card": OWNER_CARD,
        "owner_read_by": "swipe",
    }
    relationship_step = {
        **spouse_step,
        "relative_id": spouse.pk,
        "relative_id_number": spouse.id_number,
        "relative_label": f"{spouse.masked_name} {spouse.masked_id_number}",
        "relative_name": spouse.name,
        "relative_card": SPOUSE_CARD,
        "relative_read_by": "swipe",
    }
    # Eligibility is checked on the confirm step; the pair is open (under review) so the page also says so.
    confirm_step = {**relationship_step, "relationship": Relation.SPOUSE}
    child_at_desk = {
        "person_id": child.pk,
        "card_number": CHILD_CARD,
        "qr_reference": "",
        "how": "swipe",
        "read_at": timezone.now().isoformat(),
    }
    users = {
        "citizen": citizen,
        "relative": relative,
        "newcomer": unverified,
        "clerk-relative": clerk,
        "clerk-relationship": clerk,
        "clerk-confirm": clerk,
        "clerk-unbind": clerk,
        "transferrer": nanchang["owner_user"],
        "receiver": nanchang["daughter_user"],
        "admin": admin,
    }
    sessions = {
        "clerk-relative": {COUNTER_BIND_KEY: spouse_step},
        "clerk-relationship": {COUNTER_BIND_KEY: relationship_step},
        "clerk-confirm": {COUNTER_BIND_KEY: confirm_step},
        "clerk-unbind": {COUNTER_PERSON_KEY: child_at_desk},
        # allauth asks for the password again before 2FA is set up: a password login is on record (see _fresh).
        "admin": {AUTH_RECORDS_USER_KEY: str(admin.pk), AUTH_RECORDS_KEY: []},
    }
    done = f"/family/wallet/transfer/done/{transfer.reference}/"
    visits = [
        # Transfers (R36): the result for the sender and for the receiver; a refused receiver; a region that
        # shares by payment, where the transfer pages say so instead.
        Visit("transfer-done", "transferrer", done, "[data-testid=transfer]"),
        Visit("transfer-received", "receiver", done, "[data-testid=transfer]"),
        Visit("transfer-receiver-refused", "transferrer", "/family/wallet/transfer/", ".error", _wrong_receiver),
        Visit("transfer-refused", "citizen", "/family/wallet/transfer/", "[data-testid=transfer-refused]"),
        # The contribution's confirmation step (R31); the progress page after it is in test_a11y_more.py.
        Visit(
            "contribution-confirm",
            "citizen",
            "/family/records/contribute/",
            "[data-testid=contribution-confirm]",
            _contribution_details,
        ),
        # The relative's side of the records: what the owner's account paid for them (R35).
        Visit("sharing-records-relative", "relative", "/family/records/", "[data-testid=record]"),
        # Citizen pages off the main paths.
        Visit("real-name", "newcomer", "/me/real-name/", "input[name=id_number]"),
        Visit("precheck", "citizen", "/family/check/", "main form"),
        Visit("newborn", "citizen", "/family/add/newborn/", "main form"),
        Visit("binding-cancel", "citizen", f"/family/bindings/{under_review.pk}/cancel/", "main form"),
        Visit("binding-end", "citizen", f"/family/bindings/{child_binding.pk}/end/", "main form"),
        Visit("card-password", "citizen", "/card/password/", "main form"),
        Visit("card-password-reset", "citizen", "/card/password/reset/", "main h1"),
        Visit("family-card-add", "citizen", "/card/family/add/", "main form"),
        Visit("family-card-end", "citizen", f"/card/family/{link.pk}/end/", "main form"),
        Visit("family-card-photo", "citizen", f"/card/family/{photo_link.pk}/photo/", "main form"),
        Visit("family-card-claim-child", "citizen", f"/card/family/{claim_link.pk}/claim/", "main form"),
        Visit("family-card-consent", "receiver", f"/card/family/{consent_link.pk}/consent/", "main form"),
        Visit("not-found", "citizen", "/no-such-page/", "main h1", status=404),
        Visit("forbidden", "citizen", "/counter/", "main h1", status=403),
        # allauth's account pages, in the portal's layout (templates/allauth).
        Visit("account-email", "citizen", "/accounts/email/", "main form"),
        Visit("account-password-change", "citizen", "/accounts/password/change/", "main form"),
        Visit("account-reauthenticate", "citizen", "/accounts/reauthenticate/", "main form"),
        Visit("account-logout", "citizen", "/accounts/logout/", "main form"),
        Visit("account-password-reset", "", "/accounts/password/reset/", "main form"),
        Visit("account-password-reset-done", "", "/accounts/password/reset/done/", "main h1"),
        Visit("account-confirm-email-sent", "", "/accounts/confirm-email/", "main h1"),
        Visit("account-inactive", "", "/accounts/inactive/", "main h1"),
        # Staff set up two-factor authentication here (STAFF_REQUIRE_MFA in production).
        Visit("mfa-index", "admin", "/accounts/2fa/", "main h1"),
        Visit("mfa-activate-totp", "admin", "/accounts/2fa/totp/activate/", "main form"),
        # The counter's binding steps after the owner's card (R22), the result, and unbind (R26).
        Visit("counter-bind-relative", "clerk-relative", "/counter/bind/relative/", "[data-testid=bind-relative-form]"),
        Visit(
            "counter-bind-relationship",
            "clerk-relationship",
            "/counter/bind/relationship/",
            "[data-testid=bind-relationship-form]",
        ),
        Visit("counter-bind-confirm", "clerk-confirm", "/counter/bind/confirm/", "[data-testid=eligibility]"),
        Visit(
            "counter-binding-result",
            "clerk-confirm",
            f"/counter/bindings/{counter_made.pk}/",
            "[data-testid=binding-result]",
        ),
        Visit("counter-unbind", "clerk-unbind", "/counter/unbind/", "[data-testid=unbind-form]"),
        # The Django admin: the login (allauth's, secure_admin_login), the index, a changelist and a change form
        # of models with Chinese labels.
        Visit("admin-login", "", "/admin/", "input[name=login]", lands="/accounts/login/"),
        Visit("admin-index", "admin", "/admin/", "#content-main"),
        Visit("admin-bindings", "admin", "/admin/family/binding/", "#result_list"),
        Visit("admin-binding", "admin", f"/admin/family/binding/{child_binding.pk}/change/", "#content-main form"),
        Visit("admin-persons", "admin", "/admin/accounts/insuredperson/", "#result_list"),
        Visit("admin-person", "admin", f"/admin/accounts/insuredperson/{owner.pk}/change/", "#content-main form"),
    ]
    return World(users=users, sessions=sessions, visits=visits)


def _fresh(extra: dict) -> dict:
    """The session's extras, with a password login recorded just now where the records are asked for."""
    if AUTH_RECORDS_KEY not in extra:
        return extra
    record = {"method": "password", "at": time.time(), "username": "admin", "reauthenticated": True}
    return {**extra, AUTH_RECORDS_KEY: [record]}


def _is_admin(path: str) -> bool:
    return path.startswith("/admin/")


@pytest.mark.django_db(transaction=True)
def test_axe_finds_no_serious_violation_on_the_remaining_pages(live_server, browser: Browser, world: World):
    base_url = live_server.url
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for mode, language, elderly in MODES:
        # A session is used up by some pages (the drafts change), so each mode gets fresh ones.
        User.objects.filter(pk__in=[user.pk for user in world.users.values()]).update(elderly_mode=elderly)
        sessions = {key: _session(user, _fresh(world.sessions.get(key, {}))) for key, user in world.users.items()}
        context = _context(browser, base_url, language=language, elderly=elderly, session_key=None)
        page = context.new_page()
        problems: list[str] = []
        _watch(page, problems)
        signed_in = None
        try:
            for visit in world.visits:
                if visit.user != signed_in:
                    context.clear_cookies(name=settings.SESSION_COOKIE_NAME)
                    if visit.user:
                        context.add_cookies(
                            [{"name": settings.SESSION_COOKIE_NAME, "value": sessions[visit.user], "url": base_url}]
                        )
                    signed_in = visit.user
                response = page.goto(base_url + visit.path)
                assert response is not None and response.status == visit.status, (mode, visit, response.status)
                assert page.url.startswith(base_url + (visit.lands or visit.path)), (mode, visit, page.url)
                page.wait_for_load_state("load")
                if visit.prepare:
                    visit.prepare(page)
                assert page.locator(visit.shows).count(), (mode, visit, "not shown")
                label = f"[{visit.user or 'visitor'}/{mode}] {visit.name}"
                admin = _is_admin(visit.path) and visit.user == "admin"
                _audit(
                    page,
                    label=label,
                    name=visit.name,
                    mode=mode,
                    problems=problems,
                    failures=failures,
                    axe_may_cause=AXE_IMPORT_REFUSAL if admin else None,  # see AXE_IMPORT_REFUSAL
                )
        finally:
            context.close()
    assert not failures, "\n".join(failures)


# --- keyboard only --------------------------------------------------------------------------------------------

FOCUS_STATE = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return {tag: "body", text: "", outline: false, shadow: false, visible: false};
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return {
        tag: el.tagName.toLowerCase(),
        name: el.name || "",
        text: (el.innerText || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 40),
        outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
        shadow: style.boxShadow !== "none",
        visible: box.width > 0 && box.height > 0,
    };
}"""


def _assert_focus_visible(page: Page, where: str) -> dict:
    state = page.evaluate(FOCUS_STATE)
    assert state["tag"] != "body", f"{where}: the focus is lost"
    assert state["visible"], f"{where}: the focused element is not shown: {state}"
    assert state["outline"] or state["shadow"], f"{where}: the focus is not visible on {state}"
    return state


def _tab_to(page: Page, selector: str, where: str, limit: int = 30) -> None:
    """Tab until ``selector`` has the focus; every control passed on the way shows the focus."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            _assert_focus_visible(page, where)
            return
        page.keyboard.press("Tab")
        _assert_focus_visible(page, where)
    raise AssertionError(f"{where}: {selector} not reached in {limit} Tab presses")


def _keyboard_context(browser: Browser, base_url: str, user: User, extra: dict | None = None):
    context = _context(browser, base_url, language="zh-hans", elderly=False, session_key=_session(user, extra or {}))
    page = context.new_page()
    problems: list[str] = []
    _watch(page, problems)
    return context, page, problems


@pytest.mark.django_db(transaction=True)
def test_the_counter_binding_is_done_by_keyboard_with_a_visible_focus(live_server, browser: Browser, world: World):
    """R22 by keyboard: swipe (typed) the owner's and the relative's cards, type the name, choose the relationship,
    tick the originals with Space, submit with Enter; the focus shows on every control it reaches."""
    base = live_server.url
    owner = world.users["citizen"].person
    InsuredPersonFactory(
        name="张小亮",
        region=owner.region,
        birth="20180606",
        insurance_type=InsuranceType.RESIDENT,
        card_number=NEW_CARD,
    )
    context, page, problems = _keyboard_context(browser, base, world.users["clerk-relative"])
    try:
        page.goto(base + "/counter/bind/owner/")
        expect(page.locator("input[name=owner_card]")).to_be_focused()
        _assert_focus_visible(page, "owner card")
        page.keyboard.type(f";{OWNER_CARD}=2512101?")
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/counter/bind/relative/$"))
        expect(page.locator("input[name=relative_card]")).to_be_focused()
        _assert_focus_visible(page, "relative card")
        page.keyboard.type(f";{NEW_CARD}=2512101?")
        page.keyboard.press("Tab")
        expect(page.locator("input[name=relative_name]")).to_be_focused()
        _assert_focus_visible(page, "relative name")
        page.keyboard.type("张小亮")
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/counter/bind/relationship/$"))
        _assert_focus_visible(page, "relationship")
        page.keyboard.press("3")  # 3: child (子女)
        expect(page.locator(f"input[name=relationship][value={Relation.CHILD}]")).to_be_checked()
        _assert_focus_visible(page, "relationship chosen")
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/counter/bind/confirm/$"))
        expect(page.get_by_test_id("eligibility")).to_have_attribute("data-eligible", "true")
        _tab_to(page, "input[name=originals_seen]", "originals")
        page.keyboard.press("Space")  # ID cards
        _tab_to(page, "input[name=originals_seen][value=household_registers]", "household registers")
        page.keyboard.press("Space")
        _tab_to(page, "input[name=identity_confirmed]", "identity confirmed")
        page.keyboard.press("Space")
        _tab_to(page, "[data-testid=bind-submit]", "submit")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("binding-result")).to_have_attribute("data-state", "active")
        # The result page: the card field for the next person has the focus again, and shows it.
        expect(page.locator("input[name=card]")).to_be_focused()
        _assert_focus_visible(page, "next card")
        page.screenshot(path=str(SCREENSHOTS / "a11y-keyboard-counter-bind-done.png"), full_page=True)
        assert not problems, problems
    finally:
        context.close()


@pytest.mark.django_db(transaction=True)
def test_the_transfer_is_done_by_keyboard_with_a_visible_focus(live_server, browser: Browser, world: World):
    """R36 by keyboard: receiver, amount, confirm, result; Tab, typing and Enter only, the focus always shown."""
    base = live_server.url
    owner_user = world.users["transferrer"]
    receiver = world.users["receiver"].person
    context, page, problems = _keyboard_context(browser, base, owner_user)
    try:
        page.goto(base + "/family/wallet/transfer/")
        _tab_to(page, "input[name=relative_name]", "receiver name")
        page.keyboard.type(receiver.name)
        _tab_to(page, "input[name=relative_id_number]", "receiver ID number")
        page.keyboard.type(receiver.id_number)
        _tab_to(page, "main form button[type=submit]", "next")
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/family/wallet/transfer/amount/$"))
        _tab_to(page, "input[name=amount]", "amount")
        page.keyboard.type("50")
        _tab_to(page, "main form button[type=submit]", "next")
        page.keyboard.press("Space")
        expect(page).to_have_url(re.compile(r"/family/wallet/transfer/confirm/$"))
        _tab_to(page, "main form button[type=submit]", "transfer")
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/family/wallet/transfer/done/[^/]+/$"))
        expect(page.get_by_test_id("transfer")).to_contain_text("¥50.00")
        _tab_to(page, "main a.btn", "after the transfer")
        page.screenshot(path=str(SCREENSHOTS / "a11y-keyboard-transfer-done.png"), full_page=True)
        assert not problems, problems
    finally:
        context.close()

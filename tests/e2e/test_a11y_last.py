"""Accessibility (ui.md, 适老化), the last pages: those that need state no other a11y test sets up. A child's
card password pages in 亲情服务 (the change, and the reset's two steps: the manager's face, then the new
password); the outside face vendor's start page (and its apology) and return page (passed, failed, waiting,
timed out); allauth's pages that need state (set a password, confirm an e-mail address by key, reset a
password by key and its done page, the MFA pages with TOTP set up: the code asked during a real login through
the page, reauthentication, deactivation, the recovery codes and their renewal); the 429 page after a real
rate limit, and the 500 page after a real exception.

Same rules and helpers as test_a11y.py: axe (AAA contrast, target size) and the 48 px check on each page in
zh, en and elderly mode; serious and critical violations, small targets, CSP refusals and script errors fail.
Sessions are written directly, with the flow's state in them.

The vendor pages need FACE_PROVIDER=vendor, the child's reset page the upload flow: the ``settings`` fixture
switches it per visit (pytest-django's live server runs in this process, so it sees the change; the vendor
pages answer 404 when it does not). The 500 page: no URL of the portal raises, so this module is the live
server's URL conf for the test (``settings.ROOT_URLCONF``): the portal's URLs and, under /a11y-500/, a view
that raises, answered by the portal's own handler500 through the whole middleware stack.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from allauth.account.forms import default_token_generator
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from allauth.account.utils import user_pk_to_url_str
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.core.management import call_command
from django.http import HttpRequest
from django.urls import include, path
from django.utils import timezone
from playwright.sync_api import Browser, Page

from accounts.face_vendor import face_vendor_callback, face_vendor_start
from accounts.models import FaceVendorSession, FaceVerification, InsuranceType, User
from cards.models import ECard, FamilyCardLink, FamilyCardLinkState, FamilyCardVerifiedBy
from family.models import Relation
from tests.e2e.test_a11y import (
    MODES,
    SCREENSHOTS,
    _audit,
    _claim_card,
    _context,
    _watch,
)
from tests.e2e.test_a11y_more import _session
from tests.e2e.test_a11y_rest import AUTH_RECORDS_KEY, AUTH_RECORDS_USER_KEY
from tests.factories import InsuredPersonFactory, RegionFactory, UserFactory, give_account
from tests.fake_face_vendor import APP_ID, SECRET, FakeFaceVendor

PASSWORD = "correct horse battery"  # tests.factories.UserFactory's
CHILD_RESET_KEY = "family_card_child_reset"  # cards.views.CHILD_RESET_SESSION_KEY: the manager's face, passed
VENDOR_QUERY = "?purpose=binding_consent&reference=42&next=/family/"


# --- the live server's URL conf for this test: the portal's, and one URL that raises ----------------------------


def _raise(request: HttpRequest):
    raise RuntimeError("a11y: the 500 page, rendered by the portal's handler500")


urlpatterns = [path("a11y-500/", _raise), path("", include("portal.urls"))]
handler404 = "portal.views.page_not_found"
handler500 = "portal.views.server_error"


@dataclass
class Visit:
    name: str  # screenshot a11y-<name>-*.png
    user: str  # a key of World.users ("" for a visitor)
    path: str
    shows: str  # a selector the page must show, so a refusal or an empty state is not what axe checked
    prepare: Callable[[Page], None] | None = None  # a form to fill and send first
    status: int = 200
    lands: str = ""  # where the page ends up if not at ``path`` (a redirect)
    vendor: bool = False  # FACE_PROVIDER=vendor while the page is open


@dataclass
class World:
    users: dict[str, User]
    sessions: dict[str, dict]  # user key -> what the session holds besides the login
    visits: list[Visit]


# --- forms sent before axe runs -----------------------------------------------------------------------------


def _expect_post(page: Page, status: int, send: Callable[[], None]) -> None:
    with page.expect_response(lambda response: response.request.method == "POST") as answer:
        send()
    assert answer.value.status == status, (page.url, answer.value.status)
    page.wait_for_load_state("load")


def _login_with_totp(page: Page) -> None:
    """A real login through the page by a user with TOTP: the password, then allauth asks for the code."""
    page.fill("input[name=login]", "mfa@example.com")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation(url="**/accounts/2fa/authenticate/"):
        page.click("main form button[type=submit]")


def _vendor_unavailable(page: Page) -> None:
    """The consent given, but the vendor is down: the apology (503)."""
    page.check("input[name=agree]")
    _expect_post(page, 503, lambda: page.click("main form button[type=submit]"))


def _precheck_too_often(page: Page) -> None:
    """能否共济 once more than FAMILY_CHECKS_PER_DAY (0 in this test): the portal's 429 page."""
    page.fill("input[name=relative_id_number]", "110101199003074514")
    page.check(f"input[name=relationship][value={Relation.CHILD}]")
    _expect_post(page, 429, lambda: page.click("main form button[type=submit]"))


# --- the world ------------------------------------------------------------------------------------------------


def _vendor_session(base_url: str, person, vendor: FakeFaceVendor, outcome: str = "") -> FaceVendorSession:
    """A check started at the (fake) vendor; with ``outcome``, decided by its signed callback."""
    session, _url = face_vendor_start(
        person=person, purpose="binding_consent", reference="42", return_url="/family/", portal_url=base_url + "/"
    )
    if outcome:
        callback = vendor.callback(
            session.vendor_session_id,
            decision=outcome,
            score=0.97 if outcome == "passed" else None,
            reason=None if outcome == "passed" else "liveness_failed",
        )
        face_vendor_callback(body=callback.body, headers=callback.headers)
    return session


@pytest.fixture
def vendor(settings):
    with FakeFaceVendor() as fake:
        settings.FACE_VENDOR_BASE_URL = fake.base_url
        settings.FACE_VENDOR_APP_ID = APP_ID
        settings.FACE_VENDOR_SECRET = SECRET
        settings.FACE_VENDOR_CALLBACK_MAX_AGE_SECONDS = 300
        yield fake


@pytest.fixture
def world(db, live_server, settings, vendor) -> World:
    call_command("load_policy", str(settings.BASE_DIR / "family" / "data" / "default_policy.json"), verbosity=0)
    suzhou = RegionFactory(code="320500", name="苏州市", province="320000")
    owner = InsuredPersonFactory(name="张伟", region=suzhou, birth="19800315", male=True)
    give_account(owner, current="1200.00", historical="300.50")
    child = InsuredPersonFactory(name="张小明", region=suzhou, birth="20150101", insurance_type=InsuranceType.RESIDENT)
    citizen = UserFactory(username="owner", email="owner@example.com", person=owner)

    # 亲情服务 (R43): the owner manages the child's card, claimed (with a password) through the guardian.
    _claim_card(child)
    card = ECard.objects.get(person=child)
    link = FamilyCardLink.objects.create(
        manager=owner,
        relative=child,
        relationship=Relation.CHILD,
        state=FamilyCardLinkState.ACTIVE,
        verified_by=FamilyCardVerifiedBy.PHOTO,
        activated_at=timezone.now(),
    )
    # The reset's second step: the manager's own face passed just now, kept in the session (R41).
    manager_face = FaceVerification.objects.create(
        person=owner,
        purpose="card_password_reset",
        reference=str(card.pk),
        provider="test",
        decision=FaceVerification.Decision.PASSED,
        score=0.99,
        detail="one_face",
    )

    # The outside face vendor (R50): checks started there, decided or not.
    settings.FACE_PROVIDER = "vendor"
    passed = _vendor_session(live_server.url, owner, vendor, "passed")
    failed = _vendor_session(live_server.url, owner, vendor, "failed")
    waiting = _vendor_session(live_server.url, owner, vendor)
    timed_out = _vendor_session(live_server.url, owner, vendor)
    FaceVendorSession.objects.filter(pk=timed_out.pk).update(created_at=timezone.now() - dt.timedelta(hours=2))
    settings.FACE_PROVIDER = "local"
    vendor.start_answer = (500, {"error": "down"})  # the vendor is down: the apology, nothing kept

    # allauth: a user without a usable password, an address to confirm, TOTP and recovery codes set up.
    no_password = UserFactory(username="nopassword", email="nopassword@example.com")
    no_password.set_unusable_password()
    no_password.save()
    unconfirmed = UserFactory(username="unconfirmed", email="unconfirmed@example.com")
    address = EmailAddress.objects.create(user=unconfirmed, email=unconfirmed.email, primary=True, verified=False)
    confirm_key = EmailConfirmationHMAC(address).key
    reset_uid = user_pk_to_url_str(citizen)
    reset_token = default_token_generator.make_token(citizen)
    mfa = UserFactory(username="mfa", email="mfa@example.com")
    EmailAddress.objects.create(user=mfa, email=mfa.email, primary=True, verified=True)
    TOTP.activate(mfa, generate_totp_secret())
    RecoveryCodes.activate(mfa)

    users = {
        "citizen": citizen,
        "citizen-face-passed": citizen,
        "nopassword": no_password,
        "mfa": mfa,
        "mfa-fresh": mfa,
    }
    sessions = {
        "citizen-face-passed": {CHILD_RESET_KEY: {"link": link.pk, "verification": manager_face.pk}},
        # allauth asks for a recent authentication before these MFA pages: a password login is on record.
        "mfa-fresh": {AUTH_RECORDS_USER_KEY: str(mfa.pk), AUTH_RECORDS_KEY: []},
    }
    vendor_return = "/face/vendor/return/{}/"
    visits = [
        # 亲情服务: a child's card password, by the manager (R43, R41).
        Visit("family-card-child-password", "citizen", f"/card/family/{link.pk}/password/", "[name=old_password]"),
        Visit(
            "family-card-child-reset-face",
            "citizen",
            f"/card/family/{link.pk}/password/reset/",
            "[data-testid=face-form]",
        ),
        Visit(
            "family-card-child-reset-new",
            "citizen-face-passed",
            f"/card/family/{link.pk}/password/reset/",
            "[name=new_password]",
        ),
        # 人脸识别 at the outside vendor (R50): the consent, the apology, and the page on the way back.
        Visit("face-vendor-start", "citizen", "/face/vendor/start/" + VENDOR_QUERY, "input[name=agree]", vendor=True),
        Visit(
            "face-vendor-unavailable",
            "citizen",
            "/face/vendor/start/" + VENDOR_QUERY,
            "main h1",
            _vendor_unavailable,
            vendor=True,
        ),
        Visit("face-vendor-passed", "citizen", vendor_return.format(passed.pk), "[data-testid=face-passed]"),
        Visit("face-vendor-failed", "citizen", vendor_return.format(failed.pk), "[data-testid=face-failed]"),
        Visit("face-vendor-waiting", "citizen", vendor_return.format(waiting.pk), "[data-testid=face-waiting]"),
        Visit("face-vendor-timed-out", "citizen", vendor_return.format(timed_out.pk), "[data-testid=face-timed-out]"),
        # allauth's pages that need state.
        Visit("account-password-set", "nopassword", "/accounts/password/set/", "main form"),
        Visit("account-confirm-email", "", f"/accounts/confirm-email/{confirm_key}/", "main form"),
        Visit(
            "account-password-reset-key",
            "",
            f"/accounts/password/reset/key/{reset_uid}-{reset_token}/",
            "input[name=password1]",
            lands=f"/accounts/password/reset/key/{reset_uid}-set-password/",
        ),
        Visit("account-password-reset-key-done", "", "/accounts/password/reset/key/done/", "main h1"),
        Visit("mfa-authenticate", "", "/accounts/login/", "input[name=code]", _login_with_totp),
        Visit("mfa-index-active", "mfa", "/accounts/2fa/", "main h1"),
        Visit("mfa-reauthenticate", "mfa", "/accounts/2fa/reauthenticate/", "input[name=code]"),
        Visit("mfa-deactivate-totp", "mfa-fresh", "/accounts/2fa/totp/deactivate/", "main form"),
        Visit("mfa-recovery-codes", "mfa-fresh", "/accounts/2fa/recovery-codes/", "main h1"),
        Visit("mfa-recovery-codes-generate", "mfa-fresh", "/accounts/2fa/recovery-codes/generate/", "main form"),
        # The error pages: a real rate limit (429) and a real exception (500).
        Visit("too-many", "citizen", "/family/check/", "main h1", _precheck_too_often),
        Visit("server-error", "citizen", "/a11y-500/", "main h1", status=500),
    ]
    return World(users=users, sessions=sessions, visits=visits)


def _fresh(extra: dict, username: str) -> dict:
    """The session's extras, with a password login recorded just now where the records are asked for."""
    if AUTH_RECORDS_KEY not in extra:
        return extra
    record = {"method": "password", "at": time.time(), "username": username, "reauthenticated": True}
    return {**extra, AUTH_RECORDS_KEY: [record]}


@pytest.mark.django_db(transaction=True)
def test_axe_finds_no_serious_violation_on_the_last_pages(live_server, browser: Browser, world: World, settings):
    base_url = live_server.url
    settings.ROOT_URLCONF = __name__  # /a11y-500/ raises; everything else is the portal's
    settings.FAMILY_CHECKS_PER_DAY = 0  # the first 能否共济 check is one too many: the 429 page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for mode, language, elderly in MODES:
        User.objects.filter(pk__in=[user.pk for user in world.users.values()]).update(elderly_mode=elderly)
        sessions = {
            key: _session(user, _fresh(world.sessions.get(key, {}), user.username)) for key, user in world.users.items()
        }
        context = _context(browser, base_url, language=language, elderly=elderly, session_key=None)
        page = context.new_page()
        problems: list[str] = []
        _watch(page, problems)
        signed_in = None
        try:
            for visit in world.visits:
                settings.FACE_PROVIDER = "vendor" if visit.vendor else "local"
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
                    if visit.user == "":
                        signed_in = None  # a login through the page: the next visit starts from its own cookie
                assert page.locator(visit.shows).count(), (mode, visit, "not shown")
                label = f"[{visit.user or 'visitor'}/{mode}] {visit.name}"
                _audit(page, label=label, name=visit.name, mode=mode, problems=problems, failures=failures)
        finally:
            context.close()
    assert not failures, "\n".join(failures)

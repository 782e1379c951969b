"""Authorization matrix (proof issue, security): every URL of the project, tried as every persona.

The URLs come from the resolver (tests/security/urlwalk.py says what is left out and why); the answers
expected are the table below, one row per URL name. A URL without a row fails the test: whoever adds a
URL adds its row, and so decides who may open it.

Personas (columns, in this order): anonymous; citizen A (the owner of every object tried); citizen B (a
stranger to A, trying A's objects: IDOR); a clerk of institution X (where A's counter binding and payment
were made) and of institution Y; a reviewer (holding A's application); an admin; a partner system (its
token in the Authorization header, on pages too, where it opens nothing).

What the cells mean:
- a status code, as answered;
- ``LOGIN``: a redirect to the login page (pages need a login; an API answers 401 instead);
- ``REAL_NAME``: a redirect to 实名认证 (a citizen page opened by a login that is not linked to an insured
  person: the staff personas are not);
- ``ADMIN_LOGIN``: the admin's own redirect to its login;
- ``"→/path"``: a redirect to that path (the flows' step guards).

House style (style.md, the access helpers): a stranger to an object gets 404, never 403, so one cannot tell
an object that exists from one that does not; a wrong role gets 403. POST-only views check the method
first (405 for GET); pages are tried with GET, POST-only views and APIs with their natural method and an
empty body ("allowed" is then often 400: the request reached validation). Every request is rolled back
afterwards, so each cell meets the same world. Then every URL is tried with the methods it does not take
(the second half of this file, its rule written there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.urls import reverse
from rest_framework.views import APIView

from tests.security.conftest import PERSONAS, attempt, persona_client
from tests.security.urlwalk import project_routes

LOGIN = "→login"
REAL_NAME = "→real-name"
ADMIN_LOGIN = "→admin-login"
MFA_SETUP = "→mfa-setup"


@dataclass(frozen=True)
class Row:
    method: str
    args: tuple[str, ...]
    expected: dict[str, int | str]
    body: str | None = None  # "json" sends {} as JSON; otherwise an empty form
    headers: dict[str, str] = field(default_factory=dict)


def row(method: str, args: tuple[str, ...], *answers, body: str | None = None, headers=None) -> Row:
    """One URL: the method tried, the world's ids in its arguments, and one answer per persona in order."""
    assert len(answers) == len(PERSONAS), f"{len(answers)} answers for {len(PERSONAS)} personas"
    return Row(method, args, dict(zip(PERSONAS, answers, strict=True)), body, headers or {})


def page(*answers, args=()) -> Row:
    return row("GET", args, *answers)


def post(*answers, args=(), body=None) -> Row:
    return row("POST", args, *answers, body=body)


def api(method: str, *answers, args=(), body="json", headers=None) -> Row:
    return row(method, args, *answers, body=body, headers=headers)


ALL_200 = (200,) * 8
KEY = {"HTTP_IDEMPOTENCY_KEY": "security-matrix-try"}
# Column order:          anonymous  citizen_a  citizen_b  clerk_x    clerk_y    reviewer   admin      partner
CITIZEN_PAGE = (LOGIN, 200, 200, REAL_NAME, REAL_NAME, REAL_NAME, REAL_NAME, LOGIN)
STAFF_REVIEW_PAGE = (LOGIN, 403, 403, 403, 403, 200, 200, LOGIN)
STAFF_REVIEW_PAGE_400 = (LOGIN, 403, 403, 403, 403, 400, 400, LOGIN)
COUNTER_PAGE = (LOGIN, 403, 403, 200, 200, 403, 403, LOGIN)


def review_to(path: str) -> tuple:
    return (LOGIN, 403, 403, 403, 403, f"→{path}", f"→{path}", LOGIN)


def counter_to(path: str) -> tuple:
    return (LOGIN, 403, 403, f"→{path}", f"→{path}", 403, 403, LOGIN)


CITIZEN_API_LIST = (401, 200, 200, 403, 403, 403, 403, 403)

MATRIX: dict[str, Row] = {
    # --- public -----------------------------------------------------------------------------------------
    "home": page(*ALL_200),
    "healthz": page(*ALL_200),
    "favicon.ico": page(*(301,) * 8),
    # Browsers post CSP violations here without a login or a token (portal/csp.py); the matrix's empty JSON body
    # is neither of the two report types: 415 to everyone.
    "csp_report": post(*(415,) * 8, body="json"),
    "set_language": post(*("→/",) * 8),
    "elderly_mode": post(*("→/",) * 8),
    "account_login": page(200, "→/", "→/", "→/", "→/", "→/", "→/", 200),
    "account_signup": page(200, "→/", "→/", "→/", "→/", "→/", "→/", 200),
    # Public on purpose: the contract of C3 and the API is published (the schema names no data).
    "api_schema": page(*ALL_200),
    "api_docs": page(*ALL_200),
    "admin:index": page(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200, 200, ADMIN_LOGIN),
    # --- the citizen's own pages ------------------------------------------------------------------------
    "real_name": page(LOGIN, "→/me/insurance/", "→/me/insurance/", 200, 200, 200, 200, LOGIN),
    "my_insurance": page(*CITIZEN_PAGE),
    "notifications": page(*CITIZEN_PAGE),
    "family_home": page(*CITIZEN_PAGE),
    "family_precheck": page(*CITIZEN_PAGE),
    "binding_add": page(LOGIN, "→/family/add/notice/", "→/family/add/notice/", *CITIZEN_PAGE[3:]),
    "binding_add_notice": page(*CITIZEN_PAGE),
    "binding_add_member": page(LOGIN, "→/family/add/notice/", "→/family/add/notice/", *CITIZEN_PAGE[3:]),
    "binding_add_letter": page(LOGIN, "→/family/add/notice/", "→/family/add/notice/", *CITIZEN_PAGE[3:]),
    "binding_add_upload": page(LOGIN, "→/family/add/notice/", "→/family/add/notice/", *CITIZEN_PAGE[3:]),
    "binding_add_restart": post(LOGIN, "→/family/add/notice/", "→/family/add/notice/", *CITIZEN_PAGE[3:]),
    "binding_newborn": page(*CITIZEN_PAGE),
    # A's application for the spouse: B is a stranger (404).
    "binding_detail": page(LOGIN, 200, 404, *CITIZEN_PAGE[3:], args=("binding",)),
    "binding_document_upload": post(LOGIN, "→/family/bindings/{binding}/", 404, *CITIZEN_PAGE[3:], args=("binding",)),
    "binding_cancel": page(LOGIN, 200, 404, *CITIZEN_PAGE[3:], args=("binding",)),
    "binding_end": page(LOGIN, 200, 404, *CITIZEN_PAGE[3:], args=("binding",)),
    # Only the relative confirms with their own face: the owner too gets the 404 of a stranger.
    "binding_consent": page(LOGIN, 404, 404, *CITIZEN_PAGE[3:], args=("binding",)),
    # The letter carries full ID numbers (R4's exception): the owner and the reviewers; a clerk is a wrong role.
    "binding_letter": page(LOGIN, 200, 404, 403, 403, 200, 200, LOGIN, args=("binding",)),
    "binding_newborn_id": post(LOGIN, 400, 404, *CITIZEN_PAGE[3:], args=("binding",)),
    # --- transfers and the wallet (R36, R37) ------------------------------------------------------------
    "wallet_home": page(*CITIZEN_PAGE),
    "wallet_open": post(LOGIN, "→/family/wallet/", "→/family/wallet/", *CITIZEN_PAGE[3:]),
    "wallet_send": page(*CITIZEN_PAGE),
    # A is the wallet holder of this transfer (from A's father, cross-province).
    "wallet_transfer_accept": post(LOGIN, "→/family/wallet/", 404, *CITIZEN_PAGE[3:], args=("wallet_transfer",)),
    "transfer_receiver": page(*CITIZEN_PAGE),
    # 苏州 shares by payment: the transfer steps explain that instead of moving money (R36).
    "transfer_amount": page(*CITIZEN_PAGE),
    "transfer_confirm": page(*CITIZEN_PAGE),
    "transfer_detail": page(LOGIN, 200, 404, *CITIZEN_PAGE[3:], args=("transfer",)),
    # --- sharing records and contributions (R35, R31) ---------------------------------------------------
    "family_records": page(*CITIZEN_PAGE),
    "family_records_export": page(*CITIZEN_PAGE),
    "contribution_start": page(*CITIZEN_PAGE),
    "contribution_detail": page(LOGIN, 200, 404, *CITIZEN_PAGE[3:], args=("contribution",)),
    # --- e-card and family card service (R40–R43) -------------------------------------------------------
    "card_home": page(*CITIZEN_PAGE),
    "card_qr_fragment": page(LOGIN, 200, 404, *CITIZEN_PAGE[3:]),
    "card_claim": page(LOGIN, "→/card/", "→/card/claim/region/", *CITIZEN_PAGE[3:]),
    "card_claim_region": page(LOGIN, "→/card/", 200, *CITIZEN_PAGE[3:]),
    "card_claim_agreement": page(LOGIN, "→/card/", "→/card/claim/region/", *CITIZEN_PAGE[3:]),
    "card_claim_face": page(LOGIN, "→/card/", "→/card/claim/region/", *CITIZEN_PAGE[3:]),
    "card_claim_password": page(LOGIN, "→/card/", "→/card/claim/region/", *CITIZEN_PAGE[3:]),
    "card_password_change": page(LOGIN, 200, "→/card/claim/", *CITIZEN_PAGE[3:]),
    "card_password_reset": page(LOGIN, 200, "→/card/claim/", *CITIZEN_PAGE[3:]),
    # A manages the child's card; B is a stranger to the link.
    "card_relative_qr": page(LOGIN, 200, 404, *CITIZEN_PAGE[3:], args=("link",)),
    "card_relative_qr_fragment": page(LOGIN, 200, 404, *CITIZEN_PAGE[3:], args=("link",)),
    "family_card_home": page(*CITIZEN_PAGE),
    "family_card_add": page(*CITIZEN_PAGE),
    "family_card_detail": page(LOGIN, 200, 404, *CITIZEN_PAGE[3:], args=("link",)),
    # Only the relative consents, and a child under 16 has no login of their own: 404 for the manager too.
    "family_card_consent": page(LOGIN, 404, 404, *CITIZEN_PAGE[3:], args=("link",)),
    "family_card_photo": page(LOGIN, "→/card/family/{link}/", 404, *CITIZEN_PAGE[3:], args=("link",)),
    "family_card_claim_child": page(LOGIN, "→/card/relatives/{link}/qr/", 404, *CITIZEN_PAGE[3:], args=("link",)),
    "family_card_end": page(LOGIN, 200, 404, *CITIZEN_PAGE[3:], args=("link",)),
    "family_card_document_upload": post(LOGIN, 400, 404, *CITIZEN_PAGE[3:], args=("link",)),
    # R37 with R43: A (the manager) opens the child's wallet; B is a stranger to the link.
    "family_card_wallet_open": post(LOGIN, "→/card/family/{link}/", 404, *CITIZEN_PAGE[3:], args=("link",)),
    "family_card_child_password_change": page(LOGIN, 200, 404, *CITIZEN_PAGE[3:], args=("link",)),
    "family_card_child_password_reset": page(LOGIN, 200, 404, *CITIZEN_PAGE[3:], args=("link",)),
    # --- 人脸识别 at the vendor -----------------------------------------------------------------------------
    # The upload flow is configured (FACE_BACKEND): the vendor's start page answers 404 to everyone.
    "face_vendor_start": page(LOGIN, 404, 404, *CITIZEN_PAGE[3:]),
    # The vendor's server calls it: no login, its HMAC signature is the credential (an unsigned call: 401).
    "face_vendor_callback": post(*(401,) * 8),
    "face_vendor_return": page(LOGIN, 200, 404, *CITIZEN_PAGE[3:], args=("face_session",)),
    # --- the counter (R22, R32, R33): clerks of any institution; objects of their own institution ---------
    "counter": page(*COUNTER_PAGE),
    "counter_read": post(*COUNTER_PAGE),
    # Without a card read first, the steps send the clerk back to the card field or the first step.
    "counter_next": post(*counter_to("/counter/")),
    "counter_bind": page(*counter_to("/counter/bind/owner/")),
    "counter_bind_restart": post(*counter_to("/counter/bind/owner/")),
    "counter_bind_owner": page(*COUNTER_PAGE),
    "counter_bind_relative": page(*counter_to("/counter/bind/owner/")),
    "counter_bind_relationship": page(*counter_to("/counter/bind/owner/")),
    "counter_bind_confirm": page(*counter_to("/counter/bind/owner/")),
    "counter_binding": page(LOGIN, 403, 403, 200, 404, 403, 403, LOGIN, args=("binding",)),
    "counter_unbind": page(*counter_to("/counter/")),
    "counter_charge": page(*counter_to("/counter/")),
    "counter_charge_confirm": post(*counter_to("/counter/")),
    "counter_receipt": page(LOGIN, 403, 403, 200, 404, 403, 403, LOGIN, args=("payment",)),
    # --- the reviewers' workbench (R24, R51) --------------------------------------------------------------
    "staff_review_queue": page(*STAFF_REVIEW_PAGE),
    # Reached: the decisions redirect to the queue, or answer 400 for the missing reason.
    "staff_review_take_next": post(*review_to("/staff/review/")),
    "staff_review_detail": page(*STAFF_REVIEW_PAGE, args=("binding",)),
    "staff_review_approve": post(*review_to("/staff/review/"), args=("binding",)),
    "staff_review_send_back": post(*STAFF_REVIEW_PAGE_400, args=("binding",)),
    "staff_review_refuse": post(*STAFF_REVIEW_PAGE_400, args=("binding",)),
    "staff_review_release": post(*review_to("/staff/review/"), args=("binding",)),
    "staff_review_page_image": page(*STAFF_REVIEW_PAGE, args=("document", "1")),
    "staff_family_card_queue": page(*STAFF_REVIEW_PAGE),
    # Reached: the world's card document belongs to an active link, so nothing is waiting and the queue opens.
    "staff_family_card_take_next": post(*review_to("/staff/family-cards/")),
    "staff_family_card_review": page(*STAFF_REVIEW_PAGE, args=("card_document",)),
    "staff_family_card_approve": post(*review_to("/staff/family-cards/{card_document}/"), args=("card_document",)),
    "staff_family_card_reject": post(*STAFF_REVIEW_PAGE_400, args=("card_document",)),
    "staff_family_card_page_image": page(*STAFF_REVIEW_PAGE, args=("card_document", "1")),
    "staff_audit_log": page(LOGIN, 403, 403, 403, 403, 403, 200, LOGIN),
    "staff_audit_export": page(LOGIN, 403, 403, 403, 403, 403, 200, LOGIN),
    # --- API (problem+json errors; 401 without credentials) ---------------------------------------------
    "api_me": api("GET", 401, 200, 200, 200, 200, 200, 200, 200),
    # C3: partners and staff; citizens use the pre-check page.
    "api_eligibility": api("POST", 401, 403, 403, 400, 400, 400, 400, 400),
    "api_bindings": api("GET", *CITIZEN_API_LIST),
    "api_binding_detail": api("GET", 401, 200, 404, 403, 403, 403, 403, 403, args=("binding",)),
    "api_binding_documents": api("POST", 401, 400, 404, 403, 403, 403, 403, 403, args=("binding",), body=None),
    "api_binding_cancel": api("POST", 401, 200, 404, 403, 403, 403, 403, 403, args=("binding",)),
    "api_binding_end": api("POST", 401, 409, 404, 403, 403, 403, 403, 403, args=("binding",)),
    "api_card_claim": api("POST", 401, 400, 400, 403, 403, 403, 403, 403),
    "api_card_me": api("GET", 401, 200, 404, 403, 403, 403, 403, 403),
    "api_card_qr": api("GET", 401, 200, 404, 403, 403, 403, 403, 403),
    "api_card_verify": api("POST", 401, 403, 403, 400, 400, 403, 403, 400),
    "api_payments": api("POST", 401, 403, 403, 400, 400, 403, 403, 400),
    "api_payment_quote": api("POST", 401, 403, 403, 400, 400, 403, 403, 400),
    # A's payment at X, charged by X's clerk: another institution's clerk and the partner get the 404 of none.
    "api_payment_detail": api("GET", 401, 403, 403, 200, 404, 403, 403, 404, args=("payment",)),
    # With a key and no amount: a full refund for X's clerk (rolled back); the others get the 404 of none.
    "api_payment_reverse": api("POST", 401, 403, 403, 201, 404, 403, 403, 404, args=("payment",), headers=KEY),
    "api_transfers": api("POST", 401, 400, 400, 403, 403, 403, 403, 403),
    "api_wallet": api("GET", *CITIZEN_API_LIST),
    "api_wallet_transfers": api("POST", 401, 400, 400, 403, 403, 403, 403, 403),
    "api_wallet_transfer_accept": api("POST", 401, 200, 404, 403, 403, 403, 403, 403, args=("wallet_transfer",)),
    "api_sharing_records": api("GET", *CITIZEN_API_LIST),
}


def outcome(tried, *, admin_login: str, login: str, real_name: str, mfa: str) -> int | str:
    """The cell a response fills: its status, or where it redirects to."""
    if tried.status in (302, 303) and tried.location:
        path = tried.location.split("?", 1)[0]
        for prefix, name in ((admin_login, ADMIN_LOGIN), (login, LOGIN), (real_name, REAL_NAME), (mfa, MFA_SETUP)):
            if path.startswith(prefix):
                return name
        return f"→{path}"
    return tried.status


def url_for(route, entry: Row, ids: dict) -> str:
    """The URL of a route, with the world's ids in its arguments; an unnamed route is its own address."""
    if route.key == route.route:
        return "/" + route.route
    return reverse(route.key, args=[ids.get(name, name) for name in entry.args])


def test_every_url_has_a_row():
    """A URL added to the project without a row here fails: its author decides who may open it."""
    keys = {route.key for route in project_routes()}
    missing = sorted(keys - MATRIX.keys())
    stale = sorted(MATRIX.keys() - keys)
    assert not missing, f"URLs without a row in the authorization matrix: {missing}"
    assert not stale, f"Rows for URLs that no longer exist: {stale}"


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
def test_authorization_matrix(world, persona):
    """Each URL answers this persona as its row says; every difference is listed at once."""
    client, headers = persona_client(world, persona)
    redirects = {
        "admin_login": reverse("admin:login"),
        "login": reverse("account_login"),
        "real_name": reverse("real_name"),
        "mfa": reverse("mfa_activate_totp"),
    }
    differences = []
    for route in project_routes():
        entry = MATRIX.get(route.key)
        if entry is None:
            continue  # test_every_url_has_a_row names it
        url = url_for(route, entry, world.ids)
        tried = attempt(client, entry.method, url, {**headers, **entry.headers}, body=entry.body)
        got = outcome(tried, **redirects)
        want = entry.expected[persona]
        if isinstance(want, str):
            want = want.format(**world.ids)
        if got != want:
            detail = tried.error or tried.body[:160].decode("utf-8", "replace").replace("\n", " ")
            differences.append(f"{entry.method} {url} [{route.key}]: expected {want!r}, got {got!r} {detail}")
    assert not differences, f"{persona}:\n" + "\n".join(differences)


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["clerk_x", "reviewer", "admin_user"])
def test_staff_without_totp_are_sent_to_set_it_up_on_every_staff_area(client, settings, request, persona):
    """The matrix runs with the test settings (STAFF_REQUIRE_MFA off); as deployed it is on, and then no staff
    area opens to a staff login without TOTP: /admin/, /staff/… and /counter/ all send it to the MFA setup."""
    settings.STAFF_REQUIRE_MFA = True
    client.force_login(request.getfixturevalue(persona))
    setup = reverse("mfa_activate_totp")
    for url in ("/admin/", "/staff/review/", "/staff/family-cards/", "/staff/audit/", "/counter/", "/counter/bind/"):
        response = client.get(url)
        assert (response.status_code, response.get("Location")) == (302, setup), url


# --- The methods a URL does not take ------------------------------------------------------------------------
# Each URL is also tried with every method of TRIED_METHODS it does not take, as one persona per kind of
# login (the reviewer's pages are the admin's too), with the same empty body and rollback as above.
#
# The rule: a method a URL does not take changes nothing (no row inserted, updated or deleted, counted by
# PostgreSQL before the rollback) and is answered 405, or with the refusal the persona meets anyway (401, 403,
# 404, a redirect to a login or to 实名认证): a view may check the login or the role before the method, and the
# API (DRF) always does. Pages refuse PUT, PATCH and DELETE before any view runs (portal/middleware.py): for
# them only 405 will do. The exceptions, each with its reason, are the sets below.
WRONG_METHOD_PERSONAS = ("anonymous", "citizen_a", "clerk_x", "admin", "partner")
TRIED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
REFUSALS = {401, 403, 404, LOGIN, REAL_NAME, ADMIN_LOGIN, MFA_SETUP}

# The pages of GET rows that are forms as well: POST is one of their methods, not a wrong one.
FORM_PAGES = {
    "account_login",
    "account_signup",
    "real_name",
    "family_precheck",
    "binding_add_notice",
    "binding_add_member",
    "binding_add_letter",
    "binding_add_upload",
    "binding_newborn",
    "binding_cancel",
    "binding_end",
    "binding_consent",
    "wallet_send",
    "transfer_receiver",
    "transfer_amount",
    "transfer_confirm",
    "contribution_start",
    "card_claim_region",
    "card_claim_agreement",
    "card_claim_face",
    "card_claim_password",
    "card_password_change",
    "card_password_reset",
    "family_card_add",
    "family_card_consent",
    "family_card_photo",
    "family_card_claim_child",
    "family_card_end",
    "family_card_child_password_change",
    "family_card_child_password_reset",
    "face_vendor_start",
    "counter_bind_owner",
    "counter_bind_relative",
    "counter_bind_relationship",
    "counter_bind_confirm",
    "counter_unbind",
    "counter_charge",
}
# Pages that only show something take GET and HEAD (``@require_safe``): a POST is 405. Django's own admin index
# does not check the method and answers a POST as a GET (writing nothing); in production a POST without the
# CSRF token is refused before the view. A view listed here that starts refusing POST makes this test say to
# take its name out.
POST_ANSWERED_AS_GET = {
    "admin:index",
}
# Django's set_language changes the language on POST only; a GET is sent back to the page it came from.
GET_SENT_BACK = {"set_language": "→/"}


def methods_taken(route, entry: Row) -> set[str]:
    """The methods a URL takes: an API view's own list; for a page, its row's method, and POST for a form."""
    view_class = getattr(route.callback, "cls", None)
    if view_class is not None and issubclass(view_class, APIView):
        return set(view_class(**route.callback.initkwargs).allowed_methods) & set(TRIED_METHODS)
    return {entry.method} | ({"POST"} if route.key in FORM_PAGES else set())


def wrong_method_problem(route, entry: Row, method: str, got, right_answer) -> str | None:
    """What is wrong with the answer ``got`` to a method the URL does not take; None when it is as expected."""
    is_api = route.route.startswith("api/v1/") or getattr(route.callback, "cls", None) is not None
    if method == "POST" and route.key in POST_ANSWERED_AS_GET:
        if got == right_answer:
            return None
        if got == 405 and right_answer not in REFUSALS:
            return f"now refuses POST (405): take {route.key!r} out of POST_ANSWERED_AS_GET"
        return f"expected {right_answer!r} (the GET answer, a known gap) or 405, got {got!r}"
    if method == "GET" and route.key in GET_SENT_BACK:
        return None if got == GET_SENT_BACK[route.key] else f"expected {GET_SENT_BACK[route.key]!r}, got {got!r}"
    if method in {"PUT", "PATCH", "DELETE"} and not is_api:
        return None if got == 405 else f"expected 405 (portal/middleware.py), got {got!r}"
    return None if got == 405 or got in REFUSALS else f"expected 405 or a refusal, got {got!r}"


def test_every_exception_names_a_url_and_no_form_is_an_exception():
    keys = {route.key for route in project_routes()}
    assert not (FORM_PAGES | POST_ANSWERED_AS_GET | GET_SENT_BACK.keys()) - keys
    assert not FORM_PAGES & POST_ANSWERED_AS_GET
    assert all(MATRIX[name].method == "GET" for name in FORM_PAGES | POST_ANSWERED_AS_GET)


@pytest.mark.django_db
@pytest.mark.parametrize("persona", WRONG_METHOD_PERSONAS)
def test_no_url_takes_a_method_it_does_not_expect(world, persona):
    """Every URL, tried with each method it does not take: the rule above, and nothing written."""
    client, headers = persona_client(world, persona)
    redirects = {
        "admin_login": reverse("admin:login"),
        "login": reverse("account_login"),
        "real_name": reverse("real_name"),
        "mfa": reverse("mfa_activate_totp"),
    }
    differences, tried_count = [], 0
    for route in project_routes():
        entry = MATRIX.get(route.key)
        if entry is None:
            continue  # test_every_url_has_a_row names it
        url = url_for(route, entry, world.ids)
        right_answer = entry.expected[persona]
        if isinstance(right_answer, str):
            right_answer = right_answer.format(**world.ids)
        for method in sorted(set(TRIED_METHODS) - methods_taken(route, entry)):
            tried = attempt(client, method, url, {**headers, **entry.headers}, body=entry.body, count_writes=True)
            tried_count += 1
            got = outcome(tried, **redirects)
            problem = wrong_method_problem(route, entry, method, got, right_answer)
            may_write = {}
            if tried.rows_written and method == "POST" and route.key in POST_ANSWERED_AS_GET:
                may_write = attempt(client, "GET", url, {**headers, **entry.headers}, count_writes=True).rows_written
            if tried.rows_written and tried.rows_written != may_write:
                problem = f"{problem or got!r}; wrote rows: {tried.rows_written}"
            if problem:
                detail = tried.error or tried.body[:120].decode("utf-8", "replace").replace("\n", " ")
                differences.append(f"{method} {url} [{route.key}]: {problem} {detail}")
    assert tried_count > 300
    assert not differences, f"{persona}:\n" + "\n".join(differences)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_write_count_sees_what_a_request_writes(world):
    """The control for the rule's "nothing written": A cancelling the application through the API is counted
    (and still rolled back)."""
    client, headers = persona_client(world, "citizen_a")
    url = reverse("api_binding_cancel", args=[world.ids["binding"]])

    tried = attempt(client, "POST", url, headers, body="json", count_writes=True)

    assert tried.status == 200
    assert tried.rows_written.get("family_binding") == 1
    assert tried.rows_written.get("family_bindingevent", 0) >= 1
    assert attempt(client, "POST", url, headers, body="json").status == 200  # the first was rolled back

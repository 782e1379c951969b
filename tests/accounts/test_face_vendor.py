"""人脸识别 at an outside vendor (R23, R40, R50, R52): redirect, then an HMAC-signed callback, recorded once.

The vendor is ``tests.fake_face_vendor.FakeFaceVendor``, a real HTTP server on 127.0.0.1: the portal
talks to it over HTTP exactly as to the real one. Nothing of the portal is mocked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.face import LocalFaceProvider, face_flow, face_provider, face_verify
from accounts.face_vendor import (
    SIGNATURE_HEADER,
    FaceVendorRefused,
    face_vendor_callback,
    face_vendor_sign,
    face_vendor_start,
    verify_callback_signature,
)
from accounts.models import FaceVendorSession, FaceVerification
from tests.face_images import make_face_png
from tests.fake_face_vendor import APP_ID, SECRET, FakeFaceVendor

START = "/face/vendor/start/"
CALLBACK = "/face/vendor/callback/"
QUERY = {"purpose": "binding_consent", "reference": "42", "next": "/family/bindings/42/consent/"}
# Tests whose writes must commit (another thread reads them). Serialized like the other concurrency
# tests: the flush afterwards then does not re-create content types under new ids, which would break
# the next serialized test (tests/cards, tests/family) in the same run.
committed = pytest.mark.django_db(transaction=True)


@pytest.fixture
def vendor(settings):
    """The fake vendor, running, and the portal configured to use it."""
    with FakeFaceVendor() as fake:
        settings.FACE_PROVIDER = "vendor"
        settings.FACE_VENDOR_BASE_URL = fake.base_url
        settings.FACE_VENDOR_APP_ID = APP_ID
        settings.FACE_VENDOR_SECRET = SECRET
        settings.FACE_VENDOR_CALLBACK_MAX_AGE_SECONDS = 300
        yield fake


@pytest.fixture
def alice(client, citizen_a):
    """Citizen A logged in, pages in English."""
    client.force_login(citizen_a)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def start(client, **overrides) -> object:
    return client.post(START, {**QUERY, "agree": "on", **overrides})


def started(client) -> FaceVendorSession:
    response = start(client)
    assert response.status_code == 302, response.content.decode()
    return FaceVendorSession.objects.get()


def problem(response) -> dict:
    assert response["Content-Type"] == "application/problem+json"
    return json.loads(response.content)


def assert_nothing_recorded(session: FaceVendorSession) -> None:
    session.refresh_from_db()
    assert FaceVerification.objects.count() == 0
    assert (session.state, session.decided_at, session.verification_id, session.callback_nonce) == (
        "started",
        None,
        None,
        None,
    )


# --- R50: consent before anything leaves the portal ----------------------------------------------


def test_r50_the_start_page_shows_the_consent_and_sends_nothing_yet(alice, vendor):
    response = alice.get(START + "?" + urlencode(QUERY))
    body = response.content.decode()
    assert response.status_code == 200
    assert "confirming a family-sharing binding" in body
    assert "deleted after the decision" in body and "The portal never receives it." in body
    assert "only the result" in body
    assert "not your name or ID number" in body
    assert 'name="agree"' in body and 'value="binding_consent"' in body and 'value="42"' in body
    assert vendor.start_requests == []
    assert FaceVendorSession.objects.count() == 0


def test_r50_without_consent_nothing_is_sent_to_the_vendor(alice, vendor):
    response = alice.post(START, QUERY)
    assert response.status_code == 200
    assert "Please read and accept how your face picture is used." in response.content.decode()
    assert vendor.start_requests == []
    assert FaceVendorSession.objects.count() == 0


def test_the_consent_form_submitted_as_rendered_goes_to_the_vendor(alice, vendor):
    """Functional: the hidden fields and the CSRF token are in the page, as a browser would send them."""
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = alice.cookies
    page = strict.get(START + "?" + urlencode(QUERY))
    token = strict.cookies[django_settings.CSRF_COOKIE_NAME].value
    assert "csrfmiddlewaretoken" in page.content.decode()
    response = strict.post(START, {**QUERY, "agree": "on", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"].startswith(vendor.base_url + "/h5/fv_")


def test_the_start_page_is_only_for_people_with_a_real_name(client, vendor, db):
    response = client.get(START + "?" + urlencode(QUERY))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(
    "query",
    [{}, {"purpose": "Binding Consent"}, {**QUERY, "reference": "42<script>"}, {**QUERY, "purpose": "x" * 41}],
    ids=["no-purpose", "purpose-shape", "reference-shape", "purpose-too-long"],
)
def test_a_broken_link_is_refused_and_nothing_is_sent(alice, vendor, query):
    response = alice.get(START + "?" + urlencode(query))
    assert response.status_code == 400
    assert "This verification link is incomplete." in response.content.decode()
    assert alice.post(START, {**query, "agree": "on"}).status_code == 400  # hidden fields changed by hand
    assert vendor.start_requests == []
    assert FaceVendorSession.objects.count() == 0


def test_the_vendor_pages_are_not_found_while_the_upload_flow_is_in_use(alice, vendor, settings):
    settings.FACE_PROVIDER = "local"
    assert alice.get(START + "?" + urlencode(QUERY)).status_code == 404
    assert start(alice).status_code == 404
    assert vendor.start_requests == []


# --- starting: only what the vendor needs ---------------------------------------------------------


def test_start_sends_only_a_reference_and_the_addresses(alice, vendor, citizen_a):
    response = start(alice)

    session = FaceVendorSession.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{vendor.base_url}/h5/{session.vendor_session_id}"
    assert (session.person, session.purpose, session.reference, session.state, session.return_url) == (
        citizen_a.person,
        "binding_consent",
        "42",
        "started",
        "/family/bindings/42/consent/",
    )
    [sent] = vendor.start_requests
    assert sent == {
        "app_id": APP_ID,
        "client_reference": str(session.pk),
        "callback_url": "http://testserver/face/vendor/callback/",
        "return_url": f"http://testserver/face/vendor/return/{session.pk}/",
        "image_retention_days": 0,  # R52
    }
    raw = json.dumps(sent, ensure_ascii=False)
    assert citizen_a.person.id_number not in raw and citizen_a.person.name not in raw
    assert "binding_consent" not in raw  # the purpose is ours, not the vendor's business


def test_the_name_and_id_number_go_to_the_vendor_only_when_configured_and_the_page_says_so(
    alice, vendor, citizen_a, settings
):
    settings.FACE_VENDOR_SEND_IDENTITY = True
    page = alice.get(START + "?" + urlencode(QUERY)).content.decode()
    assert "gives the service your name and ID number" in page
    start(alice)
    assert vendor.start_requests[0]["identity"] == {
        "name": citizen_a.person.name,
        "id_number": citizen_a.person.id_number,
    }


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
def test_the_return_address_is_always_a_page_of_this_site(alice, vendor, next_url):
    start(alice, next=next_url)
    assert FaceVendorSession.objects.get().return_url == "/"


def test_the_service_refuses_a_return_address_elsewhere(vendor, citizen_a):
    with pytest.raises(FaceVendorRefused) as refused:
        face_vendor_start(
            person=citizen_a.person,
            purpose="ecard_claim",
            reference="",
            return_url="https://evil.example/",
            portal_url="http://testserver/",
        )
    assert refused.value.code == "return_not_local"
    assert vendor.start_requests == []


def test_the_database_refuses_a_return_address_elsewhere(citizen_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        FaceVendorSession.objects.create(
            person=citizen_a.person, purpose="ecard_claim", vendor_session_id="fv_x", return_url="//evil.example/"
        )


@pytest.mark.parametrize(
    "answer",
    [
        (500, {"error": "down"}),
        (201, b"<html>not json</html>"),
        (201, {"redirect_url": "https://vendor.example/h5"}),  # no session id
        (201, {"session_id": "fv_1", "redirect_url": "javascript:alert(1)"}),
        (201, {"session_id": "fv_1", "redirect_url": "ftp://vendor.example/h5"}),
        (201, {"session_id": "../../etc", "redirect_url": "https://vendor.example/h5"}),
    ],
    ids=["server-error", "not-json", "no-session", "javascript-url", "ftp-url", "session-id-shape"],
)
def test_a_vendor_that_cannot_start_gets_an_apology_and_nothing_is_kept(alice, vendor, answer):
    vendor.start_answer = answer
    response = start(alice)
    assert response.status_code == 503
    assert "The face verification service cannot be reached now." in response.content.decode()
    assert FaceVendorSession.objects.count() == 0


def test_an_unreachable_vendor_gets_an_apology(alice, vendor, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    settings.FACE_VENDOR_BASE_URL = f"http://127.0.0.1:{free_port}"
    response = start(alice)
    assert response.status_code == 503
    assert FaceVendorSession.objects.count() == 0


def test_a_vendor_that_works_only_in_its_app_says_so(alice, vendor):
    vendor.start_answer = (201, {"session_id": "fv_app", "sdk_token": "tok"})
    response = start(alice)
    assert response.status_code == 503
    assert "only be used in the mobile app" in response.content.decode()


def test_the_sdk_token_is_handed_to_the_caller_and_not_stored(vendor, citizen_a):
    vendor.start_answer = (201, {"session_id": "fv_app", "sdk_token": "token-for-the-app"})
    session, redirect_url = face_vendor_start(
        person=citizen_a.person, purpose="ecard_claim", reference="", return_url="/", portal_url="http://testserver/"
    )
    assert (redirect_url, session.sdk_token) == (None, "token-for-the-app")
    stored = FaceVendorSession.objects.filter(pk=session.pk).values()[0]
    assert "token-for-the-app" not in json.dumps(stored, default=str)


def test_no_check_starts_after_the_days_failed_tries(alice, vendor, citizen_a):
    for _ in range(5):
        FaceVerification.objects.create(
            person=citizen_a.person, purpose="binding_consent", reference="42", provider="vendor", decision="failed"
        )
    response = start(alice)
    assert response.status_code == 429
    assert "No tries left today" in response.content.decode()
    assert vendor.start_requests == []


def test_without_a_secret_in_production_no_check_starts(vendor, citizen_a, settings):
    settings.DEBUG = False
    settings.FACE_VENDOR_SECRET = ""
    with pytest.raises(ImproperlyConfigured, match="FACE_VENDOR_SECRET"):
        face_vendor_start(
            person=citizen_a.person, purpose="ecard_claim", reference="", return_url="/", portal_url="http://x/"
        )
    assert vendor.start_requests == []
    with pytest.raises(ImproperlyConfigured, match="FACE_VENDOR_SECRET"):
        face_vendor_callback(body=b"{}", headers={SIGNATURE_HEADER: "t=1,v1=" + "0" * 64})


def test_without_a_secret_the_local_debug_set_up_still_works(vendor, citizen_a, settings):
    settings.DEBUG = True
    settings.FACE_VENDOR_SECRET = ""
    vendor.secret = "insecure-local-face-vendor-secret-never-used-in-production"
    session, _url = face_vendor_start(
        person=citizen_a.person, purpose="ecard_claim", reference="", return_url="/", portal_url="http://x/"
    )
    assert session.state == "started"


# --- the callback -----------------------------------------------------------------------------------


def test_a_signed_callback_records_the_outcome_once(alice, client, vendor, citizen_a):
    session = started(alice)
    anonymous = Client()  # the vendor's server: no login, no CSRF token

    response = vendor.callback(session.vendor_session_id, score=0.97).client_post(anonymous)

    assert response.status_code == 200
    assert response.json() == {"status": "recorded", "decision": "passed"}
    verification = FaceVerification.objects.get()
    assert (
        verification.person,
        verification.purpose,
        verification.reference,
        verification.provider,
        verification.decision,
        verification.score,
        verification.detail,
    ) == (citizen_a.person, "binding_consent", "42", "vendor", "passed", 0.97, "vendor_passed")
    session.refresh_from_db()
    assert (session.state, session.verification) == ("passed", verification)
    assert session.decided_at is not None and session.callback_nonce


@pytest.mark.parametrize(
    ("reason", "detail"),
    [
        (None, "vendor_failed"),
        ("liveness_failed", "vendor_liveness_failed"),
        ("cancelled", "vendor_cancelled"),
        ("something_new", "vendor_failed"),
    ],
)
def test_a_failed_outcome_is_recorded_with_the_reason_we_have_words_for(alice, vendor, reason, detail):
    session = started(alice)
    response = vendor.callback(session.vendor_session_id, decision="failed", score=None, reason=reason).client_post(
        Client()
    )
    assert response.status_code == 200
    verification = FaceVerification.objects.get()
    assert (verification.decision, verification.detail, verification.score) == ("failed", detail, None)
    session.refresh_from_db()
    assert session.state == "failed"


def _tampered(vendor, session_id):
    callback = vendor.callback(session_id, decision="failed")
    callback.body = callback.body.replace(b'"failed"', b'"passed"')
    return callback


def _signed_body(vendor, body: bytes, timestamp: int | None = None):
    callback = vendor.callback("unused")
    callback.body = body
    callback.headers[SIGNATURE_HEADER] = face_vendor_sign(
        body=body, secret=vendor.secret, timestamp=timestamp or int(time.time())
    )
    return callback


BAD_CALLBACKS = {
    "unsigned": (401, "signature_missing", lambda v, s: v.callback(s, signed=False)),
    "wrong-key": (401, "signature_invalid", lambda v, s: v.callback(s, secret="not-the-shared-secret")),
    "tampered-body": (401, "signature_invalid", _tampered),
    "late": (401, "signature_expired", lambda v, s: v.callback(s, timestamp=int(time.time()) - 301)),
    "future-dated": (401, "signature_in_future", lambda v, s: v.callback(s, timestamp=int(time.time()) + 120)),
    "malformed-signature": (
        401,
        "signature_malformed",
        lambda v, s: _with_header(v.callback(s), "t=now,v1=abc"),
    ),
    "signature-without-time": (
        401,
        "signature_malformed",
        lambda v, s: _with_header(v.callback(s), "v1=" + "a" * 64),
    ),
    "not-json": (400, "body_invalid", lambda v, s: _signed_body(v, b"decision=passed")),
    "json-list": (400, "body_invalid", lambda v, s: _signed_body(v, b'["passed"]')),
    "no-nonce": (
        400,
        "body_invalid",
        lambda v, s: _signed_body(v, json.dumps({"session_id": s, "decision": "passed"}).encode()),
    ),
    "unknown-decision": (400, "body_invalid", lambda v, s: v.callback(s, decision="maybe")),
    "score-not-a-number": (400, "body_invalid", lambda v, s: v.callback(s, extra={"score": "high"})),
    "unknown-session": (404, "unknown_session", lambda v, s: v.callback("fv_nobody")),
}


def _with_header(callback, value: str):
    callback.headers[SIGNATURE_HEADER] = value
    return callback


@pytest.mark.parametrize("kind", BAD_CALLBACKS)
def test_a_bad_callback_is_refused_and_nothing_is_recorded(alice, vendor, kind):
    status, code, make = BAD_CALLBACKS[kind]
    session = started(alice)

    response = make(vendor, session.vendor_session_id).client_post(Client())

    assert response.status_code == status
    body = problem(response)
    assert (body["status"], body["type"]) == (status, f"/api/problems/{code}/")
    assert body["title"] and body["detail"]
    if status == 401:
        assert "Signature" in response["WWW-Authenticate"]
    assert_nothing_recorded(session)


def test_a_replayed_callback_is_refused(alice, vendor):
    session = started(alice)
    callback = vendor.callback(session.vendor_session_id)
    assert callback.client_post(Client()).status_code == 200

    again = callback.client_post(Client())

    assert again.status_code == 409
    assert problem(again)["type"] == "/api/problems/replayed/"
    assert FaceVerification.objects.count() == 1


def test_a_second_decision_for_a_decided_session_is_refused(alice, vendor):
    session = started(alice)
    assert vendor.callback(session.vendor_session_id, decision="passed").client_post(Client()).status_code == 200

    second = vendor.callback(session.vendor_session_id, decision="failed").client_post(Client())

    assert second.status_code == 409
    assert problem(second)["type"] == "/api/problems/already_decided/"
    session.refresh_from_db()
    assert session.state == "passed"
    assert list(FaceVerification.objects.values_list("decision", flat=True)) == ["passed"]


def test_an_outcome_after_the_session_timed_out_is_refused(alice, vendor, time_machine):
    time_machine.move_to(timezone.now(), tick=True)
    session = started(alice)
    time_machine.shift(dt.timedelta(minutes=31))

    response = vendor.callback(session.vendor_session_id).client_post(Client())

    assert response.status_code == 409
    assert problem(response)["type"] == "/api/problems/session_expired/"
    session.refresh_from_db()
    assert (session.state, session.verification_id) == ("expired", None)
    assert FaceVerification.objects.count() == 0


def test_r52_nothing_of_a_picture_in_the_callback_is_kept(alice, vendor):
    session = started(alice)
    picture = make_face_png().hex()
    response = vendor.callback(session.vendor_session_id, extra={"image": picture, "name": "张伟"}).client_post(
        Client()
    )
    assert response.status_code == 200
    for model in (FaceVerification, FaceVendorSession):
        for row in model.objects.values():
            stored = json.dumps(row, default=str, ensure_ascii=False)
            assert picture[:64] not in stored and "张伟" not in stored


def test_the_callback_takes_only_post(client, vendor, db):
    assert client.get(CALLBACK).status_code == 405


def test_a_huge_callback_is_refused_before_it_is_read(client, vendor, db):
    response = client.post(CALLBACK, data=b"{" + b" " * 70_000 + b"}", content_type="application/json")
    assert response.status_code == 413
    assert problem(response)["type"] == "/api/problems/body_too_large/"


# --- the signature on its own -------------------------------------------------------------------------


NOW = dt.datetime(2025, 3, 14, 9, 0, tzinfo=dt.UTC)
BODY = b'{"session_id":"fv_1","nonce":"0123456789abcdef","decision":"passed"}'


def verify(header: str, body: bytes = BODY, max_age: int = 300) -> dict:
    return verify_callback_signature(
        body=body, headers={"x-face-signature": header}, secret=SECRET, now=NOW, max_age=max_age
    )


def test_the_signature_is_hmac_sha256_over_time_dot_body():
    import hashlib
    import hmac

    stamp = int(NOW.timestamp())
    digest = hmac.new(SECRET.encode(), f"{stamp}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert verify(f"t={stamp},v1={digest}")["decision"] == "passed"
    assert verify(f"t={stamp}, v1={digest.upper()}")["decision"] == "passed"


def test_during_a_key_change_either_signature_is_taken():
    stamp = int(NOW.timestamp())
    old = face_vendor_sign(body=BODY, secret="the-old-key", timestamp=stamp).split(",")[1]
    new = face_vendor_sign(body=BODY, secret=SECRET, timestamp=stamp).split(",")[1]
    assert verify(f"t={stamp},{old},{new}")["nonce"] == "0123456789abcdef"


@pytest.mark.parametrize(
    ("age", "accepted"), [(300, True), (301, False), (-60, True), (-61, False)], ids=["300s", "301s", "+60s", "+61s"]
)
def test_a_callback_is_taken_for_max_age_seconds_and_a_minute_of_clock_skew(age, accepted):
    header = face_vendor_sign(body=BODY, secret=SECRET, timestamp=int(NOW.timestamp()) - age)
    if accepted:
        assert verify(header)["session_id"] == "fv_1"
    else:
        with pytest.raises(FaceVendorRefused) as refused:
            verify(header)
        assert refused.value.status == 401


def test_the_time_is_signed_too():
    header = face_vendor_sign(body=BODY, secret=SECRET, timestamp=int(NOW.timestamp()) - 1000)
    moved = header.replace(f"t={int(NOW.timestamp()) - 1000}", f"t={int(NOW.timestamp())}")
    with pytest.raises(FaceVendorRefused) as refused:
        verify(moved)
    assert refused.value.code == "signature_invalid"


def test_an_empty_key_is_never_used(settings):
    with pytest.raises(ImproperlyConfigured):
        verify_callback_signature(body=BODY, headers={}, secret="", now=NOW, max_age=300)


# --- the person comes back -------------------------------------------------------------------------


def test_the_return_page_shows_the_recorded_outcome_and_leads_on(alice, vendor):
    session = started(alice)
    vendor.callback(session.vendor_session_id).client_post(Client())

    body = alice.get(reverse("face_vendor_return", args=[session.pk])).content.decode()

    assert 'data-testid="face-passed"' in body
    assert "The verification service confirmed your face." in body
    assert 'href="/family/bindings/42/consent/"' in body


def test_the_return_page_believes_the_callback_not_the_address(alice, vendor):
    session = started(alice)
    vendor.callback(session.vendor_session_id, decision="failed", reason="liveness_failed").client_post(Client())

    url = reverse("face_vendor_return", args=[session.pk]) + "?result=passed&decision=passed"
    body = alice.get(url).content.decode()

    assert 'data-testid="face-failed"' in body and 'data-testid="face-passed"' not in body
    assert "live person" in body
    retry = START + "?" + urlencode({"purpose": "binding_consent", "reference": "42", "next": QUERY["next"]})
    assert retry.replace("&", "&amp;") in body


def test_the_return_page_waits_for_a_late_callback(alice, vendor):
    session = started(alice)
    body = alice.get(reverse("face_vendor_return", args=[session.pk])).content.decode()
    # The citizen checks again with a button: a page that reloads itself is a timing trap (WCAG 2.2.1, axe).
    assert 'data-testid="face-waiting"' in body and 'http-equiv="refresh"' not in body
    assert reverse("face_vendor_return", args=[session.pk]) in body


def test_the_return_page_says_when_the_session_timed_out(alice, vendor, time_machine):
    time_machine.move_to(timezone.now(), tick=True)
    session = started(alice)
    time_machine.shift(dt.timedelta(minutes=31))
    body = alice.get(reverse("face_vendor_return", args=[session.pk])).content.decode()
    assert 'data-testid="face-timed-out"' in body and 'http-equiv="refresh"' not in body


def test_a_stranger_gets_404_for_someone_elses_return_page(alice, vendor, citizen_b):
    session = started(alice)
    stranger = Client()
    stranger.force_login(citizen_b)
    assert stranger.get(reverse("face_vendor_return", args=[session.pk])).status_code == 404


def test_the_return_page_needs_a_login(alice, vendor):
    session = started(alice)
    response = Client().get(reverse("face_vendor_return", args=[session.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- the local upload flow is unchanged ----------------------------------------------------------


def test_face_flow_tells_pages_upload_or_redirect(settings):
    settings.FACE_PROVIDER = "local"
    assert face_flow() == "upload"
    settings.FACE_PROVIDER = "vendor"
    assert face_flow() == "redirect"
    settings.FACE_PROVIDER = "nobody"
    with pytest.raises(ImproperlyConfigured, match="nobody"):
        face_flow()


def test_face_provider_refuses_the_redirect_vendor_and_says_what_to_do(settings):
    settings.FACE_PROVIDER = "vendor"
    with pytest.raises(ImproperlyConfigured, match="face_flow"):
        face_provider()


def test_the_local_upload_flow_records_as_before(settings, citizen_a):
    settings.FACE_PROVIDER = "local"
    assert isinstance(face_provider(), LocalFaceProvider)
    verification = face_verify(
        person=citizen_a.person, purpose="binding_consent", reference="42", image_bytes=make_face_png()
    )
    verification.refresh_from_db()
    assert (verification.provider, verification.decision, verification.detail) == ("local", "passed", "one_face")
    assert FaceVendorSession.objects.count() == 0


# --- over real HTTP: portal (live server) → vendor → callback → back -------------------------------


class Browser:
    """Follows redirects between the portal and the vendor, keeping the portal's cookies (no JavaScript)."""

    class _Manual(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    def __init__(self, portal_url: str, cookies: dict[str, str]) -> None:
        self.portal = portal_url
        self.cookies = dict(cookies)
        self.opener = urllib.request.build_opener(self._Manual)
        self.visited: list[str] = []

    def open(self, url: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        data = urlencode(form).encode() if form is not None else None
        for _hop in range(10):
            self.visited.append(url)
            ours = url.startswith(self.portal)
            headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if ours else {}
            request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
            try:
                response = self.opener.open(request, timeout=15)
            except urllib.error.HTTPError as error:
                response = error
            status, answer_headers, body = response.status, response.headers, response.read()
            if ours:
                for line in answer_headers.get_all("Set-Cookie") or []:
                    jar = SimpleCookie(line)
                    self.cookies.update({name: morsel.value for name, morsel in jar.items()})
            if status in (301, 302, 303):
                url, data = urljoin(url, answer_headers["Location"]), None
                continue
            return status, url, body.decode()
        raise AssertionError("too many redirects")


@committed
def test_over_http_the_person_goes_to_the_vendor_and_comes_back_verified(live_server, vendor, citizen_a):
    vendor.outcome = "passed"
    login = Client()
    login.force_login(citizen_a)
    browser = Browser(
        live_server.url,
        {
            django_settings.SESSION_COOKIE_NAME: login.cookies[django_settings.SESSION_COOKIE_NAME].value,
            django_settings.LANGUAGE_COOKIE_NAME: "en",
        },
    )

    status, _url, page = browser.open(f"{live_server.url}{START}?{urlencode(QUERY)}")
    assert status == 200 and "How your face picture is used" in page
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    status, final_url, page = browser.open(
        f"{live_server.url}{START}", {**QUERY, "agree": "on", "csrfmiddlewaretoken": token}
    )

    session = FaceVendorSession.objects.get()
    assert [urlsplit(u).netloc for u in browser.visited[-3:]] == [
        urlsplit(live_server.url).netloc,  # the start
        urlsplit(vendor.base_url).netloc,  # the vendor's capture page
        urlsplit(live_server.url).netloc,  # back on the portal
    ]
    assert urlsplit(final_url).path == f"/face/vendor/return/{session.pk}/"
    assert parse_qs(urlsplit(final_url).query) == {"result": ["passed"]}
    assert status == 200 and 'data-testid="face-passed"' in page
    assert vendor.callback_answers == [(200, {"status": "recorded", "decision": "passed"})]
    verification = FaceVerification.objects.get()
    assert (verification.provider, verification.decision, verification.person_id) == (
        "vendor",
        "passed",
        citizen_a.person_id,
    )

    # The vendor's callback, sent again over HTTP: refused, still one outcome.
    [sent] = vendor.sent_callbacks
    status, answer = sent.post(live_server.url + CALLBACK)
    assert (status, answer["type"]) == (409, "/api/problems/replayed/")
    assert FaceVerification.objects.count() == 1


# --- PostgreSQL: replays racing each other ---------------------------------------------------------


def _race(callbacks, monkeypatch) -> tuple[list[str], int]:
    """Send the callbacks at once, each in its own thread and connection, all past the reads before any writes.

    The barrier sits after each outcome row is written and before the session is updated: both copies
    have passed every check in Python, so only the database can stop the second.
    """
    barrier = threading.Barrier(len(callbacks), timeout=10)
    create = FaceVerification.objects.create
    reached: list[int] = []

    def create_then_wait(**fields):
        row = create(**fields)
        reached.append(1)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()  # broken only when a copy never got here: then ``reached`` tells
        return row

    monkeypatch.setattr(FaceVerification.objects, "create", create_then_wait)
    results: list[str] = []

    def send(callback):
        try:
            face_vendor_callback(body=callback.body, headers=callback.headers)
            results.append("recorded")
        except FaceVendorRefused as error:
            results.append(f"{error.status} {error.code}")
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(callback,)) for callback in callbacks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(results), len(reached)


def _session(vendor, person) -> FaceVendorSession:
    session, _url = face_vendor_start(
        person=person, purpose="binding_consent", reference="42", return_url="/", portal_url="http://testserver/"
    )
    return session


@pytest.mark.postgres
@committed
def test_two_copies_of_a_callback_racing_record_one_outcome(vendor, citizen_a, monkeypatch):
    session = _session(vendor, citizen_a.person)
    callback = vendor.callback(session.vendor_session_id)

    results, reached = _race([callback, callback], monkeypatch)

    assert reached == 2  # both got past every check in Python
    assert results == ["409 already_decided", "recorded"]
    assert FaceVerification.objects.count() == 1
    session.refresh_from_db()
    assert session.state == "passed" and session.verification_id == FaceVerification.objects.get().pk


@pytest.mark.postgres
@committed
def test_a_nonce_used_twice_at_once_decides_only_once(vendor, citizen_a, monkeypatch):
    first, second = _session(vendor, citizen_a.person), _session(vendor, citizen_a.person)
    nonce = "the-same-nonce-0123456789"

    results, reached = _race(
        [vendor.callback(first.vendor_session_id, nonce=nonce), vendor.callback(second.vendor_session_id, nonce=nonce)],
        monkeypatch,
    )

    assert reached == 2
    assert results == ["409 replayed", "recorded"]
    assert FaceVerification.objects.count() == 1
    assert sorted(FaceVendorSession.objects.values_list("state", flat=True)) == ["passed", "started"]


@pytest.mark.postgres
def test_the_database_keeps_a_decision_consistent(citizen_a):
    verification = FaceVerification.objects.create(
        person=citizen_a.person, purpose="ecard_claim", provider="vendor", decision="passed"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        FaceVendorSession.objects.create(
            person=citizen_a.person, purpose="ecard_claim", vendor_session_id="fv_a", state="passed"
        )  # passed without an outcome, a time or a nonce
    with pytest.raises(IntegrityError), transaction.atomic():
        FaceVendorSession.objects.create(
            person=citizen_a.person,
            purpose="ecard_claim",
            vendor_session_id="fv_b",
            verification=verification,
        )  # still started, yet with an outcome
    decided = {"state": "passed", "decided_at": timezone.now(), "callback_nonce": "nonce-0123456789"}
    FaceVendorSession.objects.create(
        person=citizen_a.person, purpose="ecard_claim", vendor_session_id="fv_c", verification=verification, **decided
    )
    other = FaceVerification.objects.create(
        person=citizen_a.person, purpose="ecard_claim", provider="vendor", decision="passed"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        FaceVendorSession.objects.create(
            person=citizen_a.person, purpose="ecard_claim", vendor_session_id="fv_d", verification=other, **decided
        )  # the same nonce again

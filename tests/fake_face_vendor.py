"""A small face vendor for the tests: a real HTTP server on 127.0.0.1, in a thread, on a free port.

It plays the outside verification service (the only thing faked in the vendor tests):

- ``POST /sessions`` checks the portal's app id and HMAC signature, remembers the request, and answers a
  session id and the address of its capture page (``redirect_url``), or only an app SDK token, or an
  error, as the test sets with ``start_answer``.
- ``GET /h5/<session id>`` is the capture page. With ``outcome`` set ("passed" or "failed") it decides at
  once: it posts the signed callback to the portal's callback address (its answer is kept in
  ``callback_answers``) and sends the browser back to the portal's return address.

``callback`` builds the signed (or deliberately badly signed) callbacks that tests send themselves,
by HTTP to a live server (``post``) or through Django's test client (``client_post``).
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from accounts.face_vendor import (
    APP_ID_HEADER,
    SIGNATURE_HEADER,
    FaceVendorRefused,
    face_vendor_sign,
    verify_callback_signature,
)

APP_ID = "portal-test-app"
SECRET = "test-face-vendor-secret-0123456789abcdef"


@dataclass
class SignedCallback:
    """A callback as the vendor sends it: the exact body bytes and the headers."""

    body: bytes
    headers: dict[str, str]

    def post(self, url: str) -> tuple[int, dict[str, Any]]:
        """Send it over HTTP (to ``live_server``); the status and the JSON answer."""
        request = urllib.request.Request(url, data=self.body, method="POST", headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def client_post(self, client, path: str = "/face/vendor/callback/"):
        """Send it through Django's test client."""
        headers = {k: v for k, v in self.headers.items() if k.lower() != "content-type"}
        return client.post(path, data=self.body, content_type="application/json", headers=headers)


@dataclass
class FakeFaceVendor:
    """The vendor's side of the contract; ``with FakeFaceVendor() as vendor:`` runs it for one test."""

    app_id: str = APP_ID
    secret: str = SECRET
    outcome: str | None = None
    # (status, JSON document or raw bytes) for POST /sessions; None: a session with a capture page.
    start_answer: tuple[int, Any] | None = None
    start_requests: list[dict[str, Any]] = field(default_factory=list)
    start_headers: list[dict[str, str]] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent_callbacks: list[SignedCallback] = field(default_factory=list)
    callback_answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeFaceVendor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- callbacks -------------------------------------------------------------------------------

    def callback(
        self,
        session_id: str,
        *,
        decision: str = "passed",
        score: float | None = 0.97,
        reason: str | None = None,
        nonce: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
        signed: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> SignedCallback:
        """A callback for a session; by default validly signed now with a fresh nonce."""
        document: dict[str, Any] = {
            "session_id": session_id,
            "nonce": nonce or secrets.token_hex(16),
            "decision": decision,
            "score": score,
        }
        if reason is not None:
            document["reason"] = reason
        document.update(extra or {})
        body = json.dumps(document).encode()
        headers = {"Content-Type": "application/json"}
        if signed:
            stamp = int(time.time()) if timestamp is None else timestamp
            headers[SIGNATURE_HEADER] = face_vendor_sign(body=body, secret=secret or self.secret, timestamp=stamp)
        return SignedCallback(body, headers)

    # --- the HTTP side ---------------------------------------------------------------------------

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        vendor = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # quiet test output
                pass

            def _answer(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
                raw = document if isinstance(document, bytes) else json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):
                if self.path != "/sessions":
                    return self._answer(404, {"error": "not found"})
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get(APP_ID_HEADER) != vendor.app_id:
                    return self._answer(401, {"error": "unknown app"})
                try:
                    document = verify_callback_signature(
                        body=body,
                        headers=dict(self.headers),
                        secret=vendor.secret,
                        now=dt.datetime.now(dt.UTC),
                        max_age=300,
                    )
                except FaceVendorRefused:
                    return self._answer(401, {"error": "bad signature"})
                vendor.start_requests.append(document)
                vendor.start_headers.append(dict(self.headers))
                if vendor.start_answer is not None:
                    return self._answer(*vendor.start_answer)
                session_id = f"fv_{secrets.token_hex(8)}"
                vendor.sessions[session_id] = document
                return self._answer(
                    201, {"session_id": session_id, "redirect_url": f"{vendor.base_url}/h5/{session_id}"}
                )

            def do_GET(self):
                session_id = self.path.removeprefix("/h5/")
                start = vendor.sessions.get(session_id)
                if start is None:
                    return self._answer(404, {"error": "no such session"})
                if vendor.outcome is None:
                    return self._answer(200, b"<p>capture page</p>")
                # The person showed their face; the vendor tells the portal, then sends the person back.
                callback = vendor.callback(session_id, decision=vendor.outcome)
                vendor.sent_callbacks.append(callback)
                vendor.callback_answers.append(callback.post(start["callback_url"]))
                self.send_response(302)
                self.send_header("Location", start["return_url"] + "?result=" + vendor.outcome)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler

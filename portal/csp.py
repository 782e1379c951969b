"""CSP violation reports (proof issue, security): browsers post them here (the policy's ``report-uri``).

A report is written by whatever page the browser had open, so it is untrusted text of any size: the body is
capped, and one warning line per report keeps only the directive, the blocked resource's origin and the page's
path, with anything that looks like an ID number masked (R4, R50). Nothing is stored.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import unquote, urlsplit

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.masking import mask_id_number

logger = logging.getLogger("portal.csp")

MAX_REPORT_BYTES = 16 * 1024
# The log is what a flood would fill: past this many reports a minute (all senders together), they are refused.
REPORTS_PER_MINUTE = 300
# report-uri sends application/csp-report; the Reporting API (report-to) sends application/reports+json.
CSP_REPORT = "application/csp-report"
REPORTS_JSON = "application/reports+json"

DIRECTIVE = re.compile(r"^[a-z-]{1,40}$")
# The blocked-uri keywords browsers send instead of a URL.
KEYWORDS = frozenset(
    {"inline", "eval", "self", "data", "blob", "wasm-eval", "trusted-types-policy", "trusted-types-sink"}
)
# R4: 18-character ID numbers, the old 15-digit ones, and any longer digit run (a card number) are masked.
LONG_NUMBER = re.compile(r"(?<![0-9])[0-9]{14,}[0-9Xx](?![0-9])")
MAX_PATH_CHARS = 200


def _directive(value: object) -> str:
    # The old format's violated-directive carries its sources too ("script-src 'self'"): keep the name.
    name = str(value or "").split(" ", 1)[0].strip().lower()
    return name if DIRECTIVE.match(name) else "?"


def _masked(text: str) -> str:
    return LONG_NUMBER.sub(lambda match: mask_id_number(match.group()), text)


def _origin(value: object) -> str:
    """The blocked resource's origin (scheme://host[:port]) or keyword; never its path or query."""
    text = str(value or "").strip()
    if text.lower() in KEYWORDS:
        return text.lower()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return "?"
    scheme = parts.scheme.lower()
    if not re.fullmatch(r"[a-z][a-z0-9+.-]{0,19}", scheme):
        return "?"
    if not parts.hostname:
        return f"{scheme}:"  # data:, blob:, …
    host = _masked(parts.hostname) if re.fullmatch(r"[a-z0-9.:-]{1,100}", parts.hostname) else "?"
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def _page(value: object) -> str:
    """The document's path: no query or fragment, ID-like numbers masked, one printable line."""
    try:
        path = unquote(urlsplit(str(value or "")).path)
    except ValueError:
        return "?"
    path = _masked(path)
    path = "".join(char if char.isprintable() else "?" for char in path)
    return path[:MAX_PATH_CHARS] or "?"


def _violations(content_type: str, payload: object) -> list[tuple[str, str, str]]:
    """(directive, blocked origin, page path) of each violation in the body; anything else is skipped."""
    found = []
    if content_type == CSP_REPORT:
        report = payload.get("csp-report") if isinstance(payload, dict) else None
        if isinstance(report, dict):
            directive = report.get("effective-directive") or report.get("violated-directive")
            found.append((directive, report.get("blocked-uri"), report.get("document-uri")))
    elif isinstance(payload, list):
        for report in payload:
            body = report.get("body") if isinstance(report, dict) else None
            if isinstance(body, dict) and report.get("type") == "csp-violation":
                found.append((body.get("effectiveDirective"), body.get("blockedURL"), body.get("documentURL")))
    return [(_directive(directive), _origin(blocked), _page(page)) for directive, blocked, page in found]


def _within_rate() -> bool:
    key = f"csp:reports:{timezone.now():%Y%m%d%H%M}"
    cache.add(key, 0, timeout=120)
    try:
        return cache.incr(key) <= REPORTS_PER_MINUTE
    except ValueError:  # the entry expired between add and incr
        return True


@csrf_exempt  # the browser posts reports without a token, and they change nothing
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    """Log each CSP violation of the body as one warning line; 204, whatever it said."""
    content_type = request.content_type
    if content_type not in {CSP_REPORT, REPORTS_JSON}:
        return HttpResponse(status=415)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_REPORT_BYTES:
        return HttpResponse(status=413)
    body = request.read(MAX_REPORT_BYTES + 1)  # a body without a length (chunked) is cut here too
    if len(body) > MAX_REPORT_BYTES:
        return HttpResponse(status=413)
    if not _within_rate():
        return HttpResponse(status=429)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes ("[[[[…")
        return HttpResponse(status=400)
    for directive, blocked, page in _violations(content_type, payload):
        logger.warning("CSP violation: directive=%s blocked=%s page=%s", directive, blocked, page)
    return HttpResponse(status=204)

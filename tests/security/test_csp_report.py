"""CSP violation reports (portal/csp.py): the policy's report-uri, one masked warning line per violation."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client
from django.urls import reverse

from portal import csp

ID_NUMBER = "11010519491231002X"


def _csp_report(**fields) -> str:
    report = {
        "document-uri": "https://portal.example.cn/family/bindings/7/",
        "referrer": "",
        "violated-directive": "script-src-elem",
        "effective-directive": "script-src-elem",
        "original-policy": "default-src 'self'; report-uri /csp-report/",
        "disposition": "enforce",
        "blocked-uri": "https://cdn.example.com/lib.js?v=3",
        "status-code": 200,
    }
    return json.dumps({"csp-report": {**report, **fields}})


def _post(client: Client, body: str | bytes, content_type: str = csp.CSP_REPORT):
    return client.post(reverse("csp_report"), data=body, content_type=content_type)


@pytest.fixture
def csp_log(caplog):
    caplog.set_level(logging.WARNING, logger="portal.csp")
    return lambda: [record.getMessage() for record in caplog.records if record.name == "portal.csp"]


def test_the_policy_sends_reports_to_the_endpoint(client, db):
    policy = client.get(reverse("healthz"))["Content-Security-Policy"]

    assert f"report-uri {reverse('csp_report')}" in policy


def test_a_report_is_answered_204_and_logged_as_one_line(client, csp_log):
    response = _post(client, _csp_report())

    assert response.status_code == 204
    assert response.content == b""
    assert csp_log() == [
        "CSP violation: directive=script-src-elem blocked=https://cdn.example.com page=/family/bindings/7/"
    ]


def test_a_reporting_api_body_logs_each_csp_violation_and_skips_other_reports(client, csp_log):
    body = [
        {
            "type": "csp-violation",
            "url": "https://portal.example.cn/card/",
            "body": {
                "documentURL": "https://portal.example.cn/card/?tab=qr",
                "effectiveDirective": "img-src",
                "blockedURL": "data",
                "disposition": "enforce",
            },
        },
        {
            "type": "csp-violation",
            "body": {"documentURL": "https://portal.example.cn/", "effectiveDirective": "style-src-attr"},
        },
        {"type": "deprecation", "body": {"id": "x", "message": "whatever"}},
        "not a report",
    ]

    response = _post(client, json.dumps(body), csp.REPORTS_JSON)

    assert response.status_code == 204
    assert csp_log() == [
        "CSP violation: directive=img-src blocked=data page=/card/",
        "CSP violation: directive=style-src-attr blocked=? page=/",
    ]


@pytest.mark.parametrize("number", [ID_NUMBER, ID_NUMBER.lower(), "110105194912310", "6222021234567890123"])
def test_r4_an_id_number_in_a_report_is_logged_masked(client, caplog, csp_log, number):
    """R4/R50: a page path (or a host) can carry anything; the query and the blocked URL's path are dropped."""
    caplog.set_level(logging.DEBUG)
    report = _csp_report(
        **{
            "document-uri": f"https://portal.example.cn/family/{number}/?id_number={ID_NUMBER}",
            "blocked-uri": f"https://{number}.example.com/{ID_NUMBER}.js",
            "referrer": f"https://portal.example.cn/?q={ID_NUMBER}",
        }
    )

    response = _post(client, report)

    assert response.status_code == 204
    masked = number[:3] + "*" * (len(number) - 7) + number[-4:]
    assert csp_log() == [
        f"CSP violation: directive=script-src-elem blocked=https://{masked.lower()}.example.com page=/family/{masked}/"
    ]
    assert number not in caplog.text
    assert ID_NUMBER.lower() not in caplog.text.lower()


def test_a_newline_in_a_report_cannot_start_a_log_line_of_its_own(client, csp_log):
    report = _csp_report(**{"document-uri": "https://portal.example.cn/a%0ACSP%20violation:%20forged"})

    _post(client, report)

    assert csp_log() == [
        "CSP violation: directive=script-src-elem blocked=https://cdn.example.com page=/a?CSP violation: forged"
    ]


def test_an_oversized_report_is_refused_with_413_and_not_logged(client, csp_log):
    padding = "x" * csp.MAX_REPORT_BYTES
    response = _post(client, _csp_report(**{"script-sample": padding}))

    assert response.status_code == 413
    assert csp_log() == []


def test_a_report_just_under_the_cap_is_taken(client, csp_log):
    body = _csp_report(**{"script-sample": ""})
    body = _csp_report(**{"script-sample": "x" * (csp.MAX_REPORT_BYTES - len(body))})
    assert len(body.encode()) == csp.MAX_REPORT_BYTES

    assert _post(client, body).status_code == 204
    assert len(csp_log()) == 1


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_are_refused_with_405(client, csp_log, method):
    response = getattr(client, method)(reverse("csp_report"))

    assert response.status_code == 405
    assert csp_log() == []


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x"])
def test_other_bodies_are_refused_with_415(client, csp_log, content_type):
    assert _post(client, _csp_report(), content_type).status_code == 415
    assert csp_log() == []


@pytest.mark.parametrize("body", [b"\xff{not json", b"[" * (csp.MAX_REPORT_BYTES - 1)], ids=["not-json", "deep"])
def test_a_body_that_is_not_json_is_refused_with_400(client, csp_log, body):
    assert _post(client, body).status_code == 400
    assert csp_log() == []


def test_browsers_post_without_a_csrf_token_or_a_login(db, csp_log):
    client = Client(enforce_csrf_checks=True)

    assert _post(client, _csp_report()).status_code == 204
    assert len(csp_log()) == 1


def test_reports_past_the_rate_are_refused_with_429_and_not_logged(client, csp_log, monkeypatch):
    monkeypatch.setattr(csp, "REPORTS_PER_MINUTE", 2)

    answers = [_post(client, _csp_report()).status_code for _ in range(3)]

    assert answers == [204, 204, 429]
    assert len(csp_log()) == 2

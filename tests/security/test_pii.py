"""R4 and R50 (proof issue, security): no page, API answer or log line shows a full ID number, except where R4
allows it.

Every URL of the authorization matrix is opened as every persona over the same world (tests/security/world.py,
whose persons' full ID numbers are known); the HTML, the JSON and everything logged meanwhile (django.request
included) is searched for those numbers. R4's exceptions (domain.md): the owner's own detail page and the
reviewer's document view; ui.md adds audited "show" controls. Which (URL, persona) pairs that makes here is
``MAY_SHOW`` below; a full number anywhere else fails.
"""

from __future__ import annotations

import io
import logging
import re

import pytest
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from tests.security.conftest import PERSONAS, attempt, persona_client
from tests.security.test_authorization_matrix import MATRIX, url_for
from tests.security.urlwalk import project_routes

# (URL name, persona) → the persons (world.id_numbers keys) whose full number that answer may show.
# R4's second exception: the review screens (audited, R51) of the reviewer holding the application and of an
# admin, also when a decision without its reason re-renders them (400). A's own pages (我的医保, 申请进度) show A
# masked. The signed commitment letter (R20, a PDF whose text is extracted and searched like a page) states
# both full numbers by design: it is a document of the application, opened by its signatory A (the owner's own
# exception) and by the reviewers (R4's document view, audited); nobody else gets it, and it names nobody else.
_APPLICATION = {"a", "spouse"}  # A's application for the spouse
_FAMILY_CARD = {"a", "child"}  # A's family card link to the child
MAY_SHOW: dict[tuple[str, str], set[str]] = {
    **{
        (name, persona): persons
        for persona in ("reviewer", "admin")
        for name, persons in (
            ("staff_review_detail", _APPLICATION),
            ("staff_review_send_back", _APPLICATION),
            ("staff_review_refuse", _APPLICATION),
            ("staff_family_card_review", _FAMILY_CARD),
            ("staff_family_card_reject", _FAMILY_CARD),
        )
    },
    **{("binding_letter", persona): _APPLICATION for persona in ("citizen_a", "reviewer", "admin")},
}


def full_numbers_in(text: str, id_numbers: dict[str, str]) -> set[str]:
    """The persons whose full ID number (upper- or lower-case check character) is in ``text``."""
    return {name for name, number in id_numbers.items() if re.search(re.escape(number), text, re.IGNORECASE)}


def readable_text(tried) -> str:
    """What a reader of the answer sees: a PDF's extracted text (its streams are compressed), else the body.

    Whitespace is dropped from a PDF's text, so a number the layout breaks over two lines is still found."""
    if tried.content_type.startswith("application/pdf") or tried.body.startswith(b"%PDF-"):
        pages = PdfReader(io.BytesIO(tried.body)).pages
        return re.sub(r"\s+", "", "".join(page.extract_text() or "" for page in pages))
    return tried.body.decode("utf-8", "replace")


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
def test_r4_no_full_id_number_outside_its_exceptions(world, persona, caplog):
    caplog.set_level(logging.DEBUG)
    client, headers = persona_client(world, persona)
    leaks = []
    for route in project_routes():
        entry = MATRIX.get(route.key)
        if entry is None:
            continue
        url = url_for(route, entry, world.ids)
        caplog.clear()
        tried = attempt(client, entry.method, url, {**headers, **entry.headers}, body=entry.body)
        shown = full_numbers_in(readable_text(tried), world.id_numbers)
        shown -= MAY_SHOW.get((route.key, persona), set())
        logged = full_numbers_in(caplog.text + tried.error, world.id_numbers)
        if shown:
            leaks.append(f"{entry.method} {url} [{route.key}] shows {sorted(shown)}")
        if logged:
            leaks.append(f"{entry.method} {url} [{route.key}] logs {sorted(logged)}")
    assert not leaks, f"{persona}:\n" + "\n".join(leaks)


@pytest.mark.django_db
def test_the_review_screen_does_show_full_numbers_so_the_search_can_find_them(world):
    """The search above must be able to fail: where R4 allows full numbers, it finds them."""
    client, headers = persona_client(world, "reviewer")
    tried = attempt(client, "GET", reverse("staff_review_detail", args=[world.ids["binding"]]), headers)
    assert tried.status == 200
    assert full_numbers_in(tried.body.decode(), world.id_numbers) == _APPLICATION


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["citizen_a", "reviewer"])
def test_the_letter_pdf_does_show_full_numbers_so_the_search_can_find_them(world, persona):
    """The letter's PDF is searched through its text: A and the reviewer get both full numbers, as R20 wants."""
    client, headers = persona_client(world, persona)
    tried = attempt(client, "GET", reverse("binding_letter", args=[world.ids["binding"]]), headers)

    assert tried.status == 200
    assert tried.content_type == "application/pdf"
    assert world.id_numbers["a"].encode() not in tried.body  # compressed: only the extracted text shows it
    assert full_numbers_in(readable_text(tried), world.id_numbers) == _APPLICATION


class Boom(RuntimeError):
    pass


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["my_insurance", "api_me"])
def test_r4_an_error_page_echoes_no_id_number(citizen_a, monkeypatch, url_name):
    """A 500 (portal/views.server_error) answers a fixed page or problem+json: what went wrong stays in the log."""
    number = citizen_a.person.id_number

    def fail(**kwargs):
        raise Boom(f"could not load the account of {number}")

    monkeypatch.setattr("accounts.views.account_for_user", fail)
    monkeypatch.setattr("accounts.api.account_for_user", fail)
    client = Client(raise_request_exception=False)
    client.force_login(citizen_a)
    response = client.get(reverse(url_name))
    assert response.status_code == 500
    assert number not in response.content.decode()
    if url_name.startswith("api_"):
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == 500

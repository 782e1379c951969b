"""The portal's own forms, read from the rendered page and submitted as a browser would (functional tests).

``submit`` checks that every field a test fills is on the page's form and posts it with the page's
CSRF token, so a missing field or token fails the test (style.md: functional tests through real forms).
"""

from __future__ import annotations

from html.parser import HTMLParser

from django.test import Client


class Form:
    """One <form> of a page: where it posts, its fields, the values the page put in them."""

    def __init__(self, attrs: dict) -> None:
        self.action = attrs.get("action") or ""
        self.method = (attrs.get("method") or "get").lower()
        self.enctype = attrs.get("enctype") or ""
        self.css = attrs.get("class") or ""
        self.names: set[str] = set()
        self.values: dict[str, str] = {}
        self.attrs: dict[str, dict] = {}


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.current: Form | None = None
        self.select: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.current = Form(attrs)
            self.forms.append(self.current)
        elif self.current is not None and tag in {"input", "select", "textarea", "button"} and attrs.get("name"):
            name = attrs["name"]
            self.current.names.add(name)
            self.current.attrs[name] = attrs
            if tag == "input" and attrs.get("type") == "hidden":
                self.current.values[name] = attrs.get("value", "")
            if tag == "select":
                self.select = name
        elif self.current is not None and tag == "option" and self.select and "selected" in attrs:
            self.current.values[self.select] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None
        elif tag == "select":
            self.select = None


def main_form(html: str) -> Form:
    """The page's own form (class "form"), not the language or large-text switches."""
    parser = FormParser()
    parser.feed(html)
    forms = [f for f in parser.forms if "form" in f.css.split() and f.method == "post" and f.action in ("", "#")]
    assert forms, "no form on the page"
    return forms[0]


def submit(client: Client, url: str, data: dict | None = None, *, follow: bool = False):
    """Open ``url``, check every field we fill is on its form, post it with the page's CSRF token."""
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    form = main_form(page.content.decode())
    data = data or {}
    missing = set(data) - form.names
    assert not missing, f"not on the form at {url}: {missing}"
    assert "csrfmiddlewaretoken" in form.values, "no CSRF token on the form"
    if any(hasattr(value, "read") for value in data.values()):
        assert form.enctype == "multipart/form-data", "a file needs a multipart form"
    return client.post(url, {**form.values, **data}, follow=follow)

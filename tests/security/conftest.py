"""The security tests' world (tests/security/world.py) and a client that tries one request and forgets it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client

from accounts.storage import PrivateStorage
from cards.models import FamilyCardDocument
from family import tasks
from family.models import BindingDocument
from tests.security.world import World, build_world

PERSONAS = ("anonymous", "citizen_a", "citizen_b", "clerk_x", "clerk_y", "reviewer", "admin", "partner")


@pytest.fixture
def private_files(tmp_path, monkeypatch) -> PrivateStorage:
    """Documents go to a private folder of the test (the fields' storage is built at import)."""
    private = PrivateStorage(location=tmp_path / "private")
    for model, names in ((BindingDocument, ("file", "thumbnail")), (FamilyCardDocument, ("file",))):
        for name in names:
            monkeypatch.setattr(model._meta.get_field(name), "storage", private)
    return private


@pytest.fixture
def no_precheck(monkeypatch):
    """The OCR pre-check is not what these tests are about."""

    class Queued:
        @staticmethod
        def delay(*args, **kwargs) -> None:
            return None

    monkeypatch.setattr(tasks, "document_precheck", Queued, raising=False)


@pytest.fixture
def world(
    settings,
    private_files,
    no_precheck,
    citizen_a,
    citizen_a_family,
    citizen_b,
    clerk_x,
    institution_x,
    reviewer,
    admin_user,
    partner_token,
) -> World:
    # As deployed: the vendor's HMAC key is set (without it the callback refuses to run at all, by design).
    settings.FACE_VENDOR_SECRET = "security-tests-vendor-key"
    return build_world(
        citizen_a=citizen_a,
        citizen_a_family=citizen_a_family,
        citizen_b=citizen_b,
        clerk_x=clerk_x,
        institution_x=institution_x,
        reviewer=reviewer,
        admin_user=admin_user,
        partner_token=partner_token,
    )


@dataclass
class Tried:
    """What one request answered, or the exception it raised (a 500 in production)."""

    status: int
    location: str = ""
    content_type: str = ""
    body: bytes = b""
    error: str = ""
    # Rows the request inserted, updated or deleted, per table, before the rollback (when asked, on PostgreSQL).
    rows_written: dict[str, int] | None = None


def _rows_written_so_far() -> dict[str, int]:
    """PostgreSQL's count of the rows this transaction has inserted, updated or deleted so far, per table."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables")
        return dict(cursor.fetchall())


def persona_client(world: World, persona: str) -> tuple[Client, dict]:
    """A client logged in as the persona (a session), or carrying the partner's token; and its extra headers."""
    client = Client()
    user = world.users[persona]
    if persona == "partner":
        return client, {"HTTP_AUTHORIZATION": f"Token {world.partner_token}"}
    if user is not None:
        client.force_login(user)
    return client, {}


def attempt(
    client: Client, method: str, url: str, headers: dict, *, body: str | None = None, count_writes: bool = False
) -> Tried:
    """One request whose writes are rolled back afterwards, so the next one meets the same world.

    With ``count_writes`` (PostgreSQL only), the answer also says which tables the request wrote to."""
    kwargs = dict(headers)
    if method in {"POST", "PUT", "PATCH"}:
        if body == "json":
            kwargs.update(data="{}", content_type="application/json")
        else:
            kwargs.update(data={})
    count_writes = count_writes and connection.vendor == "postgresql"
    rows_written = None
    with transaction.atomic():
        before = _rows_written_so_far() if count_writes else {}
        try:
            response = getattr(client, method.lower())(url, **kwargs)
        except Exception as error:  # the test client re-raises what would be a 500
            transaction.set_rollback(True)
            cache.clear()
            return Tried(status=500, error=f"{type(error).__name__}: {error}")
        if count_writes:
            after = _rows_written_so_far()
            rows_written = {table: n - before.get(table, 0) for table, n in after.items() if n != before.get(table, 0)}
        transaction.set_rollback(True)
    cache.clear()
    body_bytes = b"" if getattr(response, "streaming", False) else response.content
    if getattr(response, "streaming", False):
        body_bytes = b"".join(response.streaming_content)
    return Tried(
        status=response.status_code,
        location=response.get("Location", ""),
        content_type=response.get("Content-Type", ""),
        body=body_bytes,
        rows_written=rows_written,
    )


# Schema mismatches found by tests/security/test_api_schemathesis.py in code still being written by its owners
# (reported to them, not fixed here): the operation is expected to fail until they fix it.
SCHEMA_KNOWN_MISMATCHES: dict[str, str] = {}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.originalname != "test_api_conforms_to_its_schema":
            continue
        label = item.name[item.name.find("[") + 1 : -1]
        if label in SCHEMA_KNOWN_MISMATCHES:
            item.add_marker(pytest.mark.xfail(reason=SCHEMA_KNOWN_MISMATCHES[label], strict=False))

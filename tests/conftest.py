"""Personas shared by the tests (see style.md): citizen A with a family, citizen B a stranger,
a clerk of institution X, a reviewer, an admin and a partner token."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.models import InsuranceType, InsuredPerson, User
from family.models import Binding, BindingMethod, BindingState, Relation
from tests.factories import (
    InstitutionFactory,
    InsuredPersonFactory,
    RegionFactory,
    UserFactory,
    give_account,
)

PASSWORD = "correct horse battery"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgres`` are about constraints, locking or concurrency: they need the real thing."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://...; .ci/run does)")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def region(db):
    return RegionFactory(code="320500", name="苏州市", province="320000")


@pytest.fixture
def citizen_a(db, region):
    """Citizen A: an employee with a personal account, linked to a login."""
    person = InsuredPersonFactory(name="张伟", region=region, birth="19800315", male=True)
    give_account(person, current="1200.00", historical="300.50")
    return UserFactory(username="alice", person=person)


@pytest.fixture
def citizen_a_family(db, region, citizen_a):
    """A's relatives: a spouse, a child under 16 and a parent, all insured."""
    return {
        "spouse": InsuredPersonFactory(name="李娜", region=region, birth="19820620", male=False),
        "child": InsuredPersonFactory(
            name="张小明", region=region, birth="20150101", insurance_type=InsuranceType.RESIDENT
        ),
        "parent": InsuredPersonFactory(
            name="张建国", region=region, birth="19520303", insurance_type=InsuranceType.RESIDENT
        ),
    }


@pytest.fixture
def citizen_b(db, region):
    """Citizen B: a stranger to A, with an account of their own."""
    person = InsuredPersonFactory(name="王芳", region=region, birth="19900909", male=False)
    give_account(person, current="50.00")
    return UserFactory(username="bob", person=person)


@pytest.fixture
def institution_x(db, region):
    return InstitutionFactory(code="H320500001", name="苏州市立医院", region=region)


@pytest.fixture
def clerk_x(db, institution_x):
    return UserFactory(username="clerk_x", role=User.Role.CLERK, institution=institution_x)


@pytest.fixture
def reviewer(db):
    return UserFactory(username="reviewer", role=User.Role.REVIEWER, is_staff=True)


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", role=User.Role.ADMIN, is_staff=True, is_superuser=True)


@pytest.fixture
def partner_token(db):
    partner = UserFactory(username="pharmacy-system", role=User.Role.PARTNER, phone=None)
    return Token.objects.create(user=partner).key


@pytest.fixture
def binding_active() -> Callable[..., Binding]:
    """``binding_active(owner, relative, since=...)``: an active family-sharing binding, set up directly."""

    def make(
        owner: InsuredPerson,
        relative: InsuredPerson,
        *,
        since: dt.datetime | None = None,
        relationship: str = Relation.CHILD,
        exclusive: bool = False,
        **fields,
    ) -> Binding:
        return Binding.objects.create(
            owner=owner,
            relative=relative,
            relationship=relationship,
            method=BindingMethod.ONLINE_ID,
            state=BindingState.ACTIVE,
            region_id=owner.region_id,
            policy_label="*@2024-07-01",
            activated_at=since or timezone.now(),
            exclusive=exclusive,
            **fields,
        )

    return make


@pytest.fixture
def english():
    """Messages in English, for tests that read them (Chinese is the default language)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters and cached policy live in the cache: every test starts without them."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _default_policy_after_flush(request):
    """Transactional tests flush the database, data-migration rows included: put the shipped policy and the
    canned review reasons back (no test uses serialized_rollback: its reload of content types collides
    with the ones a plain flush re-creates).

    pytest-django runs them after the others, so only they need it; the policy is what the
    data migration loads (family/data/default_policy.json).
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and bool(
        marker.kwargs.get("transaction") or marker.kwargs.get("serialized_rollback")
    )
    if not (transactional or {"transactional_db", "live_server"} & set(request.fixturenames)):
        return
    if not transactional:
        request.getfixturevalue("transactional_db")
    from family.models import PolicyVersion, ReviewReason

    if not ReviewReason.objects.exists():
        import importlib

        from django.apps import apps

        reasons = importlib.import_module("family.migrations.0006_default_review_reasons")
        reasons.add_reasons(apps, None)
    if not PolicyVersion.objects.exists():
        import json
        from pathlib import Path

        from family.services import policy_load

        shipped = Path(__file__).resolve().parent.parent / "family" / "data" / "default_policy.json"
        policy_load(document=json.loads(shipped.read_text(encoding="utf-8")))

"""Sessions as production keeps them with Redis (portal/settings.py): read from the cache, written through
to the database. The other tests keep them in the database only (portal/test_settings.py)."""

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse

CACHED_DB = "django.contrib.sessions.backends.cached_db"


@pytest.fixture
def cached_sessions():
    cache.clear()
    with override_settings(SESSION_ENGINE=CACHED_DB):
        yield
    cache.clear()


def _session_in_the_database(user) -> str:
    """A session as a login leaves it, written to the database only (as tests/e2e and the benches do)."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def test_it_reads_a_session_from_the_database_once_then_from_the_cache(
    client, citizen_a, cached_sessions, django_assert_num_queries
):
    client.cookies["sessionid"] = _session_in_the_database(citizen_a)
    # 1 session (not in the cache yet), 2 user, 3 the user's insured person, 4 the bindings
    with django_assert_num_queries(4):
        assert client.get(reverse("family_home")).status_code == 200
    # 1 user, 2 the user's insured person, 3 the bindings: the session came from the cache
    with django_assert_num_queries(3):
        assert client.get(reverse("family_home")).status_code == 200


def test_a_logout_ends_the_session_in_the_cache_too(client, citizen_a, cached_sessions):
    client.cookies["sessionid"] = key = _session_in_the_database(citizen_a)
    assert client.get(reverse("my_insurance")).status_code == 200
    client.post(reverse("account_logout"))
    client.cookies["sessionid"] = key  # the old cookie, replayed
    response = client.get(reverse("my_insurance"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


def _django_redis(location: str) -> dict:
    """The production cache settings (portal/settings.py) pointed at ``location``."""
    from django.conf import settings

    return {**settings.CACHES, "default": {**PRODUCTION_CACHE, "LOCATION": location}}


PRODUCTION_CACHE = {"BACKEND": "django_redis.cache.RedisCache", "OPTIONS": {"IGNORE_EXCEPTIONS": True}}
# A Redis database of its own (tests/worker.py uses 11 and 15, .ci/run's REDIS_URL 14).
TEST_REDIS = "redis://127.0.0.1:6379/12"


def test_with_redis_a_session_is_read_from_redis(client, citizen_a, django_assert_num_queries):
    with override_settings(CACHES=_django_redis(TEST_REDIS), SESSION_ENGINE=CACHED_DB):
        from django.core.cache import caches

        caches["default"].clear()
        client.cookies["sessionid"] = _session_in_the_database(citizen_a)
        assert client.get(reverse("family_home")).status_code == 200
        with django_assert_num_queries(3):  # user, person, bindings: not the session
            assert client.get(reverse("family_home")).status_code == 200
        caches["default"].clear()


def test_a_redis_outage_reads_as_a_miss_and_sessions_come_from_the_database(
    client, citizen_a, django_assert_num_queries, caplog
):
    # Nothing listens on port 1: every cache call fails at once, as with Redis down.
    with override_settings(CACHES=_django_redis("redis://127.0.0.1:1/0"), SESSION_ENGINE=CACHED_DB):
        client.cookies["sessionid"] = _session_in_the_database(citizen_a)
        with django_assert_num_queries(4):  # the session from the database each time, then user, person, bindings
            assert client.get(reverse("family_home")).status_code == 200
        assert client.get(reverse("my_insurance")).status_code == 200
    assert any("django_redis" in record.name for record in caplog.records)  # logged, not silent

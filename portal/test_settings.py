"""Test settings: production settings with a throw-away key, plain HTTP and fast hashing."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")

from portal.settings import *  # noqa: F403

# Tests talk plain HTTP to the live server.
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
LANGUAGE_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SMS_SENDER = "memory"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STAFF_REQUIRE_MFA = False
CACHES["default"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}  # noqa: F405
# Sessions as with any process-local cache (portal/settings.py), whatever REDIS_URL says: in the database, so
# the query counts the tests assert do not depend on the environment. tests/accounts/test_sessions.py
# covers the cached sessions of production.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
PRIVATE_MEDIA_ROOT = BASE_DIR / "var" / "test-private"  # noqa: F405
# Static files come from the finders in tests; there is no collectstatic output.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Tasks run in-process unless a test is about the queue; worker tests start a real worker themselves.
CELERY_TASK_ALWAYS_EAGER = True

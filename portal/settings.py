"""Settings for the 家庭共济 portal, read from the environment.

Local defaults are the embedded set-up (SQLite, tasks in-process); production sets
DATABASE_URL, CELERY_BROKER_URL, REDIS_URL, DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS.
"""

from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# Production must bring its own key; the embedded set-up (DEBUG) may run without one.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY, or DJANGO_DEBUG=1 for the local set-up.")
    SECRET_KEY = "insecure-local-development-key-never-used-in-production-0000"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    # Our apps, bottom to top: accounts <- family <- cards <- portal.
    "accounts",
    "family",
    "cards",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.middleware.PageMethodsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.StaffMfaMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.display_preferences",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Chinese first, English available (ui.md).
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Uploaded documents are private (R51): kept outside any URL, served by a view that audits.
PRIVATE_MEDIA_ROOT = Path(env.str("PRIVATE_MEDIA_ROOT", default=str(BASE_DIR / "var" / "private")))

REDIS_URL = env.str("REDIS_URL", default="")
CACHES = {
    # django-redis rather than Django's own Redis backend: Django builds a new Redis client for every get
    # or set (about half the CPU of a cached session read); django-redis keeps one per server.
    # A Redis outage reads as a cache miss, logged: sessions come from the database and pages keep working;
    # rate limits counted in the cache do not hold until Redis is back.
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"IGNORE_EXCEPTIONS": True},
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Rendered pieces of templates that are the same for every user, keyed by language (and role for the
    # menu): {% cache None <name> LANGUAGE_CODE ... using="fragments" %}. Kept in each process, as the
    # compiled templates are: they change only with a deploy, which restarts the processes.
    "fragments": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "fragments"},
}
# With Redis, a logged-in request reads its session from the cache, not the database (cached_db still writes
# every change through to the database, so a lost cache logs nobody out). Not with the process-local
# cache: one worker would go on serving a session that another worker ended at logout.
if REDIS_URL:
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

# Celery: with no broker configured, tasks run in-process (the embedded set-up).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A message a killed worker held comes back after this long (Redis has no per-message ack timeout).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=300),
    # Look for abandoned messages every second, not every 100 s (kombu's default).
    "unacked_restore_throttle": 1,
}
CELERY_BEAT_SCHEDULE = {
    "bindings-expire-awaiting-face": {"task": "family.tasks.bindings_expire_awaiting_face", "schedule": 15 * 60},
    "bindings-sweep-stuck": {"task": "family.tasks.bindings_sweep_stuck", "schedule": 5 * 60},
    "cards-qr-tokens-purge": {"task": "cards.tasks.qr_tokens_purge", "schedule": 60 * 60},
    "review-release-idle-claims": {"task": "family.tasks.review_release_idle_claims", "schedule": 5 * 60},
    # R37: unaccepted wallet transfers go back at 06:00; run often so a missed beat catches up.
    "wallet-transfers-return-due": {"task": "family.tasks.wallet_transfers_return_due", "schedule": 5 * 60},
    # R31: contributions paid but not yet confirmed by the insurance office are asked again.
    "contributions-confirm-pending": {"task": "family.tasks.contributions_confirm_pending", "schedule": 10 * 60},
    "bindings-daily-authorizations": {
        "task": "family.tasks.bindings_daily_authorizations",
        "schedule": crontab(hour=6, minute=0),
    },
}

# E-mail and SMS go to the console unless a real gateway is configured.
EMAIL_BACKEND = env.str("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="noreply@example.invalid")
SMS_SENDER = env.str("SMS_SENDER", default="console")  # "console" or "memory" (tests)

# R3: the card number printed on the physical card (most provinces: a letter and 8 digits).
CARD_NUMBER_PATTERN = env.str("CARD_NUMBER_PATTERN", default=r"^[A-Z][0-9]{8}$")

# Absolute links in SMS and e-mail (the one-time consent link of R23).
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Family sharing (R23, R27): days a binding waits for the relative's face, reminder before an authorization ends.
FAMILY_FACE_WAIT_DAYS = env.int("FAMILY_FACE_WAIT_DAYS", default=7)
FAMILY_AUTHORIZATION_REMINDER_DAYS = env.int("FAMILY_AUTHORIZATION_REMINDER_DAYS", default=7)
# The pre-check tells whether an ID number is insured, so a citizen may ask only this often a day.
FAMILY_CHECKS_PER_DAY = env.int("FAMILY_CHECKS_PER_DAY", default=30)
# R24: a reviewer's claim on an application lapses after this many idle minutes.
REVIEW_CLAIM_IDLE_MINUTES = env.int("REVIEW_CLAIM_IDLE_MINUTES", default=15)
# Face verification provider (R23, R40): "local" checks that one frontal face is present; a vendor adapter plugs in.
FACE_PROVIDER = env.str("FACE_PROVIDER", default="local")
# Face verification by a vendor (R23, R40): start a session over HTTP, then an HMAC-signed callback.
FACE_VENDOR_BASE_URL = env.str("FACE_VENDOR_BASE_URL", default="")
FACE_VENDOR_APP_ID = env.str("FACE_VENDOR_APP_ID", default="")
FACE_VENDOR_SECRET = env.str("FACE_VENDOR_SECRET", default="")
FACE_VENDOR_CALLBACK_MAX_AGE_SECONDS = env.int("FACE_VENDOR_CALLBACK_MAX_AGE_SECONDS", default=300)
# E-card (R41, R42, R43): password lock, QR lifetime, relatives in the family card service.
CARD_PASSWORD_MAX_ATTEMPTS = env.int("CARD_PASSWORD_MAX_ATTEMPTS", default=5)
CARD_PASSWORD_LOCK_MINUTES = env.int("CARD_PASSWORD_LOCK_MINUTES", default=30)
CARD_QR_TTL_SECONDS = env.int("CARD_QR_TTL_SECONDS", default=60)
FAMILY_CARD_MAX_RELATIVES = env.int("FAMILY_CARD_MAX_RELATIVES", default=8)
# Payments (R33): the order of owners after the patient's own account and wallet:
# "oldest_binding_first" (the default) or "newest_binding_first".
SHARING_PAYER_ORDER = env.str("SHARING_PAYER_ORDER", default="oldest_binding_first")
# Cross-province wallet (R37), national defaults: 3 transfers a day, at most ¥2,000 each,
# none from 22:00 to 06:00 (Asia/Shanghai); unaccepted transfers go back at 06:00 the next day.
WALLET_MAX_TRANSFERS_PER_DAY = env.int("WALLET_MAX_TRANSFERS_PER_DAY", default=3)
WALLET_MAX_TRANSFER_AMOUNT = env.str("WALLET_MAX_TRANSFER_AMOUNT", default="2000.00")
WALLET_QUIET_FROM = env.str("WALLET_QUIET_FROM", default="22:00")
WALLET_QUIET_UNTIL = env.str("WALLET_QUIET_UNTIL", default="06:00")
WALLET_RETURN_AT = env.str("WALLET_RETURN_AT", default="06:00")
# R31: the insurance office that confirms contributions paid for a relative (family/insurance_office.py):
# "local" confirms at once (a stand-in until the office's interface is wired in), "local_not_yet" never does.
INSURANCE_OFFICE_BACKEND = env.str("INSURANCE_OFFICE_BACKEND", default="local")
# A face check counts for a card step only this many minutes after it was made.
CARD_FACE_VALID_MINUTES = env.int("CARD_FACE_VALID_MINUTES", default=10)
# Uploaded documents (R24): per-file limits.
DOCUMENT_MAX_BYTES = env.int("DOCUMENT_MAX_BYTES", default=10 * 1024 * 1024)
DOCUMENT_MAX_PIXELS = env.int("DOCUMENT_MAX_PIXELS", default=40_000_000)
DOCUMENT_MAX_PAGES = env.int("DOCUMENT_MAX_PAGES", default=5)
DOCUMENT_MAX_PER_BINDING = env.int("DOCUMENT_MAX_PER_BINDING", default=10)
# Uploads up to this size stay in memory: a face picture never touches the disk (R52), and a document
# is written only to private storage once it passed its checks.
FILE_UPLOAD_MAX_MEMORY_SIZE = DOCUMENT_MAX_BYTES + 1024 * 1024

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"phone", "email"}
ACCOUNT_SIGNUP_FIELDS = ["phone*", "email", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_PHONE_VERIFICATION_ENABLED = True
# Six digits, as every Chinese service sends them (easier for elderly users than allauth's ABCD-EFGH).
ACCOUNT_PHONE_VERIFICATION_CODE_FORMAT = {"numeric": True, "length": 6, "dashed": False}
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "家庭共济"
# Staff (clerks, reviewers, admins) must have TOTP set up before staff pages open.
STAFF_REQUIRE_MFA = env.bool("STAFF_REQUIRE_MFA", default=not DEBUG)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.problems.problem_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/minute"),
        "user": env.str("API_THROTTLE_USER", default="1200/minute"),
    },
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "家庭共济 portal API",
    "DESCRIPTION": "Employee medical-insurance personal-account family sharing. Errors are application/problem+json.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Content-Security-Policy (django-csp): scripts and styles only from our own static files, no inline
# <script>, on*= handler or style="" (tests/security/test_headers.py greps templates/ for them).
# Images may also be blob: (the camera's photo preview, static/js/camera.js) and data: (allauth's TOTP QR code
# for staff MFA). /api/docs/ widens its own policy for Swagger UI's inline styles (portal/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "blob:", "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "media-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        # Violations are logged, masked, by portal/csp.py (its URL: portal/urls.py, name "csp_report").
        "report-uri": "/csp-report/",
    },
}
# Permissions-Policy (django-permissions-policy): the camera from our own pages only (the face step and the
# counter's QR scan, static/js/camera.js and counter.js, ask for video without audio).
PERMISSIONS_POLICY = {
    "camera": "self",
    # Never used here: denied to every origin, ours included.
    "accelerometer": [],
    "autoplay": [],
    "bluetooth": [],
    "browsing-topics": [],
    "display-capture": [],
    "geolocation": [],
    "gyroscope": [],
    "hid": [],
    "magnetometer": [],
    "microphone": [],
    "midi": [],
    "payment": [],
    "serial": [],
    "usb": [],
    "xr-spatial-tracking": [],
}
# Sent in every set-up (Django's defaults, stated here so a reader sees the whole header set).
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Production hardening: active whenever DEBUG is off (check --deploy passes).
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_HTTPONLY = True

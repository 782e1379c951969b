# The portal's one image: gunicorn by default; docker-compose.yml also runs it as the
# Celery worker, Celery beat and the one-shot `migrate`.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=portal.settings \
    PRIVATE_MEDIA_ROOT=/data/private \
    WEB_CONCURRENCY=3

# OCR of uploaded documents (Simplified Chinese), CJK fonts for rendered pages and images,
# gettext for translators working inside the image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        tesseract-ocr tesseract-ocr-chi-sim fonts-noto-cjk gettext \
    && rm -rf /var/lib/apt/lists/*

# The service runs as an unprivileged user that owns nothing but the private documents.
RUN groupadd --system --gid 10001 portal \
    && useradd --system --uid 10001 --gid portal --no-create-home --home-dir /app --shell /usr/sbin/nologin portal \
    && mkdir -p /data/private \
    && chown portal:portal /data/private

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY . .

# Translations (.mo files are not in git) and static files are built into the image; the key is a
# throw-away one, only so that the settings load (production refuses to start without one).
RUN if find locale -name 'django.po' | grep -q .; then \
        pybabel compile --domain django --directory locale --use-fuzzy; \
    fi \
    && DJANGO_DEBUG=0 \
       DJANGO_SECRET_KEY=build-only-dummy-key-never-used-at-runtime-0123456789abcdefghij \
       python manage.py collectstatic --noinput \
    && python -m compileall -q accounts cards family portal

USER portal
EXPOSE 8000

# WEB_CONCURRENCY (default 3) sets the number of gunicorn workers; keep it between 2 and 4 per container.
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "--timeout", "60"]

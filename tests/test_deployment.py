"""The production set-up: docker-compose.yml, .env.example, the Dockerfile and `check --deploy`.

These run the settings as production would (portal.settings, DEBUG off) in subprocesses, so the
test settings loaded in this process cannot leak into what they check.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
SETTINGS = ROOT / "portal" / "settings.py"
# A key that passes Django's security.W009: 50+ characters, many of them different, no "django-insecure".
PRODUCTION_LIKE_KEY = "pQ7v!Lr2#xZ9mK4tW8sY1bN6cJ3hF5dG0aE-uR_iO+eT@yU%wS^qP&zX*kM(nB)vC"
APP_SERVICES = ("migrate", "web", "worker", "beat")
ISSUE_SERVICES = ("web", "worker", "beat", "postgres", "redis")


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The caller's environment without anything that steers Django, Celery or the database, then production's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "DATABASE_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=PRODUCTION_LIKE_KEY,
        DJANGO_ALLOWED_HOSTS="portal.example.cn",
        DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3",
        PRIVATE_MEDIA_ROOT=str(tmp_path / "private"),
    )
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def env_example_names() -> set[str]:
    return {
        line.split("=", 1)[0].strip()
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }


def test_check_deploy_passes_with_production_settings(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = production_env(tmp_path)
    del env["DJANGO_SECRET_KEY"]

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_compose_names_every_service_with_health_checks(compose):
    services = compose["services"]

    assert set(ISSUE_SERVICES) <= set(services)
    for name in ("web", "postgres", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "/healthz" in str(services["web"]["healthcheck"]["test"])
    assert services["postgres"]["image"].startswith("postgres:15")
    assert "pg_isready" in str(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["image"].startswith("redis:7")
    assert "ping" in str(services["redis"]["healthcheck"]["test"])


def test_compose_runs_the_app_from_env_file_after_migrations(compose):
    services = compose["services"]

    for name in APP_SERVICES:
        assert services[name]["env_file"] == ".env", name
        assert "private-documents:/data/private" in services[name]["volumes"], name
    assert services["migrate"]["command"][-2:] == ["migrate", "--noinput"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    assert services["worker"]["command"][:5] == ["celery", "-A", "portal", "worker", "-l"]
    assert services["beat"]["command"][:5] == ["celery", "-A", "portal", "beat", "-l"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_compose_file_is_valid_for_docker_compose(tmp_path):
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on this machine")
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker client has no compose plugin")
    # env_file: .env is required by the stack, so validate a copy beside a .env made from the example.
    for source in (COMPOSE, DOCKERFILE):
        shutil.copy(source, tmp_path / source.name)
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")

    result = subprocess.run(
        [docker, "compose", "--project-directory", str(tmp_path), "-f", str(tmp_path / COMPOSE.name), "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_env_example_documents_every_variable_the_settings_read():
    read = set(re.findall(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""", SETTINGS.read_text(encoding="utf-8")))
    example = env_example_names()

    assert read, "found no env(...) calls in portal/settings.py"
    assert read - example == set(), "add these to .env.example, with a comment"
    assert {"POSTGRES_PASSWORD", "DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"} <= example


def test_env_example_is_a_production_set_up():
    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )

    assert values["DJANGO_DEBUG"] == "0"
    assert values["DATABASE_URL"] == "postgres://portal:portal@postgres:5432/portal"
    assert values["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert values["REDIS_URL"] == "redis://redis:6379/1"
    assert values["PRIVATE_MEDIA_ROOT"] == "/data/private"
    assert values["STAFF_REQUIRE_MFA"] == "1"


def test_dockerfile_serves_gunicorn_as_an_unprivileged_user():
    lines = [line.strip() for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()]

    assert lines[next(i for i, line in enumerate(lines) if line.startswith("FROM"))] == (
        "FROM python:3.11-slim-bookworm"
    )
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    cmd = next(line for line in lines if line.startswith("CMD "))
    assert "gunicorn" in cmd and "portal.wsgi:application" in cmd and "0.0.0.0:8000" in cmd

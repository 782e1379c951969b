"""Playwright fixtures: Debian's Chromium, headless, against pytest-django's ``live_server``.

Every test under tests/e2e is marked ``e2e``. Without the browser the tests are skipped on a
developer's machine (``apt-get install chromium fonts-noto-cjk``) but fail in CI, where a
silent skip would hide the whole browser suite.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

# Playwright's sync API runs an event loop in the test thread; without this Django's ORM refuses
# to run there ("You cannot call this from an async context").
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

E2E_DIR = Path(__file__).resolve().parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # The machine's network is closed: without these Chromium keeps trying Google's hosts.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 10_000
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1}

ScreenshotTaker = Callable[[Page, str], Path]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``e2e`` so ``-m "not e2e"`` leaves the slow ones out."""
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Keep each phase's report on the item, so the page fixture knows whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _safe(name: str) -> str:
    """A file name from a test id or a shot's name: parametrize brackets and spaces become "_"."""
    return re.sub(r"[^\w.-]+", "_", name).strip("_")


def _artifacts_dir(request: pytest.FixtureRequest) -> Path:
    """test-artifacts/screenshots/<test-module>/<test-name>/ under the repository's root."""
    return (
        request.config.rootpath / "test-artifacts" / "screenshots" / request.node.path.stem / _safe(request.node.name)
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (PLAYWRIGHT_CHROMIUM, default /usr/bin/chromium), headless, for the whole session."""
    executable = os.environ.get("PLAYWRIGHT_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).is_file():
        reason = f"no Chromium at {executable} (apt-get install chromium fonts-noto-cjk, or set PLAYWRIGHT_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the browser tests", pytrace=False)
        pytest.skip(reason)
    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _open_page(browser: Browser, request: pytest.FixtureRequest, device: dict) -> Iterator[Page]:
    (_artifacts_dir(request) / "failed.png").unlink(missing_ok=True)
    context: BrowserContext = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **device)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed and not page.is_closed():
        # A picture of the page as the test left it, beside the test's own screenshots.
        target = _artifacts_dir(request) / "failed.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=True)
    context.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A phone-sized page (390x844 at 2x, zh-CN), as most citizens see the portal."""
    yield from _open_page(browser, request, PHONE)


@pytest.fixture
def desktop_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A desktop page (1280x800, zh-CN), as clerks and reviewers see the portal."""
    yield from _open_page(browser, request, DESKTOP)


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> ScreenshotTaker:
    """``shot(page, name)`` saves a full-page PNG as test-artifacts/screenshots/<module>/<test>/<NN-name>.png."""
    folder = _artifacts_dir(request)
    shutil.rmtree(folder, ignore_errors=True)  # no pictures left over from an earlier run of this test
    taken = 0

    def shot(page: Page, name: str) -> Path:
        nonlocal taken
        taken += 1
        target = folder / f"{taken:02d}-{_safe(name)}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=True)
        return target

    return shot

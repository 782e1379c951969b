"""The browser pipeline works: Debian's Chromium, driven by Playwright, renders a page of the live server."""

import re

from playwright.sync_api import expect


def test_it_opens_the_admin_login_page_in_chromium(live_server, page, screenshot):
    response = page.goto(live_server.url + "/admin/login/")

    assert response is not None and response.ok, response and response.status
    expect(page).to_have_title(re.compile(r"Django|登录|Log in"))
    expect(page.locator("input[type=password]")).to_be_visible()
    picture = screenshot(page, "admin-login")
    assert picture.stat().st_size > 0

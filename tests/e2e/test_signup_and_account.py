"""A newcomer signs up with a phone, verifies it, links the real name and sees the masked account,
in Chinese and in English."""

import re

import pytest
from playwright.sync_api import expect

from accounts.messaging import MemorySmsSender
from accounts.models import User
from tests.factories import InsuredPersonFactory, RegionFactory, give_account

HEADINGS = {
    "zh-hans": {"button": "中文", "signup": "注册", "insurance": "我的医保", "balance": "¥2,345.60"},
    "en": {"button": "English", "signup": "Sign Up", "insurance": "My insurance", "balance": "¥2,345.60"},
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_newcomer_signs_up_links_the_real_name_and_sees_the_masked_account(live_server, page, screenshot, language):
    words = HEADINGS[language]
    region = RegionFactory(code="320500", name="苏州市", province="320000")
    person = InsuredPersonFactory(name="李娜", region=region, birth="19820620", male=False)
    give_account(person, current="2000.00", historical="345.60")
    MemorySmsSender.outbox.clear()

    page.goto(live_server.url + "/")
    page.get_by_role("button", name=words["button"]).click()
    page.goto(live_server.url + "/accounts/signup/")
    expect(page.get_by_role("heading", level=1)).to_have_text(words["signup"])
    page.locator("input[name=phone]").fill("13912345678")
    page.locator("input[name=password1]").fill("a-Long-enough-pass-2025")
    page.locator("input[name=password2]").fill("a-Long-enough-pass-2025")
    screenshot(page, f"signup-{language}")
    page.locator("form.form button[type=submit]:not([form])").click()

    # The verification code goes out by SMS (the memory sender in tests).
    expect(page.locator("input[name=code]")).to_be_visible()
    assert len(MemorySmsSender.outbox) == 1
    code = re.search(r"(\d{6})", MemorySmsSender.outbox[0].text).group(1)
    page.locator("input[name=code]").fill(code)
    screenshot(page, f"verify-phone-{language}")
    page.locator("form.form button[type=submit]:not([form])").click()
    assert User.objects.get(phone="13912345678").phone_verified

    page.goto(live_server.url + "/me/insurance/")
    expect(page).to_have_url(re.compile(r"/me/real-name/"))
    page.locator("input[name=name]").fill("李娜")
    page.locator("input[name=id_number]").fill(person.id_number)
    page.locator("input[name=consent]").check()
    screenshot(page, f"real-name-{language}")
    page.locator("form.form button[type=submit]:not([form])").click()

    expect(page).to_have_url(re.compile(r"/me/insurance/"))
    expect(page.get_by_role("heading", level=1)).to_have_text(words["insurance"])
    masked = f"{person.id_number[:3]}***********{person.id_number[-4:]}"
    expect(page.get_by_test_id("masked-id")).to_have_text(masked)
    expect(page.get_by_test_id("balance")).to_have_text(words["balance"])
    assert person.id_number not in page.content()  # R4: the full number never reaches the page
    screenshot(page, f"my-insurance-{language}")
    assert User.objects.get(phone="13912345678").person_id == person.pk

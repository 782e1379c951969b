"""Home, language switch and elderly mode (适老化): every page offers both, and the choice is kept."""

from django.urls import reverse


def test_home_says_who_may_share_now_in_chinese_by_default(client, db):
    body = client.get(reverse("home")).content.decode()
    assert "家庭共济" in body
    assert "配偶" in body  # the national policy in force lists the spouse
    assert 'name="language" value="en"' in body


def test_home_in_english_after_switching(client, db):
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    body = client.get(reverse("home")).content.decode()
    assert "Family sharing" in body and "spouse" in body


def test_elderly_mode_is_kept_for_the_user(client, citizen_a):
    client.force_login(citizen_a)
    client.post(reverse("elderly_mode"), {"enabled": "1", "next": "/"})
    citizen_a.refresh_from_db()
    assert citizen_a.elderly_mode is True
    client.logout()
    client.force_login(citizen_a)
    assert 'class="elderly"' in client.get(reverse("home")).content.decode()


def test_elderly_mode_before_login_uses_a_cookie(client, db):
    response = client.post(reverse("elderly_mode"), {"enabled": "1", "next": "https://evil.example/"})
    assert response["Location"] == reverse("home")  # no open redirect
    assert 'class="elderly"' in client.get(reverse("home")).content.decode()

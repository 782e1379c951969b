"""我的医保: masked ID, insurance, balances and entries, in a constant number of queries."""

from decimal import Decimal

from django.urls import reverse

from accounts.services import Posting, ledger_post
from tests.factories import UserFactory


def test_it_shows_the_masked_id_and_the_balances(client, citizen_a):
    client.force_login(citizen_a)
    response = client.get(reverse("my_insurance"))
    body = response.content.decode()
    person = citizen_a.person
    assert response.status_code == 200
    assert person.id_number not in body  # R4
    assert f"{person.id_number[:3]}***********{person.id_number[-4:]}" in body
    assert "¥1,500.50" in body and "¥1,200.00" in body and "¥300.50" in body


def test_it_sends_a_user_without_real_name_to_link_first(client, db):
    client.force_login(UserFactory(username="newcomer"))
    response = client.get(reverse("my_insurance"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("real_name"))


def test_its_query_count_does_not_grow_with_the_entries(client, citizen_a, django_assert_num_queries):
    account = citizen_a.person.account
    for _ in range(30):
        ledger_post(account_id=account.pk, postings=[Posting("current", Decimal("-1.00"), "payment", "pharmacy")])
    client.force_login(citizen_a)
    # 1 session, 2 user, 3 account with person and region, 4 count of entries, 5 the page of entries
    with django_assert_num_queries(5):
        response = client.get(reverse("my_insurance"))
    assert response.status_code == 200
    assert len(response.context["page"].object_list) == 20
    with django_assert_num_queries(5):
        client.get(reverse("my_insurance") + "?page=2")


def test_it_shows_english_when_chosen(client, citizen_a):
    client.force_login(citizen_a)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    body = client.get(reverse("my_insurance")).content.decode()
    assert "My insurance" in body and "Personal account" in body

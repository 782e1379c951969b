"""Real-name link: a citizen ties the login to an insured person; a mismatch reveals nothing."""

from django.urls import reverse

from accounts.models import AuditEvent
from tests.factories import InsuredPersonFactory, UserFactory


def test_it_links_the_person_with_matching_name_and_id(client, region):
    person = InsuredPersonFactory(name="李娜", region=region)
    user = UserFactory(username="newcomer")
    client.force_login(user)
    response = client.post(
        reverse("real_name"), {"name": "李娜", "id_number": person.id_number.lower(), "consent": "on"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("my_insurance")
    user.refresh_from_db()
    assert user.person == person
    assert AuditEvent.objects.filter(actor=user, action="person.linked", target_id=str(person.pk)).exists()


def test_it_gives_the_same_answer_for_a_wrong_name_and_an_unknown_number(client, region):
    person = InsuredPersonFactory(name="李娜", region=region)
    other = InsuredPersonFactory.build(region=region)  # valid, never saved
    user = UserFactory(username="newcomer")
    client.force_login(user)
    wrong_name = client.post(reverse("real_name"), {"name": "李四", "id_number": person.id_number, "consent": "on"})
    unknown = client.post(reverse("real_name"), {"name": "李娜", "id_number": other.id_number, "consent": "on"})
    assert wrong_name.status_code == unknown.status_code == 200
    assert wrong_name.context["form"].non_field_errors() == unknown.context["form"].non_field_errors()
    user.refresh_from_db()
    assert user.person is None


def test_it_refuses_a_person_already_linked_to_another_login(client, citizen_a):
    user = UserFactory(username="impostor")
    client.force_login(user)
    response = client.post(
        reverse("real_name"), {"name": citizen_a.person.name, "id_number": citizen_a.person.id_number, "consent": "on"}
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    user.refresh_from_db()
    assert user.person is None


def test_r1_a_wrong_check_character_is_refused_as_typed(client, region):
    person = InsuredPersonFactory(name="李娜", region=region)
    bad = person.id_number[:-1] + ("1" if person.id_number[-1] != "1" else "2")
    client.force_login(UserFactory(username="newcomer"))
    response = client.post(reverse("real_name"), {"name": "李娜", "id_number": bad, "consent": "on"})
    assert response.context["form"].errors["id_number"][0].startswith("身份证号码的校验码")


def test_it_needs_consent_before_using_the_id_number(client, region):
    person = InsuredPersonFactory(name="李娜", region=region)
    user = UserFactory(username="newcomer")
    client.force_login(user)
    response = client.post(reverse("real_name"), {"name": "李娜", "id_number": person.id_number})
    assert "consent" in response.context["form"].errors
    user.refresh_from_db()
    assert user.person is None


def test_it_sends_anonymous_visitors_to_log_in(client):
    response = client.get(reverse("real_name"))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]

"""R24: the canned rejection reasons are an editable list in the admin."""

from django.urls import reverse

from family.models import ReviewReason


def test_r24_the_default_reasons_are_there_and_an_admin_can_add_one(client, admin_user):
    assert ReviewReason.objects.filter(active=True).count() >= 5  # shipped by a data migration
    client.force_login(admin_user)
    assert client.get(reverse("admin:family_reviewreason_changelist")).status_code == 200
    response = client.post(
        reverse("admin:family_reviewreason_add"),
        {
            "text_zh": "结婚证照片不完整。",
            "text_en": "The marriage certificate photo is cut off.",
            "active": "on",
            "position": 9,
        },
    )
    assert response.status_code == 302
    assert ReviewReason.objects.filter(text_en="The marriage certificate photo is cut off.").exists()

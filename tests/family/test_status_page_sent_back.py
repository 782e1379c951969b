"""申请进度: when a reviewer sent documents back, the page says the owner is awaited, not a reviewer (R24)."""

from django.conf import settings
from django.core.files.base import ContentFile
from django.urls import reverse

from family.models import BindingDocument, BindingState, DocumentKind, DocumentStatus


def test_r24_a_sent_back_document_makes_the_owner_the_one_awaited(client, citizen_a, citizen_a_family, binding_insert):
    binding = binding_insert(citizen_a.person, citizen_a_family["child"], state=BindingState.UNDER_REVIEW)
    document = BindingDocument.objects.create(
        binding=binding,
        kind=DocumentKind.OWNER_HOUSEHOLD_REGISTER,
        file=ContentFile(b"%PDF-1.4", name="register.pdf"),
        content_type="application/pdf",
        size=8,
        status=DocumentStatus.REJECTED,
        rejection_reason="The page is blurred.",
    )
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(citizen_a)
    body = client.get(reverse("binding_detail", args=[binding.pk])).content.decode()
    assert "Waiting for: you" in body
    assert "Waiting for: a reviewer" not in body
    assert "The page is blurred." in body
    document.file.delete(save=False)

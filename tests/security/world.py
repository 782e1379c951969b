"""The objects the security tests try: citizen A's binding, documents, family card link, e-cards, payment,
contribution, transfers, wallet transfer, face session and notification, plus the personas who try them.

Built once per test through the services where that is cheap, directly otherwise (the states are what
matters here, not how they were reached). Every person's full ID number is known (``id_numbers``), so the
PII test can look for them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.files.base import ContentFile
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.models import FaceVendorSession, FaceVerification, InsuranceType, Notification, User, Wallet
from cards.models import FamilyCardDocument, FamilyCardLink, FamilyCardLinkState, FamilyCardVerifiedBy
from cards.services import card_accept_agreement, card_claim_start, card_face_passed, card_set_password
from family.documents import document_store, read_document_content
from family.letters import commitment_letter_pdf, commitment_letter_text, letter_store
from family.models import (
    AccountTransfer,
    Binding,
    BindingEvent,
    BindingMethod,
    BindingState,
    DocumentKind,
    Payment,
    PaymentKind,
    PaymentPart,
    PaymentSource,
    PharmacyCategory,
    Relation,
    WalletTransfer,
)
from tests.attack_files import png_scan
from tests.factories import InstitutionFactory, InsuredPersonFactory, RegionFactory, UserFactory, give_account

CARD_PASSWORD = "586217"


@dataclass
class World:
    """Who is who, and the ids the URLs take."""

    users: dict[str, User | None]
    partner_token: str
    ids: dict[str, object]
    id_numbers: dict[str, str] = field(default_factory=dict)


def _claim(person) -> None:
    card = card_claim_start(person=person, region_code=person.region_id)
    card = card_accept_agreement(card=card)
    verification = FaceVerification.objects.create(
        person=person,
        purpose="card_claim",
        reference=str(card.pk),
        provider="test",
        decision=FaceVerification.Decision.PASSED,
        score=0.99,
        detail="one_face",
    )
    FaceVerification.objects.filter(pk=verification.pk).update(created_at=card.created_at + dt.timedelta(seconds=1))
    verification.refresh_from_db()
    card = card_face_passed(card=card, verification=verification)
    card_set_password(card=card, password=CARD_PASSWORD)


def build_world(*, citizen_a, citizen_a_family, citizen_b, clerk_x, institution_x, reviewer, admin_user, partner_token):
    """Citizen A's objects of every kind, and a second institution's clerk (Y) and a cross-province owner."""
    region = citizen_a.person.region
    institution_y = InstitutionFactory(code="H320500099", name="苏州市第二医院", region=region)
    clerk_y = UserFactory(username="clerk_y", role=User.Role.CLERK, institution=institution_y)
    a, spouse, child, parent = (
        citizen_a.person,
        citizen_a_family["spouse"],
        citizen_a_family["child"],
        citizen_a_family["parent"],
    )

    # An application of A for the spouse, under review, made at institution X's counter, held by the reviewer,
    # with both household registers uploaded (R20, R22, R24).
    binding = Binding.objects.create(
        owner=a,
        relative=spouse,
        relationship=Relation.SPOUSE,
        method=BindingMethod.COUNTER,
        state=BindingState.UNDER_REVIEW,
        region_id=a.region_id,
        institution=institution_x,
        submitted_by=citizen_a,
        claimed_by=reviewer,
        claimed_at=timezone.now(),
        policy_label="*@2024-07-01",
    )
    BindingEvent.objects.create(binding=binding, actor_label="test set-up", from_state="", to_state=binding.state)
    letter_text = commitment_letter_text(
        owner_name=a.name,
        owner_id_number=a.id_number,
        relative_name=spouse.name,
        relative_id_number=spouse.id_number,
        relationship=Relation.SPOUSE,
        on_date=timezone.localdate(),
    )
    pdf = commitment_letter_pdf(text=letter_text, signed_name=a.name, signed_at=timezone.now(), signature_png=None)
    letter_store(binding=binding, pdf_bytes=pdf, user=citizen_a)
    document = None
    for kind in (DocumentKind.OWNER_HOUSEHOLD_REGISTER, DocumentKind.RELATIVE_HOUSEHOLD_REGISTER):
        document = document_store(binding=binding, kind=kind, content=read_document_content(png_scan()), user=citizen_a)

    # An active binding of A for the parent (pays the parent's contribution, R31; a transfer, R36).
    parent_binding = Binding.objects.create(
        owner=a,
        relative=parent,
        relationship=Relation.PARENT,
        method=BindingMethod.ONLINE_ID,
        state=BindingState.ACTIVE,
        region_id=a.region_id,
        policy_label="*@2024-07-01",
        activated_at=timezone.now() - dt.timedelta(days=30),
    )

    # 亲情服务: A manages the child's card (R43), with a document waiting for review.
    link = FamilyCardLink.objects.create(
        manager=a,
        relative=child,
        relationship=Relation.CHILD,
        state=FamilyCardLinkState.ACTIVE,
        verified_by=FamilyCardVerifiedBy.FACE,
        activated_at=timezone.now(),
        created_by=citizen_a,
    )
    card_document = FamilyCardDocument(
        link=link, kind="relative_register", content_type="image/png", size=1, uploaded_by=citizen_a
    )
    card_document.file.save("register.png", ContentFile(png_scan()), save=False)
    card_document.size = card_document.file.size
    card_document.save()

    # E-cards: A's own and the child's (R40, R42).
    _claim(a)
    _claim(child)

    # A payment at institution X charged by its clerk for A (R31–R34), and a contribution A paid for the parent.
    payment = Payment.objects.create(
        client=clerk_x,
        idempotency_key="security-matrix-1",
        request_hash="0" * 64,
        reference="P202600000001",
        patient=a,
        card_number=a.card_number,
        institution=institution_x,
        kind=PaymentKind.PHARMACY,
        category=PharmacyCategory.DRUG,
        amount=Decimal("12.50"),
        cash_amount=Decimal("12.50"),
    )
    contribution = Payment.objects.create(
        client=citizen_a,
        idempotency_key="security-matrix-2",
        request_hash="0" * 64,
        reference="P202600000002",
        patient=parent,
        kind=PaymentKind.RESIDENT_CONTRIBUTION,
        amount=Decimal("380.00"),
        cash_amount=Decimal("0"),
    )
    PaymentPart.objects.create(
        payment=contribution,
        position=1,
        source=PaymentSource.BINDING,
        payer=a,
        binding=parent_binding,
        account=a.account,
        current_amount=Decimal("380.00"),
    )

    # R36: a transfer from A's previous years' part to the parent.
    transfer = AccountTransfer.objects.create(
        client=citizen_a,
        idempotency_key="security-matrix-3",
        request_hash="0" * 64,
        reference="T202600000001",
        binding=parent_binding,
        owner=a,
        relative=parent,
        amount=Decimal("10.00"),
    )

    # R37: A's father in 石家庄 (another province) shares into A's wallet; the transfer waits for A to accept.
    shijiazhuang = RegionFactory(code="130100", name="石家庄市", province="130000")
    father = InsuredPersonFactory(name="张大山", region=shijiazhuang, birth="19550505")
    give_account(father, current="3000.00")
    father_binding = Binding.objects.create(
        owner=father,
        relative=a,
        relationship=Relation.CHILD,
        method=BindingMethod.ONLINE_ID,
        state=BindingState.ACTIVE,
        region_id=father.region_id,
        policy_label="*@2026-01-09",
        activated_at=timezone.now() - dt.timedelta(days=30),
    )
    wallet = Wallet.objects.create(person=a, opened_by=citizen_a)
    wallet_transfer = WalletTransfer.objects.create(
        client=citizen_b,  # a login of the father's side is not what the matrix is about
        idempotency_key="security-matrix-4",
        request_hash="0" * 64,
        reference="W202600000001",
        binding=father_binding,
        owner=father,
        wallet=wallet,
        amount=Decimal("100.00"),
        from_current=Decimal("100.00"),
        return_due_at=timezone.now() + dt.timedelta(days=1),
    )

    face_session = FaceVendorSession.objects.create(
        person=a, purpose="card_claim", reference="1", vendor_session_id=uuid.uuid4().hex, return_url="/card/"
    )
    Notification.objects.create(
        person=a, kind="binding.decided", title="家庭共济申请已受理", body="", dedup_key=f"security-{a.pk}"
    )

    partner = Token.objects.get(key=partner_token).user
    persons = {
        "a": a,
        "spouse": spouse,
        "child": child,
        "parent": parent,
        "b": citizen_b.person,
        "father": father,
    }
    return World(
        users={
            "anonymous": None,
            "citizen_a": citizen_a,
            "citizen_b": citizen_b,
            "clerk_x": clerk_x,
            "clerk_y": clerk_y,
            "reviewer": reviewer,
            "admin": admin_user,
            "partner": partner,
        },
        partner_token=partner_token,
        ids={
            "binding": binding.pk,
            "parent_binding": parent_binding.pk,
            "document": document.pk,
            "link": link.pk,
            "card_document": card_document.pk,
            "payment": payment.pk,
            "contribution": contribution.pk,
            "transfer": transfer.reference,
            "wallet_transfer": wallet_transfer.pk,
            "face_session": face_session.pk,
            "resident_type": InsuranceType.RESIDENT,
        },
        id_numbers={name: person.id_number for name, person in persons.items()},
    )

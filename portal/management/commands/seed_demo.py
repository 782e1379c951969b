"""`python manage.py seed_demo`: demo persons, accounts and logins for the embedded set-up. Idempotent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.identity import id_check_character
from accounts.models import Institution, InsuranceType, InsuredPerson, PersonalAccount, Region, User
from accounts.services import Posting, adjustment_postings, ledger_post
from family.models import Binding, PaymentKind
from family.services import binding_review_decide, binding_submit
from family.services.keys import request_fingerprint
from family.services.payments import payment_make

DEMO_PASSWORD = "demo-2025-pass"  # noqa: S105 - printed for the demo; never on production data
REGION_CODE = "320500"  # 苏州市, shipped with the default policy (a cross-province pilot region)


def _id_number(division: str, birth: str, sequence: int) -> str:
    body = f"{division}{birth}{sequence:03d}"
    return body + id_check_character(body)


# (key, name, division, birth, sequence (odd = male), insurance type, current, historical)
PERSONS = [
    ("owner", "张伟", "320505", "19800315", 111, InsuranceType.EMPLOYEE, "2680.40", "1320.00"),
    ("spouse", "李娜", "320505", "19820620", 222, InsuranceType.EMPLOYEE, "860.00", "0"),
    ("child", "张小明", "320505", "20160901", 313, InsuranceType.RESIDENT, "0", "0"),
    ("mother", "王秀英", "320505", "19550108", 424, InsuranceType.RESIDENT, "0", "0"),
    ("sister", "张丽", "320505", "19850412", 526, InsuranceType.RESIDENT, "0", "0"),
    ("stranger", "赵强", "320506", "19750505", 637, InsuranceType.EMPLOYEE, "150.00", "0"),
]


class Command(BaseCommand):
    help = "Create demo insured persons and logins (a citizen with a family, a clerk, a reviewer, an admin)."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            persons, logins = self._persons_and_logins()
        # Outside the transaction: each pipeline step runs when the step before it has committed.
        self._demo_bindings(persons)
        self._demo_payment(persons)
        self.stdout.write(f"Demo logins (phone or e-mail, password {DEMO_PASSWORD}):")
        for username, phone, role, _extra in logins:
            self.stdout.write(f"  {role:<9} {phone}  {username}@demo.invalid")
        self.stdout.write(f"To try the real-name step, sign up and confirm 李娜 / {persons['spouse'].id_number}.")

    def _persons_and_logins(self):
        region = Region.objects.filter(code=REGION_CODE).first()
        if region is None:
            region = Region.objects.create(code=REGION_CODE, name="苏州市", province="320000")
        persons = {}
        for index, (key, name, division, birth, seq, kind, current, historical) in enumerate(PERSONS):
            id_number = _id_number(division, birth, seq)
            person, _ = InsuredPerson.objects.get_or_create(
                id_number=id_number,
                defaults={
                    "name": name,
                    "birth_date": dt.datetime.strptime(birth, "%Y%m%d").date(),
                    "sex": "M" if seq % 2 else "F",
                    "insurance_type": kind,
                    "status": "active",
                    "region": region,
                    "card_number": f"E{32050000 + index:08d}",
                },
            )
            if kind == InsuranceType.EMPLOYEE:
                account, opened = PersonalAccount.objects.get_or_create(person=person)
                # Opening balances only: a later run leaves what payments have done since as it is.
                total = Decimal(current) + Decimal(historical)
                postings: list[Posting] = adjustment_postings(
                    account=account, total=total, historical=Decimal(historical), reference="seed_demo"
                )
                if opened and postings:
                    ledger_post(account_id=account.pk, postings=postings)
            persons[key] = person

        institution, _ = Institution.objects.get_or_create(
            code="H32050000001",
            defaults={"name": "苏州市立医院(演示)", "kind": Institution.Kind.CLINIC, "region": region},
        )
        logins = [
            ("citizen", "13800000001", User.Role.CITIZEN, {"person": persons["owner"]}),
            ("citizen2", "13800000002", User.Role.CITIZEN, {"person": persons["stranger"]}),
            ("clerk", "13800000003", User.Role.CLERK, {"institution": institution}),
            ("reviewer", "13800000004", User.Role.REVIEWER, {"is_staff": True}),
            ("admin", "13800000005", User.Role.ADMIN, {"is_staff": True, "is_superuser": True}),
        ]
        for username, phone, role, extra in logins:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "phone": phone,
                    "phone_verified": True,
                    "role": role,
                    "email": f"{username}@demo.invalid",
                    **extra,
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
                self._verify_email(user)
        return persons, logins

    def _demo_bindings(self, persons: dict) -> None:
        """A family to look at: the child bound and active, the mother's application waiting for a reviewer."""
        owner_user = User.objects.get(username="citizen")
        reviewer = User.objects.get(username="reviewer")
        for key, relationship in (("child", "child"), ("mother", "parent")):
            relative = persons[key]
            if Binding.objects.filter(owner=persons["owner"], relative=relative).exists():
                continue
            binding = binding_submit(
                owner=persons["owner"],
                relative_id_number=relative.id_number,
                relative_name=relative.name,
                relationship=relationship,
                submitted_by=owner_user,
                letter_signed_name=persons["owner"].name,
            )
            if key == "child":
                binding_review_decide(binding_id=binding.pk, reviewer=reviewer, approve=True)

    def _demo_payment(self, persons: dict) -> None:
        """A sharing record to look at: the clinic charged the child's costs to the owner's account (R33)."""
        clerk = User.objects.get(username="clerk")
        child = InsuredPerson.objects.select_related("account", "region").get(pk=persons["child"].pk)
        payment_make(
            client=clerk,
            idempotency_key="demo-payment-1",  # idempotent: running seed_demo again charges nothing
            request_hash=request_fingerprint(patient=child.pk, kind=PaymentKind.MEDICAL, amount=Decimal("86.50")),
            patient=child,
            card_number=child.card_number or "",
            institution=clerk.institution,
            kind=PaymentKind.MEDICAL,
            amount=Decimal("86.50"),
        )

    def _verify_email(self, user: User) -> None:
        from allauth.account.models import EmailAddress

        EmailAddress.objects.get_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})

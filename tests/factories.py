"""Factories for the tests. ID numbers are generated valid (R1) from a division code and a birth date."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import factory

from accounts.identity import id_check_character
from accounts.models import Institution, InsuranceStatus, InsuranceType, InsuredPerson, PersonalAccount, Region, User
from accounts.services import Posting, ledger_post

_sequence = itertools.count(1)


def make_id_number(division: str = "320505", birth: dt.date | str = "19800101", seq: int | None = None) -> str:
    """A valid ID number (R1) for a division code, birth date and 3-digit sequence (odd = male)."""
    if isinstance(birth, dt.date):
        birth = birth.strftime("%Y%m%d")
    if seq is None:
        seq = next(_sequence) % 1000
    body = f"{division}{birth}{seq:03d}"
    return body + id_check_character(body)


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ("code",)

    code = "320500"
    name = "苏州市"
    province = factory.LazyAttribute(lambda o: o.code[:2] + "0000")


class InstitutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Institution

    code = factory.Sequence(lambda n: f"H32050{n:05d}")
    name = factory.Sequence(lambda n: f"定点医院{n}")
    kind = Institution.Kind.CLINIC
    region = factory.SubFactory(RegionFactory)


class InsuredPersonFactory(factory.django.DjangoModelFactory):
    """An insured person; pass ``birth`` (date or YYYYMMDD) and ``male`` to shape the ID number."""

    class Meta:
        model = InsuredPerson

    class Params:
        birth = "19800101"
        male = True

    region = factory.SubFactory(RegionFactory)
    id_number = factory.LazyAttribute(
        lambda o: make_id_number(
            o.region.code,
            o.birth,
            (2 * (next(_sequence) % 499) + (1 if o.male else 2)),
        )
    )
    name = factory.Sequence(lambda n: f"张{'三四五六七八九'[n % 7]}{n}")
    birth_date = factory.LazyAttribute(
        lambda o: dt.date(int(o.id_number[6:10]), int(o.id_number[10:12]), int(o.id_number[12:14]))
    )
    sex = factory.LazyAttribute(lambda o: "M" if int(o.id_number[16]) % 2 else "F")
    insurance_type = InsuranceType.EMPLOYEE
    status = InsuranceStatus.ACTIVE
    card_number = factory.Sequence(lambda n: f"E{n:08d}")
    phone = ""


def give_account(
    person: InsuredPerson, current: str | Decimal = "0", historical: str | Decimal = "0"
) -> PersonalAccount:
    """Open the person's personal account and post opening balances through the ledger (R30)."""
    account, _ = PersonalAccount.objects.get_or_create(person=person)
    postings = [
        Posting("current", Decimal(current), "adjustment", "opening balance"),
        Posting("historical", Decimal(historical), "adjustment", "opening balance"),
    ]
    ledger_post(account_id=account.pk, postings=[p for p in postings if p.amount])
    account.refresh_from_db()
    return account


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    phone = factory.Sequence(lambda n: f"139{n:08d}")
    phone_verified = True
    role = User.Role.CITIZEN
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()

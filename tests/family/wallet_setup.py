"""Set-up shared by the transfer (R36) and wallet (R37) tests: the people, a frozen clock, the books' check."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Sum

from accounts.models import InsuranceType, InsuredPerson, LedgerEntry, PersonalAccount, User, Wallet, WalletEntry
from family.models import Binding, BindingMethod, BindingState, PolicyVersion, Relation, SharingMode
from family.services.keys import request_fingerprint
from family.services.wallet import wallet_transfer_send
from tests.factories import InsuredPersonFactory, RegionFactory, UserFactory, give_account

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Tuesday morning, local time; the national policy of 2026-01-09 is in force (cross-province, payment).
NOW = dt.datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI)


def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A local time in March 2026."""
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI)


def bind(owner: InsuredPerson, relative: InsuredPerson, **fields) -> Binding:
    fields.setdefault("relationship", Relation.PARENT)
    return Binding.objects.create(
        owner=owner,
        relative=relative,
        method=BindingMethod.ONLINE_ID,
        state=BindingState.ACTIVE,
        region_id=owner.region_id,
        policy_label="*@2026-01-09",
        activated_at=NOW - dt.timedelta(days=30),
        exclusive=False,
        **fields,
    )


def cross_province_parent() -> tuple[InsuredPerson, User]:
    """A's father in 石家庄 (河北, another province than 苏州/江苏), a resident with a login of his own."""
    region = RegionFactory(code="130100", name="石家庄市", province="130000")
    person = InsuredPersonFactory(name="张老三", region=region, birth="19550505", insurance_type=InsuranceType.RESIDENT)
    return person, UserFactory(username="father", person=person)


def transfer_region_people() -> dict:
    """南昌 (a region of its own that shares by transfer, R36): an owner with a login, two relatives bound."""
    region = RegionFactory(code="360100", name="南昌市", province="360000")
    PolicyVersion.objects.create(
        region=region,
        effective_from=dt.date(2021, 4, 13),
        relations=[r.value for r in Relation],
        sharing_mode=SharingMode.TRANSFER,
    )
    owner = InsuredPersonFactory(name="赵强", region=region, birth="19750101")
    give_account(owner, current="1000.00", historical="500.00")
    daughter = InsuredPersonFactory(name="赵小红", region=region, birth="20000202", male=False)
    give_account(daughter, current="10.00", historical="5.00")
    son = InsuredPersonFactory(name="赵小军", region=region, birth="20100303", insurance_type=InsuranceType.RESIDENT)
    return {
        "region": region,
        "owner": owner,
        "owner_user": UserFactory(username="zhao", person=owner),
        "daughter": daughter,
        "daughter_user": UserFactory(username="zhao_daughter", person=daughter),
        "son": son,
        "daughter_binding": bind(owner, daughter, relationship=Relation.CHILD),
        "son_binding": bind(owner, son, relationship=Relation.CHILD),
    }


def send(owner_user: User, binding: Binding, amount: str, *, key: str | None = None, now: dt.datetime | None = None):
    """The owner sends to the binding's relative's wallet, as the API would call it."""
    return wallet_transfer_send(
        client=owner_user,
        idempotency_key=key or uuid.uuid4().hex,
        request_hash=request_fingerprint(binding_id=binding.pk, amount=Decimal(amount)),
        owner=owner_user.person,
        binding_id=binding.pk,
        amount=Decimal(amount),
        now=now,
    )


def balances(person: InsuredPerson) -> tuple[Decimal, Decimal]:
    account = PersonalAccount.objects.get(person=person)
    return account.current_balance, account.historical_balance


def assert_books_balance() -> None:
    """R30: every account's parts and every wallet equal the sum of their entries."""
    for account in PersonalAccount.objects.all():
        sums = {
            row["part"]: row["total"]
            for row in LedgerEntry.objects.filter(account=account).values("part").annotate(total=Sum("amount"))
        }
        assert sums.get("current", Decimal(0)) == account.current_balance, account
        assert sums.get("historical", Decimal(0)) == account.historical_balance, account
    for wallet in Wallet.objects.all():
        total = WalletEntry.objects.filter(wallet=wallet).aggregate(total=Sum("amount"))["total"] or Decimal(0)
        assert total == wallet.balance, wallet

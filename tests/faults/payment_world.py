"""Set up the payment desk on a private database and print it as JSON (run by test_database_restart).

    DJANGO_SETTINGS_MODULE=portal.test_settings DATABASE_URL=postgres://...private... \\
        python -m tests.faults.payment_world

A clinic and its partner system (a token), two owners with personal accounts, and four patients who
pay from them (R33): one employee with a small account of her own, two residents each bound to one
owner, and a resident bound to both. Opening balances go through the ledger (R30), as
``give_account`` does, so the ledger sums equal the cached balances from the start.
"""

from __future__ import annotations

import json

import django


def main() -> None:
    django.setup()
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from accounts.models import Institution, InsuranceType, PersonalAccount, User
    from family.models import Binding, BindingMethod, BindingState, Relation
    from tests.factories import InstitutionFactory, InsuredPersonFactory, RegionFactory, UserFactory, give_account

    region = RegionFactory(code="320500", name="苏州市", province="320000")
    clinic = InstitutionFactory(code="C320500900", name="苏州社区诊所", region=region, kind=Institution.Kind.CLINIC)
    partner = UserFactory(username="clinic-system-faults", role=User.Role.PARTNER, institution=clinic, phone=None)

    def owner(birth: str, current: str, historical: str):
        person = InsuredPersonFactory(region=region, birth=birth, male=True)
        give_account(person, current=current, historical=historical)
        return person

    def resident(birth: str):
        return InsuredPersonFactory(region=region, birth=birth, insurance_type=InsuranceType.RESIDENT)

    def bind(owner_person, relative, relationship: str, *, exclusive: bool = True) -> None:
        Binding.objects.create(
            owner=owner_person,
            relative=relative,
            relationship=relationship,
            method=BindingMethod.ONLINE_ID,
            state=BindingState.ACTIVE,
            region_id=region.code,
            policy_label="*@2024-07-01",
            activated_at=timezone.now(),
            exclusive=exclusive,
        )

    father = owner("19700310", current="1500.00", historical="400.00")
    mother = owner("19720521", current="900.00", historical="0")
    daughter = InsuredPersonFactory(region=region, birth="19990101", male=False)
    give_account(daughter, current="60.00", historical="0")
    son, grandmother, grandfather = resident("20150606"), resident("19440404"), resident("19420202")
    bind(father, daughter, Relation.CHILD)
    bind(father, son, Relation.CHILD)
    bind(mother, grandmother, Relation.PARENT)
    # R15 where the region allows several owners: the grandfather's costs spill from one owner to the other.
    bind(father, grandfather, Relation.PARENT, exclusive=False)
    bind(mother, grandfather, Relation.PARENT, exclusive=False)

    accounts = {str(a.pk): [str(a.current_balance), str(a.historical_balance)] for a in PersonalAccount.objects.all()}
    print(
        json.dumps(
            {
                "token": Token.objects.create(user=partner).key,
                "cards": [p.card_number for p in (daughter, son, grandmother, grandfather)],
                "opening": accounts,
            }
        )
    )


if __name__ == "__main__":
    main()

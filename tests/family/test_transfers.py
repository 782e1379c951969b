"""历年账户家庭共济 (R36): the owner moves money from the previous years' part to a bound relative's account,
once per idempotency key (R34); and the request fingerprint that makes the key safe."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import translation

from accounts.errors import DomainError, InsufficientBalance
from accounts.models import LedgerEntry, Notification, PersonalAccount
from family.models import AccountTransfer, BindingState, Relation
from family.services.keys import request_fingerprint
from family.services.transfers import TransferRefused, account_transfer_make
from tests.concurrency import run_together
from tests.factories import InsuredPersonFactory, give_account
from tests.family.wallet_setup import NOW, assert_books_balance, balances, bind, transfer_region_people
from tests.page_forms import main_form, submit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def zhao(db):
    return transfer_region_people()


def make(people: dict, amount: str = "100.00", *, key: str = "key-1", name: str | None = None, id_number=None):
    relative = people["daughter"]
    name = relative.name if name is None else name
    id_number = relative.id_number if id_number is None else id_number
    return account_transfer_make(
        client=people["owner_user"],
        idempotency_key=key,
        request_hash=request_fingerprint(relative_name=name, relative_id_number=id_number, amount=Decimal(amount)),
        owner=people["owner"],
        relative_name=name,
        relative_id_number=id_number,
        amount=Decimal(amount),
    )


# --- The service -----------------------------------------------------------------------------------


def test_r36_moves_only_the_previous_years_part(zhao):
    transfer = make(zhao, "120.50")

    assert transfer.replayed is False
    assert balances(zhao["owner"]) == (Decimal("1000.00"), Decimal("379.50"))  # the current year untouched
    assert balances(zhao["daughter"]) == (Decimal("10.00"), Decimal("125.50"))
    entries = LedgerEntry.objects.filter(reference=transfer.reference)
    assert sorted((e.account.person_id, e.part, e.amount, e.kind) for e in entries) == sorted(
        [
            (zhao["owner"].pk, "historical", Decimal("-120.50"), "transfer"),
            (zhao["daughter"].pk, "historical", Decimal("120.50"), "transfer"),
        ]
    )
    assert (transfer.owner, transfer.relative, transfer.binding) == (
        zhao["owner"],
        zhao["daughter"],
        zhao["daughter_binding"],
    )
    assert set(Notification.objects.filter(kind__startswith="transfer.").values_list("person_id", "kind")) == {
        (zhao["owner"].pk, "transfer.sent"),
        (zhao["daughter"].pk, "transfer.received"),
    }
    assert_books_balance()


def test_r36_more_than_the_previous_years_part_is_refused_though_the_current_year_would_cover_it(zhao):
    with pytest.raises(InsufficientBalance) as refused:
        make(zhao, "500.01")

    assert refused.value.code == "insufficient_historical_balance"
    assert "R36" in refused.value.title
    assert not AccountTransfer.objects.exists()
    assert balances(zhao["owner"]) == (Decimal("1000.00"), Decimal("500.00"))


def test_r36_the_whole_previous_years_part_can_go(zhao):
    make(zhao, "500.00")

    assert balances(zhao["owner"]) == (Decimal("1000.00"), Decimal("0.00"))


def test_r36_refused_in_a_region_that_shares_by_payment_naming_the_rule_and_policy(citizen_a, citizen_a_family):
    spouse = citizen_a_family["spouse"]
    give_account(spouse, current="1.00")
    bind(citizen_a.person, spouse, relationship=Relation.SPOUSE)

    with pytest.raises(TransferRefused) as refused:
        account_transfer_make(
            client=citizen_a,
            idempotency_key="k",
            request_hash="h",
            owner=citizen_a.person,
            relative_name=spouse.name,
            relative_id_number=spouse.id_number,
            amount=Decimal("10"),
        )

    assert refused.value.code == "transfer_mode_off"
    assert "R36" in refused.value.title
    assert "320500@2024-12-02" in refused.value.title  # R13: the policy version that refused
    assert not LedgerEntry.objects.filter(kind="transfer").exists()


def test_r36_a_mismatch_gives_one_answer_whether_or_not_the_number_exists(zhao):
    stranger = InsuredPersonFactory(name="钱多多", region=zhao["region"], birth="19880808")
    give_account(stranger, current="1.00")
    unknown_number = InsuredPersonFactory.build(region=zhao["region"], birth="19990909").id_number

    answers = []
    for name, id_number in (
        ("赵小黑", zhao["daughter"].id_number),  # wrong name for a bound relative
        ("赵小红", unknown_number),  # nobody has this number
        (stranger.name, stranger.id_number),  # a real person, not in the network
    ):
        with pytest.raises(TransferRefused) as refused:
            make(zhao, name=name, id_number=id_number)
        answers.append((refused.value.code, refused.value.title, [e.message for e in refused.value.errors]))

    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == "receiver_mismatch"
    assert not AccountTransfer.objects.exists()


def test_r36_a_relative_without_a_personal_account_is_refused_clearly(zhao):
    son = zhao["son"]

    with pytest.raises(TransferRefused) as refused:
        make(zhao, name=son.name, id_number=son.id_number)

    assert refused.value.code == "relative_no_account"
    assert "no personal account" in refused.value.title
    assert balances(zhao["owner"]) == (Decimal("1000.00"), Decimal("500.00"))


def test_r36_an_ended_binding_receives_nothing(zhao):
    binding = zhao["daughter_binding"]
    binding.state = BindingState.ENDED
    binding.save()

    with pytest.raises(TransferRefused) as refused:
        make(zhao)

    assert refused.value.code == "receiver_mismatch"


def test_r27_a_binding_outside_its_authorization_period_receives_nothing(zhao):
    binding = zhao["daughter_binding"]
    binding.authorized_until = NOW.date().replace(day=9)
    binding.save()

    with pytest.raises(TransferRefused) as refused:
        make(zhao)

    assert refused.value.code == "binding_not_in_force"


@pytest.mark.parametrize("amount", ["0", "-5", "0.001"])
def test_r36_amount_must_be_positive_fen(zhao, amount):
    with pytest.raises(DomainError) as refused:
        make(zhao, amount)

    assert refused.value.status == 400
    assert [e.field for e in refused.value.errors] == ["amount"]


def test_r34_the_same_key_twice_charges_once(zhao):
    first = make(zhao, "50.00", key="same")
    again = make(zhao, "50.00", key="same")

    assert again.pk == first.pk
    assert again.replayed is True
    assert AccountTransfer.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="transfer").count() == 2
    assert balances(zhao["owner"]) == (Decimal("1000.00"), Decimal("450.00"))
    assert_books_balance()


def test_r34_the_same_key_with_another_body_is_409_and_charges_nothing(zhao):
    make(zhao, "50.00", key="same")

    with pytest.raises(DomainError) as refused:
        make(zhao, "60.00", key="same")

    assert (refused.value.status, refused.value.code) == (409, "idempotency_key_reused")
    assert balances(zhao["owner"]) == (Decimal("1000.00"), Decimal("450.00"))


def test_r30_after_transfers_and_refusals_the_entries_sum_to_the_balances(zhao):
    make(zhao, "10.00", key="a")
    make(zhao, "20.00", key="b")
    make(zhao, "20.00", key="b")
    with pytest.raises(InsufficientBalance):
        make(zhao, "999.00", key="c")

    assert balances(zhao["owner"]) == (Decimal("1000.00"), Decimal("470.00"))
    total = LedgerEntry.objects.filter(kind="transfer").aggregate(total=Sum("amount"))["total"]
    assert total == 0  # money moved between accounts, none created or lost
    assert_books_balance()


# --- The fingerprint ----------------------------------------------------------------------------------


def test_r34_fingerprint_is_the_same_for_the_same_request_however_written():
    assert request_fingerprint(amount=Decimal("10"), binding_id=3) == request_fingerprint(
        binding_id=3, amount=Decimal("10.00")
    )
    assert request_fingerprint(name=" 赵  小红 ") == request_fingerprint(name="赵 小红")


def test_r34_fingerprint_differs_when_a_meaningful_field_differs():
    assert request_fingerprint(amount=Decimal("10.00")) != request_fingerprint(amount=Decimal("10.01"))
    assert request_fingerprint(binding_id=3) != request_fingerprint(binding_id="3 ")
    assert len(request_fingerprint()) == 64


# --- The page ------------------------------------------------------------------------------------------


def test_r36_page_stepper_makes_one_transfer_even_when_confirmed_twice(client, zhao):
    client.force_login(zhao["owner_user"])
    daughter = zhao["daughter"]

    step1 = submit(
        client,
        "/family/wallet/transfer/",
        {"relative_name": daughter.name, "relative_id_number": daughter.id_number},
    )
    assert step1.status_code == 302 and step1["Location"] == "/family/wallet/transfer/amount/"
    step2 = submit(client, "/family/wallet/transfer/amount/", {"amount": "30.00"})
    assert step2["Location"] == "/family/wallet/transfer/confirm/"
    confirm_page = client.get("/family/wallet/transfer/confirm/")
    form = main_form(confirm_page.content.decode())
    assert form.values["idempotency_key"]  # made with the page
    assert "赵*" in confirm_page.content.decode()

    first = client.post("/family/wallet/transfer/confirm/", form.values)
    second = client.post("/family/wallet/transfer/confirm/", form.values)  # a double click

    transfer = AccountTransfer.objects.get()
    assert first["Location"] == second["Location"] == f"/family/wallet/transfer/done/{transfer.reference}/"
    assert balances(zhao["owner"]) == (Decimal("1000.00"), Decimal("470.00"))
    done = client.get(first["Location"])
    assert done.status_code == 200 and transfer.reference in done.content.decode()


def test_r36_page_tells_a_mismatch_next_to_the_fields(client, zhao, settings):
    client.force_login(zhao["owner_user"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    response = submit(
        client,
        "/family/wallet/transfer/",
        {"relative_name": "赵小黑", "relative_id_number": zhao["daughter"].id_number},
    )

    assert response.status_code == 200
    assert "do not match a family member bound to you" in response.content.decode()


def test_r36_page_amount_above_the_previous_years_part_is_told_before_confirming(client, zhao):
    client.force_login(zhao["owner_user"])
    daughter = zhao["daughter"]
    submit(
        client, "/family/wallet/transfer/", {"relative_name": daughter.name, "relative_id_number": daughter.id_number}
    )

    response = submit(client, "/family/wallet/transfer/amount/", {"amount": "600"})

    assert response.status_code == 200
    assert "¥500.00" in response.content.decode()


def test_r36_page_in_a_payment_region_explains_the_refusal(client, citizen_a):
    client.force_login(citizen_a)

    response = client.get("/family/wallet/transfer/")

    assert response.status_code == 200
    assert "R36" in response.content.decode()
    assert '<form method="post" class="form card"' not in response.content.decode()


def test_r36_page_steps_cannot_be_skipped(client, zhao):
    client.force_login(zhao["owner_user"])

    assert client.get("/family/wallet/transfer/confirm/")["Location"] == "/family/wallet/transfer/"


def test_a_stranger_gets_404_for_a_transfer_page(client, zhao, citizen_b):
    transfer = make(zhao)
    client.force_login(citizen_b)

    assert client.get(f"/family/wallet/transfer/done/{transfer.reference}/").status_code == 404
    client.force_login(zhao["daughter_user"])
    assert client.get(f"/family/wallet/transfer/done/{transfer.reference}/").status_code == 200


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_transfer_pages_answer_in_both_languages(client, zhao, language, settings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    client.force_login(zhao["owner_user"])

    response = client.get("/family/wallet/transfer/")

    assert response.status_code == 200
    assert ('lang="en"' if language == "en" else 'lang="zh-CN"') in response.content.decode()


# --- Concurrency -----------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r34_two_transfers_with_the_same_key_at_once_charge_once():
    people = transfer_region_people()
    key = uuid.uuid4().hex

    results = run_together([lambda: make(people, "40.00", key=key), lambda: make(people, "40.00", key=key)])

    assert all(isinstance(r, AccountTransfer) for r in results), results
    assert results[0].pk == results[1].pk
    assert sorted(r.replayed for r in results) == [False, True]
    assert AccountTransfer.objects.count() == 1
    assert PersonalAccount.objects.get(person=people["owner"]).historical_balance == Decimal("460.00")
    assert_books_balance()

"""跨省共济 through the medical-insurance wallet (R37): sending within the limits, accepting, the return at
06:00 the next day, the return when the relationship ends; every movement in the books (R30, R34)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.utils import translation

from accounts.errors import DomainError, InsufficientBalance
from accounts.models import LedgerEntry, Notification, Wallet, WalletEntry
from accounts.services import accounts_lock, wallet_open, wallet_post_locked
from family import tasks
from family.models import BindingState, Relation, WalletTransfer
from family.services import binding_end
from family.services.wallet import (
    WalletRefused,
    in_quiet_hours,
    return_due_at,
    wallet_transfer_accept,
    wallet_transfers_return_due,
    wallet_transfers_return_for_binding,
)
from tests.concurrency import run_together
from tests.factories import give_account
from tests.family.wallet_setup import (
    NOW,
    assert_books_balance,
    balances,
    bind,
    cross_province_parent,
    local,
    send,
)
from tests.page_forms import main_form, submit

pytestmark = pytest.mark.django_db

T = dt.time


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def father(db):
    """A's father in 河北 (another province), with his wallet open."""
    person, user = cross_province_parent()
    wallet_open(person=person, opened_by=user)
    return user


@pytest.fixture
def binding(citizen_a, father):
    return bind(citizen_a.person, father.person, relationship=Relation.PARENT)


def wallet_of(user) -> Wallet:
    return Wallet.objects.get(person=user.person)


# --- The pure time rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "quiet"),
    [
        (T(21, 59), False),
        (T(22, 0), True),
        (T(23, 59), True),
        (T(0, 0), True),
        (T(3, 0), True),
        (T(5, 59, 59), True),
        (T(6, 0), False),
        (T(12, 0), False),
    ],
)
def test_r37_quiet_hours_cross_midnight(moment, quiet):
    assert in_quiet_hours(moment, quiet_from=T(22), quiet_until=T(6)) is quiet


def test_r37_quiet_hours_within_a_day_and_none():
    assert in_quiet_hours(T(13), quiet_from=T(12), quiet_until=T(14)) is True
    assert in_quiet_hours(T(14), quiet_from=T(12), quiet_until=T(14)) is False
    assert in_quiet_hours(T(23), quiet_from=T(0), quiet_until=T(0)) is False


def test_r37_return_is_at_six_the_next_day_even_just_after_midnight_utc():
    # 07:00 local is 23:00 UTC the day before: the local day counts.
    assert return_due_at(local(10, 7), return_at=T(6)) == local(11, 6)
    assert return_due_at(local(10, 21, 59), return_at=T(6)) == local(11, 6)


# --- Send --------------------------------------------------------------------------------------------


def test_r37_send_debits_the_current_year_first_then_previous_years(citizen_a, father, binding):
    transfer = send(citizen_a, binding, "1500.00")

    assert (transfer.from_current, transfer.from_historical) == (Decimal("1200.00"), Decimal("300.00"))
    assert balances(citizen_a.person) == (Decimal("0.00"), Decimal("0.50"))
    assert wallet_of(father).balance == 0  # credited only when accepted
    assert transfer.state == "pending"
    assert transfer.return_due_at == local(11, 6)
    entries = LedgerEntry.objects.filter(reference=transfer.reference).order_by("part")
    assert [(e.part, e.amount, e.kind) for e in entries] == [
        ("current", Decimal("-1200.00"), "wallet"),
        ("historical", Decimal("-300.00"), "wallet"),
    ]
    assert set(Notification.objects.filter(kind__startswith="wallet_transfer").values_list("person_id", "kind")) == {
        (citizen_a.person_id, "wallet_transfer.sent"),
        (father.person_id, "wallet_transfer.waiting"),
    }
    assert_books_balance()


def test_r37_at_most_2000_each_and_the_refusal_names_the_limit(citizen_a, binding):
    give_account(citizen_a.person, current="1000.00")

    with pytest.raises(WalletRefused) as refused:
        send(citizen_a, binding, "2000.01")
    assert refused.value.code == "wallet_amount_limit"
    assert "R37" in refused.value.title and "¥2,000.00" in refused.value.title
    assert [e.field for e in refused.value.errors] == ["amount"]

    assert send(citizen_a, binding, "2000.00").amount == Decimal("2000.00")


def test_r37_the_limit_is_configuration(citizen_a, binding, settings):
    settings.WALLET_MAX_TRANSFER_AMOUNT = "100.00"

    with pytest.raises(WalletRefused) as refused:
        send(citizen_a, binding, "100.01")

    assert "¥100.00" in refused.value.title


def test_r37_at_most_three_a_day_and_the_refusal_names_the_limit(citizen_a, binding, frozen):
    for _ in range(3):
        send(citizen_a, binding, "10.00")

    with pytest.raises(WalletRefused) as refused:
        send(citizen_a, binding, "10.00")
    assert refused.value.code == "wallet_daily_limit"
    assert "R37" in refused.value.title and "3" in refused.value.title

    frozen.move_to(local(11, 6), tick=False)  # the next local day
    assert send(citizen_a, binding, "10.00").state == "pending"


def test_r37_the_day_is_the_local_day_not_the_utc_one(citizen_a, binding, frozen):
    frozen.move_to(local(10, 7), tick=False)  # 2026-03-09 23:00 UTC
    for _ in range(3):
        send(citizen_a, binding, "1.00")

    frozen.move_to(local(10, 21), tick=False)  # 2026-03-10 13:00 UTC: another UTC day, the same local one
    with pytest.raises(WalletRefused) as refused:
        send(citizen_a, binding, "1.00")

    assert refused.value.code == "wallet_daily_limit"


@pytest.mark.parametrize(("day", "hour", "minute"), [(10, 22, 0), (10, 23, 59), (11, 0, 0), (11, 5, 59)])
def test_r37_none_in_the_quiet_hours_across_midnight(citizen_a, binding, frozen, day, hour, minute):
    frozen.move_to(local(day, hour, minute), tick=False)

    with pytest.raises(WalletRefused) as refused:
        send(citizen_a, binding, "10.00")

    assert refused.value.code == "wallet_quiet_hours"
    assert "22:00" in refused.value.title and "06:00" in refused.value.title
    assert not WalletTransfer.objects.exists()
    assert balances(citizen_a.person) == (Decimal("1200.00"), Decimal("300.50"))


@pytest.mark.parametrize(("hour", "minute"), [(6, 0), (21, 59)])
def test_r37_the_edges_of_the_quiet_hours_are_open(citizen_a, binding, frozen, hour, minute):
    frozen.move_to(local(10, hour, minute), tick=False)

    assert send(citizen_a, binding, "10.00").return_due_at == local(11, 6)


def test_r37_same_province_relatives_share_by_payment_not_the_wallet(citizen_a, citizen_a_family):
    spouse = citizen_a_family["spouse"]
    wallet_open(person=spouse, opened_by=None)
    same_province = bind(citizen_a.person, spouse, relationship=Relation.SPOUSE)

    with pytest.raises(WalletRefused) as refused:
        send(citizen_a, same_province, "10.00")

    assert refused.value.code == "wallet_same_province"
    assert "R37" in refused.value.title


def test_r37_the_relative_must_have_opened_a_wallet_and_is_told_how(citizen_a):
    person, _user = cross_province_parent()
    binding = bind(citizen_a.person, person)

    with pytest.raises(WalletRefused) as refused:
        send(citizen_a, binding, "10.00")

    assert refused.value.code == "wallet_not_open"
    assert "family card manager" in refused.value.title and "wallet page" in refused.value.title


def test_r37_only_the_owners_own_active_binding(citizen_a, citizen_b, binding):
    with pytest.raises(WalletRefused) as refused:
        send(citizen_b, binding, "10.00")
    assert refused.value.code == "binding_not_found"

    binding.state = BindingState.ENDED
    binding.save()
    with pytest.raises(WalletRefused) as refused:
        send(citizen_a, binding, "10.00")
    assert refused.value.code == "binding_not_in_force"


def test_r34_send_never_overdraws(citizen_a, binding):
    give_account(citizen_a.person, current="-1000.00")  # 200.00 + 300.50 left

    with pytest.raises(InsufficientBalance):
        send(citizen_a, binding, "600.00")

    assert balances(citizen_a.person) == (Decimal("200.00"), Decimal("300.50"))


def test_r34_the_same_key_twice_sends_once_and_another_body_is_409(citizen_a, binding):
    first = send(citizen_a, binding, "10.00", key="k1")
    again = send(citizen_a, binding, "10.00", key="k1")

    assert (again.pk, again.replayed) == (first.pk, True)
    assert WalletTransfer.objects.count() == 1
    with pytest.raises(DomainError) as refused:
        send(citizen_a, binding, "11.00", key="k1")
    assert (refused.value.status, refused.value.code) == (409, "idempotency_key_reused")
    assert balances(citizen_a.person) == (Decimal("1190.00"), Decimal("300.50"))


# --- Accept --------------------------------------------------------------------------------------------


def test_r37_accepting_credits_the_wallet_and_again_is_a_no_op(citizen_a, father, binding):
    transfer = send(citizen_a, binding, "80.00")

    accepted = wallet_transfer_accept(transfer_id=transfer.pk, user=father)
    again = wallet_transfer_accept(transfer_id=transfer.pk, user=father)

    assert (accepted.state, accepted.replayed, again.replayed) == ("accepted", False, True)
    assert wallet_of(father).balance == Decimal("80.00")
    assert list(WalletEntry.objects.values_list("kind", "amount", "reference")) == [
        ("transfer_in", Decimal("80.00"), transfer.reference)
    ]
    assert Notification.objects.filter(kind="wallet_transfer.accepted").count() == 2
    assert_books_balance()


def test_r37_only_the_wallet_holder_accepts(citizen_a, citizen_b, binding):
    transfer = send(citizen_a, binding, "80.00")

    with pytest.raises(WalletRefused) as refused:
        wallet_transfer_accept(transfer_id=transfer.pk, user=citizen_a)
    assert refused.value.status == 403

    from django.http import Http404

    with pytest.raises(Http404):
        wallet_transfer_accept(transfer_id=transfer.pk, user=citizen_b)
    assert WalletTransfer.objects.get().state == "pending"


def test_r37_a_transfer_past_its_time_cannot_be_accepted_even_before_the_task_runs(citizen_a, father, binding, frozen):
    transfer = send(citizen_a, binding, "80.00")
    frozen.move_to(local(11, 6), tick=False)

    with pytest.raises(WalletRefused) as refused:
        wallet_transfer_accept(transfer_id=transfer.pk, user=father)

    assert refused.value.code == "wallet_transfer_expired"
    assert wallet_of(father).balance == 0


# --- Return at 06:00 the next day ---------------------------------------------------------------------


def test_r37_unaccepted_returns_at_six_the_next_day_and_not_before(citizen_a, father, binding):
    transfer = send(citizen_a, binding, "1500.00")

    assert wallet_transfers_return_due(now=local(11, 5, 59)) == 0
    assert WalletTransfer.objects.get().state == "pending"

    assert wallet_transfers_return_due(now=local(11, 6)) == 1
    transfer.refresh_from_db()
    assert (transfer.state, transfer.returned_at) == ("returned", local(11, 6))
    assert balances(citizen_a.person) == (Decimal("1200.00"), Decimal("300.50"))  # to the same parts
    assert wallet_of(father).balance == 0
    assert Notification.objects.filter(kind="wallet_transfer.returned").count() == 2
    assert_books_balance()


def test_r37_returning_twice_returns_once(citizen_a, binding):
    send(citizen_a, binding, "100.00")

    assert wallet_transfers_return_due(now=local(11, 6)) == 1
    assert wallet_transfers_return_due(now=local(11, 7)) == 0
    assert wallet_transfers_return_for_binding(binding=binding, now=local(11, 8)) == 0

    assert balances(citizen_a.person) == (Decimal("1200.00"), Decimal("300.50"))
    assert LedgerEntry.objects.filter(kind="wallet", amount__gt=0).count() == 1
    assert_books_balance()


def test_r37_a_returned_transfer_cannot_be_accepted(citizen_a, father, binding, frozen):
    transfer = send(citizen_a, binding, "100.00")
    wallet_transfers_return_due(now=local(11, 6))
    frozen.move_to(local(11, 7), tick=False)

    with pytest.raises(WalletRefused) as refused:
        wallet_transfer_accept(transfer_id=transfer.pk, user=father)

    assert (refused.value.status, refused.value.code) == (409, "wallet_transfer_returned")


def test_r37_the_beat_task_returns_what_is_due(citizen_a, binding, frozen):
    send(citizen_a, binding, "100.00")
    frozen.move_to(local(11, 6, 5), tick=False)

    assert tasks.wallet_transfers_return_due.delay().get() == 1
    assert tasks.wallet_transfers_return_due.delay().get() == 0
    assert balances(citizen_a.person) == (Decimal("1200.00"), Decimal("300.50"))


# --- Return when the relationship ends -------------------------------------------------------------------


def spend_from_wallet(user, amount: str) -> None:
    """Set-up: the relative spends from the wallet (payments are another feature)."""
    _accounts, wallets = accounts_lock(account_ids=[], wallet_ids=[wallet_of(user).pk])
    wallet_post_locked(wallet=next(iter(wallets.values())), amount=Decimal(amount), kind="payment")


def test_r37_when_sharing_ends_pending_and_unused_money_go_back(citizen_a, father, binding):
    accepted = send(citizen_a, binding, "1300.00")  # 1200.00 current + 100.00 previous years
    wallet_transfer_accept(transfer_id=accepted.pk, user=father)
    pending = send(citizen_a, binding, "100.00")  # previous years: 100.00
    spend_from_wallet(father, "-1000.00")  # 300.00 of it unused

    binding_end(binding_id=binding.pk, user=citizen_a)

    pending.refresh_from_db()
    accepted.refresh_from_db()
    assert pending.state == "returned"
    assert accepted.returned_amount == Decimal("300.00")
    assert wallet_of(father).balance == 0
    # Pending back to its part (100 previous years); unused: previous years first (100), then current (200).
    assert balances(citizen_a.person) == (Decimal("200.00"), Decimal("300.50"))
    assert WalletEntry.objects.filter(kind="return").get().amount == Decimal("-300.00")
    assert Notification.objects.filter(kind="wallet.unused_returned").count() == 2
    assert_books_balance()


def test_r37_unused_is_at_most_what_this_owner_sent(citizen_a, father, binding):
    accepted = send(citizen_a, binding, "100.00")
    wallet_transfer_accept(transfer_id=accepted.pk, user=father)
    spend_from_wallet(father, "500.00")  # money of the father's own from elsewhere

    binding_end(binding_id=binding.pk, user=father)  # the relative leaves (退出)

    assert wallet_of(father).balance == Decimal("500.00")
    assert balances(citizen_a.person) == (Decimal("1200.00"), Decimal("300.50"))
    assert_books_balance()


def test_r37_ending_again_or_returning_again_gives_nothing_twice(citizen_a, father, binding):
    accepted = send(citizen_a, binding, "100.00")
    wallet_transfer_accept(transfer_id=accepted.pk, user=father)
    binding_end(binding_id=binding.pk, user=citizen_a)

    assert wallet_transfers_return_for_binding(binding=binding) == 0
    assert wallet_transfers_return_due(now=local(12, 6)) == 0
    assert balances(citizen_a.person) == (Decimal("1200.00"), Decimal("300.50"))
    assert WalletEntry.objects.filter(kind="return").count() == 1
    assert_books_balance()


# --- Pages ------------------------------------------------------------------------------------------------


def test_r37_wallet_page_shows_the_waiting_transfer_and_accepts_it(client, citizen_a, father, binding):
    send(citizen_a, binding, "66.00")
    client.force_login(father)

    page = client.get("/family/wallet/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "¥66.00" in html and "张*" in html
    transfer = WalletTransfer.objects.get()
    response = client.post(f"/family/wallet/transfers/{transfer.pk}/accept/")

    assert response["Location"] == "/family/wallet/"
    assert wallet_of(father).balance == Decimal("66.00")
    assert "¥66.00" in client.get("/family/wallet/").content.decode()


def test_r37_a_stranger_posting_accept_gets_404(client, citizen_a, citizen_b, binding):
    transfer = send(citizen_a, binding, "66.00")
    client.force_login(citizen_b)

    assert client.post(f"/family/wallet/transfers/{transfer.pk}/accept/").status_code == 404
    assert WalletTransfer.objects.get().state == "pending"


def test_r37_a_relative_opens_the_wallet_from_the_page(client, citizen_a):
    person, user = cross_province_parent()
    client.force_login(user)
    html = client.get("/family/wallet/").content.decode()
    assert 'action="/family/wallet/open/"' in html

    response = client.post("/family/wallet/open/")

    assert response["Location"] == "/family/wallet/"
    assert Wallet.objects.get(person=person).opened_by == user


def test_r37_send_page_shows_the_limits_and_sends_once_on_a_double_click(client, citizen_a, father, binding, settings):
    client.force_login(citizen_a)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get("/family/wallet/send/")
    html = page.content.decode()
    assert "you have 3 left today" in html
    assert "¥2,000.00" in html and "22:00" in html
    form = main_form(html)
    assert form.values["idempotency_key"]

    data = {**form.values, "binding": str(binding.pk), "amount": "25.00"}
    first = client.post("/family/wallet/send/", data)
    second = client.post("/family/wallet/send/", data)

    assert first["Location"] == second["Location"] == "/family/wallet/"
    assert WalletTransfer.objects.count() == 1
    assert balances(citizen_a.person) == (Decimal("1175.00"), Decimal("300.50"))
    assert "you have 2 left today" in client.get("/family/wallet/send/").content.decode()


def test_r37_send_page_shows_a_refusal_next_to_the_amount(client, citizen_a, binding):
    client.force_login(citizen_a)

    response = submit(client, "/family/wallet/send/", {"binding": str(binding.pk), "amount": "2500"})

    assert response.status_code == 200
    assert "R37" in response.content.decode()
    assert not WalletTransfer.objects.exists()


def test_r37_send_page_explains_when_nobody_is_in_another_province(client, citizen_a):
    client.force_login(citizen_a)

    assert "no-cross-province" in client.get("/family/wallet/send/").content.decode()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("url", ["/family/wallet/", "/family/wallet/send/"])
def test_wallet_pages_answer_in_both_languages(client, citizen_a, binding, settings, language, url):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    client.force_login(citizen_a)

    response = client.get(url)

    assert response.status_code == 200
    assert ('lang="en"' if language == "en" else 'lang="zh-CN"') in response.content.decode()


def test_wallet_pages_need_a_login(client):
    assert client.get("/family/wallet/")["Location"].startswith("/accounts/login/")


# --- Concurrency -------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r34_two_sends_with_the_same_key_at_once_make_one_transfer(citizen_a):
    father_person, father_user = cross_province_parent()
    wallet_open(person=father_person, opened_by=father_user)
    binding = bind(citizen_a.person, father_person)
    key = uuid.uuid4().hex

    results = run_together([lambda: send(citizen_a, binding, "30.00", key=key) for _ in range(2)])

    assert all(isinstance(r, WalletTransfer) for r in results), results
    assert results[0].pk == results[1].pk
    assert WalletTransfer.objects.count() == 1
    assert balances(citizen_a.person) == (Decimal("1170.00"), Decimal("300.50"))
    assert_books_balance()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r37_the_daily_limit_holds_under_concurrent_sends(citizen_a):
    father_person, father_user = cross_province_parent()
    wallet_open(person=father_person, opened_by=father_user)
    binding = bind(citizen_a.person, father_person)

    results = run_together([lambda: send(citizen_a, binding, "1.00") for _ in range(5)])

    assert sum(isinstance(r, WalletTransfer) for r in results) == 3
    assert sum(isinstance(r, WalletRefused) and r.code == "wallet_daily_limit" for r in results) == 2

"""The payments API (R31–R34, R42): receipts, idempotency keys, card checks, rights, QR codes, refunds.

Through DRF's test client with token authentication, as a clinic's or pharmacy's system calls it.
Every refusal is problem+json and charges nothing: the tests check the stored state, not only the status.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import Institution, InsuranceStatus, LedgerEntry, PersonalAccount, User
from cards.models import CardState, ECard, QrToken
from cards.services import qr_issue
from family.models import Payment, PaymentRefund
from tests.factories import InstitutionFactory, UserFactory, give_account

pytestmark = pytest.mark.django_db

PAYMENTS = "/api/v1/payments/"
QUOTE = "/api/v1/payments/quote/"


def detail_url(payment_id: int) -> str:
    return f"/api/v1/payments/{payment_id}/"


def reverse_url(payment_id: int) -> str:
    return f"/api/v1/payments/{payment_id}/reverse/"


# --- Personas of the payment desk ---


def token_client(user: User) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return api


@pytest.fixture
def clinic_system(institution_x) -> User:
    """The partner system of 苏州市立医院 (institution X, a clinic)."""
    return UserFactory(username="clinic-system", role=User.Role.PARTNER, institution=institution_x, phone=None)


@pytest.fixture
def pharmacy(region) -> Institution:
    return InstitutionFactory(code="P320500001", name="苏州大药房", region=region, kind=Institution.Kind.PHARMACY)


@pytest.fixture
def pharmacy_system(pharmacy) -> User:
    return UserFactory(username="pharmacy-system-x", role=User.Role.PARTNER, institution=pharmacy, phone=None)


@pytest.fixture
def as_clinic(clinic_system) -> APIClient:
    return token_client(clinic_system)


@pytest.fixture
def as_pharmacy(pharmacy_system) -> APIClient:
    return token_client(pharmacy_system)


@pytest.fixture
def as_clerk(clerk_x) -> APIClient:
    return token_client(clerk_x)


@pytest.fixture
def spouse(citizen_a_family):
    """A's spouse: an employee with a small account of her own (30.00 current, 20.00 previous years)."""
    person = citizen_a_family["spouse"]
    give_account(person, current="30.00", historical="20.00")
    return person


@pytest.fixture
def spouse_bound(citizen_a, spouse, binding_active):
    """A pays for the spouse: an active binding, A the owner."""
    return binding_active(citizen_a.person, spouse, relationship="spouse")


def medical(person, amount="100.00", **extra) -> dict:
    return {"card_number": person.card_number, "kind": "medical", "amount": amount, **extra}


def pay(api: APIClient, body: dict, key: str | None = "k1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post(PAYMENTS, body, format="json", **headers)


def refund(api: APIClient, payment_id: int, key: str | None, **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post(reverse_url(payment_id), body, format="json", **headers)


def assert_problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "errors"} <= set(body), body
    assert body["status"] == status
    assert isinstance(body["errors"], list)
    if code is not None:
        assert body["type"] == f"/api/problems/{code}/", body
    return body


def fields(problem: dict) -> list[str]:
    return [error["field"] for error in problem["errors"]]


def balances(person) -> tuple[Decimal, Decimal]:
    account = PersonalAccount.objects.get(person=person)
    return account.current_balance, account.historical_balance


def money_state() -> tuple:
    """Everything a charge or refund would change: counts of payments, refunds and entries, every balance."""
    return (
        Payment.objects.count(),
        PaymentRefund.objects.count(),
        LedgerEntry.objects.count(),
        sorted(PersonalAccount.objects.values_list("pk", "current_balance", "historical_balance")),
    )


def assert_ledger_matches_balances() -> None:
    """R30: the sum of each account's entries, per part, is its cached balance."""
    for account in PersonalAccount.objects.all():
        for part, cached in (("current", account.current_balance), ("historical", account.historical_balance)):
            total = sum(LedgerEntry.objects.filter(account=account, part=part).values_list("amount", flat=True))
            assert total == cached, (account.person_id, part, total, cached)


# --- A payment and its receipt ---


def test_r33_receipt_lists_own_account_then_owner_then_cash_masked(
    as_clinic, clinic_system, citizen_a, spouse, spouse_bound, institution_x, citizen_a_family
):
    response = pay(as_clinic, medical(spouse, "1600.00"))

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["charged"] is True and body["replayed"] is False
    assert body["amount"] == "1600.00" and body["kind"] == "medical"
    assert body["patient"] == {"name": "李*", "id_number": spouse.id_number[:3] + "*" * 11 + spouse.id_number[-4:]}
    assert [
        (line["position"], line["source"], line["payer"]["name"], line["relationship"], line["amount"])
        for line in body["lines"]
    ] == [(1, "own", "李*", "", "50.00"), (2, "binding", "张*", "spouse", "1500.50")]
    own, owner = body["lines"]
    assert (own["current_year"], own["previous_years"], own["wallet"]) == ("30.00", "20.00", "0.00")
    assert (owner["current_year"], owner["previous_years"], owner["refunded"]) == ("1200.00", "300.50", "0.00")
    assert body["cash"] == "49.50" and body["from_accounts"] == "1550.50" and body["refunded"] == "0.00"
    assert body["institution"] == {"code": institution_x.code, "name": institution_x.name}
    # R4: no full ID number of anyone, anywhere in the answer.
    text = response.content.decode()
    for person in [citizen_a.person, *citizen_a_family.values()]:
        assert person.id_number not in text
        assert person.id_number[3:-4] not in text

    payment = Payment.objects.get()
    assert (payment.pk, payment.reference) == (body["id"], body["reference"])
    assert (payment.client, payment.institution, payment.card_number) == (
        clinic_system,
        institution_x,
        spouse.card_number,
    )
    assert balances(spouse) == (0, 0) and balances(citizen_a.person) == (0, 0)
    assert sorted(LedgerEntry.objects.filter(kind="payment").values_list("amount", flat=True)) == sorted(
        Decimal(v) for v in ("-30.00", "-20.00", "-1200.00", "-300.50")
    )
    assert_ledger_matches_balances()


def test_r34_replay_with_the_same_key_answers_the_same_receipt_and_charges_nothing(as_clinic, spouse, spouse_bound):
    first = pay(as_clinic, medical(spouse, "80.00"), key="visit-1")
    assert first.status_code == 201
    before = money_state()

    again = pay(as_clinic, medical(spouse, "80.00"), key="visit-1")

    assert again.status_code == 200, again.content
    replayed = again.json()
    assert replayed.pop("replayed") is True
    original = first.json()
    assert original.pop("replayed") is False
    assert replayed == original
    assert money_state() == before


def test_r34_the_same_key_with_another_body_is_409_and_charges_nothing(as_clinic, spouse, spouse_bound):
    assert pay(as_clinic, medical(spouse, "80.00"), key="visit-1").status_code == 201
    before = money_state()

    problem = assert_problem(pay(as_clinic, medical(spouse, "81.00"), key="visit-1"), 409, "idempotency_key_reused")

    assert "Idempotency-Key" in problem["title"]
    assert money_state() == before


def test_r34_keys_belong_to_their_client(as_clinic, as_clerk, spouse, spouse_bound):
    """Another client's key of the same text is another payment (keys are unique per client)."""
    assert pay(as_clinic, medical(spouse, "10.00"), key="same").status_code == 201
    assert pay(as_clerk, medical(spouse, "10.00"), key="same").status_code == 201
    assert Payment.objects.count() == 2


def test_r34_a_payment_without_idempotency_key_is_400_naming_the_header(as_clinic, spouse, spouse_bound):
    problem = assert_problem(pay(as_clinic, medical(spouse), key=None), 400, "idempotency_key_missing")
    assert fields(problem) == ["Idempotency-Key"]
    too_long = assert_problem(pay(as_clinic, medical(spouse), key="k" * 65), 400, "idempotency_key_invalid")
    assert fields(too_long) == ["Idempotency-Key"]
    assert Payment.objects.count() == 0


# --- R32: the card ---


def test_r32_unknown_card_is_404(as_clinic, db):
    problem = assert_problem(pay(as_clinic, {"card_number": "E99999999", "kind": "medical", "amount": "10"}), 404)
    assert problem["type"] == "/api/problems/card_unknown/" and fields(problem) == ["card_number"]
    assert Payment.objects.count() == 0


def test_r32_no_card_at_all_or_two_ways_at_once_is_400(as_clinic, spouse):
    assert_problem(pay(as_clinic, {"kind": "medical", "amount": "10"}), 400, "card_missing")
    both = medical(spouse, qr_reference="abc")
    assert_problem(pay(as_clinic, both, key="k2"), 400, "card_missing")


def test_r32_a_suspended_insurance_blocks_the_card(as_clerk, spouse, spouse_bound):
    spouse.status = InsuranceStatus.SUSPENDED
    spouse.save(update_fields=["status"])
    before = money_state()

    assert_problem(pay(as_clerk, medical(spouse)), 409, "card_blocked")
    assert_problem(as_clerk.post(QUOTE, medical(spouse), format="json"), 409, "card_blocked")

    assert money_state() == before


def test_r32_a_suspended_ecard_is_blocked(as_clinic, spouse, spouse_bound, claim_card):
    card = claim_card(spouse)
    # Set up directly (card_suspend is not what this test is about): suspended, with when and why.
    ECard.objects.filter(pk=card.pk).update(
        state=CardState.SUSPENDED, suspended_at=timezone.now(), suspension_reason="reported lost"
    )
    before = money_state()

    problem = assert_problem(pay(as_clinic, medical(spouse)), 409, "card_blocked")

    assert fields(problem) == ["card_number"]
    assert money_state() == before


def test_r32_a_card_that_is_not_the_patients_is_refused(as_clinic, citizen_a, spouse, spouse_bound):
    # The spouse's card presented for A (whose ID number the clinic registered as the patient).
    body = medical(spouse, patient_id_number=citizen_a.person.id_number)
    before = money_state()

    problem = assert_problem(pay(as_clinic, body), 409, "card_not_patients")

    assert "R32" in problem["title"] and fields(problem) == ["card_number"]
    assert money_state() == before
    # The holder's own ID number (in lower case) is the patient: accepted.
    ok = pay(as_clinic, medical(spouse, patient_id_number=spouse.id_number.lower()), key="k2")
    assert ok.status_code == 201, ok.content


def test_r33_an_unbound_relative_pays_from_own_account_and_cash_only(as_clinic, citizen_a, spouse):
    quote = as_clinic.post(QUOTE, medical(spouse, "100.00"), format="json").json()
    # The quote says why no family member pays; so do the receipt and its replay under the same key (R34).
    assert [note["rule"] for note in quote["notes"]] == ["R33"]

    response = pay(as_clinic, medical(spouse, "100.00"))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["notes"] == quote["notes"]
    replay = pay(as_clinic, medical(spouse, "100.00"))
    assert replay.status_code == 200, replay.content
    assert replay.json()["notes"] == quote["notes"]
    assert as_clinic.get(f"/api/v1/payments/{body['id']}/").json()["notes"] == quote["notes"]
    assert [(line["source"], line["amount"]) for line in body["lines"]] == [("own", "50.00")]
    assert body["cash"] == "50.00"
    assert balances(spouse) == (0, 0)
    assert balances(citizen_a.person) == (Decimal("1200.00"), Decimal("300.50"))  # A's account is untouched


# --- R31: what may be paid, and amounts ---


@pytest.mark.parametrize("amount", ["0", "-5", "1.001", "0.001", "abc", ""])
def test_bad_amounts_are_400_naming_the_amount(as_clinic, spouse, spouse_bound, amount):
    before = money_state()
    problem = assert_problem(pay(as_clinic, medical(spouse, amount)), 400)
    assert fields(problem) == ["amount"]
    assert_problem(as_clinic.post(QUOTE, medical(spouse, amount), format="json"), 400)
    assert money_state() == before


def test_r31_fitness_is_refused_naming_r31(as_clinic, spouse, spouse_bound):
    before = money_state()
    problem = assert_problem(pay(as_clinic, {**medical(spouse), "kind": "fitness"}), 400, "kind_not_allowed")
    assert "R31" in problem["title"] and fields(problem) == ["kind"]
    assert money_state() == before


def test_r31_a_pharmacy_pays_drugs_but_not_cosmetics(as_pharmacy, spouse, spouse_bound):
    cosmetics = {"card_number": spouse.card_number, "kind": "pharmacy", "category": "cosmetics", "amount": "20"}
    problem = assert_problem(pay(as_pharmacy, cosmetics), 400, "category_not_allowed")
    assert "R31" in problem["title"] and fields(problem) == ["category"]
    assert Payment.objects.count() == 0
    # Medical costs are paid at a clinic, not at a pharmacy.
    assert_problem(pay(as_pharmacy, medical(spouse), key="k2"), 400, "kind_not_allowed_here")

    drugs = pay(as_pharmacy, {**cosmetics, "category": "drug"}, key="k3")
    assert drugs.status_code == 201, drugs.content
    assert Payment.objects.get().category == "drug"


# --- Who may take payments ---


def test_another_institutions_code_is_403(as_clinic, pharmacy, spouse, spouse_bound):
    problem = assert_problem(
        pay(as_clinic, medical(spouse, institution_code=pharmacy.code)), 403, "institution_not_allowed"
    )
    assert fields(problem) == ["institution_code"]
    assert Payment.objects.count() == 0


def test_its_own_institution_code_is_accepted(as_clinic, institution_x, spouse, spouse_bound):
    assert pay(as_clinic, medical(spouse, institution_code=institution_x.code)).status_code == 201


def test_a_partner_without_an_institution_cannot_take_payments(partner_token, spouse, spouse_bound):
    national = APIClient()
    national.credentials(HTTP_AUTHORIZATION=f"Token {partner_token}")
    assert_problem(pay(national, medical(spouse)), 403, "no_institution")
    assert_problem(national.post(QUOTE, medical(spouse), format="json"), 403, "no_institution")
    assert Payment.objects.count() == 0


def test_citizens_and_strangers_cannot_pay_quote_or_read(citizen_a, spouse, spouse_bound, as_clinic):
    payment_id = pay(as_clinic, medical(spouse)).json()["id"]
    citizen = token_client(citizen_a)
    anonymous = APIClient()
    for method, url in (("post", PAYMENTS), ("post", QUOTE), ("get", detail_url(payment_id))):
        assert_problem(getattr(citizen, method)(url, medical(spouse), format="json", HTTP_IDEMPOTENCY_KEY="c"), 403)
        assert_problem(getattr(anonymous, method)(url, medical(spouse), format="json", HTTP_IDEMPOTENCY_KEY="a"), 401)
    assert_problem(citizen.post(reverse_url(payment_id), {}, format="json", HTTP_IDEMPOTENCY_KEY="c"), 403)
    assert_problem(anonymous.post(reverse_url(payment_id), {}, format="json", HTTP_IDEMPOTENCY_KEY="a"), 401)
    assert Payment.objects.count() == 1 and PaymentRefund.objects.count() == 0


# --- Quotes ---


def test_r33_the_quote_charges_nothing_and_equals_the_charge_that_follows(as_clinic, spouse, spouse_bound):
    before = money_state()
    quote = as_clinic.post(QUOTE, medical(spouse, "1234.56"), format="json")

    assert quote.status_code == 200, quote.content
    assert quote["Cache-Control"] == "no-store"
    assert money_state() == before
    quoted = quote.json()
    assert quoted["charged"] is False and quoted["qr_reference"] == ""

    receipt = pay(as_clinic, medical(spouse, "1234.56")).json()
    for name in ("patient", "kind", "amount", "lines", "from_accounts", "cash"):
        assert quoted[name] == receipt[name], name


# --- R42: the dynamic QR code ---


@pytest.fixture
def spouse_qr(spouse, claim_card):
    """``spouse_qr()``: a fresh code of the spouse's active e-card, shown on her own phone."""
    card = claim_card(spouse)
    spouse_login = UserFactory(username="spouse", person=spouse)

    def issue() -> str:
        token, _row = qr_issue(card=card, viewer=spouse_login)
        return token

    return issue


def test_r42_quote_with_a_code_then_pay_with_its_reference(as_clinic, clinic_system, spouse, spouse_bound, spouse_qr):
    token = spouse_qr()

    quote = as_clinic.post(QUOTE, {"qr_token": token, "kind": "medical", "amount": "70.00"}, format="json")

    assert quote.status_code == 200, quote.content
    reference = quote.json()["qr_reference"]
    assert reference and QrToken.objects.get(nonce=reference).used_by == clinic_system
    assert Payment.objects.count() == 0

    paid = pay(as_clinic, {"qr_reference": reference, "kind": "medical", "amount": "70.00"}, key="qr-1")
    assert paid.status_code == 201, paid.content
    assert [line["amount"] for line in paid.json()["lines"]] == [line["amount"] for line in quote.json()["lines"]]
    payment = Payment.objects.get()
    assert (payment.patient, payment.card_number) == (spouse, spouse.card_number)

    # The code itself is used: under a new key it is refused, and nothing more is charged.
    before = money_state()
    body = {"qr_token": token, "kind": "medical", "amount": "70.00"}
    assert_problem(pay(as_clinic, body, key="qr-2"), 409, "replayed")
    assert money_state() == before


def test_r42_pay_directly_with_a_code_uses_it_once(as_clinic, spouse, spouse_bound, spouse_qr):
    body = {"qr_token": spouse_qr(), "kind": "medical", "amount": "15.00"}
    assert pay(as_clinic, body, key="a").status_code == 201
    # A retry of the same payment (same key) answers the receipt without reading the code again.
    assert pay(as_clinic, body, key="a").status_code == 200
    assert_problem(pay(as_clinic, body, key="b"), 409, "replayed")
    assert Payment.objects.count() == 1


def test_r42_a_qr_reference_is_only_for_the_client_that_read_the_code(
    as_clinic, as_clerk, spouse, spouse_bound, spouse_qr
):
    quote = as_clinic.post(QUOTE, {"qr_token": spouse_qr(), "kind": "medical", "amount": "5"}, format="json")
    reference = quote.json()["qr_reference"]
    problem = assert_problem(
        pay(as_clerk, {"qr_reference": reference, "kind": "medical", "amount": "5"}), 400, "qr_reference_invalid"
    )
    assert fields(problem) == ["qr_reference"]
    assert Payment.objects.count() == 0


def test_r42_a_qr_reference_pays_once(as_clinic, spouse, spouse_bound, spouse_qr):
    quote = as_clinic.post(QUOTE, {"qr_token": spouse_qr(), "kind": "medical", "amount": "5"}, format="json")
    body = {"qr_reference": quote.json()["qr_reference"], "kind": "medical", "amount": "5"}
    assert pay(as_clinic, body, key="first").status_code == 201

    second = pay(as_clinic, body, key="second")

    assert second.status_code == 409, second.content  # one scan, one payment
    assert Payment.objects.count() == 1


# --- R34: refunds ---


@pytest.fixture
def paid(as_clinic, spouse, spouse_bound) -> dict:
    """A 1600.00 payment: 50.00 from the spouse, 1500.50 from A, 49.50 cash."""
    response = pay(as_clinic, medical(spouse, "1600.00"), key="visit")
    assert response.status_code == 201
    return response.json()


def test_r34_partial_then_full_refund_through_reverse(as_clinic, paid, citizen_a, spouse):
    partial = refund(as_clinic, paid["id"], "r1", amount="100.00", reason="one drug returned")

    assert partial.status_code == 201, partial.content
    body = partial.json()
    assert (body["amount"], body["cash"], body["replayed"]) == ("100.00", "49.50", False)
    assert body["receipt"]["refunded"] == "100.00"
    assert [line["refunded"] for line in body["receipt"]["lines"]] == ["0.00", "50.50"]
    assert balances(citizen_a.person) == (0, Decimal("50.50"))  # previous years go back first

    full = refund(as_clinic, paid["id"], "r2")

    assert full.status_code == 201, full.content
    assert full.json()["amount"] == "1500.00" and full.json()["receipt"]["refunded"] == "1600.00"
    assert balances(citizen_a.person) == (Decimal("1200.00"), Decimal("300.50"))
    assert balances(spouse) == (Decimal("30.00"), Decimal("20.00"))
    assert LedgerEntry.objects.filter(kind="payment").count() == 4  # never edited (R34)
    assert_ledger_matches_balances()
    assert_problem(refund(as_clinic, paid["id"], "r3"), 409, "refunded_already")


def test_r34_a_refund_replayed_with_its_key_refunds_once(as_clinic, paid):
    first = refund(as_clinic, paid["id"], "r1", amount="10.00")
    assert first.status_code == 201
    before = money_state()

    again = refund(as_clinic, paid["id"], "r1", amount="10.00")

    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["id"] == first.json()["id"]
    assert money_state() == before
    assert_problem(refund(as_clinic, paid["id"], "r1", amount="11.00"), 409, "idempotency_key_reused")
    assert_problem(refund(as_clinic, paid["id"], None, amount="1.00"), 400, "idempotency_key_missing")
    assert money_state() == before


def test_r34_refunding_more_than_is_left_is_409(as_clinic, paid):
    assert refund(as_clinic, paid["id"], "r1", amount="1000.00").status_code == 201
    before = money_state()
    problem = assert_problem(refund(as_clinic, paid["id"], "r2", amount="600.01"), 409, "refund_too_large")
    assert fields(problem) == ["amount"]
    assert_problem(refund(as_clinic, paid["id"], "r3", amount="0"), 400)
    assert money_state() == before
    assert refund(as_clinic, paid["id"], "r4", amount="600.00").status_code == 201


def test_r34_another_client_cannot_refund_or_read_a_payment(as_clinic, as_pharmacy, as_clerk, paid):
    before = money_state()
    missing = assert_problem(refund(as_pharmacy, paid["id"], "r1"), 404, "not_found")
    assert assert_problem(refund(as_pharmacy, 999_999, "r2"), 404)["title"] == missing["title"]
    assert money_state() == before
    # Reading: the same 404 for another client's payment as for none (no probing of ids).
    other = assert_problem(as_pharmacy.get(detail_url(paid["id"])), 404, "not_found")
    assert assert_problem(as_pharmacy.get(detail_url(999_999)), 404)["title"] == other["title"]
    # The client that took it, and a clerk of the same institution, see the receipt.
    mine = as_clinic.get(detail_url(paid["id"]))
    assert mine.status_code == 200 and mine.json()["reference"] == paid["reference"]
    assert as_clerk.get(detail_url(paid["id"])).json()["id"] == paid["id"]
    assert refund(as_clerk, paid["id"], "clerk-r1", amount="1.00").status_code == 201


# --- The schema ---


def test_the_payment_endpoints_are_in_the_schema(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    expected = {
        (PAYMENTS, "post"): "payments_create",
        (QUOTE, "post"): "payments_quote",
        ("/api/v1/payments/{payment_id}/", "get"): "payments_detail",
        ("/api/v1/payments/{payment_id}/reverse/", "post"): "payments_reverse",
    }
    for (path, method), operation_id in expected.items():
        assert paths[path][method]["operationId"] == operation_id
    create = paths[PAYMENTS]["post"]
    assert "Idempotency-Key" in [p["name"] for p in create["parameters"]]
    assert {"200", "201", "400", "401", "403", "404", "409"} <= set(create["responses"])


def test_r34_a_client_asks_by_key_whether_a_payment_happened(as_clinic, spouse, spouse_bound):
    missing = as_clinic.get(PAYMENTS, {"idempotency_key": "lost-answer"})
    assert missing.status_code == 404 and missing["Content-Type"].startswith("application/problem+json")
    made = pay(as_clinic, {"card_number": spouse.card_number, "kind": "medical", "amount": "12.00"}, key="lost-answer")
    found = as_clinic.get(PAYMENTS, {"idempotency_key": "lost-answer"})
    assert found.status_code == 200 and found.json()["id"] == made.json()["id"]
    assert Payment.objects.count() == 1

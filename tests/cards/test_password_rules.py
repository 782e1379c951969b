"""R41 and the other pure rules of the e-card: plain values in, decisions out."""

from __future__ import annotations

import datetime as dt

import pytest

from cards import rules
from cards.rules import birth_date_forms, lock_after_failure, password_problems

BIRTH = dt.date(1980, 3, 15)
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("password", ["12345", "1234567", "12a456", "", " 58621", "５８６２１７", "58621\n", "-58621"])
def test_r41_a_password_is_exactly_six_ascii_digits(password):
    assert password_problems(password, birth_date=BIRTH) == ["not_six_digits"]


@pytest.mark.parametrize("digit", "0123456789")
def test_r41_six_equal_digits_are_refused(digit):
    assert "all_same" in password_problems(digit * 6, birth_date=BIRTH)


@pytest.mark.parametrize("password", ["012345", "123456", "234567", "345678", "456789"])
def test_r41_ascending_runs_are_refused(password):
    assert password_problems(password, birth_date=BIRTH) == ["ascending"]


@pytest.mark.parametrize("password", ["987654", "876543", "765432", "654321", "543210"])
def test_r41_descending_runs_are_refused(password):
    assert password_problems(password, birth_date=BIRTH) == ["descending"]


@pytest.mark.parametrize("password", ["890123", "901234", "789012", "210987", "109876"])
def test_r41_runs_do_not_wrap_around(password):
    assert password_problems(password, birth_date=BIRTH) == []


@pytest.mark.parametrize(
    ("form", "password"),
    [
        ("YYMMDD", "800315"),
        ("last 6 of YYYYMMDD", "19800315"[-6:]),
        ("YYDDMM", "801503"),
        ("MMDDYY", "031580"),
        ("DDMMYY", "150380"),
        ("YYYYMM", "198003"),
        ("MMYYYY", "031980"),
    ],
)
def test_r41_the_birth_date_in_each_common_form_is_refused(form, password):
    assert password_problems(password, birth_date=BIRTH) == ["birth_date"], form


def test_r41_the_birth_date_forms_are_the_six_documented_ones():
    assert birth_date_forms(BIRTH) == {"800315", "801503", "031580", "150380", "198003", "031980"}


def test_r41_someone_elses_birth_date_is_not_a_problem():
    assert password_problems("800316", birth_date=BIRTH) == []
    assert password_problems("800315", birth_date=dt.date(1991, 7, 22)) == []


def test_r41_a_birth_date_that_is_also_six_equal_digits_names_both():
    assert password_problems("111111", birth_date=dt.date(2011, 11, 11)) == ["all_same", "birth_date"]


def test_r41_the_last_six_of_the_id_number_are_refused_when_given():
    id_number = "320505198003152718"
    assert password_problems("152718", birth_date=BIRTH, id_number=id_number) == ["id_number"]
    assert password_problems("152718", birth_date=BIRTH) == []


@pytest.mark.parametrize("password", ["123123", "121212", "520520", "909090", "112233", "147258", "123321", "521314"])
def test_r41_common_passwords_and_repeated_patterns_are_refused(password):
    assert password_problems(password, birth_date=BIRTH) == ["common"]


@pytest.mark.parametrize("password", ["586217", "302918", "749135", "860142", "271828", "093651"])
def test_r41_good_passwords_pass(password):
    assert password_problems(password, birth_date=BIRTH) == []


def test_r41_the_fifth_failure_locks_for_the_configured_minutes():
    assert lock_after_failure(failed_attempts=0, now=NOW, max_attempts=5, lock_minutes=30) == (1, None)
    assert lock_after_failure(failed_attempts=3, now=NOW, max_attempts=5, lock_minutes=30) == (4, None)
    assert lock_after_failure(failed_attempts=4, now=NOW, max_attempts=5, lock_minutes=30) == (
        5,
        NOW + dt.timedelta(minutes=30),
    )
    assert lock_after_failure(failed_attempts=2, now=NOW, max_attempts=3, lock_minutes=5) == (
        3,
        NOW + dt.timedelta(minutes=5),
    )


def test_r41_locked_until_the_instant_and_open_at_it():
    until = NOW + dt.timedelta(minutes=30)
    assert rules.is_locked(locked_until=until, now=until - dt.timedelta(seconds=1))
    assert not rules.is_locked(locked_until=until, now=until)
    assert not rules.is_locked(locked_until=None, now=NOW)


@pytest.mark.parametrize(
    ("state", "agreement", "face", "password", "step"),
    [
        ("pending", False, False, False, "agreement"),
        ("pending", True, False, False, "face"),
        ("pending", True, True, False, "password"),
        ("active", True, True, True, "done"),
        ("suspended", True, True, True, "done"),
    ],
)
def test_r40_the_claim_steps_come_in_order(state, agreement, face, password, step):
    assert (
        rules.claim_next_step(state=state, agreement_accepted=agreement, face_verified=face, password_set=password)
        == step
    )


@pytest.mark.parametrize(
    ("holder", "manager", "owner", "child", "allowed"),
    [
        (True, False, False, False, True),
        (False, True, False, False, True),
        (False, False, True, True, True),
        (False, False, True, False, False),  # R42: a binding alone shows only a child's code
        (False, False, False, True, False),
    ],
)
def test_r42_who_may_show_a_code(holder, manager, owner, child, allowed):
    assert (
        rules.may_show_code(
            is_holder=holder, manages_holder=manager, owns_binding_of_holder=owner, holder_is_child=child
        )
        is allowed
    )


def test_r42_a_verifier_of_another_province_is_foreign_one_without_institution_is_not():
    assert rules.is_foreign_province(verifier_province="420000", card_province="320000")
    assert not rules.is_foreign_province(verifier_province="320000", card_province="320000")
    assert not rules.is_foreign_province(verifier_province=None, card_province="320000")

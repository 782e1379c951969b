"""R1 and R2: resident ID numbers, checked as typed, with the reason for a refusal."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.identity import InvalidIdNumber, age_on, id_check_character, parse_id_number
from tests.factories import make_id_number

TODAY = dt.date(2026, 11, 26)

valid_bodies = st.builds(
    lambda division, birth, seq: f"{division}{birth:%Y%m%d}{seq:03d}",
    st.sampled_from(["110101", "320505", "420102", "510104", "133100", "139900"]),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY),
    st.integers(min_value=0, max_value=999),
)


@given(valid_bodies)
def test_r1_every_generated_valid_id_number_passes(body):
    value = body + id_check_character(body)
    parsed = parse_id_number(value, today=TODAY)
    assert parsed.value == value
    assert parsed.birth_date == dt.date(int(body[6:10]), int(body[10:12]), int(body[12:14]))


@given(valid_bodies, st.integers(min_value=0, max_value=17), st.sampled_from("0123456789X"))
def test_r1_any_single_changed_character_fails(body, position, replacement):
    value = body + id_check_character(body)
    changed = value[:position] + replacement + value[position + 1 :]
    if changed == value:
        return
    with pytest.raises(InvalidIdNumber):
        parse_id_number(changed, today=TODAY)


def test_r1_lower_case_x_is_accepted_and_stored_upper_case():
    body = next(b for b in (f"1101051949123100{d}" for d in range(10)) if id_check_character(b) == "X")
    parsed = parse_id_number(body + "x", today=TODAY)
    assert parsed.value == body + "X"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("11010519491231002", "length"),
        ("1101051949123100211", "length"),
        ("11010519491231A02X", "characters"),
        (make_id_number("110105", "19490231", 2), "date"),
        (make_id_number("110105", "20261127", 2), "future"),
    ],
)
def test_r1_refusal_says_which_part_is_wrong(raw, code):
    with pytest.raises(InvalidIdNumber) as refused:
        parse_id_number(raw, today=TODAY)
    assert refused.value.code == code
    assert refused.value.message


def test_r1_wrong_check_character_is_named():
    good = make_id_number("110105", "19491231", 2)
    bad = good[:-1] + ("1" if good[-1] != "1" else "2")
    with pytest.raises(InvalidIdNumber) as refused:
        parse_id_number(bad, today=TODAY)
    assert refused.value.code == "checksum"


def test_r1_birth_date_today_is_allowed():
    assert parse_id_number(make_id_number("110105", TODAY, 3), today=TODAY).birth_date == TODAY


def test_r2_sex_from_the_sequence_odd_male_even_female():
    assert parse_id_number(make_id_number("110105", "19800101", 11), today=TODAY).sex == "M"
    assert parse_id_number(make_id_number("110105", "19800101", 12), today=TODAY).sex == "F"


@pytest.mark.parametrize(
    ("birth", "on", "age"),
    [
        (dt.date(2010, 11, 26), dt.date(2026, 11, 26), 16),  # the 16th birthday itself
        (dt.date(2010, 11, 27), dt.date(2026, 11, 26), 15),
        (dt.date(2008, 2, 29), dt.date(2024, 2, 28), 15),  # leap year: the real birthday exists
        (dt.date(2008, 2, 29), dt.date(2024, 2, 29), 16),
        (dt.date(2008, 2, 29), dt.date(2025, 2, 28), 17),  # other years: 28 February
        (dt.date(2008, 2, 29), dt.date(2025, 2, 27), 16),
    ],
)
def test_r23_age_in_full_years(birth, on, age):
    assert age_on(birth, on) == age

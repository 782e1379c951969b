"""The counter's card field (R3, R42): what readers, scanners and clerks type, read as one thing. Pure."""

from __future__ import annotations

import pytest

from cards.swipe import CardInput, CardInputError, parse_card_input
from tests.factories import make_id_number

QR_TOKEN = (
    "eyJuIjoiYWJjREVGXy0xMjM0NTY3ODkwMTIiLCJjIjoxMiwiaCI6MzQsInIiOiIzMjA1MDAiLCJlIjoxNzY3MjI1NjAwMDAwfQ"
    ":1xWlC2:e79DcPsJZfmE0dvsVlrJPc_nWtE3XMOr3jCNzfQxpfg"
)


@pytest.mark.parametrize(
    "typed",
    [
        ";A12345678?",  # track 2, number only
        ";A12345678=2512101?",  # track 2 with separator and data
        ";A12345678=2512101?5",  # and the LRC character the reader appends
        "%BA12345678^ZHANG/WEI^2512101?",  # track 1, format code B
        "%A12345678^ZHANG/WEI^2512?",  # track 1 without a format code
        "%BA12345678^ZHANG/WEI^2512?;A12345678=2512?",  # tracks 1 and 2 in one swipe
        ";A12345678=2512",  # a reader that drops the end sentinel
        "A12345678=2512101",  # a reader that sends no sentinels at all
        "；Ａ１２３４５６７８？",  # full-width, through a Chinese input method
        ";a12345678?",  # Caps Lock on
        ";A12345678?\r\n",  # the reader's line end
    ],
)
def test_r3_a_swiped_track_yields_the_card_number(typed):
    assert parse_card_input(typed) == CardInput(kind="card_number", value="A12345678", how="swipe")


@pytest.mark.parametrize("typed", ["A12345678", "  a12345678 ", "A 1234 5678", "A1234-5678", "Ａ12345678"])
def test_r3_a_card_number_typed_by_hand_is_trimmed(typed):
    assert parse_card_input(typed) == CardInput(kind="card_number", value="A12345678", how="typed")


def test_r3_the_card_number_pattern_is_the_configured_one():
    assert parse_card_input(";1234567890=99?", card_pattern=r"^[0-9]{10}$").value == "1234567890"
    with pytest.raises(CardInputError) as refused:
        parse_card_input("A12345678", card_pattern=r"^[0-9]{10}$")
    assert refused.value.code == "unrecognised"


def test_r3_a_bank_card_track_is_refused_with_a_reason(english):
    with pytest.raises(CardInputError) as refused:
        parse_card_input("%B6222021234567890^ZHANG/WEI^2512101?;6222021234567890=2512101?")
    assert refused.value.code == "not_a_social_security_card"
    assert "bank" in refused.value.message


@pytest.mark.parametrize("typed", [";E?", "%E?;E?"])
def test_r3_an_unreadable_track_asks_for_another_swipe(typed):
    with pytest.raises(CardInputError) as refused:
        parse_card_input(typed)
    assert refused.value.code == "read_error"


def test_r3_a_half_read_swipe_asks_for_another_swipe():
    with pytest.raises(CardInputError) as refused:
        parse_card_input(";A123")
    assert refused.value.code == "incomplete"


def test_r42_a_scanned_qr_token_is_read_as_a_token():
    assert parse_card_input(QR_TOKEN + "\n") == CardInput(kind="qr_token", value=QR_TOKEN, how="scan")


def test_r42_a_compressed_token_is_a_token_too():
    assert parse_card_input("." + QR_TOKEN).kind == "qr_token"


@pytest.mark.parametrize("typed", ["https://example.com/x", "abc:def ghi", "a:b"])
def test_r42_text_with_a_colon_that_is_no_token_is_refused(typed):
    with pytest.raises(CardInputError) as refused:
        parse_card_input(typed)
    assert refused.value.code == "bad_qr"


@pytest.mark.parametrize("typed", ["", "   ", "\r\n"])
def test_an_empty_field_says_what_to_do(typed):
    with pytest.raises(CardInputError) as refused:
        parse_card_input(typed)
    assert refused.value.code == "empty"


def test_a_very_long_input_is_refused():
    with pytest.raises(CardInputError) as refused:
        parse_card_input("A" * 600)
    assert refused.value.code == "too_long"


def test_r32_an_id_number_is_no_card_where_a_card_is_needed():
    with pytest.raises(CardInputError) as refused:
        parse_card_input(make_id_number("320505", "19800315", 11))
    assert refused.value.code == "id_number_not_accepted"


def test_r22_an_id_number_is_accepted_for_a_relative_and_its_check_character_is_checked():
    id_number = make_id_number("320505", "19800315", 11)
    assert parse_card_input(id_number.lower(), accept_id_number=True) == CardInput(
        kind="id_number", value=id_number, how="typed"
    )
    wrong = id_number[:17] + ("0" if id_number[17] != "0" else "1")
    with pytest.raises(CardInputError) as refused:
        parse_card_input(wrong, accept_id_number=True)
    assert refused.value.code == "id_number_checksum"


@pytest.mark.parametrize("typed", ["hello", "12345", "A1234567", "AB12345678"])
def test_anything_else_is_refused_with_a_clear_message(typed):
    with pytest.raises(CardInputError) as refused:
        parse_card_input(typed)
    assert refused.value.code == "unrecognised"
    assert refused.value.message

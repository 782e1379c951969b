"""What a counter's card field received, as a card number, a QR token or an ID number (R3, R32, R42).

Readers at a counter act as keyboards: a magnetic or IC card reader types the card number, often wrapped
in the track's sentinels (track 1 ``%B<number>^<NAME>^...?``, track 2 ``;<number>=<data>?``, some readers
add the LRC character after ``?``); a QR scanner types the e-card's signed token (``payload:time:signature``,
see ``cards.services.qr_token_sign``); a clerk types a number by hand. All end with Enter. Pure: no
database, no settings; the caller passes the configured card number pattern.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from accounts.identity import id_check_character

# R3: a letter and 8 digits in most provinces (settings.CARD_NUMBER_PATTERN overrides it).
DEFAULT_CARD_NUMBER_PATTERN = r"^[A-Z][0-9]{8}$"

# django.core.signing output: urlsafe base64 parts joined by ":" (a leading "." marks a compressed payload).
_QR_TOKEN = re.compile(r"^\.?[A-Za-z0-9_-]{8,}(?::[A-Za-z0-9_-]+){1,2}$")
_ID_NUMBER = re.compile(r"^[0-9]{17}[0-9X]$")
# Longest input a field accepts: a QR token is about 150 characters; anything far longer is not one of ours.
MAX_INPUT_LENGTH = 512


class CardInputError(ValueError):
    """The field's text is not a card number, QR code or ID number; ``code`` says why, ``message`` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CardInput:
    """What was read: ``kind`` is ``card_number``, ``qr_token`` or ``id_number``; ``how`` is swipe, scan or typed."""

    kind: str
    value: str
    how: str = "typed"


def _plain(text: str) -> str:
    # A reader typing through a Chinese input method may send full-width characters (；Ａ１２３？): NFKC
    # turns them into ASCII. Enter, tab and the reader's line ends are not part of the data.
    text = unicodedata.normalize("NFKC", text or "")
    return text.strip().strip("\r\n\t").strip()


def _card_number(candidate: str, pattern: re.Pattern[str]) -> str | None:
    # Cards print their number in groups ("A 1234 5678"); a reader with Caps Lock on sends lower case.
    value = re.sub(r"[\s-]", "", candidate).upper()
    return value if pattern.match(value) else None


def _tracks(text: str) -> list[str]:
    """The data of each magnetic track in the text, sentinels removed (track 1 ``%…?``, tracks 2/3 ``;…?``)."""
    return [match.group(1) for match in re.finditer(r"[%;]([^%;?]*)\?", text)]


def _from_track(track: str, pattern: re.Pattern[str]) -> str | None:
    if "^" in track:
        # Track 1: format code, number, "^", name, "^", data. The format code is one letter (B for bank
        # cards); a social-security number starts with a letter too, so try it with and without.
        number = track.split("^", 1)[0]
        return _card_number(number[1:], pattern) or _card_number(number, pattern)
    # Track 2 (and 3): number, "=", data.
    return _card_number(track.split("=", 1)[0], pattern)


def parse_card_input(
    text: str, *, card_pattern: str = DEFAULT_CARD_NUMBER_PATTERN, accept_id_number: bool = False
) -> CardInput:
    """R3, R42: read the card field: a swiped track, a scanned QR token, or a number typed by hand.

    ``accept_id_number`` allows an 18-character ID number (R1 check character) instead of a card, where a
    card is not required (a relative at a counter binding, R22). Raises ``CardInputError`` otherwise.
    """
    text = _plain(text)
    if not text:
        raise CardInputError("empty", str(_("Swipe the card, scan the code or type the card number.")))
    if len(text) > MAX_INPUT_LENGTH:
        raise CardInputError("too_long", str(_("This is too long for a card number or an e-card code.")))
    pattern = re.compile(card_pattern)
    if text[0] in "%;":
        tracks = _tracks(text)
        if not tracks:
            # A reader set to drop the end sentinel: the rest is the track, if it holds a number.
            number = _from_track(text[1:], pattern)
            if number:
                return CardInput(kind="card_number", value=number, how="swipe")
            raise CardInputError("incomplete", str(_("The card was not read completely: swipe it again.")))
        if all(track.strip().upper() == "E" for track in tracks):
            # ISO 7811 readers send "%E?" or ";E?" for a track they could not read.
            raise CardInputError("read_error", str(_("The reader could not read the card: swipe it again.")))
        for track in tracks:
            number = _from_track(track, pattern)
            if number:
                return CardInput(kind="card_number", value=number, how="swipe")
        raise CardInputError(
            "not_a_social_security_card",
            str(_("This card's track holds no social-security card number (a bank card?).")),
        )
    if ":" in text:
        if _QR_TOKEN.match(text):
            return CardInput(kind="qr_token", value=text, how="scan")
        raise CardInputError("bad_qr", str(_("This is not an e-card code: ask the card holder to refresh it.")))
    number = _card_number(text, pattern)
    if number:
        return CardInput(kind="card_number", value=number, how="typed")
    if "=" in text or "^" in text:
        # A reader set to send the track without sentinels.
        number = _from_track(text, pattern)
        if number:
            return CardInput(kind="card_number", value=number, how="swipe")
    compact = re.sub(r"\s", "", text).upper()
    if _ID_NUMBER.match(compact):
        if not accept_id_number:
            raise CardInputError(
                "id_number_not_accepted",
                str(_("This is an ID number: here the card itself is needed (swipe it or scan its code).")),
            )
        if id_check_character(compact[:17]) != compact[17]:
            raise CardInputError(
                "id_number_checksum", str(_("The check character (the last one) of this ID number is wrong."))
            )
        return CardInput(kind="id_number", value=compact, how="typed")
    if accept_id_number:
        message = _("This is neither a card number, an e-card code nor an ID number.")
    else:
        message = _("This is neither a card number nor an e-card code.")
    raise CardInputError("unrecognised", str(message))

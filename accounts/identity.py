"""Resident ID numbers (公民身份号码, GB 11643-1999): rules R1 and R2 as pure functions.

Nothing here reads the clock or the database: the caller passes ``today``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from stdnum.cn import ric

_SHAPE = re.compile(r"^\d{17}[\dX]$")


class InvalidIdNumber(ValueError):
    """R1: an ID number that cannot be right; ``code`` says which part is wrong."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class IdNumber:
    """A checked ID number with what it tells (R2)."""

    value: str
    division_code: str
    birth_date: dt.date
    sex: str  # "M" or "F"


def normalize_id_number(raw: str) -> str:
    """R1: strip spaces and store a lower-case check character upper-case."""
    return (raw or "").strip().replace(" ", "").upper()


def parse_id_number(raw: str, *, today: dt.date) -> IdNumber:
    """R1, R2: check an ID number and derive birth date and sex, or say which part is wrong."""
    value = normalize_id_number(raw)
    if len(value) != 18:
        raise InvalidIdNumber(
            "length", str(_("An ID number has 18 characters; this one has %(count)d.") % {"count": len(value)})
        )
    if not _SHAPE.match(value):
        raise InvalidIdNumber("characters", str(_("An ID number is 17 digits followed by a digit or X.")))
    try:
        birth_date = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise InvalidIdNumber(
            "date", str(_("The birth date in this ID number (%(date)s) does not exist.") % {"date": value[6:14]})
        ) from None
    if birth_date > today:
        raise InvalidIdNumber(
            "future", str(_("The birth date in this ID number (%(date)s) is in the future.") % {"date": value[6:14]})
        )
    if ric.calc_check_digit(value) != value[17]:
        raise InvalidIdNumber("checksum", str(_("The check character (the last one) of this ID number is wrong.")))
    sex = "M" if int(value[16]) % 2 == 1 else "F"
    return IdNumber(value=value, division_code=value[:6], birth_date=birth_date, sex=sex)


def id_check_character(first17: str) -> str:
    """R1: the ISO 7064 MOD 11-2 check character for the first 17 digits."""
    return ric.calc_check_digit(first17 + "0")


def age_on(birth_date: dt.date, on: dt.date) -> int:
    """R23: age in full years; a 29 February birthday falls on 28 February in other years."""
    years = on.year - birth_date.year
    month, day = birth_date.month, birth_date.day
    if (month, day) == (2, 29):
        is_leap = on.year % 4 == 0 and (on.year % 100 != 0 or on.year % 400 == 0)
        if not is_leap:
            day = 28
    if (on.month, on.day) < (month, day):
        years -= 1
    return years

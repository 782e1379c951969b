"""Pure rules of the e-card (R40–R43): plain values in, decisions out; no ORM, no clock, no settings."""

from __future__ import annotations

import datetime as dt
import re

_SIX_DIGITS = re.compile(r"^[0-9]{6}$")
_ASCENDING = "0123456789"
_DESCENDING = "9876543210"
# R41: a few of the most used 6-digit PINs that the other checks do not catch already.
COMMON_PASSWORDS = frozenset(
    {"112233", "123321", "147258", "159753", "111222", "666888", "888666", "521314", "520131", "201314", "147369"}
)

# The order of the codes in an answer (and in a page's list of problems).
PASSWORD_PROBLEMS = ("not_six_digits", "all_same", "ascending", "descending", "birth_date", "id_number", "common")


def birth_date_forms(birth_date: dt.date) -> set[str]:
    """R41: the 6-digit ways people write their birth date (1980-03-15 shown in brackets).

    - YYMMDD (800315), which is also the last 6 digits of YYYYMMDD;
    - YYDDMM (801503);
    - MMDDYY (031580);
    - DDMMYY (150380);
    - YYYYMM (198003), the first 6 digits of YYYYMMDD;
    - MMYYYY (031980).
    """
    yyyy = f"{birth_date.year:04d}"
    yy, mm, dd = yyyy[2:], f"{birth_date.month:02d}", f"{birth_date.day:02d}"
    return {yy + mm + dd, yy + dd + mm, mm + dd + yy, dd + mm + yy, yyyy + mm, mm + yyyy}


def password_problems(password: str, *, birth_date: dt.date, id_number: str = "") -> list[str]:
    """R41: why a card password is refused, as codes (empty when it is fine).

    Codes: ``not_six_digits`` (alone: nothing else is checked then), ``all_same`` (111111),
    ``ascending`` (a run like 123456 or 012345; no wrap-around), ``descending`` (987654, 543210),
    ``birth_date`` (any form of ``birth_date_forms``), ``id_number`` (the last 6 characters of the ID
    number, when given), ``common`` (a repeated pair or triple like 121212 or 520520, or one of
    ``COMMON_PASSWORDS``).
    """
    if not isinstance(password, str) or not _SIX_DIGITS.match(password):
        return ["not_six_digits"]
    problems = []
    if len(set(password)) == 1:
        problems.append("all_same")
    if password in _ASCENDING:
        problems.append("ascending")
    if password in _DESCENDING:
        problems.append("descending")
    if password in birth_date_forms(birth_date):
        problems.append("birth_date")
    if id_number and password == id_number[-6:]:
        problems.append("id_number")
    repeated = password == password[:2] * 3 or password == password[:3] * 2
    if (repeated and "all_same" not in problems) or password in COMMON_PASSWORDS:
        problems.append("common")
    return problems


def lock_after_failure(
    *, failed_attempts: int, now: dt.datetime, max_attempts: int, lock_minutes: int
) -> tuple[int, dt.datetime | None]:
    """R41: after one more wrong password, the count and, at ``max_attempts``, the end of the lock."""
    attempts = failed_attempts + 1
    if attempts >= max_attempts:
        return attempts, now + dt.timedelta(minutes=lock_minutes)
    return attempts, None


def is_locked(*, locked_until: dt.datetime | None, now: dt.datetime) -> bool:
    """R41: locked until the instant ``locked_until`` (at 30:00 exactly, it opens)."""
    return locked_until is not None and now < locked_until


def claim_next_step(*, state: str, agreement_accepted: bool, face_verified: bool, password_set: bool) -> str:
    """R40: what the claim needs next: ``agreement``, ``face``, ``password``, or ``done``."""
    if state != "pending" or password_set:
        return "done"
    if not agreement_accepted:
        return "agreement"
    if not face_verified:
        return "face"
    return "password"


def may_show_code(
    *, is_holder: bool, manages_holder: bool, owns_binding_of_holder: bool, holder_is_child: bool
) -> bool:
    """R42/R43: the holder; a manager with an active family card link; the owner of an active binding of a child."""
    return is_holder or manages_holder or (owns_binding_of_holder and holder_is_child)


def is_foreign_province(*, verifier_province: str | None, card_province: str) -> bool:
    """R42: a verifier bound to an institution accepts only codes of cards issued in its own province.

    A verifier without an institution (a national partner system) is not bound to a province.
    """
    return verifier_province is not None and verifier_province != card_province

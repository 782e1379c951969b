"""R24: the automatic pre-check of an uploaded document: readability, recognised text, comparison with the claim.

Everything here but ``ocr_text`` is a pure function: plain values (a Pillow image, text, a ``Claim``, the
date) in, a verdict with reasons out; no ORM, no clock, no settings. ``ocr_text`` is the adapter to
Tesseract (Debian's ``tesseract-ocr`` with ``chi_sim``): it raises ``OcrError`` with a code when the
engine fails. ``family.services.precheck`` runs them on each page and stores the report. OpenCV and
numpy are imported where they are used: the web process imports this module for its messages only.

The pre-check only helps the reviewer: it points at what to look at and never approves (R24). Only a
page that cannot be read at all is worth sending back to the citizen at once.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from django.utils.translation import gettext as _

from accounts.identity import InvalidIdNumber, parse_id_number

__all__ = [
    "Check",
    "Claim",
    "ClaimedPerson",
    "OcrError",
    "PageResult",
    "Readability",
    "ReadabilityThresholds",
    "RelationMention",
    "as_printed",
    "build_report",
    "clean_text",
    "compact",
    "compare_with_claim",
    "find_id_numbers",
    "find_names",
    "household_relations",
    "id_number_failures",
    "implied_relations",
    "ocr_prepare",
    "ocr_text",
    "readability",
    "readability_lines",
    "readability_message",
    "relation_check",
    "relations_of_names",
    "skew_angle",
]

# chi_sim alone: its model reads digits and Latin letters too, and with ``+eng`` Tesseract took short
# Chinese values standing alone in a form cell (子, 长子, 大学) for Latin letters ("F", "KT", "AS").
OCR_LANGUAGES = "chi_sim"
# psm 6 (one uniform block of text) reads a form row by row, label then value, once its ruling is removed.
OCR_CONFIG = "--oem 1 --psm 6"
OCR_TIMEOUT_SECONDS = 60
TEXT_LIMIT = 4000

# Kinds of documents (family.models.DocumentKind values; this module does not import models).
OWNER_REGISTER = "owner_register"
RELATIVE_REGISTER = "relative_register"
MARRIAGE_CERTIFICATE = "marriage_certificate"
BIRTH_CERTIFICATE = "birth_certificate"
COMMITMENT_LETTER = "commitment_letter"
# Whose name and ID number each kind must show.
PEOPLE_SHOWN = {
    OWNER_REGISTER: ("owner",),
    RELATIVE_REGISTER: ("relative",),
    MARRIAGE_CERTIFICATE: ("owner", "relative"),
    BIRTH_CERTIFICATE: ("owner", "relative"),  # the parent, and the newborn's name when claimed (R21)
    COMMITMENT_LETTER: ("owner", "relative"),
}


# --- readability ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadabilityThresholds:
    """Where a page stops being readable; the defaults are where Tesseract stops reading an A4 form."""

    min_short_side: int = 700  # px
    # Variance of the Laplacian, median over the tiles that carry ink, at a short side of 1000 px.
    min_blur: float = 280.0
    min_brightness: float = 70.0  # mean grey level, 0–255
    # Washed out: a bright page (mean above this) whose darkest ink is lighter than ``max_ink``.
    max_brightness: float = 200.0
    max_ink: float = 185.0


@dataclass(frozen=True)
class Readability:
    """What a page's picture allows: its size, sharpness and exposure, and why it cannot be read (if so)."""

    width: int
    height: int
    blur: float  # sharpness: higher is sharper (see ReadabilityThresholds.min_blur)
    brightness: float
    ink: float  # grey level of the darkest 0.5% of the page
    reasons: tuple[str, ...] = ()  # too_small, blurred, too_dark, too_bright

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)

    @property
    def ok(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict:
        return {
            "verdict": "ok" if self.ok else "unreadable",
            "reasons": list(self.reasons),
            "width": self.width,
            "height": self.height,
            "resolution": self.short_side,
            "blur": round(self.blur, 1),
            "brightness": round(self.brightness, 1),
            "ink": round(self.ink, 1),
        }


BLUR_SCALE_SHORT_SIDE = 1000
BLUR_TILE = 32
# A tile carries ink when its grey levels spread this much (after stretching the page's contrast).
INK_TILE_STD = 20.0
MIN_INK_TILES = 8


def _grey(image):
    """The page as an 8-bit grey numpy array."""
    import numpy as np

    return np.asarray(image.convert("L"))


def readability(image, thresholds: ReadabilityThresholds | None = None) -> Readability:
    """R24: judge a page's picture: resolution (short side), blur (variance of the Laplacian), brightness."""
    import cv2
    import numpy as np

    limits = thresholds or ReadabilityThresholds()
    grey = _grey(image)
    height, width = grey.shape
    brightness = float(grey.mean())
    ink, paper = (float(v) for v in np.percentile(grey, [0.5, 99.5]))

    # Sharpness is measured at one scale, on the page's own contrast stretched to 0–255, so a dim or
    # large photo is judged like a well-lit scan; and only where there is ink, since a page is mostly paper.
    scale = BLUR_SCALE_SHORT_SIDE / min(height, width)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    scaled = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=interpolation).astype(np.float64)
    # A 3×3 Gaussian first: sensor noise would otherwise pass for sharp edges on a blurred photo.
    smoothed = cv2.GaussianBlur(scaled, (3, 3), 0)
    stretched = np.clip((smoothed - ink) * (255.0 / max(paper - ink, 1.0)), 0, 255)
    laplacian = cv2.Laplacian(stretched, cv2.CV_64F)
    rows, cols = (s // BLUR_TILE for s in stretched.shape)
    tiles = stretched[: rows * BLUR_TILE, : cols * BLUR_TILE].reshape(rows, BLUR_TILE, cols, BLUR_TILE)
    edges = laplacian[: rows * BLUR_TILE, : cols * BLUR_TILE].reshape(rows, BLUR_TILE, cols, BLUR_TILE)
    inked = tiles.std(axis=(1, 3)) > INK_TILE_STD
    blur = float(np.median(edges.var(axis=(1, 3))[inked])) if inked.sum() >= MIN_INK_TILES else 0.0

    reasons = []
    if min(height, width) < limits.min_short_side:
        reasons.append("too_small")
    if brightness < limits.min_brightness:
        reasons.append("too_dark")
    elif brightness > limits.max_brightness and ink > limits.max_ink:
        reasons.append("too_bright")
    if blur < limits.min_blur and not {"too_dark", "too_bright"} & set(reasons):
        # A page with no ink to measure is blank or a blur; an exposure fault is named on its own.
        reasons.append("blurred")
    return Readability(width=width, height=height, blur=blur, brightness=brightness, ink=ink, reasons=tuple(reasons))


def readability_message(reasons: Iterable[str]) -> str:
    """What the citizen should do about a page that cannot be read (R24), in the active language."""
    advice = {
        "too_small": _("the picture is too small: send the photo itself, not a thumbnail or screenshot"),
        "blurred": _("the picture is blurred: hold the phone still and let it focus on the page"),
        "too_dark": _("the picture is too dark: take it in daylight or with more light"),
        "too_bright": _("the picture is washed out: avoid the flash and direct light on the page"),
    }
    return "; ".join(advice[reason] for reason in dict.fromkeys(reasons) if reason in advice)


def readability_lines(readability: object) -> list[tuple[str, str]]:
    """The readability part of a stored pre-check report in words, for the reviewers' screens: the verdict,
    why not, and each page's measures."""
    if not isinstance(readability, dict):
        return []
    lines = []
    verdict = readability.get("verdict")
    if verdict:
        lines.append((_("Readable"), _("yes") if verdict == "ok" else _("no")))
    reasons = [str(reason) for reason in readability.get("reasons") or ()]
    if reasons:
        lines.append((_("Why not"), readability_message(reasons) or ", ".join(reasons)))
    for number, page in enumerate(readability.get("pages") or (), start=1):
        if isinstance(page, dict):
            measures = _("%(width)s×%(height)s px, sharpness %(blur)s, brightness %(brightness)s") % {
                key: page.get(key, "?") for key in ("width", "height", "blur", "brightness")
            }
            lines.append((_("Page %(number)d") % {"number": number}, measures))
    return lines


# --- recognised text (the Tesseract adapter) ------------------------------------------------------


class OcrError(RuntimeError):
    """Tesseract could not read a page; ``code`` says why (the reviewer then decides by eye)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def skew_angle(grey) -> float:
    """The angle (degrees, within ±8) that puts the lines of text level: the one whose rows are most uneven."""
    import cv2
    import numpy as np

    scale = 800 / max(grey.shape)
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    _, ink = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    height, width = ink.shape
    centre = (width / 2, height / 2)

    def spread(angle: float) -> float:
        rotated = cv2.warpAffine(
            ink, cv2.getRotationMatrix2D(centre, angle, 1.0), (width, height), flags=cv2.INTER_NEAREST
        )
        return float(np.var(rotated.sum(axis=1, dtype=np.float64)))

    coarse = max(np.arange(-8.0, 8.01, 0.5), key=spread)
    return float(max(np.arange(coarse - 0.5, coarse + 0.51, 0.1), key=spread))


def ocr_prepare(image):
    """Grey, level (light deskew), even lighting, black on white, table ruling removed: what Tesseract reads best."""
    import cv2
    import numpy as np
    from PIL import Image

    grey = _grey(image)
    angle = skew_angle(grey)
    if 0.3 <= abs(angle) <= 8:
        height, width = grey.shape
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        grey = cv2.warpAffine(grey, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    # Divide by the paper's own brightness (a wide closing erases the text): uneven light becomes flat.
    background = cv2.morphologyEx(grey, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (31, 31)))
    flat = cv2.divide(grey, background, scale=255)
    _, ink = cv2.threshold(flat, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    # Long straight strokes are a form's ruling, not text: Tesseract reads them as letters.
    height, width = ink.shape
    horizontal = cv2.getStructuringElement(cv2.MORPH_RECT, (max(40, width // 25), 1))
    vertical = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(40, height // 25)))
    ruling = cv2.morphologyEx(ink, cv2.MORPH_OPEN, horizontal) | cv2.morphologyEx(ink, cv2.MORPH_OPEN, vertical)
    ink &= ~cv2.dilate(ruling, np.ones((3, 3), np.uint8))
    return Image.fromarray(255 - ink)


_CJK = r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<={_CJK})[ \t]+(?={_CJK})")


def clean_text(raw: str) -> str:
    """Tesseract's text without the spaces it puts between Chinese characters, and without empty lines."""
    lines = (_SPACE_BETWEEN_CJK.sub("", re.sub(r"[ \t]+", " ", line)).strip() for line in raw.splitlines())
    return "\n".join(line for line in lines if line)


def ocr_text(image) -> str:
    """The text Tesseract reads on the prepared page (``OCR_LANGUAGES``, psm 6), cleaned; ``OcrError`` if it fails."""
    import pytesseract

    # Tesseract's OpenMP threads fight each other on a small machine (a page took 5× longer on 2 cores);
    # documents are read in parallel by the worker's processes instead.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    prepared = ocr_prepare(image)
    try:
        raw = pytesseract.image_to_string(prepared, lang=OCR_LANGUAGES, config=OCR_CONFIG, timeout=OCR_TIMEOUT_SECONDS)
    except pytesseract.TesseractNotFoundError as error:
        raise OcrError("tesseract_missing", str(error)) from error
    except pytesseract.TesseractError as error:
        raise OcrError("tesseract_error", f"{error.status}: {error.message}"[:300]) from error
    except RuntimeError as error:  # pytesseract's timeout
        raise OcrError("tesseract_timeout", str(error)) from error
    return clean_text(raw)


# --- what the text says --------------------------------------------------------------------------

# Marks Tesseract reads from table ruling and quotes: never part of a name, number or relation.
_NOISE_CHAR = r"[\s|“”\"'‘’`_〈〉《》()（）\[\]{}:：;；,，.。、~\-—]"
_NOISE = re.compile(_NOISE_CHAR + "+")


def compact(text: str) -> str:
    """The text with blanks and punctuation removed: what names and relations are looked up in."""
    return _NOISE.sub("", text)


def as_printed(text: str, value: str) -> str:
    """``value`` as it stands in ``text``, blanks and marks Tesseract put between its characters included."""
    wanted = compact(value)
    if not wanted:
        return ""
    pattern = (_NOISE_CHAR + "*").join(re.escape(char) for char in wanted)
    match = re.search(pattern, text, flags=re.IGNORECASE)
    return match.group() if match else ""


# OCR confusions inside a number: O for 0, l/I/| for 1, × for X.
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "l": "1", "I": "1", "|": "1", "×": "X", "x": "X"})
# A run of digits that may hold look-alikes and single blanks inside; it starts with a digit and ends
# with a digit or X (a ruling "|" beside the number is not a 1).
_NUMBERISH = re.compile(r"[0-9](?:[ \t]?[0-9OoDlI|×xX])*")
_TRAILING_LOOKALIKES = "OoDlI| \t"
_ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]")


def find_id_numbers(text: str) -> list[str]:
    """R1: the 18-character ID numbers on a page, normalised (spaces Tesseract put in removed, ``X`` upper-case).

    A run of digit groups is read as one number when its groups make 18 characters together
    (``3205 0519 8003 1503 12``), and as two when two numbers stand side by side; a group longer than
    18 characters is not an ID number.
    """
    found: list[str] = []
    for run in _NUMBERISH.finditer(text):
        groups = run.group().rstrip(_TRAILING_LOOKALIKES).translate(_DIGIT_LOOKALIKES).split()
        start = 0
        while start < len(groups):
            joined, end = "", start
            while end < len(groups) and len(joined) < 18:
                joined += groups[end]
                end += 1
            if _ID_NUMBER.fullmatch(joined):
                if joined not in found:
                    found.append(joined)
                start = end
            else:
                start += 1
    return found


def id_number_failures(id_numbers: Iterable[str], *, today: dt.date) -> list[tuple[str, str, str]]:
    """R1: the numbers that cannot be right, each with the code and message of ``parse_id_number``."""
    failures = []
    for value in id_numbers:
        try:
            parse_id_number(value, today=today)
        except InvalidIdNumber as error:
            failures.append((value, error.code, error.message))
    return failures


def find_names(text: str, candidates: Iterable[str]) -> list[str]:
    """The candidate names that the page shows (blanks and punctuation between the characters ignored)."""
    page = compact(text)
    return [name for name in candidates if (wanted := compact(name)) and wanted in page]


# 与户主关系 as registers print it -> what that person is to the head of the household.
RELATION_TERMS: dict[str, str] = {
    "户主": "head",
    **dict.fromkeys(["配偶", "妻子", "丈夫", "妻", "夫"], "spouse"),
    **dict.fromkeys(
        [
            *("长子", "次子", "三子", "四子", "长女", "次女", "三女", "四女", "独生子", "独生女", "养子", "养女"),
            *("继子", "继女", "儿子", "女儿", "子", "女"),
        ],
        "child",
    ),
    **dict.fromkeys(["父亲", "母亲", "继父", "继母", "养父", "养母", "父", "母"], "parent"),
    **dict.fromkeys(["外孙子", "外孙女", "孙子", "孙女", "外孙"], "grandchild"),
    **dict.fromkeys(["外祖父", "外祖母", "祖父", "祖母"], "grandparent"),
    **dict.fromkeys(["哥哥", "弟弟", "姐姐", "妹妹", "兄", "弟", "姐", "妹"], "sibling"),
    **dict.fromkeys(["儿媳", "女婿"], "child_in_law"),
    **dict.fromkeys(["岳父", "岳母", "公公", "婆婆"], "parent_in_law"),
}
_RELATION_LABEL = re.compile(r"(?:户主或)?与?户主的?关系")
_RELATION_VALUE = re.compile("|".join(sorted(map(re.escape, RELATION_TERMS), key=len, reverse=True)))


@dataclass(frozen=True)
class RelationMention:
    """A 与户主关系 value on a page: the printed term, what it means, and where it is in ``compact(text)``."""

    term: str
    role: str  # head, spouse, child, parent, grandchild, grandparent, sibling, child_in_law, parent_in_law
    offset: int
    label: str = ""  # the label and the value as in compact(text): what to highlight


def household_relations(text: str) -> list[RelationMention]:
    """The values printed after 户主或与户主关系 (与户主关系) on a household register page."""
    page = compact(text)
    mentions = []
    for label in _RELATION_LABEL.finditer(page):
        value = _RELATION_VALUE.match(page, label.end())
        if value:
            term = value.group()
            mentions.append(
                RelationMention(term, RELATION_TERMS[term], value.start(), page[label.start() : value.end()])
            )
    return mentions


NAME_RELATION_WINDOW = 40  # characters of compact text: a card's name and its relation are on one row


def relations_of_names(text: str, names: Iterable[str]) -> dict[str, RelationMention]:
    """Each name's relation to the head: the nearest 与户主关系 value printed beside it (on its own card)."""
    page = compact(text)
    spots = [(name, m.start()) for name in names if name for m in re.finditer(re.escape(compact(name)), page)]
    found: dict[str, tuple[int, RelationMention]] = {}
    for mention in household_relations(text):
        near = [
            (abs(mention.offset - at), name) for name, at in spots if abs(mention.offset - at) <= NAME_RELATION_WINDOW
        ]
        if not near:
            continue
        distance, name = min(near)
        if name not in found or distance < found[name][0]:
            found[name] = (distance, mention)
    return {name: mention for name, (_, mention) in found.items()}


# (the owner's relation to the head, the relative's) -> what the relative can be to the owner (C3 names).
# An empty set: no close relative at all (in-laws are not, Civil Code art. 1045). Pairs missing here
# cannot be told from the register (a grandchild of the head may be the owner's child or nephew).
IMPLIED_RELATIONS: dict[tuple[str, str], frozenset[str]] = {
    **{
        ("head", role): frozenset({role})
        for role in ("spouse", "child", "parent", "grandchild", "grandparent", "sibling")
    },
    ("head", "child_in_law"): frozenset(),
    ("head", "parent_in_law"): frozenset(),
    ("spouse", "head"): frozenset({"spouse"}),
    ("child", "head"): frozenset({"parent"}),
    ("parent", "head"): frozenset({"child"}),
    ("grandchild", "head"): frozenset({"grandparent"}),
    ("grandparent", "head"): frozenset({"grandchild"}),
    ("sibling", "head"): frozenset({"sibling"}),
    ("child_in_law", "head"): frozenset(),
    ("parent_in_law", "head"): frozenset(),
    # Both children of one head are siblings, not parent and child.
    ("child", "child"): frozenset({"sibling"}),
    ("spouse", "child"): frozenset({"child"}),
    ("child", "spouse"): frozenset({"parent"}),
    ("parent", "parent"): frozenset({"spouse"}),
    ("parent", "child"): frozenset({"grandchild"}),
    ("child", "parent"): frozenset({"grandparent"}),
    ("parent", "sibling"): frozenset({"child"}),
    ("sibling", "parent"): frozenset({"parent"}),
    ("sibling", "sibling"): frozenset({"sibling"}),
    ("spouse", "grandchild"): frozenset({"grandchild"}),
    ("grandchild", "spouse"): frozenset({"grandparent"}),
    ("grandparent", "child"): frozenset({"grandchild"}),
    ("child", "grandparent"): frozenset({"grandparent"}),
    ("spouse", "parent"): frozenset(),
    ("parent", "spouse"): frozenset(),
    ("spouse", "sibling"): frozenset(),
    ("sibling", "spouse"): frozenset(),
}


def implied_relations(owner_role: str, relative_role: str) -> frozenset[str] | None:
    """What the relative can be to the owner, given both relations to one head; None when it cannot be told."""
    return IMPLIED_RELATIONS.get((owner_role, relative_role))


RELATION_NAMES = {
    "spouse": "配偶",
    "parent": "父母",
    "child": "子女",
    "sibling": "兄弟姐妹",
    "grandparent": "祖父母、外祖父母",
    "grandchild": "孙子女、外孙子女",
}


# --- comparing with the claim --------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedPerson:
    name: str
    id_number: str = ""


@dataclass(frozen=True)
class Claim:
    """What the owner said: who the two are and what the relative is to the owner (C3 names), and the document."""

    kind: str
    relationship: str
    owner: ClaimedPerson
    relative: ClaimedPerson
    certificate_number: str = ""  # R21: the birth medical certificate's number


@dataclass(frozen=True)
class Check:
    """One comparison of the page with the claim; ``ok`` False asks the reviewer to look (it never refuses)."""

    code: str
    ok: bool
    message: str
    evidence: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _found_message(side: str, what: str, found: bool) -> str:
    """The check's sentence, whole for each case so that it translates well."""
    messages = {
        ("owner", "name", True): _("The owner's name (%(name)s) is on the page."),
        ("owner", "name", False): _("The owner's name (%(name)s) was not found on the page."),
        ("relative", "name", True): _("The relative's name (%(name)s) is on the page."),
        ("relative", "name", False): _("The relative's name (%(name)s) was not found on the page."),
        ("owner", "id", True): _("The owner's ID number is on the page."),
        ("owner", "id", False): _("The owner's ID number was not found on the page."),
        ("relative", "id", True): _("The relative's ID number is on the page."),
        ("relative", "id", False): _("The relative's ID number was not found on the page."),
    }
    return messages[(side, what, found)]


def compare_with_claim(*, text: str, claim: Claim, today: dt.date) -> list[Check]:
    """R24: compare a document's recognised text with the claim: names, ID numbers (R1) and the relationship."""
    checks: list[Check] = []
    id_numbers = find_id_numbers(text)
    people = {"owner": claim.owner, "relative": claim.relative}
    for side in PEOPLE_SHOWN.get(claim.kind, ()):
        person = people[side]
        if person.name:
            found = bool(find_names(text, [person.name]))
            message = _found_message(side, "name", found) % {"name": person.name}
            checks.append(Check(f"{side}_name_found", found, message, person.name if found else ""))
        if person.id_number:
            found = person.id_number in id_numbers
            message = _found_message(side, "id", found)
            evidence = person.id_number if found else ", ".join(id_numbers)
            checks.append(Check(f"{side}_id_found", found, message, evidence))
    if id_numbers:
        failures = id_number_failures(id_numbers, today=today)
        if failures:
            message = _(
                "An ID number on the page cannot be right (R1); it may also be misread: compare with the picture."
            )
        else:
            message = _("Every ID number on the page passes R1.")
        evidence = "; ".join(f"{value}: {reason}" for value, _code, reason in failures)
        checks.append(Check("id_numbers_valid", not failures, message, evidence))
    if claim.certificate_number:
        found = compact(claim.certificate_number).upper() in compact(text).upper()
        message = (
            _("The certificate number %(number)s is on the page.")
            if found
            else _("The certificate number %(number)s was not found on the page.")
        )
        checks.append(
            Check(
                "certificate_number_found",
                found,
                message % {"number": claim.certificate_number},
                claim.certificate_number if found else "",
            )
        )
    relation = relation_check(text=text, claim=claim)
    if relation is not None:
        checks.append(relation)
    return checks


# "…与本人的关系为：配偶": only the words after 关系为 are relied on (Tesseract misreads 与 as 年).
_LETTER_RELATION = re.compile(r"关系为(" + "|".join(map(re.escape, RELATION_NAMES.values())) + ")")


def relation_check(*, text: str, claim: Claim) -> Check | None:
    """Whether the document contradicts the claimed relationship; None when it says nothing about it."""
    claimed = RELATION_NAMES.get(claim.relationship, claim.relationship)
    if claim.kind == MARRIAGE_CERTIFICATE:
        ok = claim.relationship == "spouse"
        message = _("A marriage certificate shows spouses (配偶); the claim is %(claimed)s.") % {"claimed": claimed}
        return Check("relation_matches_claim", ok, message, "结婚证")
    if claim.kind == BIRTH_CERTIFICATE:
        ok = claim.relationship == "child"
        message = _("A birth medical certificate shows a child (子女); the claim is %(claimed)s.") % {
            "claimed": claimed
        }
        return Check("relation_matches_claim", ok, message, "出生医学证明")
    if claim.kind == COMMITMENT_LETTER:
        written = _LETTER_RELATION.search(compact(text))
        if written is None:
            return None
        ok = written.group(1) == claimed
        message = _("The letter states the relationship %(written)s; the claim is %(claimed)s.") % {
            "written": written.group(1),
            "claimed": claimed,
        }
        return Check("relation_matches_claim", ok, message, written.group())
    if claim.kind in (OWNER_REGISTER, RELATIVE_REGISTER):
        relations = relations_of_names(text, [claim.owner.name, claim.relative.name])
        owner, relative = relations.get(claim.owner.name), relations.get(claim.relative.name)
        if owner is None or relative is None or claim.owner.name == claim.relative.name:
            return None  # one card: the other person's relation is on another page (or another household)
        possible = implied_relations(owner.role, relative.role)
        if possible is None:
            return None
        evidence = f"{claim.owner.name}: {owner.term}; {claim.relative.name}: {relative.term}"
        ok = claim.relationship in possible
        if ok:
            message = _(
                "The register shows %(owner)s as %(owner_term)s and %(relative)s as %(relative_term)s of one "
                "head of household: consistent with %(claimed)s."
            )
        elif possible:
            message = _(
                "The register shows %(owner)s as %(owner_term)s and %(relative)s as %(relative_term)s of one "
                "head of household: that makes them %(implied)s, not %(claimed)s."
            )
        else:
            message = _(
                "The register shows %(owner)s as %(owner_term)s and %(relative)s as %(relative_term)s of one "
                "head of household: they are not close relatives, not %(claimed)s."
            )
        values = {
            "owner": claim.owner.name,
            "owner_term": owner.term,
            "relative": claim.relative.name,
            "relative_term": relative.term,
            "implied": "、".join(RELATION_NAMES[r] for r in sorted(possible)),
            "claimed": claimed,
        }
        return Check("relation_matches_claim", ok, message % values, evidence)
    return None


# --- the report ----------------------------------------------------------------------------------


@dataclass
class PageResult:
    """One page: its readability and, if readable, its recognised text."""

    readability: Readability
    text: str = ""


def build_report(*, pages: Sequence[PageResult], claim: Claim, today: dt.date) -> dict:
    """R24: the stored pre-check report: readability, text (truncated), checks and what to highlight.

    The checks compare the text of every readable page together (a claim may be spread over two pages).
    """
    text = "\n\n".join(page.text for page in pages if page.readability.ok and page.text)
    readable = [page for page in pages if page.readability.ok]
    checks = compare_with_claim(text=text, claim=claim, today=today) if readable else []
    text = text[:TEXT_LIMIT]
    relations = relations_of_names(text, [claim.owner.name, claim.relative.name])
    wanted = [check.evidence for check in checks if check.ok and check.evidence and check.code.endswith("_found")]
    wanted += find_id_numbers(text) + [mention.label for mention in relations.values()]
    highlights = []
    for value in wanted:
        printed = as_printed(text, value)
        if printed and printed not in highlights:
            highlights.append(printed)
    return {
        "readability": {
            "verdict": "ok" if readable else "unreadable",
            "reasons": sorted({r for page in pages for r in page.readability.reasons}) if not readable else [],
            "pages": [page.readability.as_dict() for page in pages],
        },
        "text": text,
        "checks": [check.as_dict() for check in checks],
        "highlights": highlights,
        "relations": {name: {"term": m.term, "role": m.role} for name, m in relations.items()},
    }

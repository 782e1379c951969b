"""A corpus of application documents drawn in code, each with the pre-check outcome it must get (R24).

Household register pages (常住人口登记卡: 姓名, 户主或与户主关系, 公民身份号码, 出生日期, 性别), a marriage
certificate (结婚证), a birth medical certificate (出生医学证明) and the commitment letter (个人承诺书),
drawn with Pillow in the Noto Sans CJK font Debian ships, as an A4 page at 150 dpi (1240 × 1754 px)
so Tesseract reads them in about a second. Variants spoil them as citizens' photos are spoiled:
turned a few degrees, out of focus, too dark, washed out, too small; or they show the wrong name or an
ID number whose check character is wrong (R1). The commitment letter is also the real PDF that
``family.letters`` generates.

``corpus()`` returns every document (made once per process); ``CorpusDocument.expected`` says what the
pre-check must conclude: readable or not (with which reasons), and which checks pass or fail;
``application_for(document)`` makes the application it belongs to (tests and bench/precheck.py).
To look at the pictures: ``DJANGO_SETTINGS_MODULE=portal.test_settings .venv/bin/python -m
tests.documents_corpus /tmp/corpus``.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from dataclasses import dataclass, field, replace

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from accounts.identity import id_check_character

FONT_PATH = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
FONT_INDEX = 2  # Noto Sans CJK SC in the collection
PAGE_SIZE = (1240, 1754)  # A4 at 150 dpi
INK = (25, 25, 30)
PAPER = (250, 249, 244)
RULE = (90, 90, 100)
# The date the expectations hold on (R1: no birth date after it).
TODAY = dt.date(2026, 3, 1)


def make_id_number(division: str, birth: dt.date, seq: int) -> str:
    """A valid ID number (R1); ``seq`` odd is a man, even a woman (R2)."""
    body = f"{division}{birth:%Y%m%d}{seq:03d}"
    return body + id_check_character(body)


def with_wrong_check_character(id_number: str) -> str:
    """The same number with a check character that R1 refuses."""
    right = id_number[17]
    return id_number[:17] + ("1" if right != "1" else "2")


@dataclass(frozen=True)
class Person:
    """Someone shown on a document: the values printed and, for a register card, the relation to the head."""

    name: str
    id_number: str
    relation: str = ""  # 户主或与户主关系 as printed
    birthplace: str = "江苏省苏州市"

    @property
    def birth_date(self) -> dt.date:
        return dt.date(int(self.id_number[6:10]), int(self.id_number[10:12]), int(self.id_number[12:14]))

    @property
    def sex(self) -> str:
        return "男" if int(self.id_number[16]) % 2 else "女"


# One family of 苏州 (320505): the owner, his wife, their son, his father; a newborn without an ID number yet.
OWNER = Person("张伟", make_id_number("320505", dt.date(1980, 3, 15), 31), relation="户主")
SPOUSE = Person("李娜", make_id_number("320505", dt.date(1982, 6, 20), 42), relation="妻")
CHILD = Person("张小明", make_id_number("320505", dt.date(2015, 1, 1), 13), relation="子")
FATHER = Person("张建国", make_id_number("320505", dt.date(1952, 3, 3), 17), relation="父亲")
STRANGER_NAME = "王秀英"
NEWBORN_NAME = "张小宝"
BIRTH_CERTIFICATE_NUMBER = "Q320123456"


@dataclass(frozen=True)
class Expected:
    """What the pre-check must conclude: its status, the readability reasons, and each check's verdict."""

    status: str  # a PrecheckStatus value: "done" or "unreadable"
    checks: dict[str, bool] = field(default_factory=dict)  # check code -> ok
    reasons: frozenset[str] = frozenset()  # readability reason codes (at least these)


@dataclass(frozen=True)
class CorpusDocument:
    """One upload: its bytes, what the owner claimed, and what the pre-check must find."""

    slug: str
    kind: str  # a DocumentKind value
    relationship: str  # a Relation value: what the relative is to the owner
    owner: Person
    relative: Person  # a newborn without ID number (R21): Person("", "")
    data: bytes
    content_type: str
    pages: int
    expected: Expected
    certificate_number: str = ""

    @property
    def extension(self) -> str:
        return {"image/png": "png", "image/jpeg": "jpg", "application/pdf": "pdf"}[self.content_type]


# --- drawing ---------------------------------------------------------------------------------------


@functools.cache
def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_PATH, size, index=FONT_INDEX)


def _page() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", PAGE_SIZE, PAPER)
    return image, ImageDraw.Draw(image)


def _title(draw: ImageDraw.ImageDraw, text: str, y: int, size: int = 48) -> None:
    width = draw.textlength(text, font=font(size))
    draw.text(((PAGE_SIZE[0] - width) / 2, y), text, font=font(size), fill=INK)


def _chinese_date(value: dt.date) -> str:
    return f"{value.year}年{value.month:02d}月{value.day:02d}日"


def _table(draw: ImageDraw.ImageDraw, top: int, rows: list[list[tuple[str, int]]], *, left: int = 90) -> int:
    """Draw ruled rows of (text, width) cells; returns the bottom edge."""
    row_height = 64
    size = 28
    y = top
    for row in rows:
        x = left
        for text, width in row:
            draw.rectangle([x, y, x + width, y + row_height], outline=RULE, width=2)
            draw.text((x + 14, y + (row_height - size) / 2 - 4), text, font=font(size), fill=INK)
            x += width
        y += row_height
    return y


def register_card(draw: ImageDraw.ImageDraw, person: Person, top: int) -> int:
    """One 常住人口登记卡 (the person's page of the household register); returns its bottom edge."""
    _title(draw, "常住人口登记卡", top, size=44)
    rows = [
        [("姓名", 170), (person.name, 340), ("户主或与户主关系", 260), (person.relation, 290)],
        [("曾用名", 170), ("", 340), ("性别", 260), (person.sex, 290)],
        [("出生地", 170), (person.birthplace, 340), ("民族", 260), ("汉", 290)],
        [("籍贯", 170), (person.birthplace, 340), ("出生日期", 260), (_chinese_date(person.birth_date), 290)],
        [("公民身份号码", 250), (person.id_number, 810)],
        [
            ("文化程度", 170),
            ("大学", 340),
            ("婚姻状况", 260),
            ("已婚" if person.birth_date.year < 2000 else "未婚", 290),
        ],
        [("服务处所", 170), ("", 340), ("职业", 260), ("", 290)],
        [("登记日期", 170), (_chinese_date(dt.date(2016, 5, 10)), 890)],
    ]
    return _table(draw, top + 90, rows)


def household_register_page(*people: Person) -> Image.Image:
    """A scanned page with one card, or two cards of one household one above the other."""
    image, draw = _page()
    top = 120
    for person in people:
        top = register_card(draw, person, top) + 160
    return image


def marriage_certificate_page(husband: Person, wife: Person) -> Image.Image:
    image, draw = _page()
    _title(draw, "结婚证", 120, size=64)
    size = 30
    lines = [
        f"持证人  {husband.name}",
        f"登记日期  {_chinese_date(dt.date(2008, 10, 1))}",
        "结婚证字号  J320505-2008-004217",
        "备注",
    ]
    y = 290
    for line in lines:
        draw.text((140, y), line, font=font(size), fill=INK)
        y += 64
    y += 60
    for person in (husband, wife):
        for line in (
            f"姓名  {person.name}        性别  {person.sex}",
            f"国籍  中国        出生日期  {_chinese_date(person.birth_date)}",
            f"身份证件号  {person.id_number}",
        ):
            draw.text((140, y), line, font=font(size), fill=INK)
            y += 62
        y += 70
    draw.text((140, y + 40), "婚姻登记员：王芳", font=font(size), fill=INK)
    return image


def birth_certificate_page(mother: Person, father: Person, newborn_name: str, number: str) -> Image.Image:
    image, draw = _page()
    _title(draw, "出生医学证明", 110, size=56)
    draw.text((820, 210), f"编号 {number}", font=font(28), fill=INK)
    born = dt.date(2025, 12, 2)
    rows = [
        [("新生儿姓名", 230), (newborn_name, 300), ("性别", 170), ("男", 360)],
        [("出生时间", 230), (f"{born.year}年{born.month}月{born.day}日 8时30分", 830)],
        [("出生地点", 230), ("江苏省苏州市姑苏区", 830)],
        [("健康状况", 230), ("良好", 300), ("体重", 170), ("3400克", 360)],
        [("母亲姓名", 230), (mother.name, 300), ("年龄", 170), ("43", 360)],
        [("国籍", 230), ("中国", 300), ("民族", 170), ("汉", 360)],
        [("身份证件号码", 230), (mother.id_number, 830)],
        [("父亲姓名", 230), (father.name, 300), ("年龄", 170), ("45", 360)],
        [("国籍", 230), ("中国", 300), ("民族", 170), ("汉", 360)],
        [("身份证件号码", 230), (father.id_number, 830)],
        [("接生机构名称", 230), ("苏州市立医院", 830)],
    ]
    bottom = _table(draw, 290, rows)
    draw.text((90, bottom + 60), f"签发日期 {_chinese_date(dt.date(2025, 12, 5))}", font=font(28), fill=INK)
    return image


def commitment_letter_page(owner: Person, relative: Person, relationship: str) -> Image.Image:
    """The letter as printed, signed and photographed (its text is ``family.letters``' own)."""
    from family.letters import commitment_letter_text

    text = commitment_letter_text(
        owner_name=owner.name,
        owner_id_number=owner.id_number,
        relative_name=relative.name,
        relative_id_number=relative.id_number,
        relationship=relationship,
        on_date=dt.date(2026, 2, 20),
    )
    image, draw = _page()
    paragraphs = text.split("\n\n")
    _title(draw, paragraphs[0], 120, size=48)
    y = 240
    size = 28
    for paragraph in paragraphs[1:]:
        for line in paragraph.split("\n"):
            for chunk in _wrap(draw, line, size, PAGE_SIZE[0] - 240):
                draw.text((120, y), chunk, font=font(size), fill=INK)
                y += 46
        y += 22
    # A hand-drawn signature under the text.
    draw.line([(760, y + 40), (800, y + 10), (840, y + 55), (900, y + 15), (960, y + 50)], fill=INK, width=4)
    return image


def commitment_letter_pdf(owner: Person, relative: Person, relationship: str) -> bytes:
    """The letter exactly as ``family.letters`` generates it, signed with the typed name."""
    from family import letters

    text = letters.commitment_letter_text(
        owner_name=owner.name,
        owner_id_number=owner.id_number,
        relative_name=relative.name,
        relative_id_number=relative.id_number,
        relationship=relationship,
        on_date=dt.date(2026, 2, 20),
    )
    signed_at = dt.datetime(2026, 2, 20, 10, 30, tzinfo=dt.UTC)
    return letters.commitment_letter_pdf(text=text, signed_name=owner.name, signed_at=signed_at, signature_png=None)


def _wrap(draw: ImageDraw.ImageDraw, line: str, size: int, width: int) -> list[str]:
    chunks, current = [], ""
    for char in line:
        if draw.textlength(current + char, font=font(size)) > width:
            chunks.append(current)
            current = ""
        current += char
    return [*chunks, current] if current else chunks


# --- how photos go wrong ---------------------------------------------------------------------------


def skewed(image: Image.Image, degrees: float = 4.0) -> Image.Image:
    """Held at a slant (3–5°), the corners filled with the table top."""
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(200, 200, 195))


def blurred(image: Image.Image, radius: float = 2.5) -> Image.Image:
    """Out of focus."""
    return image.filter(ImageFilter.GaussianBlur(radius))


def dark(image: Image.Image, factor: float = 0.16) -> Image.Image:
    """Taken in a dim room."""
    return ImageEnhance.Brightness(image).enhance(factor)


def washed_out(image: Image.Image) -> Image.Image:
    """Flash glare: the ink fades towards the white of the paper."""
    return Image.blend(image, Image.new("RGB", image.size, (255, 255, 255)), 0.82)


def low_resolution(image: Image.Image, short_side: int = 420) -> Image.Image:
    """Sent as a thumbnail."""
    scale = short_side / min(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)


def photo_noise(image: Image.Image, seed: int = 7) -> Image.Image:
    """Slight sensor noise and uneven light, so no page is a perfect render."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pixels = np.asarray(image, dtype=np.int16)
    noise = rng.normal(0, 6, pixels.shape[:2])[..., None]
    shade = np.linspace(-10, 6, pixels.shape[1])[None, :, None]
    return Image.fromarray(np.clip(pixels + noise + shade, 0, 255).astype(np.uint8))


def _jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# --- the corpus ------------------------------------------------------------------------------------


def _pdf_pages(data: bytes) -> int:
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        return len(document)
    finally:
        document.close()


def _documents() -> list[CorpusDocument]:
    documents: list[CorpusDocument] = []

    def add(slug: str, page: Image.Image, expected: Expected, *, scan: bool = False, **claim) -> None:
        """A scan is a clean PNG; anything else is a phone photo: sensor noise on top, saved as JPEG."""
        data = _png(page) if scan else _jpeg(photo_noise(page))
        content_type = "image/png" if scan else "image/jpeg"
        documents.append(
            CorpusDocument(slug=slug, data=data, content_type=content_type, pages=1, expected=expected, **claim)
        )

    owner_register = {"kind": "owner_register", "owner": OWNER, "relative": CHILD, "relationship": "child"}
    child_register = {"kind": "relative_register", "owner": OWNER, "relative": CHILD, "relationship": "child"}
    owner_shown = {"owner_name_found": True, "owner_id_found": True, "id_numbers_valid": True}
    child_shown = {"relative_name_found": True, "relative_id_found": True, "id_numbers_valid": True}
    both_shown = {**owner_shown, **child_shown}
    owner_page = household_register_page(OWNER)
    child_page = household_register_page(CHILD)

    add("owner-register-scan", owner_page, Expected("done", owner_shown), scan=True, **owner_register)
    add("relative-register-photo", child_page, Expected("done", child_shown), **child_register)
    add("relative-register-skewed", skewed(child_page, 4.0), Expected("done", child_shown), **child_register)
    add("owner-register-skewed", skewed(owner_page, -3.0), Expected("done", owner_shown), **owner_register)
    # Slightly soft is still read: the blur threshold must not send back what Tesseract reads.
    add("owner-register-soft", blurred(owner_page, 1.0), Expected("done", owner_shown), **owner_register)
    add(
        "relative-register-blurred",
        blurred(child_page, 2.5),
        Expected("unreadable", reasons=frozenset({"blurred"})),
        **child_register,
    )
    add(
        "owner-register-dark",
        dark(owner_page),
        Expected("unreadable", reasons=frozenset({"too_dark"})),
        **owner_register,
    )
    add(
        "owner-register-washed-out",
        washed_out(owner_page),
        Expected("unreadable", reasons=frozenset({"too_bright"})),
        **owner_register,
    )
    add(
        "relative-register-low-resolution",
        low_resolution(child_page),
        Expected("unreadable", reasons=frozenset({"too_small"})),
        **child_register,
    )
    add(
        "relative-register-wrong-name",
        household_register_page(replace(CHILD, name=STRANGER_NAME)),
        Expected("done", {**child_shown, "relative_name_found": False}),
        **child_register,
    )
    add(
        "relative-register-wrong-check-character",
        household_register_page(replace(CHILD, id_number=with_wrong_check_character(CHILD.id_number))),
        Expected("done", {**child_shown, "relative_id_found": False, "id_numbers_valid": False}),
        **child_register,
    )
    # Two sons of one head (their father's household): brothers, claimed as parent and child.
    elder = Person("张伟", OWNER.id_number, relation="长子")
    younger = Person("张强", make_id_number("320505", dt.date(1984, 8, 8), 55), relation="次子")
    add(
        "register-two-sons-claimed-as-parent",
        household_register_page(elder, younger),
        Expected("done", {**child_shown, "relation_matches_claim": False}),
        kind="relative_register",
        owner=elder,
        relative=younger,
        relationship="parent",
    )
    add(
        "register-head-and-son-claimed-as-child",
        household_register_page(OWNER, CHILD),
        Expected("done", {**child_shown, "relation_matches_claim": True}),
        **child_register,
    )
    add(
        "marriage-certificate-photo",
        marriage_certificate_page(OWNER, SPOUSE),
        Expected("done", {**both_shown, "relation_matches_claim": True}),
        kind="marriage_certificate",
        owner=OWNER,
        relative=SPOUSE,
        relationship="spouse",
    )
    add(
        "birth-certificate-photo",
        birth_certificate_page(SPOUSE, OWNER, NEWBORN_NAME, BIRTH_CERTIFICATE_NUMBER),
        Expected("done", {**owner_shown, "certificate_number_found": True, "relation_matches_claim": True}),
        kind="birth_certificate",
        owner=SPOUSE,
        relative=Person("", ""),  # R21: the newborn has no ID number yet, and no name was claimed
        relationship="child",
        certificate_number=BIRTH_CERTIFICATE_NUMBER,
    )
    add(
        "commitment-letter-photo",
        commitment_letter_page(OWNER, FATHER, "parent"),
        Expected("done", {**both_shown, "relation_matches_claim": True}),
        kind="commitment_letter",
        owner=OWNER,
        relative=FATHER,
        relationship="parent",
    )
    # The letter as the portal generates it (R20): a PDF, read from its rendered page.
    letter = commitment_letter_pdf(OWNER, SPOUSE, "spouse")
    documents.append(
        CorpusDocument(
            slug="commitment-letter-pdf",
            kind="commitment_letter",
            relationship="spouse",
            owner=OWNER,
            relative=SPOUSE,
            data=letter,
            content_type="application/pdf",
            pages=_pdf_pages(letter),
            expected=Expected("done", {**both_shown, "relation_matches_claim": True}),
        )
    )
    return documents


def application_for(document: CorpusDocument):
    """The application (``Binding``, under review) that the document belongs to, as the owner claimed it.

    The two people are insured persons of 苏州 with the names and ID numbers the document claims
    (found again if they exist); a newborn without an ID number is named by the mother and the certificate.
    """
    from accounts.models import InsuranceType, InsuredPerson
    from family.models import Binding, BindingMethod, BindingState
    from tests.factories import InsuredPersonFactory, RegionFactory

    region = RegionFactory(code="320500", name="苏州市", province="320000")

    def insured(person: Person) -> InsuredPerson:
        existing = InsuredPerson.objects.filter(id_number=person.id_number).first()
        if existing is not None:
            return existing
        kind = InsuranceType.RESIDENT if person.birth_date.year >= 2000 else InsuranceType.EMPLOYEE
        return InsuredPersonFactory(id_number=person.id_number, name=person.name, region=region, insurance_type=kind)

    owner = insured(document.owner)
    fields = {"method": BindingMethod.ONLINE_ID, "relative": None}
    if document.relative.id_number:
        fields["relative"] = insured(document.relative)
    else:  # R21
        fields.update(
            method=BindingMethod.NEWBORN,
            mother_name=document.owner.name,
            mother_id_number=document.owner.id_number,
            birth_certificate_number=document.certificate_number,
        )
    return Binding.objects.create(
        owner=owner,
        relationship=document.relationship,
        state=BindingState.UNDER_REVIEW,
        region_id=owner.region_id,
        **fields,
    )


@functools.cache
def corpus() -> tuple[CorpusDocument, ...]:
    """Every document of the corpus, made once per process."""
    return tuple(_documents())


def by_slug(slug: str) -> CorpusDocument:
    return next(document for document in corpus() if document.slug == slug)


if __name__ == "__main__":  # write the corpus to a folder to look at it
    import sys
    from pathlib import Path

    import django

    django.setup()  # family.letters needs the apps
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "var/documents-corpus")
    folder.mkdir(parents=True, exist_ok=True)
    for document in corpus():
        (folder / f"{document.slug}.{document.extension}").write_bytes(document.data)
        print(document.slug, len(document.data))

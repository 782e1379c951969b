"""个人承诺书 (R20): the generated letter, its PDF with the drawn or typed signature, and where it is kept."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
import zlib

import pytest
from PIL import Image, ImageDraw

from accounts.storage import PrivateStorage
from family.documents import DocumentRefused
from family.letters import (
    RELATION_WORDS,
    SignatureRefused,
    commitment_letter_pdf,
    commitment_letter_text,
    letter_store,
)
from family.models import BindingDocument, BindingState, DocumentKind, DocumentStatus, Relation

OWNER_ID = "32050519800315111X"
RELATIVE_ID = "320505198206201124"
SIGNED_AT = dt.datetime(2025, 3, 15, 2, 30, tzinfo=dt.UTC)  # 10:30 in Asia/Shanghai


def letter(relationship: str = "spouse") -> str:
    return commitment_letter_text(
        owner_name="张伟",
        owner_id_number=OWNER_ID,
        relative_name="李娜",
        relative_id_number=RELATIVE_ID,
        relationship=relationship,
        on_date=dt.date(2025, 3, 15),
    )


def pdf_text(pdf: bytes) -> str:
    """The text drawn on the pages: reportlab writes ASCII85+Flate streams of UTF-16 strings for the CID font."""
    text = []
    for match in re.finditer(
        rb"/Filter \[ /ASCII85Decode /FlateDecode \][^>]*>>\s*stream\r?\n(.*?)endstream", pdf, re.S
    ):
        raw = match.group(1).strip().removesuffix(b"~>")
        content = zlib.decompress(base64.a85decode(raw))
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\) Tj", content, re.S):
            data = re.sub(
                rb"\\([0-7]{1,3}|.)",
                lambda m: (
                    bytes([int(m.group(1), 8)])
                    if m.group(1)[:1].isdigit()
                    else {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}.get(m.group(1), m.group(1))
                ),
                literal,
                flags=re.S,
            )
            try:
                text.append(data.decode("utf-16-be"))
            except UnicodeDecodeError:
                text.append(data.decode("latin-1"))
    return "".join(text)


def signature_png(size=(400, 120), *, transparent: bool = True) -> bytes:
    image = Image.new("RGBA" if transparent else "RGB", size, (0, 0, 0, 0) if transparent else (255, 255, 255))
    ImageDraw.Draw(image).line([(20, 90), (120, 20), (220, 100), (380, 30)], fill=(0, 0, 0, 255), width=6)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_r20_the_letter_names_both_persons_in_full():
    text = letter()
    assert text.startswith("个人承诺书\n\n")
    for words in ("本人张伟", OWNER_ID, "李娜", RELATIVE_ID, "关系为：配偶", "2025年3月15日", "承诺人：张伟"):
        assert words in text
    # The paragraphs the PDF lays out are separated by blank lines.
    assert len(text.split("\n\n")) == 8


def test_every_relationship_has_its_chinese_words():
    assert set(RELATION_WORDS) == set(Relation.values)
    assert "兄弟姐妹" in letter("sibling")
    assert "孙子女、外孙子女" in letter("grandchild")
    assert "关系为：父母" in letter("父母")  # the Chinese words are taken as they are


def test_an_unknown_relationship_is_a_programming_error():
    with pytest.raises(ValueError, match="cousin"):
        letter("cousin")


def test_r20_the_pdf_carries_the_text_and_the_typed_name():
    pdf = commitment_letter_pdf(text=letter(), signed_name="张伟", signed_at=SIGNED_AT, signature_png=None)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/BaseFont /STSong-Light" in pdf
    assert b"/Subtype /Image" not in pdf
    drawn = pdf_text(pdf)
    for words in ("个人承诺书", OWNER_ID, RELATIVE_ID, "承诺人签名：张伟", "签署时间：2025年3月15日 10:30"):
        assert words in drawn


def test_r20_a_drawn_signature_is_embedded_instead_of_the_typed_name():
    pdf = commitment_letter_pdf(text=letter(), signed_name="张伟", signed_at=SIGNED_AT, signature_png=signature_png())
    assert b"/Subtype /Image" in pdf
    drawn = pdf_text(pdf)
    assert "承诺人签名：" in drawn and "承诺人签名：张伟" not in drawn
    assert "签署时间：2025年3月15日 10:30" in drawn


def noise_png(size) -> bytes:
    import os

    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: noise_png((600, 400)), "200 KB"),
        (lambda: signature_png((2100, 300)), "2000×1000"),
        (lambda: signature_png((800, 1100)), "2000×1000"),
        (lambda: _jpeg(), "PNG"),
        (lambda: b"<svg xmlns='http://www.w3.org/2000/svg'/>", "PNG"),
        (lambda: signature_png()[:200], "PNG"),
    ],
    ids=["too-heavy", "too-wide", "too-tall", "jpeg", "svg", "truncated"],
)
def test_a_signature_that_is_not_a_small_png_is_refused(make, words):
    with pytest.raises(SignatureRefused) as refused:
        commitment_letter_pdf(text=letter(), signed_name="张伟", signed_at=SIGNED_AT, signature_png=make())
    assert words in refused.value.title
    assert [e.field for e in refused.value.errors] == ["signature"]


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 100), "white").save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def storage(tmp_path, monkeypatch) -> PrivateStorage:
    private = PrivateStorage(location=tmp_path / "private")
    monkeypatch.setattr(BindingDocument._meta.get_field("file"), "storage", private)
    return private


@pytest.fixture
def binding(citizen_a, citizen_a_family, binding_insert):
    return binding_insert(
        citizen_a.person, citizen_a_family["spouse"], state=BindingState.SUBMITTED, relationship=Relation.SPOUSE
    )


def test_r20_the_signed_letter_is_kept_privately_for_the_reviewer(binding, citizen_a, storage):
    pdf = commitment_letter_pdf(text=letter(), signed_name="张伟", signed_at=SIGNED_AT, signature_png=None)
    document = letter_store(binding=binding, pdf_bytes=pdf, user=citizen_a)

    document.refresh_from_db()
    assert (document.kind, document.status, document.content_type) == (
        DocumentKind.COMMITMENT_LETTER,
        DocumentStatus.PENDING,
        "application/pdf",
    )
    assert (document.binding, document.uploaded_by, document.size) == (binding, citizen_a, len(pdf))
    assert re.fullmatch(rf"bindings/{binding.pk}/[0-9a-f]{{32}}\.pdf", document.file.name)
    assert storage.exists(document.file.name)
    with document.file.open("rb") as handle:
        assert handle.read() == pdf
    with pytest.raises(ValueError, match="no URL"):
        document.file.url  # noqa: B018 - R51: private files have no public address


def test_a_second_letter_is_refused_while_the_first_is_live(binding, citizen_a, storage):
    pdf = commitment_letter_pdf(text=letter(), signed_name="张伟", signed_at=SIGNED_AT, signature_png=None)
    letter_store(binding=binding, pdf_bytes=pdf, user=citizen_a)
    with pytest.raises(DocumentRefused) as refused:
        letter_store(binding=binding, pdf_bytes=pdf, user=citizen_a)
    assert refused.value.status == 409
    assert BindingDocument.objects.count() == 1


def test_letter_store_takes_only_a_pdf(binding, citizen_a, storage):
    with pytest.raises(ValueError):
        letter_store(binding=binding, pdf_bytes=b"not a pdf", user=citizen_a)
    assert not BindingDocument.objects.exists()

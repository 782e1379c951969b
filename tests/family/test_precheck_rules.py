"""R24 pre-check rules as pure functions: names, ID numbers (R1), relations to the head, readability.

No Tesseract here (``tests/family/test_precheck_corpus.py`` runs it): texts are written as Tesseract
returns them, with its blanks between characters and the table ruling it reads as ``|``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation
from PIL import Image, ImageDraw

from family import precheck
from family.precheck import (
    Claim,
    ClaimedPerson,
    PageResult,
    Readability,
    build_report,
    clean_text,
    compare_with_claim,
    find_id_numbers,
    find_names,
    household_relations,
    id_number_failures,
    implied_relations,
    readability,
    readability_message,
    relations_of_names,
)
from tests.documents_corpus import (
    CHILD,
    OWNER,
    SPOUSE,
    Person,
    blurred,
    dark,
    household_register_page,
    low_resolution,
    make_id_number,
    skewed,
    washed_out,
    with_wrong_check_character,
)

TODAY = dt.date(2026, 3, 1)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def card_text(person: Person) -> str:
    """A register card as Tesseract reads it (psm 6, ruling removed): blanks, stray quotes and bars."""
    return (
        "常住人口登记卡\n"
        f"姓名 {' '.join(person.name)} 户主或与户主关系”{person.relation}\n"
        f"曾用名 性别 {person.sex}\n"
        f"公民身份号码 | {person.id_number}\n"
        "登记日期 2016年05月10日"
    )


def claim(kind: str, relationship: str = "child", owner: Person = OWNER, relative: Person = CHILD, **extra) -> Claim:
    return Claim(
        kind=kind,
        relationship=relationship,
        owner=ClaimedPerson(owner.name, owner.id_number),
        relative=ClaimedPerson(relative.name, relative.id_number),
        **extra,
    )


def by_code(checks) -> dict[str, bool]:
    return {check.code: check.ok for check in checks}


# --- text --------------------------------------------------------------------------------------------


def test_clean_text_drops_the_blanks_tesseract_puts_between_chinese_characters():
    assert (
        clean_text("姓 名  张 小 明   户主\n\n  公民身份号码  3205 0520\n") == "姓名张小明户主\n公民身份号码 3205 0520"
    )


def test_r24_a_name_is_found_whatever_blanks_and_marks_stand_between_its_characters():
    text = "姓名 张 · 小明 | 户主或与户主关系”子".replace("·", "|")
    assert find_names(text, ["张小明", "王秀英", ""]) == ["张小明"]


def test_r24_another_name_on_the_page_is_not_the_claimed_one():
    assert find_names(card_text(Person("王秀英", CHILD.id_number, "子")), [CHILD.name]) == []


def test_r24_a_name_split_by_a_line_break_is_still_found():
    assert find_names("姓名 张小\n明", ["张小明"]) == ["张小明"]


# --- ID numbers (R1) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "printed",
    [
        "320505201501010130",
        "3205 0520 1501 0101 30",  # Tesseract's blanks inside the number
        "320505 20150101 0130",
        "| 320505201501010130 |",  # table ruling read as bars on both sides
        "32O5052O15O1010130",  # O for 0 inside the number
    ],
)
def test_r1_an_id_number_is_found_with_ocr_spacing_and_look_alikes(printed):
    assert find_id_numbers(f"公民身份号码 {printed}\n出生日期 2015年01月01日") == [CHILD.id_number]


def test_r1_a_lower_case_check_character_is_upper_cased():
    body = "11010519491231002"
    value = make_id_number("110105", dt.date(1949, 12, 31), 2)
    assert value.startswith(body) and value.endswith("X")
    assert find_id_numbers(f"号码 {value.lower()}") == [value]


def test_r1_too_short_or_too_long_runs_of_digits_are_not_id_numbers():
    assert find_id_numbers("编号 32050520150101013 电话 13912345678") == []
    assert find_id_numbers("号码 3205052015010101301") == []


def test_r1_several_numbers_are_each_found_once():
    text = f"{OWNER.id_number} {CHILD.id_number}\n{OWNER.id_number}"
    assert find_id_numbers(text) == [OWNER.id_number, CHILD.id_number]


def test_r1_failures_say_which_part_is_wrong():
    wrong_check = with_wrong_check_character(CHILD.id_number)
    born_later = make_id_number("320505", dt.date(2026, 5, 1), 13)
    no_such_date = "320505" + "20150230" + "013" + "0"
    failures = id_number_failures([CHILD.id_number, wrong_check, born_later, no_such_date], today=TODAY)
    assert [(value, code) for value, code, _message in failures] == [
        (wrong_check, "checksum"),
        (born_later, "future"),
        (no_such_date, "date"),
    ]


def test_r1_a_birth_date_is_in_the_future_only_after_the_date_passed_in():
    born = make_id_number("320505", dt.date(2026, 5, 1), 13)
    assert id_number_failures([born], today=dt.date(2026, 5, 1)) == []


# --- relations to the head of the household ----------------------------------------------------------


@pytest.mark.parametrize(
    ("printed", "term", "role"),
    [
        ("户主或与户主关系”户主", "户主", "head"),
        ("户主或与户主关系 | 长子", "长子", "child"),
        ("与户主关系：次女", "次女", "child"),
        ("户主或与户主关系 妻", "妻", "spouse"),
        ("户主或与户主关系 外孙女", "外孙女", "grandchild"),
        ("户主或与户主关系 母亲", "母亲", "parent"),
        ("户主或与户主关系 弟", "弟", "sibling"),
        ("户主或与户主关系 女婿", "女婿", "child_in_law"),
        ("户主或与户主关系 岳母", "岳母", "parent_in_law"),
    ],
)
def test_r24_the_relation_to_the_head_is_read_after_its_label(printed, term, role):
    [mention] = household_relations(f"姓名 张小明 {printed}\n性别 男")
    assert (mention.term, mention.role) == (term, role)


def test_r24_a_relation_word_without_its_label_is_not_a_relation():
    assert household_relations("文化程度 大学 子女 二人 母亲 住址") == []


def test_r24_each_name_gets_the_relation_printed_on_its_own_card():
    text = (
        card_text(Person("张伟", OWNER.id_number, "长子")) + "\n" + card_text(Person("张强", CHILD.id_number, "次子"))
    )
    relations = relations_of_names(text, ["张伟", "张强"])
    assert {name: mention.term for name, mention in relations.items()} == {"张伟": "长子", "张强": "次子"}


def test_r24_a_name_far_from_any_relation_gets_none():
    text = card_text(OWNER) + "\n" + "备注 " * 40 + "张小明"
    assert set(relations_of_names(text, [OWNER.name, CHILD.name])) == {OWNER.name}


@pytest.mark.parametrize(
    ("owner_role", "relative_role", "implied"),
    [
        ("head", "child", {"child"}),
        ("head", "spouse", {"spouse"}),
        ("child", "head", {"parent"}),
        ("child", "child", {"sibling"}),  # two children of one head are siblings
        ("parent", "child", {"grandchild"}),
        ("spouse", "child", {"child"}),
        ("head", "parent_in_law", set()),  # 岳父 is no close relative (Civil Code art. 1045)
        ("child", "grandchild", None),  # the owner's child, or a nephew: cannot be told
        ("head", "head", None),  # two households
    ],
)
def test_r24_what_two_relations_to_one_head_make_of_owner_and_relative(owner_role, relative_role, implied):
    result = implied_relations(owner_role, relative_role)
    assert (set(result) if result is not None else None) == implied


# --- comparing with the claim -------------------------------------------------------------------------


def test_r24_the_owners_register_is_checked_for_the_owner_only():
    checks = compare_with_claim(text=card_text(OWNER), claim=claim("owner_register"), today=TODAY)
    assert by_code(checks) == {"owner_name_found": True, "owner_id_found": True, "id_numbers_valid": True}


def test_r24_the_wrong_name_on_the_relatives_page_fails_only_the_name():
    page = card_text(Person("王秀英", CHILD.id_number, "子"))
    checks = compare_with_claim(text=page, claim=claim("relative_register"), today=TODAY)
    assert by_code(checks) == {"relative_name_found": False, "relative_id_found": True, "id_numbers_valid": True}


def test_r1_a_number_with_a_wrong_check_character_is_named_with_its_fault():
    wrong = with_wrong_check_character(CHILD.id_number)
    checks = compare_with_claim(
        text=card_text(Person(CHILD.name, wrong, "子")), claim=claim("relative_register"), today=TODAY
    )
    assert by_code(checks) == {"relative_name_found": True, "relative_id_found": False, "id_numbers_valid": False}
    failed = next(check for check in checks if check.code == "id_numbers_valid")
    assert wrong in failed.evidence and "check character" in failed.evidence


def test_r24_no_number_on_the_page_gives_no_r1_check():
    checks = compare_with_claim(text="姓名 张小明", claim=claim("relative_register"), today=TODAY)
    assert by_code(checks) == {"relative_name_found": True, "relative_id_found": False}


def test_r24_two_sons_of_one_head_claimed_as_parent_and_child_contradict_the_claim():
    elder, younger = Person("张伟", OWNER.id_number, "长子"), Person("张强", CHILD.id_number, "次子")
    text = card_text(elder) + "\n" + card_text(younger)
    checks = compare_with_claim(
        text=text, claim=claim("relative_register", "parent", owner=elder, relative=younger), today=TODAY
    )
    relation = next(check for check in checks if check.code == "relation_matches_claim")
    assert not relation.ok
    assert "兄弟姐妹" in relation.message and relation.evidence == "张伟: 长子; 张强: 次子"
    # The same page, claimed as siblings (R12 from 2024-07-01), agrees.
    checks = compare_with_claim(
        text=text, claim=claim("relative_register", "sibling", owner=elder, relative=younger), today=TODAY
    )
    assert by_code(checks)["relation_matches_claim"] is True


def test_r24_the_head_and_a_son_claimed_as_child_agree():
    text = card_text(OWNER) + "\n" + card_text(CHILD)
    assert by_code(compare_with_claim(text=text, claim=claim("relative_register"), today=TODAY))[
        "relation_matches_claim"
    ]


def test_r24_a_son_in_law_claimed_as_child_is_not_a_close_relative():
    son_in_law = Person("赵磊", CHILD.id_number, "女婿")
    text = card_text(OWNER) + "\n" + card_text(son_in_law)
    checks = compare_with_claim(text=text, claim=claim("relative_register", relative=son_in_law), today=TODAY)
    assert by_code(checks)["relation_matches_claim"] is False


def test_r24_one_card_alone_says_nothing_about_the_relationship():
    # The other person's relation is on another page, perhaps of another household: no guess.
    checks = compare_with_claim(text=card_text(CHILD), claim=claim("relative_register", "parent"), today=TODAY)
    assert "relation_matches_claim" not in by_code(checks)


def test_r24_a_marriage_certificate_shows_spouses_only():
    text = f"结婚证 持证人 张伟\n姓名 张伟 {OWNER.id_number}\n姓名 李娜 {SPOUSE.id_number}"
    as_spouse = compare_with_claim(
        text=text, claim=claim("marriage_certificate", "spouse", relative=SPOUSE), today=TODAY
    )
    assert all(check.ok for check in as_spouse) and len(as_spouse) == 6
    as_child = compare_with_claim(text=text, claim=claim("marriage_certificate", "child", relative=SPOUSE), today=TODAY)
    assert by_code(as_child)["relation_matches_claim"] is False


def test_r21_a_birth_certificate_is_checked_for_the_parent_and_its_number():
    text = f"出生医学证明 编号 Q320123456\n新生儿姓名 张小宝\n母亲姓名 李娜\n身份证件号码 {SPOUSE.id_number}"
    newborn = Claim(
        kind="birth_certificate",
        relationship="child",
        owner=ClaimedPerson(SPOUSE.name, SPOUSE.id_number),
        relative=ClaimedPerson("", ""),  # no name claimed, no ID number yet
        certificate_number="Q320123456",
    )
    assert by_code(compare_with_claim(text=text, claim=newborn, today=TODAY)) == {
        "owner_name_found": True,
        "owner_id_found": True,
        "id_numbers_valid": True,
        "certificate_number_found": True,
        "relation_matches_claim": True,
    }
    other = Claim(**{**newborn.__dict__, "certificate_number": "Q999999999"})
    assert by_code(compare_with_claim(text=text, claim=other, today=TODAY))["certificate_number_found"] is False


def test_r20_the_letters_relationship_is_compared_with_the_claim():
    text = "个人承诺书 本人张伟 ... 张小明与本人的关系为: 子女。"
    assert by_code(compare_with_claim(text=text, claim=claim("commitment_letter", "child"), today=TODAY))[
        "relation_matches_claim"
    ]
    assert not by_code(compare_with_claim(text=text, claim=claim("commitment_letter", "parent"), today=TODAY))[
        "relation_matches_claim"
    ]


# --- the report -------------------------------------------------------------------------------------


def ok_page(text: str) -> PageResult:
    return PageResult(Readability(width=1240, height=1754, blur=900.0, brightness=240.0, ink=20.0), text)


def test_r24_the_report_highlights_what_was_found_as_the_text_prints_it():
    text = card_text(OWNER).replace(OWNER.id_number, "3205 0519 8003 1503 12")
    report = build_report(pages=[ok_page(text)], claim=claim("owner_register"), today=TODAY)
    assert report["readability"]["verdict"] == "ok"
    assert report["text"] == text
    assert {check["code"] for check in report["checks"]} == {"owner_name_found", "owner_id_found", "id_numbers_valid"}
    # Every highlight is a piece of the stored text, so the reviewer's page can mark it.
    assert report["highlights"] == ["张 伟", "3205 0519 8003 1503 12", "户主或与户主关系”户主"]
    assert all(highlight in report["text"] for highlight in report["highlights"])


def test_r24_the_report_of_an_unreadable_document_has_reasons_and_no_checks():
    unreadable = PageResult(
        Readability(width=420, height=594, blur=50.0, brightness=240.0, ink=90.0, reasons=("too_small",))
    )
    report = build_report(pages=[unreadable], claim=claim("owner_register"), today=TODAY)
    assert report["readability"]["verdict"] == "unreadable"
    assert report["readability"]["reasons"] == ["too_small"]
    assert report["checks"] == [] and report["text"] == ""


def test_r24_the_text_kept_is_truncated():
    report = build_report(pages=[ok_page("字" * 10_000)], claim=claim("owner_register"), today=TODAY)
    assert len(report["text"]) == precheck.TEXT_LIMIT


def test_r24_one_readable_page_of_two_is_enough_to_check():
    blank = PageResult(
        Readability(width=1240, height=1754, blur=0.0, brightness=250.0, ink=250.0, reasons=("too_bright",))
    )
    report = build_report(pages=[blank, ok_page(card_text(OWNER))], claim=claim("owner_register"), today=TODAY)
    assert report["readability"]["verdict"] == "ok" and report["readability"]["reasons"] == []
    assert len(report["readability"]["pages"]) == 2
    assert all(check["ok"] for check in report["checks"])


# --- readability --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page() -> Image.Image:
    return household_register_page(OWNER)


def test_r24_a_clean_page_is_readable(page):
    quality = readability(page)
    assert quality.ok, quality
    assert quality.short_side == 1240


def test_r24_a_page_turned_a_few_degrees_is_still_readable(page):
    assert readability(skewed(page, 4)).ok


def test_r24_a_slightly_soft_page_is_readable_and_a_blurred_one_is_not(page):
    assert readability(blurred(page, 1.0)).ok
    quality = readability(blurred(page, 2.5))
    assert quality.reasons == ("blurred",)
    assert quality.blur < precheck.ReadabilityThresholds().min_blur


def test_r24_a_thumbnail_is_too_small(page):
    assert "too_small" in readability(low_resolution(page, 420)).reasons


def test_r24_a_dim_photo_is_too_dark_and_not_called_blurred(page):
    assert readability(dark(page)).reasons == ("too_dark",)


def test_r24_a_washed_out_photo_is_too_bright(page):
    assert readability(washed_out(page)).reasons == ("too_bright",)


def test_r24_a_blank_page_cannot_be_read():
    white = Image.new("RGB", (1240, 1754), (255, 255, 255))
    grey = Image.new("RGB", (1240, 1754), (128, 128, 128))
    assert readability(white).reasons == ("too_bright",)
    assert readability(grey).reasons == ("blurred",)  # nothing sharp on it to read


def test_r24_the_thresholds_are_passed_in(page):
    strict = precheck.ReadabilityThresholds(min_short_side=2000)
    assert readability(page, strict).reasons == ("too_small",)


def test_r24_the_sharpness_does_not_depend_on_the_photos_size(page):
    large = page.resize((2480, 3508), Image.Resampling.LANCZOS)
    assert readability(large).ok
    assert readability(large).blur == pytest.approx(readability(page).blur, rel=0.5)


def test_r24_the_citizen_is_told_what_to_fix():
    message = readability_message(["too_small", "blurred", "too_small"])
    assert message.count("too small") == 1 and "blurred" in message
    assert readability_message([]) == ""


# --- the OCR adapter, without Tesseract ---------------------------------------------------------------


def test_r24_the_skew_of_a_page_is_measured(page):
    assert precheck.skew_angle(precheck._grey(skewed(page, 4))) == pytest.approx(-4, abs=0.3)
    assert precheck.skew_angle(precheck._grey(skewed(page, -3))) == pytest.approx(3, abs=0.3)
    assert abs(precheck.skew_angle(precheck._grey(page))) <= 0.2


def test_r24_the_ocr_preparation_levels_the_page_and_removes_the_ruling(page):
    prepared = precheck.ocr_prepare(skewed(page, 4))
    assert prepared.mode == "L"
    # No long horizontal line of ink remains: each row of a ruled table had one before.
    import numpy as np

    ink = np.asarray(prepared) < 128
    assert ink.sum(axis=1).max() < 0.3 * prepared.width


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        ("not_found", "tesseract_missing"),
        ("error", "tesseract_error"),
        ("timeout", "tesseract_timeout"),
    ],
)
def test_r24_a_failing_tesseract_is_an_ocr_error_with_its_code(monkeypatch, raised, code):
    import pytesseract

    def fail(*args, **kwargs):
        if raised == "not_found":
            raise pytesseract.TesseractNotFoundError()
        if raised == "error":
            raise pytesseract.TesseractError(1, "Failed loading language 'chi_sim'")
        raise RuntimeError("Tesseract process timeout")

    monkeypatch.setattr(pytesseract, "image_to_string", fail)
    small = Image.new("RGB", (200, 100), (255, 255, 255))
    ImageDraw.Draw(small).text((10, 10), "x", fill=(0, 0, 0))
    with pytest.raises(precheck.OcrError) as error:
        precheck.ocr_text(small)
    assert error.value.code == code

"""R4: how ID numbers and names are shown everywhere outside the two exceptions."""

# Compound (two-character) family names: 欧阳娜娜 shows as 欧阳*, not 欧**.
COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "令狐",
        "夏侯",
        "轩辕",
        "端木",
        "独孤",
        "南宫",
        "西门",
        "百里",
        "呼延",
        "东郭",
        "闻人",
        "澹台",
        "公冶",
        "太叔",
        "申屠",
        "钟离",
        "第五",
        "万俟",
        "赫连",
        "拓跋",
        "完颜",
    ]
)


def mask_id_number(value: str | None) -> str:
    """R4: keep the first 3 and last 4 characters, star the rest (110***********123X)."""
    if not value:
        return ""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str | None) -> str:
    """R4: keep the family name, one star for the rest (张*, 欧阳*)."""
    if not value:
        return ""
    value = value.strip()
    if value[:2] in COMPOUND_SURNAMES and len(value) > 2:
        return value[:2] + "*"
    if len(value) == 1:
        return value
    # Latin-script names (e.g. foreign residents): keep the first word.
    if " " in value:
        return value.split(" ", 1)[0] + " *"
    return value[0] + "*"


def mask_phone(value: str | None) -> str:
    """Phone numbers show the first 3 and last 4 digits (138****1234)."""
    if not value:
        return ""
    digits = value.removeprefix("+86")
    if len(digits) < 8:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]

"""Template filters: masking (R4), money and dates as ui.md shows them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.translation import get_language

from accounts import masking

register = template.Library()


@register.filter
def mask_id(value: str | None) -> str:
    """R4: 110***********123X."""
    return masking.mask_id_number(value)


@register.filter
def mask_name(value: str | None) -> str:
    """R4: 张*."""
    return masking.mask_name(value)


@register.filter
def yuan(value: Decimal | int | float | None) -> str:
    """Money as ¥1,234.50 (negative as -¥12.00)."""
    if value is None:
        return ""
    amount = Decimal(value)
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,.2f}"


@register.filter
def local_date(value: dt.date | dt.datetime | None) -> str:
    """Dates as 2025年3月15日 in Chinese and 15 Mar 2025 in English."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        value = value.date()
    if (get_language() or "zh-hans").startswith("zh"):
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value.day} {value:%b} {value.year}"


@register.filter
def local_datetime(value: dt.datetime | None) -> str:
    """Date and minute, in the user's language."""
    if value is None:
        return ""
    value = timezone.localtime(value) if timezone.is_aware(value) else value
    return f"{local_date(value)} {value:%H:%M}"


@register.filter
def local_month(value: dt.date | dt.datetime | None) -> str:
    """A month as 2025年3月 in Chinese and Mar 2025 in English (entries by month)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    if (get_language() or "zh-hans").startswith("zh"):
        return f"{value.year}年{value.month}月"
    return f"{value:%b} {value.year}"

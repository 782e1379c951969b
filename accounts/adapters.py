"""django-allauth hooks: phone numbers live on our User; codes go out through accounts.messaging."""

from __future__ import annotations

import re

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.fields import PhoneField
from django.core.validators import RegexValidator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.messaging import send_sms
from accounts.models import User

_MOBILE = re.compile(r"^(?:\+?86)?(1[3-9]\d{9})$")


def normalize_phone(value: str) -> str:
    """Mainland mobile numbers are stored as 11 digits, with or without +86 as typed."""
    compact = (value or "").replace(" ", "").replace("-", "")
    match = _MOBILE.match(compact)
    return match.group(1) if match else compact


class AccountAdapter(DefaultAccountAdapter):
    def phone_form_field(self, **kwargs):
        kwargs.setdefault(
            "validators",
            [
                RegexValidator(
                    regex=_MOBILE,
                    message=_("Enter an 11-digit mainland mobile number, such as 13800138000."),
                    code="invalid_phone",
                )
            ],
        )
        kwargs.setdefault("label", _("Mobile phone"))
        field = PhoneField(**kwargs)
        field.widget.attrs.update({"inputmode": "numeric", "placeholder": "13800138000"})
        return field

    def clean_phone(self, phone: str) -> str:
        return normalize_phone(phone)

    def set_phone(self, user: User, phone: str, verified: bool) -> None:
        user.phone = normalize_phone(phone)
        user.phone_verified = verified
        user.save(update_fields=["phone", "phone_verified"])

    def get_phone(self, user: User) -> tuple[str, bool] | None:
        return (user.phone, user.phone_verified) if user.phone else None

    def set_phone_verified(self, user: User, phone: str) -> None:
        user.phone_verified = True
        user.save(update_fields=["phone_verified"])

    def get_user_by_phone(self, phone: str) -> User | None:
        return User.objects.filter(phone=normalize_phone(phone)).first()

    def send_verification_code_sms(self, user: User, phone: str, code: str, **kwargs) -> None:
        send_sms(phone=phone, text=gettext("Your 家庭共济 verification code is %(code)s.") % {"code": code})

    def send_unknown_account_sms(self, phone: str, **kwargs) -> None:
        send_sms(phone=phone, text=gettext("No 家庭共济 login uses this phone number."))

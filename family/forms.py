"""Forms of the family-sharing pages: shape and format only; meaning is checked by the selectors and services."""

from __future__ import annotations

import base64
import binascii
import io
import re

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.forms import IdNumberField
from family.models import DocumentKind, Relation

# The drawn signature travels as a PNG data URL in a hidden field; a real one is a few dozen KB.
SIGNATURE_PREFIX = "data:image/png;base64,"
SIGNATURE_MAX_BYTES = 200 * 1024
SIGNATURE_MAX_SIZE = (2000, 1000)
# A face photo from a phone camera; the face check itself decides what it sees.
FACE_PHOTO_MAX_BYTES = 10 * 1024 * 1024
DOCUMENT_ACCEPT = "image/*,application/pdf"
# 出生医学证明 numbers: a letter and nine digits on the current form; older forms have digits only.
BIRTH_CERTIFICATE_PATTERN = re.compile(r"^[A-Z]?[0-9]{9,10}$")


class DateInput(forms.DateInput):
    """The phone's own date picker (an ISO value whatever the language)."""

    input_type = "date"

    def __init__(self, attrs=None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


def _is_small_png(data: bytes) -> bool:
    """The letter takes a PNG of at most 2000×1000 pixels (family.letters checks it again)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return (
                image.format == "PNG" and image.width <= SIGNATURE_MAX_SIZE[0] and image.height <= SIGNATURE_MAX_SIZE[1]
            )
    except (UnidentifiedImageError, OSError, ValueError):
        return False


class RadioChoices(forms.RadioSelect):
    """Radio buttons in a fieldset whose id is the field's, so the error summary can link to the group."""

    def id_for_label(self, id_, index=None):
        return id_ if index is None else super().id_for_label(id_, index)


def relationship_field(**kwargs) -> forms.ChoiceField:
    """What the relative is to the owner (C3 words), as large radio buttons: every choice visible at once."""
    kwargs.setdefault("label", _("What is this person to you?"))
    return forms.ChoiceField(
        choices=Relation.choices,
        widget=RadioChoices,
        error_messages={"required": _("Choose what this person is to you.")},
        **kwargs,
    )


class PrecheckForm(forms.Form):
    """能否共济: the relative's ID number and the relationship; the owner is the logged-in person, the date today."""

    relative_id_number = IdNumberField(label=_("Your relative's ID number"))
    relationship = relationship_field()


class NoticeForm(forms.Form):
    """告知书: read and accept before anything else is asked."""

    accept = forms.BooleanField(
        label=_("I have read the notice and want to add a family member."),
        error_messages={"required": _("Please read the notice and tick the box to go on.")},
    )


class MemberForm(forms.Form):
    """成员信息: who the relative is, and an optional authorization period (R27)."""

    relative_name = forms.CharField(
        label=_("Your relative's full name"),
        max_length=50,
        help_text=_("Exactly as on the ID card or household register."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    relative_id_number = IdNumberField(label=_("Your relative's ID number"))
    relationship = relationship_field()
    authorized_from = forms.DateField(
        label=_("Sharing starts on (optional)"),
        required=False,
        widget=DateInput(),
        help_text=_("Leave empty to start as soon as the binding is active."),
    )
    authorized_until = forms.DateField(
        label=_("Sharing ends on (optional)"),
        required=False,
        widget=DateInput(),
        help_text=_("Leave empty to share until you unbind. We remind you before it ends."),
    )

    def clean_relative_name(self) -> str:
        return " ".join(self.cleaned_data["relative_name"].split())

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("authorized_from"), cleaned.get("authorized_until")
        today = timezone.localdate()
        if start and start < today:
            self.add_error("authorized_from", _("Choose today or a later day."))
        if end and end < today:
            self.add_error("authorized_until", _("Choose today or a later day."))
        elif start and end and end < start:
            self.add_error("authorized_until", _("Choose an end date after the start date."))
        return cleaned


class LetterForm(forms.Form):
    """承诺书: sign by drawing (with JavaScript) or by typing one's own name (always works)."""

    signature = forms.CharField(required=False, widget=forms.HiddenInput)
    signed_name = forms.CharField(
        label=_("Type your full name to sign"),
        max_length=50,
        required=False,
        help_text=_("If you cannot draw your signature above, typing your name signs the letter."),
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    confirm = forms.BooleanField(
        label=_("I confirm that what the letter says is true and I accept responsibility for it."),
        error_messages={"required": _("Tick the box to confirm the letter.")},
    )

    def __init__(self, *args, owner_name: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.owner_name = owner_name

    def clean_signature(self) -> bytes | None:
        """A PNG data URL from the signature pad, decoded; empty when nothing was drawn."""
        value = (self.cleaned_data.get("signature") or "").strip()
        if not value:
            return None
        unreadable = forms.ValidationError(_("The drawn signature could not be read. Clear it and draw it again."))
        if not value.startswith(SIGNATURE_PREFIX) or len(value) > SIGNATURE_MAX_BYTES * 4 // 3 + 64:
            raise unreadable
        try:
            png = base64.b64decode(value[len(SIGNATURE_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise unreadable from None
        if len(png) > SIGNATURE_MAX_BYTES or not _is_small_png(png):
            raise unreadable
        return png

    def clean_signed_name(self) -> str:
        return " ".join((self.cleaned_data.get("signed_name") or "").split())

    def clean(self) -> dict:
        cleaned = super().clean()
        typed = cleaned.get("signed_name")
        if "signature" in cleaned and not cleaned.get("signature") and not typed:
            self.add_error("signed_name", _("Draw your signature above, or type your full name here."))
        elif typed and typed != " ".join(self.owner_name.split()):
            self.add_error("signed_name", _("Type your own full name, exactly as on your ID card."))
        return cleaned


def document_input(label: str, *, required: bool, help_text: str = "") -> forms.FileField:
    """A photo or a PDF; the phone offers camera or files (``capture`` is not forced)."""
    return forms.FileField(
        label=label,
        required=required,
        help_text=help_text,
        widget=forms.FileInput(attrs={"accept": DOCUMENT_ACCEPT}),
        error_messages={"required": _("Choose a photo or PDF of this page.")},
    )


class UploadForm(forms.Form):
    """上传材料 (R20): both household register pages.

    For a spouse on another register, the marriage certificate may replace the relative's page.
    """

    owner_register = document_input(
        _("Your household register page"),
        required=True,
        help_text=_("The page with your name (常住人口登记卡). A clear photo or a PDF."),
    )
    relative_register = document_input(
        _("Your relative's household register page"),
        required=False,
        help_text=_("The page with your relative's name."),
    )
    marriage_certificate = document_input(
        _("Marriage certificate"),
        required=False,
        help_text=_("For a spouse on another household register: the page with both names, instead of the register."),
    )

    def __init__(self, *args, relationship: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.is_spouse = relationship == Relation.SPOUSE
        if not self.is_spouse:
            del self.fields["marriage_certificate"]

    def clean(self) -> dict:
        cleaned = super().clean()
        if not cleaned.get("relative_register") and not cleaned.get("marriage_certificate"):
            if self.is_spouse:
                self.add_error(
                    "relative_register",
                    _("Add your spouse's household register page, or the marriage certificate below."),
                )
            else:
                self.add_error("relative_register", _("Choose a photo or PDF of this page."))
        return cleaned

    def documents(self) -> list[tuple[str, str, object]]:
        """(field name, document kind, uploaded file) for every file chosen, in the order they are stored."""
        kinds = [
            ("owner_register", DocumentKind.OWNER_HOUSEHOLD_REGISTER),
            ("relative_register", DocumentKind.RELATIVE_HOUSEHOLD_REGISTER),
            ("marriage_certificate", DocumentKind.MARRIAGE_CERTIFICATE),
        ]
        return [(name, kind, self.cleaned_data[name]) for name, kind in kinds if self.cleaned_data.get(name)]


class ReuploadForm(forms.Form):
    """申请进度: replace a document the reviewer rejected."""

    kind = forms.ChoiceField(choices=DocumentKind.choices, widget=forms.HiddenInput)
    file = document_input(_("New photo or PDF"), required=True)

    def __init__(self, *args, kinds: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if kinds is not None:
            self.fields["kind"].choices = [(k, label) for k, label in DocumentKind.choices if k in kinds]


class ConsentForm(forms.Form):
    """人脸识别 (R23, R50): the relative's consent and a photo of their face."""

    agree = forms.BooleanField(
        label=_("I agree that my face picture is used to verify me for this family-sharing binding, and then deleted."),
        error_messages={"required": _("Tick the box to agree, or do not go on.")},
    )
    photo = forms.FileField(
        label=_("A photo of your face"),
        help_text=_("On a phone this opens the front camera; you can also choose a photo."),
        widget=forms.FileInput(attrs={"accept": "image/*", "capture": "user"}),
        error_messages={"required": _("Take or choose a photo of your face.")},
    )

    def clean_photo(self):
        photo = self.cleaned_data["photo"]
        if photo.size > FACE_PHOTO_MAX_BYTES:
            raise forms.ValidationError(_("This photo is too large (at most 10 MB). Take a new one."))
        return photo


class NewbornForm(forms.Form):
    """R21: a newborn by birth medical certificate (出生医学证明)."""

    newborn_name = forms.CharField(label=_("The newborn's name"), max_length=50)
    mother_name = forms.CharField(label=_("Mother's full name"), max_length=50)
    mother_id_number = IdNumberField(label=_("Mother's ID number"))
    birth_certificate_number = forms.CharField(
        label=_("Birth medical certificate number"),
        max_length=20,
        help_text=_("Printed at the top right of the certificate, e.g. P440123456."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_mother_id_number(self) -> str:
        value = self.cleaned_data["mother_id_number"]
        # R2: the second-to-last digit is even for a woman.
        if value and int(value[16]) % 2 == 1:
            raise forms.ValidationError(_("This ID number is a man's (R2). Enter the mother's ID number."))
        return value

    def clean_birth_certificate_number(self) -> str:
        value = self.cleaned_data["birth_certificate_number"].strip().replace(" ", "").upper()
        if not BIRTH_CERTIFICATE_PATTERN.match(value):
            raise forms.ValidationError(_("A certificate number is a letter and 9 digits, as printed on it."))
        return value


class NewbornIdForm(forms.Form):
    """R21: the baby's ID number, once the baby is insured."""

    id_number = IdNumberField(label=_("The baby's ID number"))

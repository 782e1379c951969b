"""Forms of the e-card and family card service pages: shape only; cards.services decides meaning.

A password form checks that it is six digits typed the same twice; whether it is too easy to guess
(R41: six equal digits, runs, the birth date) is the service's answer, shown next to the field.
"""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import IdNumberField
from accounts.models import Region
from cards.models import FamilyCardDocumentKind
from family.forms import DOCUMENT_ACCEPT, FACE_PHOTO_MAX_BYTES, RadioChoices, relationship_field

SIX_DIGITS = re.compile(r"^[0-9]{6}$")


class RegionForm(forms.Form):
    """R40 step 1: the pooling region that issues the card (the person's own by default)."""

    region = forms.ModelChoiceField(
        label=_("Issuing region"),
        queryset=Region.objects.order_by("code"),
        empty_label=None,
        help_text=_("Usually the pooling region where you are insured. It is printed on your card."),
        error_messages={"invalid_choice": _("Choose a region from the list.")},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["region"].label_from_instance = lambda region: f"{region.name} ({region.code})"


class AgreementForm(forms.Form):
    """R40 step 2: 电子社保卡用户协议, read and accepted."""

    accept = forms.BooleanField(
        label=_("I have read the user agreement of the electronic social-security card and accept it."),
        error_messages={"required": _("Please read the agreement and tick the box to go on.")},
    )


class FacePhotoForm(forms.Form):
    """人脸识别 (R50): consent at the point of collection and a photo; the words name the purpose."""

    agree = forms.BooleanField(
        error_messages={"required": _("Tick the box to agree, or do not go on.")},
    )
    photo = forms.FileField(
        label=_("A photo of your face"),
        help_text=_("On a phone this opens the front camera; you can also choose a photo."),
        # capture="user": the front camera on a phone; without JavaScript this input alone does the job.
        widget=forms.FileInput(attrs={"accept": "image/*", "capture": "user"}),
        error_messages={"required": _("Take or choose a photo of your face.")},
    )

    def __init__(self, *args, agree_label: str, photo_label: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agree"].label = agree_label
        if photo_label:
            self.fields["photo"].label = photo_label

    def clean_photo(self):
        photo = self.cleaned_data["photo"]
        if photo.size > FACE_PHOTO_MAX_BYTES:
            raise forms.ValidationError(_("This photo is too large (at most 10 MB). Take a new one."))
        return photo


class ChildPhotoForm(FacePhotoForm):
    """R43, R23: a child under 16 is confirmed with a frontal photo the manager takes or chooses."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(
            *args,
            agree_label=_(
                "I am this child's parent or guardian. I agree that this photo is used only to check that it "
                "shows one face, and then deleted."
            ),
            photo_label=_("A photo of the child's face"),
            **kwargs,
        )
        self.fields["photo"].help_text = _(
            "Face to face, in good light, the whole face in the picture, no hat. The phone may open the back camera."
        )
        self.fields["photo"].widget.attrs["capture"] = "environment"
        self.fields["photo"].error_messages["required"] = _("Take or choose a photo of the child's face.")


def pin_input(*, autocomplete: str) -> forms.PasswordInput:
    """A 6-digit PIN field: the phone shows the number pad; password managers know what it is."""
    return forms.PasswordInput(
        attrs={
            "inputmode": "numeric",
            "autocomplete": autocomplete,
            "pattern": "[0-9]{6}",
            "maxlength": 6,
            "minlength": 6,
            "class": "pin",
            "spellcheck": "false",
        }
    )


def pin_field(label: str, *, autocomplete: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        help_text=help_text,
        strip=True,
        widget=pin_input(autocomplete=autocomplete),
        error_messages={"required": _("Enter six digits.")},
    )


def _six_digits(value: str) -> str:
    # Full-width digits typed with a Chinese input method are the same digits.
    value = value.translate(str.maketrans("０１２３４５６７８９", "0123456789")).replace(" ", "")
    if not SIX_DIGITS.match(value):
        raise forms.ValidationError(_("The password is exactly six digits (0–9), no letters or spaces."))
    return value


class NewPasswordForm(forms.Form):
    """R41: a new 6-digit card password, typed twice."""

    new_password = pin_field(
        _("New card password (6 digits)"),
        autocomplete="new-password",
        help_text=_(
            "Not six equal digits (111111), not a run (123456, 654321), not your birth date. "
            "You type it to pay at a pharmacy or clinic."
        ),
    )
    new_password_again = pin_field(_("Type the new password again"), autocomplete="new-password")

    def clean_new_password(self) -> str:
        return _six_digits(self.cleaned_data["new_password"])

    def clean_new_password_again(self) -> str:
        return _six_digits(self.cleaned_data["new_password_again"])

    def clean(self) -> dict:
        cleaned = super().clean()
        first, second = cleaned.get("new_password"), cleaned.get("new_password_again")
        if first and second and first != second:
            self.add_error("new_password_again", _("The two passwords are not the same. Type them again."))
        return cleaned


class PasswordChangeForm(NewPasswordForm):
    """R41: the current password, then the new one twice; a wrong current password counts toward the lock."""

    old_password = pin_field(_("Current card password"), autocomplete="current-password")
    field_order = ["old_password", "new_password", "new_password_again"]

    def clean_old_password(self) -> str:
        return _six_digits(self.cleaned_data["old_password"])


class FamilyCardAddForm(forms.Form):
    """R43: who the relative is, to manage their e-card for them."""

    relative_name = forms.CharField(
        label=_("Your relative's full name"),
        max_length=50,
        help_text=_("Exactly as on the ID card or household register."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    relative_id_number = IdNumberField(label=_("Your relative's ID number"))
    relationship = relationship_field()
    # R20/R21: the page of the household register showing the relative, or a newborn's birth certificate.
    document_kind = forms.ChoiceField(
        label=_("Which document do you upload?"),
        choices=FamilyCardDocumentKind.choices,
        initial=FamilyCardDocumentKind.RELATIVE_HOUSEHOLD_REGISTER,
        # Left unchosen, it is the household register page (the usual case).
        required=False,
        widget=RadioChoices,
    )
    file = forms.FileField(
        label=_("Photo or PDF of the document"),
        help_text=_(
            "The household register page showing your relative; for a newborn without one, the birth medical "
            "certificate. A JPEG, PNG, WebP or HEIC photo, or a PDF."
        ),
        # The content is checked by the service (family.documents): an empty file gets its message there.
        allow_empty_file=True,
        widget=forms.FileInput(attrs={"accept": DOCUMENT_ACCEPT}),
        error_messages={"required": _("Choose a photo or PDF of the document.")},
    )

    def clean_relative_name(self) -> str:
        return " ".join(self.cleaned_data["relative_name"].split())

    def clean_document_kind(self) -> str:
        return self.cleaned_data.get("document_kind") or FamilyCardDocumentKind.RELATIVE_HOUSEHOLD_REGISTER


class FamilyCardDocumentForm(forms.Form):
    """R24: a document uploaded again after a reviewer rejected the first one."""

    document_kind = FamilyCardAddForm.base_fields["document_kind"]
    file = FamilyCardAddForm.base_fields["file"]

    def clean_document_kind(self) -> str:
        return self.cleaned_data.get("document_kind") or FamilyCardDocumentKind.RELATIVE_HOUSEHOLD_REGISTER


LANGUAGE_CHOICES = [("zh-hans", "中文"), ("en", "English")]


class FamilyCardRejectForm(forms.Form):
    """R24: why a family card document is rejected: a canned reason and/or a note; the manager reads both."""

    reason = forms.TypedChoiceField(label=_("Reason"), coerce=int, required=False, empty_value=None)
    note = forms.CharField(
        label=_("Note for the citizen (optional)"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    language = forms.ChoiceField(label=_("Language of the reason"), choices=LANGUAGE_CHOICES, initial="zh-hans")

    def __init__(self, *args, reasons=(), language: str = "zh-hans", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].choices = [("", _("Choose a reason…")), *[(r.pk, r.text_for(language)) for r in reasons]]

    def clean(self) -> dict:
        cleaned = super().clean()
        if not cleaned.get("reason") and not (cleaned.get("note") or "").strip():
            self.add_error("reason", _("Choose a reason or write one."))
        return cleaned


class CardSuspendForm(forms.Form):
    """Why the selected cards are suspended; each holder reads it on their card page."""

    reason = forms.CharField(
        label=_("Reason the holder reads"),
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

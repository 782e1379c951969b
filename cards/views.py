"""Citizen pages of the e-card (电子社保卡, R40–R42) and the family card service (亲情服务, R43).

Views parse a form, call one service or selector of cards/, and render or redirect. A claim's progress
is the card's own state (R40), so a half-finished claim resumes at its step on any device. A page that
shows a QR code issues a fresh token on every GET and is never cached.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe

from accounts.decorators import person_required
from accounts.errors import DomainError
from accounts.face import (
    LocalFaceProvider,
    face_attempts_left,
    face_flow,
    face_message,
    face_provider,
    face_verify,
)
from accounts.models import FaceVerification, InsuredPerson, User, Wallet
from cards.errors import CardLocked, CardPasswordRefused
from cards.forms import (
    AgreementForm,
    ChildPhotoForm,
    FacePhotoForm,
    FamilyCardAddForm,
    FamilyCardDocumentForm,
    NewPasswordForm,
    PasswordChangeForm,
    RegionForm,
)
from cards.models import CardState, ECard, FamilyCardDocumentStatus, FamilyCardLink, FamilyCardLinkState
from cards.qr import qr_svg
from cards.selectors import (
    card_for_person,
    face_age_for,
    family_card_documents_of,
    family_card_links_for,
    family_card_max_for,
    family_card_records_for,
    person_is_child,
)
from cards.services import (
    card_accept_agreement,
    card_change_password,
    card_change_password_by_manager,
    card_claim_for_child,
    card_claim_start,
    card_face_passed,
    card_password_attempts_left,
    card_reset_password,
    card_reset_password_by_manager,
    card_set_password,
    family_card_add,
    family_card_confirm,
    family_card_document_replace,
    family_card_end,
    family_card_wallet_open,
    qr_issue,
)

PURPOSE_CLAIM = "card_claim"
PURPOSE_RESET = "card_password_reset"
PURPOSE_CONSENT = "family_card_consent"
PURPOSE_PHOTO = "family_card_photo"
RESET_SESSION_KEY = "card_reset_verification"

CLAIM_STEPS = (
    ("card_claim_region", gettext_lazy("Region")),
    ("card_claim_agreement", gettext_lazy("Agreement")),
    ("card_claim_face", gettext_lazy("Face verification")),
    ("card_claim_password", gettext_lazy("Password")),
)
RESET_STEPS = (
    ("card_password_reset", gettext_lazy("Face verification")),
    ("card_password_reset", gettext_lazy("New password")),
)


def _qr_ttl() -> int:
    return int(getattr(settings, "CARD_QR_TTL_SECONDS", 60))


def _person(request: HttpRequest) -> InsuredPerson:
    return InsuredPerson.objects.select_related("region").get(pk=request.user.person_id)


def _add_domain_errors(form, error: DomainError, *, default_field: str | None = None) -> None:
    """A service's refusal next to the fields it names (or ``default_field``), and in the summary."""
    placed = False
    for field_error in error.errors:
        name = field_error.field if field_error.field in form.fields else default_field
        form.add_error(name, field_error.message)
        placed = True
    if not placed:
        form.add_error(default_field, error.title)


# --- the steps of a claim (R40) --------------------------------------------------------------------


def _claim_step(card: ECard | None) -> int:
    """The first unfinished step of a claim: 0 region, 1 agreement, 2 face, 3 password; 4 when claimed."""
    if card is None:
        return 0
    if card.state != CardState.PENDING:
        return len(CLAIM_STEPS)
    if card.agreement_accepted_at is None:
        return 1
    if card.face_verified_at is None:
        return 2
    return 3


def _stepper(steps, *, done_until: int, current: int, linkable: bool = True) -> list[dict]:
    """步骤条: each step, done or here or to do; done steps link back when going back is possible."""
    return [
        {
            "number": index + 1,
            "label": label,
            "url": reverse(name) if linkable and index < done_until and index != current else "",
            "state": "current" if index == current else ("done" if index < done_until else "todo"),
        }
        for index, (name, label) in enumerate(steps)
    ]


def _claim_context(card: ECard | None, current: int, **extra) -> dict:
    done = _claim_step(card)
    return {
        # Only the region can be chosen again while the claim is unfinished; the others are done once.
        "steps": [
            {**step, "url": step["url"] if step["number"] == 1 else ""}
            for step in _stepper(CLAIM_STEPS, done_until=done, current=current)
        ],
        "label": _("Steps to claim the e-card"),
        "step_number": current + 1,
        "step_count": len(CLAIM_STEPS),
        "card": card,
        **extra,
    }


def _claim_guard(request: HttpRequest, card: ECard | None, step: int) -> HttpResponse | None:
    """A claimed card shows itself (R40: claiming again shows it); a step opened too early goes back."""
    current = _claim_step(card)
    if current >= len(CLAIM_STEPS):
        messages.info(request, _("You already have an electronic social-security card. Here it is."))
        return redirect("card_home")
    if step > current:
        messages.info(request, _("Please finish this step first."))
        return redirect(CLAIM_STEPS[current][0])
    if step < current and step != 0:
        return redirect(CLAIM_STEPS[current][0])
    return None


@require_safe
@person_required
def card_claim(request: HttpRequest) -> HttpResponse:
    """领取电子社保卡: continue at the first unfinished step, or show the card already claimed (R40)."""
    card = card_for_person(person=_person(request))
    step = _claim_step(card)
    if step >= len(CLAIM_STEPS):
        messages.info(request, _("You already have an electronic social-security card. Here it is."))
        return redirect("card_home")
    return redirect(CLAIM_STEPS[step][0])


@require_http_methods(["GET", "POST"])
@person_required
def card_claim_region(request: HttpRequest) -> HttpResponse:
    """Step 1: the issuing region, the person's own by default."""
    person = _person(request)
    card = card_for_person(person=person)
    if guard := _claim_guard(request, card, 0):
        return guard
    initial_region = card.issuing_region_id if card is not None else person.region_id
    form = RegionForm(request.POST or None, initial={"region": initial_region})
    if request.method == "POST" and form.is_valid():
        try:
            card = card_claim_start(person=person, region_code=form.cleaned_data["region"].code)
        except DomainError as error:
            _add_domain_errors(form, error, default_field="region")
        else:
            if card.state != CardState.PENDING:
                messages.info(request, _("You already have an electronic social-security card. Here it is."))
                return redirect("card_home")
            return redirect(CLAIM_STEPS[_claim_step(card)][0])
    return render(request, "cards/claim_region.html", _claim_context(card, 0, form=form, person=person))


@require_http_methods(["GET", "POST"])
@person_required
def card_claim_agreement(request: HttpRequest) -> HttpResponse:
    """Step 2: 电子社保卡用户协议, read and accepted."""
    card = card_for_person(person=_person(request))
    if guard := _claim_guard(request, card, 1):
        return guard
    form = AgreementForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            card_accept_agreement(card=card)
        except DomainError as error:
            form.add_error(None, error.title)
        else:
            return redirect("card_claim_face")
    return render(request, "cards/claim_agreement.html", _claim_context(card, 1, form=form))


@require_http_methods(["GET", "POST"])
@person_required
def card_claim_face(request: HttpRequest) -> HttpResponse:
    """Step 3: face verification (R40, R50, R52): the picture is checked and not kept."""
    person = _person(request)
    card = card_for_person(person=person)
    if guard := _claim_guard(request, card, 2):
        return guard
    attempt = FaceAttempt(
        request,
        person=person,
        purpose=PURPOSE_CLAIM,
        reference=str(card.pk),
        not_before=card.created_at,
        agree_label=_("I agree that my face picture is used to verify me for claiming the e-card, and then deleted."),
    )
    if attempt.passed:
        try:
            card_face_passed(card=card, verification=attempt.verification)
        except DomainError as error:
            attempt.refused(error.title)  # shown on this page: a redirect could loop back from the vendor
        else:
            messages.success(request, _("Face verification passed."))
            return redirect("card_claim_password")
    return render(request, "cards/claim_face.html", _claim_context(card, 2, **attempt.context()))


@require_http_methods(["GET", "POST"])
@person_required
def card_claim_password(request: HttpRequest) -> HttpResponse:
    """Step 4: the 6-digit card password, twice (R41: a trivial one is refused with the reason)."""
    card = card_for_person(person=_person(request))
    if guard := _claim_guard(request, card, 3):
        return guard
    form = NewPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            card_set_password(card=card, password=form.cleaned_data["new_password"])
        except CardPasswordRefused as error:
            _add_domain_errors(form, error, default_field="new_password")
        else:
            messages.success(request, _("Your electronic social-security card is ready. Show this code to pay."))
            return redirect("card_home")
    return render(request, "cards/claim_password.html", _claim_context(card, 3, form=form))


# --- 人脸识别 one face check on a page (the consent.html pattern of family/) ------------------------


class FaceAttempt:
    """One face check on a page, in the flow ``FACE_PROVIDER`` asks for (accounts.face.face_flow).

    Upload (the local provider): consent and a picture in this page's form; a POST checks it at once.
    Redirect (a vendor): the page links to /face/vendor/start/ and back here; the outcome is the latest
    ``FaceVerification`` of this purpose and reference, fresh and newer than ``not_before``.
    Either way: tries left, and the words of a failure. ``enabled`` False: nothing waits for a face.
    ``local_only``: the local check whatever the setting (a photo of a child that the manager takes).
    """

    def __init__(
        self,
        request: HttpRequest,
        *,
        person: InsuredPerson,
        purpose: str,
        reference: str,
        agree_label: str = "",
        form_class=FacePhotoForm,
        enabled: bool = True,
        not_before: dt.datetime | None = None,
        local_only: bool = False,
    ) -> None:
        self.flow = "upload" if local_only else face_flow()
        self.local_only = local_only
        self.attempts_left = face_attempts_left(person=person, purpose=purpose, reference=reference)
        self.verification: FaceVerification | None = None
        self.failure: str | None = None
        self.vendor_url = ""
        self._form_class = form_class
        self._form_kwargs = {"agree_label": agree_label} if form_class is FacePhotoForm else {}
        self.form = None
        if self.flow == "redirect":
            self._vendor_outcome(request, person, purpose, reference, enabled=enabled, not_before=not_before)
            return
        self.form = form_class(request.POST or None, request.FILES or None, **self._form_kwargs)
        if request.method == "POST" and enabled and self.attempts_left > 0 and self.form.is_valid():
            self.verification = face_verify(
                person=person,
                purpose=purpose,
                reference=reference,
                image_bytes=self.form.cleaned_data["photo"].read(),
                provider=LocalFaceProvider() if local_only else None,
            )
            if not self.passed:
                self.attempts_left = max(0, self.attempts_left - 1)
                self.refused(face_message(self.verification.detail))

    def _vendor_outcome(self, request, person, purpose, reference, *, enabled: bool, not_before) -> None:
        """Back from the vendor: the newest outcome of this check, if it is fresh enough to count."""
        self.vendor_url = (
            reverse("face_vendor_start")
            + "?"
            + urlencode({"purpose": purpose, "reference": reference, "next": request.get_full_path()})
        )
        if not enabled:
            return
        since = timezone.now() - dt.timedelta(minutes=getattr(settings, "CARD_FACE_VALID_MINUTES", 10))
        if not_before is not None:
            since = max(since, not_before)
        latest = (
            FaceVerification.objects.filter(person=person, purpose=purpose, reference=reference, created_at__gte=since)
            .order_by("-created_at", "-pk")
            .first()
        )
        if latest is None:
            return
        if latest.decision == FaceVerification.Decision.PASSED:
            self.verification = latest
        else:
            self.failure = face_message(latest.detail)

    def refused(self, words: str) -> None:
        """The check (or the service after it) said no: the words, and the picture asked again."""
        self.failure = words
        self.verification = None
        if self.flow == "upload":
            # The consent stays given; the picture is asked again.
            self.form = self._form_class(initial={"agree": True}, **self._form_kwargs)

    @property
    def passed(self) -> bool:
        return self.verification is not None and self.verification.decision == FaceVerification.Decision.PASSED

    def context(self) -> dict:
        return {
            "form": self.form,
            "attempts_left": self.attempts_left,
            "failure": self.failure,
            "flow": self.flow,
            "vendor_url": self.vendor_url,
            "provider": LocalFaceProvider()
            if self.local_only
            else (face_provider() if self.flow == "upload" else None),
        }


# --- 电子社保卡 the card and its QR code (R42) -----------------------------------------------------


def _qr_context(token: str, qr_token) -> dict:
    seconds = max(0, int((qr_token.expires_at - timezone.now()).total_seconds()))
    return {
        "qr_svg": qr_svg(token, label=_("Payment QR code")),
        "qr_expires_at": qr_token.expires_at,
        "qr_seconds": seconds,
        "qr_ttl": _qr_ttl(),
    }


def _relatives_with_cards(person: InsuredPerson) -> list[FamilyCardLink]:
    """亲情服务 to switch to: active links I manage whose relative has an active card."""
    return [
        link
        for link in family_card_links_for(person=person)
        if link.manager_id == person.pk
        and link.state == FamilyCardLinkState.ACTIVE
        and link.relative_card_state == CardState.ACTIVE
    ]


@never_cache
@require_GET
@person_required
def card_home(request: HttpRequest) -> HttpResponse:
    """电子社保卡: the card, a fresh dynamic QR code with its countdown, relatives' cards to switch to."""
    person = _person(request)
    card = card_for_person(person=person)
    context: dict = {"person": person, "card": card, "relatives": _relatives_with_cards(person)}
    if card is not None and card.state == CardState.ACTIVE:
        context.update(_qr_context(*qr_issue(card=card, viewer=request.user)))
        if card.locked_until and card.locked_until > timezone.now():
            context["locked_until"] = card.locked_until
    elif card is not None and card.state == CardState.PENDING:
        step = _claim_step(card)
        context.update(
            claim_step_number=step + 1, claim_step_count=len(CLAIM_STEPS), claim_step_label=CLAIM_STEPS[step][1]
        )
    return render(request, "cards/home.html", context)


@never_cache
@require_GET
@person_required
def card_qr_fragment(request: HttpRequest) -> HttpResponse:
    """A fresh code of my own card as an HTML fragment, for static/js/card_qr.js (R42)."""
    card = card_for_person(person=_person(request))
    if card is None or card.state != CardState.ACTIVE:
        raise Http404
    return render(request, "cards/_qr.html", _qr_context(*qr_issue(card=card, viewer=request.user)))


def _relative_card(link: FamilyCardLink) -> ECard:
    card = card_for_person(person=link.relative)
    if card is None or card.state != CardState.ACTIVE:
        raise Http404
    return card


@never_cache
@require_GET
@person_required
def card_relative_qr(request: HttpRequest, link_id: int) -> HttpResponse:
    """亲情服务: the code of a relative I manage (R42, R43); the token names the relative, not me."""
    link = family_card_link_for_manager(request.user, link_id, states=[FamilyCardLinkState.ACTIVE])
    person = _person(request)
    card = card_for_person(person=link.relative)
    context: dict = {
        "link": link,
        "card": card,
        "relatives": _relatives_with_cards(person),
        "link_is_child": _is_child(link),
    }
    if card is not None and card.state == CardState.ACTIVE:
        context.update(_qr_context(*qr_issue(card=card, viewer=request.user)))
    return render(request, "cards/relative_qr.html", context)


@never_cache
@require_GET
@person_required
def card_relative_qr_fragment(request: HttpRequest, link_id: int) -> HttpResponse:
    """A fresh code of a managed relative's card, as an HTML fragment."""
    link = family_card_link_for_manager(request.user, link_id, states=[FamilyCardLinkState.ACTIVE])
    card = _relative_card(link)
    return render(request, "cards/_qr.html", _qr_context(*qr_issue(card=card, viewer=request.user)))


# --- 密码 change and reset (R41) ------------------------------------------------------------------


def _active_card(request: HttpRequest) -> ECard | None:
    card = card_for_person(person=_person(request))
    return card if card is not None and card.state == CardState.ACTIVE else None


def _no_card(request: HttpRequest) -> HttpResponse:
    messages.info(request, _("Claim your electronic social-security card first."))
    return redirect("card_claim")


@require_http_methods(["GET", "POST"])
@person_required
def card_password_change(request: HttpRequest) -> HttpResponse:
    """修改密码: the current password and the new one twice; a wrong current one counts toward the lock (R41)."""
    card = _active_card(request)
    if card is None:
        return _no_card(request)
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            card_change_password(
                card=card,
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password"],
            )
        except CardLocked:
            pass  # the page says until when, and offers the reset
        except CardPasswordRefused as error:
            # A trivial new password (why, next to it) or a wrong current one (tries left, next to it).
            _add_domain_errors(form, error, default_field="new_password")
        else:
            messages.success(request, _("Your card password is changed. Use the new one from now on."))
            return redirect("card_home")
        card.refresh_from_db()
    locked = card.locked_until is not None and card.locked_until > timezone.now()
    return render(
        request,
        "cards/password_change.html",
        {
            "form": form,
            "card": card,
            "locked_until": card.locked_until if locked else None,
            # Shown when coming back after wrong tries; after a wrong try the field itself says it.
            "tries_left": card_password_attempts_left(card=card)
            if card.failed_attempts and not locked and not form.errors
            else None,
        },
    )


@require_http_methods(["GET", "POST"])
@person_required
def card_password_reset(request: HttpRequest) -> HttpResponse:
    """忘记密码: face verification first (it stands in for the old password), then the new one twice."""
    person = _person(request)
    card = _active_card(request)
    if card is None:
        return _no_card(request)
    verification = _reset_verification(request, person)
    if verification is None:
        attempt = FaceAttempt(
            request,
            person=person,
            purpose=PURPOSE_RESET,
            reference=str(card.pk),
            # A check counts once: one made before the current password was set is used up.
            not_before=card.password_set_at,
            agree_label=_(
                "I agree that my face picture is used to verify me for resetting my card password, and then deleted."
            ),
        )
        if attempt.passed:
            request.session[RESET_SESSION_KEY] = attempt.verification.pk
            messages.success(request, _("Face verification passed. Now choose a new password."))
            return redirect("card_password_reset")
        return render(request, "cards/password_reset_face.html", _reset_context(0, card=card, **attempt.context()))
    form = NewPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            card_reset_password(card=card, verification=verification, new_password=form.cleaned_data["new_password"])
        except CardPasswordRefused as error:
            _add_domain_errors(form, error, default_field="new_password")
        except DomainError as error:
            request.session.pop(RESET_SESSION_KEY, None)
            messages.error(request, error.title)
            return redirect("card_password_reset")
        else:
            request.session.pop(RESET_SESSION_KEY, None)
            messages.success(request, _("Your card password is set again, and the lock is lifted."))
            return redirect("card_home")
    return render(request, "cards/password_reset_new.html", _reset_context(1, card=card, form=form))


def _reset_verification(request: HttpRequest, person: InsuredPerson) -> FaceVerification | None:
    """The passed reset face check of this person kept in the session, while it is fresh."""
    pk = request.session.get(RESET_SESSION_KEY)
    if not pk:
        return None
    verification = FaceVerification.objects.filter(
        pk=pk,
        person=person,
        purpose=PURPOSE_RESET,
        decision=FaceVerification.Decision.PASSED,
        # As long as the service accepts it (CARD_FACE_VALID_MINUTES); it says so if it no longer does.
        created_at__gte=timezone.now() - dt.timedelta(minutes=getattr(settings, "CARD_FACE_VALID_MINUTES", 10)),
    ).first()
    if verification is None:
        request.session.pop(RESET_SESSION_KEY, None)
    return verification


def _reset_context(current: int, **extra) -> dict:
    return {
        "steps": _stepper(RESET_STEPS, done_until=current, current=current, linkable=False),
        "label": _("Steps to reset the card password"),
        "step_number": current + 1,
        "step_count": len(RESET_STEPS),
        **extra,
    }


# --- 亲情服务 family card service (R43) -------------------------------------------------------------


def _is_child(link: FamilyCardLink) -> bool:
    """R23 age branch for R43, as the service decides it: under the face age, a photo of the child."""
    return person_is_child(person=link.relative, region_code=link.manager.region_id, on_date=timezone.localdate())


def family_card_link_for_manager(user: User, link_id: int, *, states=None) -> FamilyCardLink:
    """The link ``link_id`` if ``user`` manages it (and it is in ``states``); everyone else gets a 404."""
    links = FamilyCardLink.objects.select_related("relative", "relative__region", "manager").filter(
        pk=link_id, manager_id=user.person_id
    )
    if states is not None:
        links = links.filter(state__in=states)
    link = links.first()
    if link is None:
        raise Http404
    return link


def family_card_link_for_party(user: User, link_id: int) -> FamilyCardLink:
    """The link if ``user`` is its manager or its relative; everyone else gets a 404."""
    link = (
        FamilyCardLink.objects.select_related("relative", "manager")
        .filter(Q(manager_id=user.person_id) | Q(relative_id=user.person_id), pk=link_id)
        .first()
    )
    if link is None or not user.person_id:
        raise Http404
    return link


@require_GET
@person_required
def family_card_home(request: HttpRequest) -> HttpResponse:
    """亲情服务: what it does and does NOT do (R43), the relatives I manage, requests waiting for me."""
    person = _person(request)
    links = family_card_links_for(person=person)
    managed = [link for link in links if link.manager_id == person.pk and link.state != FamilyCardLinkState.ENDED]
    of_me = [link for link in links if link.relative_id == person.pk]
    # R43: the limit of my region's policy in force today.
    max_relatives = family_card_max_for(region_code=person.region_id, on_date=timezone.localdate())
    return render(
        request,
        "cards/family_home.html",
        {
            "person": person,
            "managed": managed,
            "ended": [
                link for link in links if link.manager_id == person.pk and link.state == FamilyCardLinkState.ENDED
            ],
            # Requests to manage my card wait for my own face (R23: I am 16 or over).
            "asked": [link for link in of_me if link.state == FamilyCardLinkState.PENDING],
            "managing_me": [link for link in of_me if link.state == FamilyCardLinkState.ACTIVE],
            "max_relatives": max_relatives,
            "can_add": len(managed) < max_relatives,
        },
    )


@require_http_methods(["GET", "POST"])
@person_required
def family_card_add_view(request: HttpRequest) -> HttpResponse:
    """Add a relative (R43): name, ID number, relationship; then a photo of a child, or the relative's own face."""
    person = _person(request)
    form = FamilyCardAddForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            link = family_card_add(
                manager=person,
                relative_id_number=data["relative_id_number"],
                relative_name=data["relative_name"],
                relationship=data["relationship"],
                user=request.user,
                document=data["file"],
                document_kind=data["document_kind"],
            )
        except DomainError as error:
            _add_domain_errors(form, error)
        else:
            if _is_child(link):
                messages.success(request, _("Added. Now take a photo of the child's face to confirm."))
                return redirect("family_card_photo", link_id=link.pk)
            messages.success(
                request,
                _(
                    "Added. Your relative now confirms with their own face verification: they log in as "
                    "themselves and open the family card service."
                ),
            )
            return redirect("family_card_detail", link_id=link.pk)
    face_age = face_age_for(region_code=person.region_id, on_date=timezone.localdate())
    return render(request, "cards/family_add.html", {"form": form, "face_age": face_age})


def _family_card_detail_context(link: FamilyCardLink, *, upload_form: FamilyCardDocumentForm | None = None) -> dict:
    documents = family_card_documents_of(link=link)
    live = documents[0] if documents else None
    is_child = _is_child(link)
    card = card_for_person(person=link.relative)
    pending = link.state == FamilyCardLinkState.PENDING
    return {
        "link": link,
        "card": card,
        "is_child": is_child,
        "documents": documents,
        "document": live,
        # R24: what the request still waits for, in words (review, the face or photo step).
        "awaits_review": pending and live is not None and live.status == FamilyCardDocumentStatus.PENDING,
        "awaits_upload": pending and (live is None or live.status == FamilyCardDocumentStatus.REJECTED),
        "awaits_face": pending and not link.face_step_done,
        "upload_form": upload_form
        or (FamilyCardDocumentForm() if pending and (live is None or live.status == "rejected") else None),
        # R43: "see their records", read-only, only once the relative's card is confirmed as managed.
        "records": family_card_records_for(relative=link.relative)
        if link.state == FamilyCardLinkState.ACTIVE
        else None,
        # R37: whether the manager may open the relative's wallet for them (not opened yet).
        "may_open_wallet": link.state == FamilyCardLinkState.ACTIVE
        and not Wallet.objects.filter(person_id=link.relative_id).exists(),
        "manages_child_password": link.state == FamilyCardLinkState.ACTIVE
        and is_child
        and card is not None
        and card.state == CardState.ACTIVE,
    }


@require_POST
@person_required
def family_card_wallet_open_view(request: HttpRequest, link_id: int) -> HttpResponse:
    """R37, R43: open the relative's medical-insurance wallet on their behalf (moves no money)."""
    link = family_card_link_for_manager(request.user, link_id, states=[FamilyCardLinkState.ACTIVE])
    family_card_wallet_open(link_id=link.pk, user=request.user)
    messages.success(
        request,
        _("The relative's medical-insurance wallet is open: family members in another province can send to it."),
    )
    return redirect("family_card_detail", link_id=link.pk)


@require_GET
@person_required
def family_card_detail(request: HttpRequest, link_id: int) -> HttpResponse:
    """A relative I manage: the link's state, its document and review, their card, their records (R43)."""
    link = family_card_link_for_manager(request.user, link_id)
    return render(request, "cards/family_detail.html", _family_card_detail_context(link))


@require_POST
@person_required
def family_card_document_upload(request: HttpRequest, link_id: int) -> HttpResponse:
    """R24: upload the document again after a reviewer rejected it; it waits for review like the first."""
    link = family_card_link_for_manager(request.user, link_id)
    form = FamilyCardDocumentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            family_card_document_replace(
                link_id=link.pk,
                user=request.user,
                document=form.cleaned_data["file"],
                document_kind=form.cleaned_data["document_kind"],
            )
        except DomainError as error:
            _add_domain_errors(form, error, default_field="file")
        else:
            messages.success(request, _("Uploaded. A reviewer looks at it, usually within two working days."))
            return redirect("family_card_detail", link_id=link.pk)
    return render(request, "cards/family_detail.html", _family_card_detail_context(link, upload_form=form), status=400)


def _face_step_confirm(
    request: HttpRequest, attempt: FaceAttempt, link: FamilyCardLink, *, active: str, waiting: str
) -> bool:
    """R43: a passed face or photo attempt confirms the link; the message says whether it is active now or
    waits for the document review. False when nothing passed, or the service refused (shown on the page)."""
    if not attempt.passed:
        return False
    try:
        link = family_card_confirm(link_id=link.pk, verification=attempt.verification)
    except DomainError as error:
        attempt.refused(error.title)
        return False
    messages.success(request, active if link.state == FamilyCardLinkState.ACTIVE else waiting)
    return True


@require_http_methods(["GET", "POST"])
@person_required
def family_card_consent(request: HttpRequest, link_id: int) -> HttpResponse:
    """R43, R23: a relative of 16 or over confirms with their own face, logged in as themselves."""
    person = _person(request)
    link = FamilyCardLink.objects.select_related("manager", "relative").filter(pk=link_id, relative=person).first()
    if link is None:
        raise Http404  # only the relative confirms: the manager cannot do it for them
    # Waiting for my face: pending, 16 or over, and not given yet (the document review may still follow).
    waiting = link.state == FamilyCardLinkState.PENDING and not _is_child(link) and not link.face_step_done
    attempt = FaceAttempt(
        request,
        person=person,
        purpose=PURPOSE_CONSENT,
        reference=str(link.pk),
        agree_label=_(
            "I agree that my face picture is used to confirm that this relative may manage my e-card, and then deleted."
        ),
        enabled=waiting,
        not_before=link.created_at,
    )
    confirmed = _face_step_confirm(
        request,
        attempt,
        link,
        active=_("Confirmed. Your relative can now show your code for you."),
        waiting=_("Thank you, your face verification is done. It starts once a reviewer approves the document."),
    )
    if confirmed:
        return redirect("family_card_consent", link_id=link.pk)
    return render(request, "cards/family_consent.html", {"link": link, "waiting": waiting, **attempt.context()})


@require_http_methods(["GET", "POST"])
@person_required
def family_card_photo(request: HttpRequest, link_id: int) -> HttpResponse:
    """R43, R23: for a child under 16 the manager sends a frontal photo of the child."""
    link = family_card_link_for_manager(request.user, link_id)
    if not _is_child(link):
        raise Http404  # 16 or over: only their own face confirms
    if link.state != FamilyCardLinkState.PENDING or link.face_step_done:
        return redirect("family_card_detail", link_id=link.pk)
    attempt = FaceAttempt(
        request,
        person=link.relative,
        purpose=PURPOSE_PHOTO,
        reference=str(link.pk),
        form_class=ChildPhotoForm,
        # R43: the manager's photo of the child is checked here, by the local provider, whatever FACE_PROVIDER.
        local_only=True,
    )
    confirmed = _face_step_confirm(
        request,
        attempt,
        link,
        active=_("Confirmed. You can now claim the child's card and show their code."),
        waiting=_("The photo is accepted. You can manage the card once a reviewer approves the document."),
    )
    if confirmed:
        return redirect("family_card_detail", link_id=link.pk)
    face_age = face_age_for(region_code=link.manager.region_id, on_date=timezone.localdate())
    return render(request, "cards/family_photo.html", {"link": link, "face_age": face_age, **attempt.context()})


@require_http_methods(["GET", "POST"])
@person_required
def family_card_claim_child(request: HttpRequest, link_id: int) -> HttpResponse:
    """R43: claim a child's e-card on the child's behalf, in the claim's four steps at one address.

    The manager chooses the region and accepts the agreement, verifies their own face (it stands in
    for the child's) and sets the child's card password; the page shows whichever step is next.
    """
    link = family_card_link_for_manager(request.user, link_id, states=[FamilyCardLinkState.ACTIVE])
    if not _is_child(link):
        raise Http404  # 16 or over: they claim their own card
    card = card_for_person(person=link.relative)
    if card is not None and card.state == CardState.PENDING and card.guardian_id != request.user.person_id:
        card = None  # someone else's unfinished claim: starting here takes it over (the service resets the face)
    step = _claim_step(card)
    if step >= len(CLAIM_STEPS):
        messages.info(request, _("This child already has an electronic social-security card."))
        return redirect("card_relative_qr", link_id=link.pk)
    context = {**_claim_context(card, step), "link": link}
    context["steps"] = [{**item, "url": ""} for item in context["steps"]]
    if step <= 1:
        form = RegionForm(
            request.POST or None, initial={"region": card.issuing_region_id if card else link.relative.region_id}
        )
        agreement = AgreementForm(request.POST or None)
        if request.method == "POST" and form.is_valid() and agreement.is_valid():
            try:
                card = card_claim_for_child(
                    manager_user=request.user, child=link.relative, region_code=form.cleaned_data["region"].code
                )
                card_accept_agreement(card=card)
            except DomainError as error:
                _add_domain_errors(form, error, default_field="region")
            else:
                return redirect("family_card_claim_child", link_id=link.pk)
        context.update(form=form, agreement=agreement, stage="region")
    elif step == 2:
        attempt = FaceAttempt(
            request,
            person=_person(request),
            purpose=PURPOSE_CLAIM,
            reference=str(card.pk),
            not_before=card.created_at,
            agree_label=_(
                "I agree that my face picture is used to verify me, as the child's guardian, for claiming the "
                "child's e-card, and then deleted."
            ),
        )
        if attempt.passed:
            try:
                card_face_passed(card=card, verification=attempt.verification)
            except DomainError as error:
                attempt.refused(error.title)
            else:
                messages.success(request, _("Face verification passed."))
                return redirect("family_card_claim_child", link_id=link.pk)
        context.update(attempt.context(), stage="face")
    else:
        form = NewPasswordForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                card_set_password(card=card, password=form.cleaned_data["new_password"])
            except CardPasswordRefused as error:
                _add_domain_errors(form, error, default_field="new_password")
            except DomainError as error:
                form.add_error(None, error.title)
            else:
                messages.success(request, _("The child's electronic social-security card is ready. Here is its code."))
                return redirect("card_relative_qr", link_id=link.pk)
        context.update(form=form, stage="password")
    return render(request, "cards/family_claim_child.html", context)


@require_http_methods(["GET", "POST"])
@person_required
def family_card_end_view(request: HttpRequest, link_id: int) -> HttpResponse:
    """End a link (R43): the manager stops managing, or the relative withdraws; confirm on GET, act on POST."""
    link = family_card_link_for_party(request.user, link_id)
    is_manager = link.manager_id == request.user.person_id
    if link.state == FamilyCardLinkState.ENDED:
        messages.info(request, _("This has ended already."))
        return redirect("family_card_home")
    if request.method == "POST":
        try:
            family_card_end(link_id=link.pk, user=request.user)
        except DomainError as error:
            messages.error(request, error.title)
            return redirect("family_card_home")
        if is_manager:
            messages.success(request, _("Done. You no longer manage this relative's card."))
        else:
            messages.success(request, _("Done. This relative can no longer show your code or see your card."))
        return redirect("family_card_home")
    return render(request, "cards/family_end.html", {"link": link, "is_manager": is_manager})


# --- A child's card password, by the manager (R43, R41) ------------------------------------------

CHILD_RESET_SESSION_KEY = "family_card_child_reset"


def _managed_child_card(request: HttpRequest, link_id: int) -> tuple[FamilyCardLink, ECard]:
    """The active link and the child's active card; a stranger gets 404, a relative of 16 or over too."""
    link = family_card_link_for_manager(request.user, link_id, states=[FamilyCardLinkState.ACTIVE])
    if not _is_child(link):
        raise Http404  # 16 or over: they look after their own password
    card = _relative_card(link)
    return link, card


@require_http_methods(["GET", "POST"])
@person_required
def family_card_child_password_change(request: HttpRequest, link_id: int) -> HttpResponse:
    """修改密码 of a child's card: the current password and the new one twice (R41 rules and lock)."""
    link, card = _managed_child_card(request, link_id)
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            card_change_password_by_manager(
                link_id=link.pk,
                manager_user=request.user,
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password"],
            )
        except CardLocked:
            pass  # the page says until when, and offers the reset
        except CardPasswordRefused as error:
            _add_domain_errors(form, error, default_field="new_password")
        except DomainError as error:
            messages.error(request, error.title)
            return redirect("family_card_detail", link_id=link.pk)
        else:
            messages.success(request, _("The child's card password is changed. Use the new one from now on."))
            return redirect("family_card_detail", link_id=link.pk)
        card.refresh_from_db()
    locked = card.locked_until is not None and card.locked_until > timezone.now()
    return render(
        request,
        "cards/family_password_change.html",
        {
            "form": form,
            "link": link,
            "card": card,
            "locked_until": card.locked_until if locked else None,
            "tries_left": card_password_attempts_left(card=card)
            if card.failed_attempts and not locked and not form.errors
            else None,
        },
    )


def _child_reset_verification(request: HttpRequest, link: FamilyCardLink) -> FaceVerification | None:
    """The manager's passed reset face check for this child's card, kept in the session while it is fresh."""
    kept = request.session.get(CHILD_RESET_SESSION_KEY) or {}
    if kept.get("link") != link.pk:
        return None
    verification = FaceVerification.objects.filter(
        pk=kept.get("verification"),
        person_id=request.user.person_id,
        purpose=PURPOSE_RESET,
        decision=FaceVerification.Decision.PASSED,
        created_at__gte=timezone.now() - dt.timedelta(minutes=getattr(settings, "CARD_FACE_VALID_MINUTES", 10)),
    ).first()
    if verification is None:
        request.session.pop(CHILD_RESET_SESSION_KEY, None)
    return verification


@require_http_methods(["GET", "POST"])
@person_required
def family_card_child_password_reset(request: HttpRequest, link_id: int) -> HttpResponse:
    """忘记密码 of a child's card: the MANAGER's own face first (it stands in for the old one), then the new one."""
    link, card = _managed_child_card(request, link_id)
    verification = _child_reset_verification(request, link)
    extra = {"card": card, "link": link}
    if verification is None:
        attempt = FaceAttempt(
            request,
            person=_person(request),
            purpose=PURPOSE_RESET,
            reference=str(card.pk),
            # A check counts once: one made before the current password was set is used up.
            not_before=card.password_set_at,
            agree_label=_(
                "I agree that my face picture is used to verify me, as the child's guardian, for resetting the "
                "child's card password, and then deleted."
            ),
        )
        if attempt.passed:
            request.session[CHILD_RESET_SESSION_KEY] = {"link": link.pk, "verification": attempt.verification.pk}
            messages.success(request, _("Face verification passed. Now choose a new password."))
            return redirect("family_card_child_password_reset", link_id=link.pk)
        return render(request, "cards/family_password_reset_face.html", _reset_context(0, **extra, **attempt.context()))
    form = NewPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            card_reset_password_by_manager(
                link_id=link.pk,
                manager_user=request.user,
                verification=verification,
                new_password=form.cleaned_data["new_password"],
            )
        except CardPasswordRefused as error:
            _add_domain_errors(form, error, default_field="new_password")
        except DomainError as error:
            request.session.pop(CHILD_RESET_SESSION_KEY, None)
            messages.error(request, error.title)
            return redirect("family_card_child_password_reset", link_id=link.pk)
        else:
            request.session.pop(CHILD_RESET_SESSION_KEY, None)
            messages.success(request, _("The child's card password is set again, and the lock is lifted."))
            return redirect("family_card_detail", link_id=link.pk)
    return render(request, "cards/family_password_reset_new.html", _reset_context(1, form=form, **extra))

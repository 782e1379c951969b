"""人脸识别 at the outside vendor: consent and start, the vendor's signed callback, the person's return."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.decorators import person_required
from accounts.face import face_flow, face_message
from accounts.face_vendor import (
    MAX_CALLBACK_BYTES,
    SIGNATURE_HEADER,
    FaceVendorRefused,
    FaceVendorUnavailable,
    face_vendor_callback,
    face_vendor_local_path,
    face_vendor_session_expired,
    face_vendor_session_for_person,
    face_vendor_start,
)
from accounts.models import FaceVendorSession

# Words for the purposes that pages send people here for; any other purpose reads as the generic one.
PURPOSE_LABELS = {
    "binding_consent": gettext_lazy("confirming a family-sharing binding (家庭共济)"),
    "card_claim": gettext_lazy("claiming your electronic social-security card (电子社保卡)"),
    "card_password_reset": gettext_lazy("resetting your e-card password"),
    "family_card_consent": gettext_lazy("the family card service (亲情服务)"),
    "family_card_photo": gettext_lazy("the family card service (亲情服务)"),
}


class FaceVendorStartForm(forms.Form):
    """Consent (R50) and where the check belongs; shape only, ``face_vendor_start`` checks the meaning."""

    purpose = forms.CharField(widget=forms.HiddenInput, max_length=40, validators=[RegexValidator(r"^[a-z0-9_]+$")])
    reference = forms.CharField(
        widget=forms.HiddenInput, max_length=64, required=False, validators=[RegexValidator(r"^[A-Za-z0-9_.:-]*$")]
    )
    next = forms.CharField(widget=forms.HiddenInput, max_length=300, required=False)
    agree = forms.BooleanField(
        label=gettext_lazy(
            "I agree that the verification service takes a picture of my face for this check, "
            "and that the portal keeps only the result."
        ),
        error_messages={"required": gettext_lazy("Please read and accept how your face picture is used.")},
    )

    def clean_next(self) -> str:
        # Only a path on this site; anything else goes home (no open redirect after the check).
        return face_vendor_local_path(self.cleaned_data.get("next") or "") or "/"


def _purpose_label(purpose: str) -> str:
    return str(PURPOSE_LABELS.get(purpose, gettext_lazy("the request you started")))


def _link_is_valid(data: dict[str, str]) -> bool:
    """Whether purpose and reference (from the page that sent the person here) have a valid shape."""
    probe = FaceVendorStartForm({**data, "agree": "on"})
    probe.is_valid()
    return not ({"purpose", "reference"} & set(probe.errors))


def _start_page(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(request, "accounts/face_vendor_start.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
@person_required
def vendor_start(request: HttpRequest) -> HttpResponse:
    """R50: the consent text, then (POST) a session at the vendor and off to its capture page."""
    if face_flow() != "redirect":
        raise Http404  # the upload flow is in use: pages take the picture themselves
    data = request.POST.dict() if request.method == "POST" else request.GET.dict()
    if not _link_is_valid(data):
        return _start_page(request, {"invalid_link": True}, status=400)
    if request.method == "POST":
        form = FaceVendorStartForm(request.POST)
    else:
        form = FaceVendorStartForm(initial={key: data.get(key, "") for key in ("purpose", "reference", "next")})
    context: dict[str, Any] = {
        "form": form,
        "purpose_label": _purpose_label(data.get("purpose", "")),
        "sends_identity": getattr(settings, "FACE_VENDOR_SEND_IDENTITY", False),
    }
    if request.method == "POST" and form.is_valid():
        try:
            _session, redirect_url = face_vendor_start(
                person=request.user.person,
                purpose=form.cleaned_data["purpose"],
                reference=form.cleaned_data["reference"],
                return_url=form.cleaned_data["next"],
                portal_url=request.build_absolute_uri("/"),
            )
        except FaceVendorUnavailable as error:
            return _start_page(request, {**context, "refusal": error}, status=503)
        except FaceVendorRefused as error:
            return _start_page(request, {**context, "refusal": error}, status=error.status)
        if redirect_url:
            return HttpResponseRedirect(redirect_url)
        # The vendor works only through its app SDK: a web page cannot go on from here.
        error = FaceVendorUnavailable(
            title=_("The face verification service can only be used in the mobile app."),
            detail=_("Please open the medical-insurance app, or confirm in person at a service hall."),
            status=503,
        )
        return _start_page(request, {**context, "refusal": error}, status=503)
    return _start_page(request, context)


def _problem(error: FaceVendorRefused) -> JsonResponse:
    """RFC 9457 problem+json, the shape of every error of the portal's API."""
    response = JsonResponse(
        {
            "type": f"/api/problems/{error.code}/",
            "title": error.title,
            "status": error.status,
            "detail": error.detail or error.title,
        },
        status=error.status,
        content_type="application/problem+json",
    )
    if error.status == 401:
        response["WWW-Authenticate"] = f'Signature header="{SIGNATURE_HEADER}", algorithm="hmac-sha256"'
    return response


@csrf_exempt  # the vendor's server posts here; the HMAC signature stands in for the CSRF token and the login
@require_POST
def vendor_callback(request: HttpRequest) -> HttpResponse:
    """The vendor's signed outcome: 200 once recorded; 400/401/404/409 problem+json when refused."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_CALLBACK_BYTES:
        return _problem(FaceVendorRefused(title=_("The callback is too large."), status=413, code="body_too_large"))
    try:
        verification = face_vendor_callback(body=request.body, headers=request.headers)
    except FaceVendorRefused as error:
        return _problem(error)
    body: dict[str, Any] = {"status": "recorded", "decision": verification.decision}
    return JsonResponse(body, status=200)


@require_safe
@never_cache
@person_required
def vendor_return(request: HttpRequest, session_id) -> HttpResponse:
    """The person back from the vendor: the recorded outcome (or that it has not arrived yet), then ``next``."""
    session = face_vendor_session_for_person(person_id=request.user.person_id, session_id=session_id)
    if session is None:
        raise Http404
    waiting = session.state == FaceVendorSession.State.STARTED
    timed_out = session.state == FaceVendorSession.State.EXPIRED or (
        waiting and face_vendor_session_expired(session, now=timezone.now())
    )
    retry_url = (
        reverse("face_vendor_start")
        + "?"
        + urlencode({"purpose": session.purpose, "reference": session.reference, "next": session.return_url})
    )
    return render(
        request,
        "accounts/face_vendor_return.html",
        {
            "session": session,
            "waiting": waiting and not timed_out,
            "timed_out": timed_out,
            "message": face_message(session.verification.detail) if session.verification else "",
            "purpose_label": _purpose_label(session.purpose),
            "retry_url": retry_url,
        },
    )

"""Citizen pages of family sharing: the family page, the pre-check, adding a member, status, consent, ending.

Views parse a form, call a selector or a service, and render or redirect. The add-a-member draft
lives in the session until it is submitted, so a citizen can leave and come back (ui.md).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.decorators import person_required, role_required
from accounts.face import face_attempts_left, face_flow, face_message, face_provider, face_verify
from accounts.masking import mask_name
from accounts.models import FaceVerification, InsuredPerson, User
from accounts.selectors import face_verification_latest
from family.documents import DocumentRefused, document_attach, document_open_for
from family.eligibility import Decision, Reason, relation_label
from family.forms import (
    ConsentForm,
    LetterForm,
    MemberForm,
    NewbornForm,
    NewbornIdForm,
    NoticeForm,
    PrecheckForm,
    ReuploadForm,
    UploadForm,
)
from family.letters import SignatureRefused, commitment_letter_pdf, commitment_letter_text, letter_store
from family.models import OPEN_STATES, Binding, BindingMethod, BindingState, DocumentKind, DocumentStatus
from family.selectors import (
    binding_confirmer_is,
    binding_documents_current,
    binding_events,
    binding_get_for_user,
    binding_letter_document,
    binding_open_for_pair,
    bindings_for_person,
    eligibility_check,
    insured_person_matches,
    policy_in_force,
)
from family.services import (
    BindingRefused,
    DuplicateApplication,
    InvalidTransition,
    binding_cancel,
    binding_end,
    binding_face_verified,
    binding_newborn_add_id,
    binding_submit,
    binding_submit_newborn,
)

FACE_PURPOSE = "binding_consent"
# Pre-checks (and member steps) a citizen may run in a day; FAMILY_CHECKS_PER_DAY overrides it.
PRECHECKS_PER_DAY = 30
DRAFT_KEY = "family_add_draft"
ADD_STEPS = (
    ("binding_add_notice", gettext_lazy("Notice")),
    ("binding_add_member", gettext_lazy("Member details")),
    ("binding_add_letter", gettext_lazy("Commitment letter")),
    ("binding_add_upload", gettext_lazy("Upload documents")),
)
# Who can still re-upload a rejected document: only while the application is being decided.
REUPLOAD_STATES = (BindingState.SUBMITTED, BindingState.UNDER_REVIEW)


# --- 家庭共济 family page ---------------------------------------------------------------------


@require_safe
@person_required
def family_home(request: HttpRequest) -> HttpResponse:
    """家庭共济: networks I own, networks I am in, what I am asked to join, what ended, and where to start."""
    # Only what the page reads of the person: may they own a network (R10), are they a newborn's mother (R21).
    person = InsuredPerson.objects.only("pk", "id_number", "insurance_type").get(pk=request.user.person_id)
    overview = bindings_for_person(person_id=person.pk, id_number=person.id_number)
    return render(
        request,
        "family/home.html",
        # R10: only an employee has a personal account to share; others see the networks they are in first.
        {"overview": overview, "person": person, "can_own": person.is_employee, "draft": _draft(request)},
    )


# --- 能否共济 pre-check ------------------------------------------------------------------------


@dataclass
class Check:
    """One question of the pre-check, answered in plain words."""

    rule: str
    question: str
    status: str  # "ok", "refused", "doubt", "unknown" or "info"
    lines: list[str] = field(default_factory=list)

    @property
    def status_words(self) -> str:
        return {
            "ok": _("Yes"),
            "refused": _("No"),
            "doubt": _("A reviewer will look"),
            "unknown": _("Not checked yet"),
            "info": _("Good to know"),
        }[self.status]


def explain_decision(decision: Decision, *, policy, relationship: str, name_mismatch: bool = False) -> list[Check]:
    """R10–R16, R23 in the words of ui.md: each question, its answer, and the rule's own message (R13)."""
    by_rule: dict[str, list[Reason]] = {}
    for reason in decision.reasons:
        by_rule.setdefault(reason.rule, []).append(reason)
    label = decision.policy_version or "—"

    def messages_of(rule: str) -> list[str]:
        return [reason.message for reason in by_rule.get(rule, [])]

    owner_ok = "R10" not in by_rule
    # The same msgid as family.eligibility.check_relative, so it matches in every language.
    unknown = _("The relative must be insured in basic medical insurance; no insured person matches.")
    relative_known = unknown not in messages_of("R11")
    checks = [
        Check(
            "R10",
            _("Are you in employee medical insurance (职工医保) with a personal account?"),
            "ok" if owner_ok else "refused",
            messages_of("R10") or [_("Yes: your insurance is active and your personal account can be shared.")],
        )
    ]
    r11 = messages_of("R11")
    if name_mismatch and not r11:
        r11 = [_("No insured person matches this name and ID number. Check both as on the ID card.")]
    checks.append(
        Check(
            "R11",
            _("Is your relative insured?"),
            "refused" if r11 else "ok",
            r11 or [_("Yes: your relative is in basic medical insurance and it is active.")],
        )
    )
    if "R12" in by_rule:
        checks.append(Check("R12", _("Is this relationship allowed here and now?"), "refused", messages_of("R12")))
    else:
        checks.append(
            Check(
                "R12",
                _("Is this relationship allowed here and now?"),
                "ok",
                [
                    _("Yes: %(relation)s is allowed by policy %(policy)s.")
                    % {"relation": relation_label(relationship), "policy": label}
                ],
            )
        )
    if "R14" in by_rule:
        checks.append(Check("R14", _("Can your relative's region be reached?"), "refused", messages_of("R14")))
    elif not owner_ok or not relative_known:
        checks.append(
            Check(
                "R14",
                _("Can your relative's region be reached?"),
                "unknown",
                [_("This is checked once both of you are found insured.")],
            )
        )
    else:
        checks.append(
            Check(
                "R14",
                _("Can your relative's region be reached?"),
                "ok",
                [_("Yes: no cross-province limit stands in the way.")],
            )
        )
    if "R15" in by_rule:
        checks.append(Check("R15", _("Do you meet your region's limits?"), "refused", messages_of("R15")))
    elif policy is None or not owner_ok:
        checks.append(
            Check("R15", _("Do you meet your region's limits?"), "unknown", [_("This is checked once you can share.")])
        )
    else:
        checks.append(Check("R15", _("Do you meet your region's limits?"), "ok", _limit_lines(policy)))
    if "R16" in by_rule:
        checks.append(
            Check(
                "R16",
                _("Is there anything a reviewer should look at?"),
                "doubt",
                [*messages_of("R16"), _("This is not a refusal: a reviewer looks at your documents more closely.")],
            )
        )
    face_age = policy.face_age if policy is not None else 16
    checks.append(
        Check(
            "R23",
            _("Will your relative need face verification?"),
            "info",
            [
                _(
                    "Yes: your relative is %(age)d or older, so after the review they confirm with their own "
                    "face verification. This is also their consent."
                )
                % {"age": face_age}
                if decision.needs_face_verification
                else _("No: your relative is under %(age)d. Sharing starts when a reviewer accepts the documents.")
                % {"age": face_age}
            ],
        )
    )
    return checks


def _limit_lines(policy) -> list[str]:
    """R15 in words: the limits of the owner's region that were met."""
    lines = [_("Yes.")]
    region = policy.region_id or "*"
    if policy.max_members is not None:
        lines.append(
            _("Region %(region)s allows at most %(count)d relatives per owner.")
            % {"region": region, "count": policy.max_members}
        )
    if not policy.multiple_owners:
        lines.append(_("A relative can be in one family network at a time."))
    if policy.min_owner_balance is not None:
        lines.append(
            _("Region %(region)s asks for an owner balance of at least ¥%(amount)s.")
            % {"region": region, "amount": f"{policy.min_owner_balance:,.2f}"}
        )
    return lines


def _check_allowed(request: HttpRequest) -> bool:
    """Each check tells whether an ID number is insured: a citizen gets a day's worth, not an enumeration."""
    limit = getattr(settings, "FAMILY_CHECKS_PER_DAY", PRECHECKS_PER_DAY)
    key = f"family:checks:{request.user.pk}:{timezone.localdate().isoformat()}"
    cache.add(key, 0, timeout=24 * 3600)
    try:
        return cache.incr(key) <= limit
    except ValueError:  # the entry expired between add and incr
        return True


def _too_many_checks(request: HttpRequest) -> HttpResponse:
    return render(request, "429.html", status=429)


@person_required
def family_precheck(request: HttpRequest) -> HttpResponse:
    """能否共济: may I share with this person today? Runs the pipeline's own check and writes nothing."""
    owner = _person(request)
    form = PrecheckForm(request.POST or None)
    context = {"form": form, "owner": owner}
    if request.method == "POST" and form.is_valid():
        if not _check_allowed(request):
            return _too_many_checks(request)
        today = timezone.localdate()
        relationship = form.cleaned_data["relationship"]
        decision = eligibility_check(
            owner_id_number=owner.id_number,
            relative_id_number=form.cleaned_data["relative_id_number"],
            relationship=relationship,
            on_date=today,
        )
        policy = policy_in_force(region_code=owner.region_id, on_date=today)
        context.update(
            decision=decision,
            today=today,
            policy=policy,
            checks=explain_decision(decision, policy=policy, relationship=relationship),
        )
    return render(request, "family/precheck.html", context)


# --- 添加家庭成员 add a member: notice → member → letter → upload ---------------------------------


def _person(request: HttpRequest) -> InsuredPerson:
    return InsuredPerson.objects.select_related("region").get(pk=request.user.person_id)


def _draft(request: HttpRequest) -> dict:
    """The add-a-member draft of this person (a draft left by another login on the same browser is ignored)."""
    draft = request.session.get(DRAFT_KEY) or {}
    if draft.get("owner_id") != request.user.person_id:
        return {"owner_id": request.user.person_id}
    return dict(draft)


def _draft_save(request: HttpRequest, draft: dict) -> None:
    request.session[DRAFT_KEY] = draft


def _draft_clear(request: HttpRequest) -> None:
    request.session.pop(DRAFT_KEY, None)


def _steps_done(draft: dict) -> list[bool]:
    return [bool(draft.get("notice_accepted")), bool(draft.get("member_ok")), bool(draft.get("signed_at")), False]


def _first_unfinished(draft: dict) -> int:
    return _steps_done(draft).index(False)


def _stepper(draft: dict, current: int) -> list[dict]:
    """步骤条: each step with whether it is done, where the user is, and a link back to the ones reachable."""
    done = _steps_done(draft)
    reachable = _first_unfinished(draft)
    return [
        {
            "number": index + 1,
            "label": label,
            "url": reverse(name) if index <= reachable and index != current else "",
            "state": "current" if index == current else ("done" if done[index] else "todo"),
        }
        for index, (name, label) in enumerate(ADD_STEPS)
    ]


def _step_guard(request: HttpRequest, draft: dict, step: int) -> HttpResponse | None:
    """A later step opened before an earlier one is done goes back to the first unfinished step."""
    first = _first_unfinished(draft)
    if step > first:
        messages.info(request, _("Please finish this step first."))
        return redirect(ADD_STEPS[first][0])
    return None


def _step_context(draft: dict, step: int, **extra) -> dict:
    return {
        "steps": _stepper(draft, step),
        "step_number": step + 1,
        "step_count": len(ADD_STEPS),
        "draft": draft,
        **extra,
    }


@require_safe
@person_required
def binding_add(request: HttpRequest) -> HttpResponse:
    """添加家庭成员: continue where the draft stopped."""
    return redirect(ADD_STEPS[_first_unfinished(_draft(request))][0])


@require_POST
@person_required
def binding_add_restart(request: HttpRequest) -> HttpResponse:
    """Throw the draft away and start again from the notice."""
    _draft_clear(request)
    messages.info(request, _("The draft was deleted. You can start again."))
    return redirect("binding_add_notice")


@person_required
def binding_add_notice(request: HttpRequest) -> HttpResponse:
    """Step 1, 告知书: what family sharing does and does not do, what is needed, how data is used (R50)."""
    draft = _draft(request)
    owner = _person(request)
    form = NoticeForm(request.POST or None, initial={"accept": draft.get("notice_accepted", False)})
    if request.method == "POST" and form.is_valid():
        draft["notice_accepted"] = True
        _draft_save(request, draft)
        return redirect("binding_add_member")
    policy = policy_in_force(region_code=owner.region_id, on_date=timezone.localdate())
    relations = [relation_label(r) for r in (policy.relations if policy else [])]
    return render(
        request,
        "family/add_notice.html",
        _step_context(draft, 0, form=form, policy=policy, relations=relations, owner=owner),
    )


MEMBER_FIELDS = ("relative_name", "relative_id_number", "relationship", "authorized_from", "authorized_until")


@person_required
def binding_add_member(request: HttpRequest) -> HttpResponse:
    """Step 2, 成员信息: who the relative is; the pre-check runs here, before any upload (ui.md)."""
    draft = _draft(request)
    if guard := _step_guard(request, draft, 1):
        return guard
    owner = _person(request)
    initial = {name: draft.get(name) for name in MEMBER_FIELDS if draft.get(name)}
    form = MemberForm(request.POST or None, initial=initial)
    context = _step_context(draft, 1, form=form, owner=owner)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        entered = {
            **{name: data[name] for name in ("relative_name", "relative_id_number", "relationship")},
            "authorized_from": data["authorized_from"].isoformat() if data["authorized_from"] else None,
            "authorized_until": data["authorized_until"].isoformat() if data["authorized_until"] else None,
        }
        if any(draft.get(name) != value for name, value in entered.items()):
            # The letter names the relative: a signature on other details no longer holds.
            for key in ("signed_name", "signature", "signed_at"):
                draft.pop(key, None)
        draft.update(entered)
        if not _check_allowed(request):
            _draft_save(request, draft)
            return _too_many_checks(request)
        existing = binding_open_for_pair(owner_id=owner.pk, relative_id_number=data["relative_id_number"])
        if existing is not None:
            _draft_clear(request)
            messages.info(request, _("An application for this relative is already open; here it is."))
            return redirect("binding_detail", pk=existing.pk)
        today = timezone.localdate()
        decision = eligibility_check(
            owner_id_number=owner.id_number,
            relative_id_number=data["relative_id_number"],
            relationship=data["relationship"],
            on_date=today,
        )
        name_matches = insured_person_matches(id_number=data["relative_id_number"], name=data["relative_name"])
        draft["member_ok"] = decision.eligible and name_matches
        draft["needs_face"] = decision.needs_face_verification
        draft["policy_label"] = decision.policy_version
        draft["doubts"] = [reason.message for reason in decision.doubts]
        _draft_save(request, draft)
        if draft["member_ok"]:
            return redirect("binding_add_letter")
        policy = policy_in_force(region_code=owner.region_id, on_date=today)
        context.update(
            _step_context(draft, 1),
            decision=decision,
            checks=explain_decision(
                decision, policy=policy, relationship=data["relationship"], name_mismatch=not name_matches
            ),
        )
    return render(request, "family/add_member.html", context)


def _letter_text(owner: InsuredPerson, draft: dict, on_date: dt.date) -> str:
    return commitment_letter_text(
        owner_name=owner.name,
        owner_id_number=owner.id_number,
        relative_name=draft["relative_name"],
        relative_id_number=draft["relative_id_number"],
        relationship=draft["relationship"],
        on_date=on_date,
    )


@person_required
def binding_add_letter(request: HttpRequest) -> HttpResponse:
    """Step 3, 承诺书: the generated letter, signed on a canvas (JavaScript) or by typing one's name (always)."""
    draft = _draft(request)
    if guard := _step_guard(request, draft, 2):
        return guard
    owner = _person(request)
    form = LetterForm(request.POST or None, owner_name=owner.name)
    if request.method == "POST" and form.is_valid():
        signature = form.cleaned_data["signature"]
        draft["signed_name"] = form.cleaned_data["signed_name"] or owner.name
        draft["signature"] = base64.b64encode(signature).decode() if signature else None
        draft["signed_at"] = timezone.now().isoformat()
        _draft_save(request, draft)
        return redirect("binding_add_upload")
    today = timezone.localdate()
    return render(
        request,
        "family/add_letter.html",
        _step_context(
            draft,
            2,
            form=form,
            owner=owner,
            letter_text=_letter_text(owner, draft, today),
            signed_at=parse_datetime(draft["signed_at"]) if draft.get("signed_at") else None,
        ),
    )


@person_required
def binding_add_upload(request: HttpRequest) -> HttpResponse:
    """Step 4, 上传材料 and 提交: one transaction for the application, the signed letter and the documents."""
    draft = _draft(request)
    if guard := _step_guard(request, draft, 3):
        return guard
    owner = _person(request)
    form = UploadForm(request.POST or None, request.FILES or None, relationship=draft["relationship"])
    if request.method == "POST" and form.is_valid():
        try:
            binding = _application_submit(request.user, owner, draft, form)
        except DuplicateApplication as error:
            _draft_clear(request)
            messages.info(request, error.title)
            return redirect("binding_detail", pk=error.existing.pk)
        except BindingRefused as error:
            form.add_error(None, error.title)
        except SignatureRefused as error:
            # The drawn signature cannot go into the letter: sign again (the typed name always works).
            for key in ("signature", "signed_at"):
                draft.pop(key, None)
            _draft_save(request, draft)
            messages.error(request, error.title)
            return redirect("binding_add_letter")
        except _FileRefused as refused:
            form.add_error(refused.field, refused.error.title)
        else:
            _draft_clear(request)
            messages.success(request, _submitted_message(draft))
            return redirect("binding_detail", pk=binding.pk)
    return render(request, "family/add_upload.html", _step_context(draft, 3, form=form, owner=owner))


class _FileRefused(Exception):
    """A document was refused: which form field it came from, and why."""

    def __init__(self, field_name: str, error: DocumentRefused) -> None:
        super().__init__(error.title)
        self.field = field_name
        self.error = error


def _application_submit(user: User, owner: InsuredPerson, draft: dict, form: UploadForm) -> Binding:
    """R20 all or nothing: submit, store the signed letter, attach each file; a refused file undoes everything."""
    signed_at = parse_datetime(draft["signed_at"])
    signature = base64.b64decode(draft["signature"]) if draft.get("signature") else None
    stored = []
    try:
        with transaction.atomic():
            binding = binding_submit(
                owner=owner,
                relative_id_number=draft["relative_id_number"],
                relative_name=draft["relative_name"],
                relationship=draft["relationship"],
                method=BindingMethod.ONLINE_ID,
                submitted_by=user,
                authorized_from=parse_date(draft["authorized_from"]) if draft.get("authorized_from") else None,
                authorized_until=parse_date(draft["authorized_until"]) if draft.get("authorized_until") else None,
                letter_signed_name=draft["signed_name"],
            )
            pdf = commitment_letter_pdf(
                text=_letter_text(owner, draft, timezone.localdate(signed_at)),
                signed_name=draft["signed_name"],
                signed_at=signed_at,
                signature_png=signature,
            )
            stored.append(letter_store(binding=binding, pdf_bytes=pdf, user=user))
            for field_name, kind, uploaded in form.documents():
                try:
                    stored.append(document_attach(binding=binding, kind=kind, uploaded=uploaded, user=user))
                except DocumentRefused as error:
                    raise _FileRefused(field_name, error) from error
    except Exception:
        # The rows are rolled back; the files written before the failure go too (nothing half-written).
        for document in stored:
            document.file.storage.delete(document.file.name)
        raise
    return binding


def _submitted_message(draft: dict) -> str:
    """Every success says what happens next (ui.md)."""
    message = _("Your application is submitted. A reviewer checks the documents; you get a message when they decide.")
    if draft.get("needs_face"):
        message += " " + _(
            "After that, your relative confirms with their own face verification within %(days)d days."
        ) % {"days": settings.FAMILY_FACE_WAIT_DAYS}
    return message


# --- 申请进度 application status ---------------------------------------------------------------


ACTOR_WORDS = {
    User.Role.REVIEWER: gettext_lazy("Reviewer"),
    User.Role.CLERK: gettext_lazy("Clerk at a service counter"),
    User.Role.ADMIN: gettext_lazy("Administrator"),
}


def _actor_words(event, binding: Binding) -> str:
    """R25 who, without staff names or phone numbers: a role, or the masked name of owner or relative (R4)."""
    actor = event.actor
    if actor is None:
        return _("The system (automatic step)")
    if actor.person_id and actor.person_id == binding.owner_id:
        return _("Account owner %(name)s") % {"name": binding.owner.masked_name}
    if actor.person_id and binding.relative_id and actor.person_id == binding.relative_id:
        return _("Relative %(name)s") % {"name": binding.relative.masked_name}
    if actor.role == User.Role.CITIZEN and binding.method == BindingMethod.NEWBORN:
        # R21: the only other citizen who acts on a newborn's binding is the mother (her face check).
        return _("The mother %(name)s") % {"name": mask_name(binding.mother_name)}
    return str(ACTOR_WORDS.get(actor.role, _("Staff")))


def _render_detail(
    request: HttpRequest,
    binding: Binding,
    *,
    reupload: ReuploadForm | None = None,
    newborn_form: NewbornIdForm | None = None,
    status=200,
):
    is_owner = binding.owner_id == request.user.person_id
    is_newborn = binding.method == BindingMethod.NEWBORN
    documents = binding_documents_current(binding=binding)
    rejected = [
        d.kind for d in documents if d.status == DocumentStatus.REJECTED and d.kind != DocumentKind.COMMITMENT_LETTER
    ]
    can_reupload = is_owner and binding.state in REUPLOAD_STATES and bool(rejected)
    timeline = [
        {
            "when": event.created_at,
            "state": BindingState(event.to_state).label,
            "who": _actor_words(event, binding),
            "why": event.reason,
        }
        for event in binding_events(binding=binding)
    ]
    if binding.reviewed_at and binding.state != BindingState.REJECTED:
        # An approval changes no state (the age branch that follows does), but it is a step the citizen waits for.
        timeline.append(
            {"when": binding.reviewed_at, "state": _("documents accepted"), "who": str(ACTOR_WORDS[User.Role.REVIEWER])}
        )
        timeline.sort(key=lambda item: item["when"])
    context = {
        "binding": binding,
        "is_owner": is_owner,
        "timeline": timeline,
        "documents": documents,
        "has_letter": any(d.kind == DocumentKind.COMMITMENT_LETTER for d in documents),
        "reupload_kinds": rejected if can_reupload else [],
        # R24: a reviewer sent documents back; the application waits for the owner, not for a reviewer.
        "sent_back": bool(rejected) and binding.state in REUPLOAD_STATES,
        "reupload_form": reupload,
        "is_newborn": is_newborn,
        # R21: the owner adds the baby's ID number once the baby is insured (never after the binding closed).
        "newborn_form": newborn_form
        if newborn_form is not None
        else (
            NewbornIdForm()
            if is_owner and is_newborn and not binding.relative_id and binding.state in OPEN_STATES
            else None
        ),
        "confirmer_is_me": binding_confirmer_is(binding, request.user.person),
    }
    return render(request, "family/binding_detail.html", context, status=status)


@require_safe
@person_required
def binding_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """申请进度: state in words, the timeline, what is awaited from whom, documents and re-upload."""
    return _render_detail(request, binding_get_for_user(request.user, pk))


@require_POST
@person_required
def binding_document_upload(request: HttpRequest, pk: int) -> HttpResponse:
    """Replace a rejected document (R24); only the owner, only while the application is decided."""
    binding = binding_get_for_user(request.user, pk)
    if binding.owner_id != request.user.person_id:
        raise PermissionDenied
    documents = binding_documents_current(binding=binding)
    rejected = [d.kind for d in documents if d.status == DocumentStatus.REJECTED]
    if binding.state not in REUPLOAD_STATES or not rejected:
        messages.error(request, _("There is no rejected document to replace on this application."))
        return redirect("binding_detail", pk=binding.pk)
    form = ReuploadForm(request.POST, request.FILES, kinds=rejected)
    if form.is_valid():
        try:
            document_attach(
                binding=binding, kind=form.cleaned_data["kind"], uploaded=form.cleaned_data["file"], user=request.user
            )
        except DocumentRefused as error:
            form.add_error("file", error.title)
        else:
            messages.success(request, _("The new document is uploaded. A reviewer looks at it again."))
            return redirect("binding_detail", pk=binding.pk)
    return _render_detail(request, binding, reupload=form, status=400)


# --- 取消 / 解绑 / 退出 cancel, unbind, leave ---------------------------------------------------


@require_http_methods(["GET", "POST"])
@person_required
def binding_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel an application before it is active (owner, R25): confirm on GET, act on POST."""
    binding = binding_get_for_user(request.user, pk)
    if binding.owner_id != request.user.person_id:
        raise PermissionDenied
    if request.method == "POST":
        try:
            binding_cancel(binding_id=binding.pk, user=request.user)
        except InvalidTransition as error:
            messages.error(request, error.title)
            return redirect("binding_detail", pk=binding.pk)
        messages.success(request, _("The application is cancelled. Nothing was shared."))
        return redirect("family_home")
    return render(request, "family/binding_confirm.html", {"binding": binding, "action": "cancel", "is_owner": True})


@require_http_methods(["GET", "POST"])
@person_required
def binding_end_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Unbind (owner) or leave the network (relative), at once (R26): confirm on GET, act on POST."""
    binding = binding_get_for_user(request.user, pk)
    is_owner = binding.owner_id == request.user.person_id
    if request.method == "POST":
        try:
            binding_end(binding_id=binding.pk, user=request.user)
        except InvalidTransition as error:
            messages.error(request, error.title)
            return redirect("binding_detail", pk=binding.pk)
        if is_owner:
            messages.success(request, _("Unbound. From now on this relative cannot pay from your account."))
        else:
            messages.success(request, _("You left the family network. Payments from that account stop now."))
        return redirect("family_home")
    return render(request, "family/binding_confirm.html", {"binding": binding, "action": "end", "is_owner": is_owner})


# --- 人脸识别 the relative's consent -------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@person_required
def binding_consent(request: HttpRequest, pk: int) -> HttpResponse:
    """R23, R50, R52: the relative confirms with their own face; the picture is checked and not kept."""
    binding = binding_get_for_user(request.user, pk)
    confirmer = _person(request)
    if not binding_confirmer_is(binding, confirmer):
        raise Http404  # only the relative (or a newborn's mother) confirms: the owner cannot do it for them
    reference = str(binding.pk)
    attempts_left = face_attempts_left(person=confirmer, purpose=FACE_PURPOSE, reference=reference)
    waiting = binding.state == BindingState.AWAITING_FACE
    if face_flow() == "redirect":
        return _binding_consent_by_vendor(request, binding, confirmer, reference, waiting, attempts_left)
    form = ConsentForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and waiting and attempts_left > 0 and form.is_valid():
        verification = face_verify(
            person=confirmer, purpose=FACE_PURPOSE, reference=reference, image_bytes=form.cleaned_data["photo"].read()
        )
        passed = verification.decision == FaceVerification.Decision.PASSED
        try:
            binding = binding_face_verified(binding_id=binding.pk, person=confirmer, passed=passed, actor=request.user)
        except InvalidTransition as error:
            messages.error(request, error.title)
            return redirect("binding_consent", pk=binding.pk)
        if passed:
            if binding.state == BindingState.ACTIVE:
                messages.success(request, _("Family sharing is active."))
            return redirect("binding_consent", pk=binding.pk)
        attempts_left = max(0, attempts_left - 1)
        result = face_message(verification.detail)
        form = ConsentForm(initial={"agree": True})
    return render(
        request,
        "family/consent.html",
        {
            "binding": binding,
            "form": form,
            "waiting": waiting,
            "attempts_left": attempts_left,
            "failure": result,
            "provider": face_provider(),
        },
    )


def _binding_consent_by_vendor(request, binding, confirmer, reference, waiting, attempts_left) -> HttpResponse:
    """The vendor's redirect flow (accounts.face.face_flow): link out, and on return act on its fresh outcome."""
    vendor_url = (
        reverse("face_vendor_start")
        + "?"
        + urlencode({"purpose": FACE_PURPOSE, "reference": reference, "next": request.get_full_path()})
    )
    failure = None
    latest = face_verification_latest(person=confirmer, purpose=FACE_PURPOSE, reference=reference)
    if waiting and latest is not None:
        if latest.decision == FaceVerification.Decision.PASSED:
            try:
                binding = binding_face_verified(
                    binding_id=binding.pk, person=confirmer, passed=True, actor=request.user
                )
            except InvalidTransition as error:
                messages.error(request, error.title)
            else:
                if binding.state == BindingState.ACTIVE:
                    messages.success(request, _("Family sharing is active."))
                return redirect("binding_consent", pk=binding.pk)
        else:
            failure = face_message(latest.detail)
    return render(
        request,
        "family/consent.html",
        {
            "binding": binding,
            "form": None,
            "vendor_url": vendor_url,
            "waiting": waiting,
            "attempts_left": attempts_left,
            "failure": failure,
            "provider": None,
        },
    )


# --- 承诺书 PDF --------------------------------------------------------------------------------


@require_safe
@login_required
def binding_letter(request: HttpRequest, pk: int) -> HttpResponse:
    """The stored, signed commitment letter: for the owner, or for staff (every staff view is audited, R51)."""
    if request.user.is_staff_role:
        return _binding_letter_for_staff(request, pk)
    binding = binding_get_for_user(request.user, pk)
    if binding.owner_id != request.user.person_id:
        raise Http404  # the letter carries the owner's full ID number (R4): not for the relative
    return _letter_response(request, binding.pk)


@role_required(User.Role.REVIEWER, User.Role.ADMIN)
def _binding_letter_for_staff(request: HttpRequest, pk: int) -> HttpResponse:
    return _letter_response(request, pk)


def _letter_response(request: HttpRequest, binding_id: int) -> FileResponse:
    letter = binding_letter_document(binding_id=binding_id)
    if letter is None:
        raise Http404
    document = document_open_for(user=request.user, document_id=letter.pk, request=request)
    return FileResponse(
        document.file.open("rb"),
        content_type="application/pdf",
        as_attachment=False,
        filename=f"commitment-letter-{binding_id}.pdf",
    )


# --- 新生儿 newborn by birth medical certificate (R21) ---------------------------------------------


@person_required
def binding_newborn(request: HttpRequest) -> HttpResponse:
    """R21: a newborn by birth medical certificate; the mother's face completes it, the ID number comes later."""
    form = NewbornForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            binding = binding_submit_newborn(
                owner=_person(request),
                newborn_name=data["newborn_name"],
                mother_name=data["mother_name"],
                mother_id_number=data["mother_id_number"],
                birth_certificate_number=data["birth_certificate_number"],
                submitted_by=request.user,
            )
        except DuplicateApplication as error:
            messages.info(request, error.title)
            return redirect("binding_detail", pk=error.existing.pk)
        except BindingRefused as error:
            _add_domain_errors(form, error)
        else:
            messages.success(request, _newborn_message(binding, request.user))
            return redirect("binding_detail", pk=binding.pk)
    return render(request, "family/newborn.html", {"form": form})


def _newborn_message(binding: Binding, user: User) -> str:
    """Every success says what happens next (ui.md): who confirms, by when, and the ID number later."""
    if user.person.id_number == binding.mother_id_number:
        who = _("You confirm it with your own face verification on the next page.")
    else:
        who = _("The mother confirms it with her own face verification; she gets a message with a link.")
    return " ".join(
        [
            str(_("The newborn's application is submitted.")),
            str(who),
            str(_("Add the baby's ID number here once the baby is insured.")),
        ]
    )


def _add_domain_errors(form, error) -> None:
    """A service's refusal: next to the fields it names, and in the summary."""
    named = [e for e in error.errors if e.field in form.fields]
    for field_error in named:
        form.add_error(field_error.field, field_error.message)
    if not named:
        form.add_error(None, error.title)


@require_POST
@person_required
def binding_newborn_id(request: HttpRequest, pk: int) -> HttpResponse:
    """R21: the owner adds the newborn's ID number once the baby is insured."""
    binding = binding_get_for_user(request.user, pk)
    if binding.owner_id != request.user.person_id:
        raise PermissionDenied
    form = NewbornIdForm(request.POST)
    if form.is_valid():
        try:
            binding_newborn_add_id(binding_id=binding.pk, user=request.user, id_number=form.cleaned_data["id_number"])
        except (BindingRefused, InvalidTransition) as error:
            form.add_error("id_number", error.title)
        else:
            messages.success(request, _("The baby's ID number is added."))
            return redirect("binding_detail", pk=binding.pk)
    return _render_detail(request, binding, newborn_form=form, status=400)

"""R42 dynamic QR codes: signed, 60 seconds, once; who may show one; what a verifier learns (R4, R33, R43)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re

import numpy as np
import pytest
import time_machine
from django.core import signing
from django.test import override_settings
from django.utils import timezone

from accounts.models import AuditEvent, User
from cards.errors import CardRefused, QrRefused
from cards.models import CardState, ECard, QrToken
from cards.qr import qr_svg
from cards.services import QR_SALT, card_suspend, qr_issue, qr_tokens_purge, qr_verify
from tests.factories import InstitutionFactory, InsuredPersonFactory, RegionFactory, UserFactory, give_account

START = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


def refused(token: str, verifier: User) -> QrRefused:
    with pytest.raises(QrRefused) as error:
        qr_verify(token=token, verifier=verifier)
    return error.value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_r42_the_code_is_signed_names_the_holder_and_keeps_only_the_nonce(card_a, citizen_a):
    token, row = qr_issue(card=card_a, viewer=citizen_a)
    payload = signing.loads(token, salt=QR_SALT)
    assert payload == {
        "n": row.nonce,
        "c": card_a.pk,
        "h": citizen_a.person_id,
        "r": "320500",
        "e": payload["e"],
    }
    assert (row.holder_id, row.shown_by, row.region_code, row.used_at) == (
        citizen_a.person_id,
        citizen_a,
        "320500",
        None,
    )
    assert token not in str(QrToken.objects.values_list())  # the code itself is not stored
    assert (row.expires_at - row.created_at).total_seconds() == pytest.approx(60, abs=0.001)


def test_r42_valid_for_60_seconds_then_expired(card_a, citizen_a, clerk_x):
    with time_machine.travel(START, tick=False) as clock:
        early, _ = qr_issue(card=card_a, viewer=citizen_a)
        late, _ = qr_issue(card=card_a, viewer=citizen_a)
        clock.move_to(START + dt.timedelta(seconds=59, milliseconds=999))
        assert qr_verify(token=early, verifier=clerk_x).holder_name == "张*"
        clock.move_to(START + dt.timedelta(seconds=60))
        error = refused(late, clerk_x)
    assert (error.code, error.status) == ("expired", 410)
    assert QrToken.objects.get(nonce=signing.loads(late, salt=QR_SALT)["n"]).used_at is None


@override_settings(CARD_QR_TTL_SECONDS=30)
def test_r42_the_validity_is_configurable(card_a, citizen_a, clerk_x):
    with time_machine.travel(START, tick=False) as clock:
        token, row = qr_issue(card=card_a, viewer=citizen_a)
        assert row.expires_at == START + dt.timedelta(seconds=30)
        clock.move_to(START + dt.timedelta(seconds=30))
        assert refused(token, clerk_x).code == "expired"


def test_r42_a_code_is_used_once(card_a, citizen_a, clerk_x, partner):
    token, row = qr_issue(card=card_a, viewer=citizen_a)
    qr_verify(token=token, verifier=clerk_x)
    row.refresh_from_db()
    assert row.used_by == clerk_x
    assert row.used_at is not None
    error = refused(token, partner)
    assert (error.code, error.status) == ("replayed", 409)
    row.refresh_from_db()
    assert row.used_by == clerk_x  # the first use stands
    assert AuditEvent.objects.filter(action="card.qr_verified", actor=clerk_x).count() == 1


def test_r42_a_tampered_code_is_forged(card_a, citizen_a, citizen_b, claim_card, clerk_x):
    token, _ = qr_issue(card=card_a, viewer=citizen_a)
    body, stamp, signature = token.split(":")  # django.core.signing: data, timestamp, signature
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    other = claim_card(citizen_b.person)

    def with_payload(changed: dict) -> str:
        return f"{_b64(json.dumps(changed, separators=(',', ':')).encode())}:{stamp}:{signature}"

    tampered = {
        "signature changed": f"{body}:{stamp}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        "holder changed": with_payload({**payload, "c": other.pk, "h": other.person_id}),
        "expiry moved": with_payload({**payload, "e": payload["e"] + 3_600_000}),
        "no signature": f"{body}:{stamp}",
        "garbage": "not a code",
        "empty": "",
    }
    for what, forged in tampered.items():
        error = refused(forged, clerk_x)
        assert (error.code, error.status) == ("forged", 400), what
    assert qr_verify(token=token, verifier=clerk_x).card_id == card_a.pk  # the real one still works


def test_r42_a_code_signed_with_another_salt_or_key_is_forged(card_a, citizen_a, clerk_x):
    _, row = qr_issue(card=card_a, viewer=citizen_a)
    payload = {"n": row.nonce, "c": card_a.pk, "h": card_a.person_id, "r": "320500", "e": 2**42}
    assert refused(signing.dumps(payload, salt="cards.qr.v0"), clerk_x).code == "forged"
    assert refused(signing.dumps(payload), clerk_x).code == "forged"  # the default salt
    with override_settings(SECRET_KEY="another-secret-key-another-secret-key-0123456789"):
        other_key = signing.dumps(payload, salt=QR_SALT)
    assert refused(other_key, clerk_x).code == "forged"
    assert QrToken.objects.get(pk=row.pk).used_at is None


def test_r42_a_well_signed_code_of_a_nonce_never_issued_is_forged(card_a, clerk_x):
    payload = {"n": "never-issued", "c": card_a.pk, "h": card_a.person_id, "r": "320500", "e": 2**42}
    assert refused(signing.dumps(payload, salt=QR_SALT), clerk_x).code == "forged"


def test_r42_a_clerk_of_another_province_is_refused_and_the_code_stays_usable(card_a, citizen_a, clerk_wuhan, clerk_x):
    token, row = qr_issue(card=card_a, viewer=citizen_a)
    error = refused(token, clerk_wuhan)
    assert (error.code, error.status) == ("foreign_region", 403)
    assert "320000" in error.detail and "420000" in error.detail
    assert QrToken.objects.get(pk=row.pk).used_at is None
    assert qr_verify(token=token, verifier=clerk_x).region_code == "320500"


def test_r42_another_city_of_the_same_province_is_accepted(card_a, citizen_a):
    wuxi = RegionFactory(code="320200", name="无锡市", province="320000")
    clerk = UserFactory(role=User.Role.CLERK, institution=InstitutionFactory(region=wuxi))
    token, _ = qr_issue(card=card_a, viewer=citizen_a)
    assert qr_verify(token=token, verifier=clerk).card_state == CardState.ACTIVE


def test_r42_a_partner_system_with_an_institution_is_bound_to_its_province(card_a, citizen_a, wuhan):
    partner = UserFactory(role=User.Role.PARTNER, institution=InstitutionFactory(region=wuhan))
    token, _ = qr_issue(card=card_a, viewer=citizen_a)
    assert refused(token, partner).code == "foreign_region"


def test_r42_a_card_suspended_after_the_code_was_shown_is_refused(card_a, citizen_a, clerk_x, admin_user):
    token, row = qr_issue(card=card_a, viewer=citizen_a)
    card_suspend(card_id=card_a.pk, actor=admin_user, reason="reported lost")
    error = refused(token, clerk_x)
    assert (error.code, error.status) == ("card_not_active", 409)
    assert QrToken.objects.get(pk=row.pk).used_at is None
    with pytest.raises(CardRefused) as no_code:
        qr_issue(card=card_a, viewer=citizen_a)
    assert no_code.value.code == "card_not_active"


def test_r42_citizens_and_reviewers_do_not_verify(card_a, citizen_a, citizen_b, reviewer):
    token, row = qr_issue(card=card_a, viewer=citizen_a)
    for who in (citizen_b, citizen_a, reviewer):
        assert refused(token, who).code == "not_a_verifier"
    assert QrToken.objects.get(pk=row.pk).used_at is None


def test_r42_a_claim_in_progress_has_no_code(citizen_a):
    from cards.services import card_claim_start

    card = card_claim_start(person=citizen_a.person, region_code="320500")
    with pytest.raises(CardRefused) as error:
        qr_issue(card=card, viewer=citizen_a)
    assert error.value.code == "card_not_active"


def test_r33_payers_own_account_first_then_oldest_binding_first_all_masked(region, claim_card, binding_active, clerk_x):
    holder = InsuredPersonFactory(name="欧阳娜娜", region=region, birth="19900101", male=False)
    give_account(holder, current="10.00")
    newer_owner = InsuredPersonFactory(name="赵刚", region=region, birth="19600101")
    older_owner = InsuredPersonFactory(name="钱芳", region=region, birth="19620202", male=False)
    give_account(newer_owner, current="5.00")
    give_account(older_owner, historical="5.00")
    now = timezone.now()
    binding_active(newer_owner, holder, since=now - dt.timedelta(days=1), relationship="child")
    binding_active(older_owner, holder, since=now - dt.timedelta(days=300), relationship="child")
    holder_user = UserFactory(person=holder)
    token, _ = qr_issue(card=claim_card(holder), viewer=holder_user)

    verification = qr_verify(token=token, verifier=clerk_x)

    assert (verification.holder_name, verification.holder_id_number) == ("欧阳*", holder.masked_id_number)
    assert verification.holder_id_number == holder.id_number[:3] + "*" * 11 + holder.id_number[-4:]
    assert [(p.kind, p.name) for p in verification.payers] == [("own", "欧阳*"), ("binding", "钱*"), ("binding", "赵*")]
    for payer in verification.payers:
        assert re.fullmatch(r"\d{3}\*{11}[\dX]{4}", payer.id_number)
    assert verification.payers[1].relationship == "child"


def test_r43_a_manager_without_a_binding_is_not_a_payer(
    citizen_a, citizen_a_family, family_link_active, binding_active, claim_card, clerk_x
):
    parent = citizen_a_family["parent"]  # a resident: no own account
    family_link_active(citizen_a.person, parent)
    token, _ = qr_issue(card=claim_card(parent), viewer=citizen_a)
    assert qr_verify(token=token, verifier=clerk_x).payers == []

    binding_active(citizen_a.person, parent, relationship="parent")
    token, _ = qr_issue(card=ECard.objects.get(person=parent), viewer=citizen_a)
    assert [p.name for p in qr_verify(token=token, verifier=clerk_x).payers] == ["张*"]


def test_r42_r43_a_manager_shows_a_managed_relatives_code_and_it_names_the_relative(
    citizen_a, citizen_a_family, family_link_active, claim_card
):
    parent = citizen_a_family["parent"]
    card = claim_card(parent)
    with pytest.raises(CardRefused) as before:
        qr_issue(card=card, viewer=citizen_a)
    assert (before.value.code, before.value.status) == ("not_allowed", 403)

    family_link_active(citizen_a.person, parent)
    token, row = qr_issue(card=card, viewer=citizen_a)
    payload = signing.loads(token, salt=QR_SALT)
    assert payload["h"] == parent.pk != citizen_a.person_id
    assert (row.holder, row.shown_by) == (parent, citizen_a)
    assert AuditEvent.objects.filter(
        action="card.qr_shown_for_relative", actor=citizen_a, target_id=str(parent.pk)
    ).exists()


def test_r42_a_binding_owner_shows_the_code_of_a_child_under_16_only(
    citizen_a, citizen_a_family, binding_active, claim_card
):
    child, spouse = citizen_a_family["child"], citizen_a_family["spouse"]
    binding_active(citizen_a.person, child, relationship="child")
    binding_active(citizen_a.person, spouse, relationship="spouse")
    _token, row = qr_issue(card=claim_card(child), viewer=citizen_a)
    assert row.holder == child
    with pytest.raises(CardRefused) as adult:
        qr_issue(card=claim_card(spouse), viewer=citizen_a)
    assert adult.value.code == "not_allowed"


def test_r42_a_stranger_cannot_show_someone_elses_code(card_a, citizen_b):
    with pytest.raises(CardRefused) as error:
        qr_issue(card=card_a, viewer=citizen_b)
    assert error.value.code == "not_allowed"
    assert not QrToken.objects.exists()


def _svg_modules(svg: str) -> np.ndarray:
    """The dark modules the SVG draws, as a bitmap (0 dark, 255 light), one pixel per module."""
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))
    modules = np.full((size, size), 255, dtype=np.uint8)
    for x, y in re.findall(r"M(\d+),(\d+)H", svg):
        modules[int(y), int(x)] = 0
    return modules


def test_r42_the_qr_image_encodes_the_token(card_a, citizen_a):
    """The SVG draws exactly the QR symbol of the issued token (error correction M, quiet zone of 4)."""
    import qrcode
    import qrcode.constants

    token, _ = qr_issue(card=card_a, viewer=citizen_a)
    svg = qr_svg(token, label="e-card code")
    assert svg.startswith("<svg") and 'aria-label="e-card code"' in svg
    assert "mm" not in svg.split(">", 1)[0]  # no fixed size: the page sizes it
    symbol = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    symbol.add_data(token)
    symbol.make(fit=True)
    expected = np.where(np.array(symbol.get_matrix()), 0, 255).astype(np.uint8)
    assert np.array_equal(_svg_modules(svg), expected)


def test_r42_a_drawn_code_reads_back_with_a_detector():
    """A reader gets the text back from the drawn SVG (OpenCV's detector). A fixed text of a real code's
    shape: the detector misses about one random code in a hundred, which would make this test flaky."""
    import cv2

    text = "eyJuIjoiN2Y0YzJhOWQxZTNiNDU2Nzg5YWJjZGVmMDEyMzQ1NjciLCJjIjo0MiwiaCI6MTcsInIiOiIzMjA1MDAiLCJlIjox:sig"
    modules = _svg_modules(qr_svg(text))
    size = modules.shape[0]
    picture = cv2.resize(modules, (size * 8, size * 8), interpolation=cv2.INTER_NEAREST)
    decoded, _points, _ = cv2.QRCodeDetector().detectAndDecode(picture)
    assert decoded == text


def test_unused_codes_long_expired_are_purged_used_ones_kept(card_a, citizen_a, clerk_x):
    with time_machine.travel(START, tick=False):
        used, used_row = qr_issue(card=card_a, viewer=citizen_a)
        qr_verify(token=used, verifier=clerk_x)
        _, stale = qr_issue(card=card_a, viewer=citizen_a)
    with time_machine.travel(START + dt.timedelta(days=1, minutes=2), tick=False):
        _, fresh = qr_issue(card=card_a, viewer=citizen_a)
        assert qr_tokens_purge(now=timezone.now()) == 1
    assert set(QrToken.objects.values_list("pk", flat=True)) == {used_row.pk, fresh.pk}
    assert stale.pk not in set(QrToken.objects.values_list("pk", flat=True))

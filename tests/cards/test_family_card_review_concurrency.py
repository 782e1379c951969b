"""R24 under concurrency: reviewers pressing 取下一份 at the same moment each get a different document.

PostgreSQL only: each thread its own connection, real row locks (``skip_locked``) and the compare-and-set.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import User
from cards.models import FamilyCardDocument
from cards.services import family_card_add, family_card_document_take_next
from tests.attack_files import png_scan
from tests.concurrency import run_together
from tests.factories import InsuredPersonFactory, RegionFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(("reviewers", "documents"), [(6, 6), (6, 3)])
def test_r24_reviewers_taking_at_once_never_share_a_document(tmp_path, monkeypatch, reviewers, documents):
    from accounts.storage import PrivateStorage

    monkeypatch.setattr(
        FamilyCardDocument._meta.get_field("file"), "storage", PrivateStorage(location=tmp_path / "private")
    )
    region = RegionFactory(code="330100", name="杭州市", province="330000")
    manager = InsuredPersonFactory(region=region, birth="19700101")
    manager_user = UserFactory(username="manager", person=manager)
    family = [("spouse", "19710303"), ("parent", "19450101"), ("parent", "19460202"), ("child", "20000404")]
    family += [("sibling", "19720505"), ("child", "20020606")]
    for relationship, birth in family[:documents]:
        relative = InsuredPersonFactory(region=region, birth=birth)
        family_card_add(
            manager=manager,
            relative_id_number=relative.id_number,
            relative_name=relative.name,
            relationship=relationship,
            user=manager_user,
            document=SimpleUploadedFile("register.png", png_scan(), "image/png"),
        )
    staff = [UserFactory(username=f"r{n}", role=User.Role.REVIEWER, is_staff=True) for n in range(reviewers)]

    results = run_together([lambda user=user: family_card_document_take_next(reviewer=user) for user in staff])

    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    taken = [r.pk for r in results if r is not None]
    assert len(taken) == len(set(taken)) == min(reviewers, documents)
    held = dict(FamilyCardDocument.objects.exclude(claimed_by=None).values_list("pk", "claimed_by__username"))
    assert sorted(held) == sorted(taken)

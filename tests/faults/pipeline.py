"""Applications for the fault tests of the binding pipeline, and what "decided exactly once" means for them.

Each owner applies for three relatives: a child under 16 (R23: active once the documents pass review),
a spouse of 16 or over (R23: waits for her own face check) and a grandchild whose insurance is
suspended (R11: refused at eligibility). Whatever the broker or the workers did meanwhile, each must
end in that state with exactly one ``BindingEvent`` per transition of its one path (R25).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg2
import pytest
from django.utils import timezone

from accounts.models import InsuranceStatus, InsuranceType, InsuredPerson, User
from family import services
from family.models import Binding, BindingEvent, BindingState, Relation
from tests.factories import InsuredPersonFactory, RegionFactory, give_account

S = BindingState


@dataclass(frozen=True)
class Case:
    """One application and the state it must reach."""

    binding_id: int
    outcome: str  # "young" (under 16), "adult" (16 or over) or "refused" (R11)

    @property
    def after_eligibility(self) -> str:
        return S.REJECTED if self.outcome == "refused" else S.UNDER_REVIEW

    @property
    def final_state(self) -> str:
        return {"young": S.ACTIVE, "adult": S.AWAITING_FACE, "refused": S.REJECTED}[self.outcome]

    @property
    def transitions(self) -> list[tuple[str, str]]:
        """R25: the one path through the states, one event per step."""
        if self.outcome == "refused":
            return [("", S.SUBMITTED), (S.SUBMITTED, S.REJECTED)]
        return [("", S.SUBMITTED), (S.SUBMITTED, S.UNDER_REVIEW), (S.UNDER_REVIEW, self.final_state)]


def owner_make(n: int) -> InsuredPerson:
    """An employee of 苏州 with an account, born on a different day for each ``n``."""
    region = RegionFactory(code="320500", name="苏州市", province="320000")
    owner = InsuredPersonFactory(region=region, birth=dt.date(1975, 1, 10) + dt.timedelta(days=n), male=True)
    give_account(owner, current="800.00")
    return owner


def relatives_make(owner: InsuredPerson) -> list[tuple[str, str, InsuredPerson]]:
    """The owner's three relatives: (outcome, relationship, person)."""
    ten_years_old = timezone.localdate() - dt.timedelta(days=3653)
    child = InsuredPersonFactory(region=owner.region, birth=ten_years_old, insurance_type=InsuranceType.RESIDENT)
    spouse = InsuredPersonFactory(region=owner.region, birth=dt.date(1977, 5, 1), male=False)
    grandchild = InsuredPersonFactory(region=owner.region, birth=dt.date(2010, 11, 1), status=InsuranceStatus.SUSPENDED)
    return [
        ("young", Relation.CHILD, child),
        ("adult", Relation.SPOUSE, spouse),
        ("refused", Relation.GRANDCHILD, grandchild),
    ]


def submit(owner: InsuredPerson, outcome: str, relationship: str, relative: InsuredPerson) -> Case:
    binding = services.binding_submit(
        owner=owner, relative_id_number=relative.id_number, relative_name=relative.name, relationship=relationship
    )
    return Case(binding.pk, outcome)


def states(cases: list[Case]) -> dict[int, str]:
    return dict(Binding.objects.filter(pk__in=[c.binding_id for c in cases]).values_list("pk", "state"))


def count_in(cases: list[Case], wanted: set[str]) -> int:
    return Binding.objects.filter(pk__in=[c.binding_id for c in cases], state__in=wanted).count()


def approve_all(cases: list[Case], reviewer: User) -> list[Case]:
    """R24: a reviewer approves every application under review; each approval queues the age branch."""
    approved = [c for c in cases if c.outcome != "refused"]
    for case in approved:
        services.binding_review_decide(binding_id=case.binding_id, reviewer=reviewer, approve=True)
    return approved


def events_by_binding(cases: list[Case]) -> dict[int, list[tuple[str, str]]]:
    events: dict[int, list[tuple[str, str]]] = {c.binding_id: [] for c in cases}
    rows = BindingEvent.objects.filter(binding_id__in=list(events)).order_by("pk")
    for binding_id, from_state, to_state in rows.values_list("binding_id", "from_state", "to_state"):
        events[binding_id].append((from_state, to_state))
    return events


def assert_decided_once(cases: list[Case], *, final: bool) -> None:
    """Every application in its state (after eligibility, or final) with one event per transition, in order."""
    expected_state = {c.binding_id: (c.final_state if final else c.after_eligibility) for c in cases}
    assert states(cases) == expected_state
    # After eligibility: submitted, then under review or (R11) rejected, the refused path's end.
    expected_events = {c.binding_id: c.transitions if final else c.transitions[:2] for c in cases}
    assert events_by_binding(cases) == expected_events, "one event per transition: none missing, none twice"


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, logs: Callable[[], str]) -> None:
    """Poll ``condition`` until it holds; fail with the workers' logs when it does not in time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached in {timeout:.0f} s\n{logs()}")
        time.sleep(0.05)


class RowLock:
    """``SELECT … FOR UPDATE`` on some bindings from a connection of the test's own, held until ``release``.

    A pipeline step locks its binding first (``select_for_update``), so a step given one of these
    bindings waits inside its transaction: the deterministic "mid-pipeline" moment to kill its worker.
    """

    def __init__(self, database_url: str, binding_ids: list[int]) -> None:
        self.connection = psycopg2.connect(database_url)
        self.connection.autocommit = False
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.pid = cursor.fetchone()[0]
            cursor.execute("SELECT id FROM family_binding WHERE id = ANY(%s) FOR UPDATE", [binding_ids])

    def waiters(self) -> int:
        """How many other sessions wait for a lock this one holds (a step blocked on its binding)."""
        with psycopg2.connect(self.connection.dsn) as probe, probe.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [self.pid])
            count = cursor.fetchone()[0]
        probe.close()
        return count

    def release(self) -> None:
        if not self.connection.closed:
            self.connection.rollback()
            self.connection.close()

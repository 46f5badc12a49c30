"""Person merges and the daily jobs of services and measures on the real database: a merge re-points the orders,
the deliveries and the measure applications, withdrawing the merged person's duplicate open application on the same
call; the services' daily job ends an order past its planned end (and its intervention) once."""
from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from domain.care_plan.models import Intervention
from domain.kernel import person_refs
from domain.measures.models import MeasureApplication, MeasureCall
from domain.services import jobs, service
from domain.services.models import Activation
from schemas.services import ActivationCreate
from tests.domain.services.setup import MONDAY, build_case
from tests.factories.cartelle import create_person


async def test_merge_withdraws_the_duplicate_application_and_repoints_the_rest(session, clock):
    clock.set(MONDAY)
    c = await build_case(session, clock)
    other = await create_person(session, comune="comune-offanengo")
    call = MeasureCall(ambito_id=c.w.person.ambito_id, measure_code="b1", title="B1", opens_on=date(2026, 1, 1),
                       closes_on=date(2026, 12, 31), budget=1000, version=1)
    session.add(call)
    await session.flush()
    kept, dup = (MeasureApplication(ambito_id=call.ambito_id, call_id=call.id, measure_code="b1", person_id=p,
                                    application_date=date(2026, 3, 1), state="submitted", version=1)
                 for p in (c.w.person.id, other.id))
    session.add_all([kept, dup])
    await session.flush()
    counts = await person_refs.repoint_all(session, kept_id=c.w.person.id, merged_id=other.id)
    assert counts["measure_application.person_id"] == 1
    await session.refresh(dup)
    assert (dup.state, dup.person_id, dup.end_reason) == ("withdrawn", c.w.person.id, "withdrawn")
    await session.refresh(kept)
    assert kept.state == "submitted"


async def test_an_order_past_its_end_ends_by_itself_once_with_its_intervention(session, clock):
    clock.set(MONDAY)
    c = await build_case(session, clock)
    sw, coop = await c.p(session, c.w.sw), await c.p(session, c.coop)
    a = await service.order(session, principal=sw, data=ActivationCreate(intervention_id=c.sad.id))
    await service.accept(session, principal=coop, activation_id=a.id)
    await service.start(session, principal=coop, activation_id=a.id)
    clock.set(MONDAY + timedelta(days=27))
    assert await jobs.end_past_period(session) == 0
    clock.set(MONDAY + timedelta(days=28))
    assert await jobs.end_past_period(session) == 1
    assert await jobs.end_past_period(session) == 0
    row = (await session.execute(sa.select(Activation).where(Activation.id == a.id)
                                 .execution_options(populate_existing=True))).scalar_one()
    assert (row.state, row.end_reason, row.end_date) == ("ended", "period_over", date(2026, 3, 30))
    iv = (await session.execute(sa.select(Intervention).where(Intervention.id == c.sad.id)
                                .execution_options(populate_existing=True))).scalar_one()
    assert iv.status == "ended"

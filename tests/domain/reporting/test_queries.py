"""Indicators (domain/reporting): the PUA counters P1/P3 over the cohort of requests registered in a period, and the
share of integrated VMDs among those concluded in a period, by owning comune."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from domain.assessment import service as vmd
from domain.kernel.errors import Invalid
from domain.pua import flows, service
from domain.reporting import queries as reporting
from schemas.pua import OrientIn, ReferCotIn
from tests.domain.assessment.vmd_setup import build_world, requested, signed_and_met
from tests.domain.pua.helpers import (
    complex_answers,
    create,
    elderly_woman,
    mmg_referral,
    setup_pua,
    simple_answers,
    triaged,
)
from tests.support import org


# ---------------------------------------------------------------------------------------------------- PUA
async def test_access_counters(session, clock):
    pua = await setup_pua(session)
    person = await elderly_woman(session)
    base = await reporting.access_counters(session, ambito_id=pua.ambito.id, start=date(2026, 3, 2),
                                         end=date(2026, 3, 2))
    _, _, op = await triaged(session, pua, person, simple_answers(age=82))           # first level, open
    ar2, _, _ = await triaged(session, pua, person, complex_answers(recent_discharge=True))
    await flows.refer_cot(session, principal=op, request_id=ar2.id, data=ReferCotIn())
    ar3, _, _ = await triaged(session, pua, person, simple_answers(age=82))
    await service.orient(session, principal=op, request_id=ar3.id, data=OrientIn(information_given="Info"))
    mmg = await pua.principal(session, pua.mmg)
    r4 = (await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))).request
    await service.cancel(session, principal=op, request_id=r4.id, reason="Doppia")  # out of every counter
    r5 = (await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))).request
    await service.withdraw(session, principal=op, request_id=r5.id, reason="Rinuncia")
    ar6, _, _ = await triaged(session, pua, person, complex_answers(recent_discharge=True))
    await flows.refer_cot(session, principal=op, request_id=ar6.id, data=ReferCotIn(with_vmd=True))
    clock.advance(days=1)  # registered the next day: outside a one-day period
    await service.register_request(session, principal=mmg, data=create(mmg_referral(person.id)))
    c = await reporting.access_counters(session, ambito_id=pua.ambito.id, start=date(2026, 3, 2),
                                      end=date(2026, 3, 2))
    assert c.registered - base.registered == 5
    assert c.first_level_done - base.first_level_done == 4
    assert c.referred_cot - base.referred_cot == 2  # the COT alone, and the COT with the VMD
    assert c.oriented - base.oriented == 1
    assert c.withdrawn - base.withdrawn == 1
    assert c.referred_vmd - base.referred_vmd == 1  # the combined referral counts for P3
    if base.registered == 0:
        assert c.p1 == 0.8 and c.p3 == 0.2
    week = await reporting.access_counters(session, ambito_id=pua.ambito.id, start=date(2026, 3, 2),
                                         end=date(2026, 3, 8))
    assert week.registered == c.registered + 1
    other = await org(session, "ambito-cremona-test")
    empty = await reporting.access_counters(session, ambito_id=other.id, start=date(2026, 1, 1), end=date(2026, 12, 31))
    assert empty.registered == 0 and empty.p1 is None


async def test_a_period_is_two_dates_or_two_aware_instants():
    lo, hi = reporting.period_bounds(date(2026, 3, 29), date(2026, 3, 29))  # the DST day has 23 hours
    assert hi.timestamp() - lo.timestamp() == 23 * 3600
    with pytest.raises(Invalid) as e:
        reporting.period_bounds(date(2026, 3, 1), datetime.fromisoformat("2026-03-02T00:00:00+01:00"))
    assert e.value.field == "start"
    with pytest.raises(Invalid) as e:
        reporting.period_bounds(datetime(2026, 3, 1), datetime(2026, 3, 2))
    assert e.value.field == "start"


# ---------------------------------------------------------------------------------------------------- VMD
async def test_integrated_share_counts_by_conclusion_date(session, clock):
    w = await build_world(session)
    v, ifec, sw = await signed_and_met(session, w, clock)
    clock.set(datetime.fromisoformat("2026-04-01T00:30:00+02:00"))  # concluded in April (Rome time)
    await vmd.conclude(session, principal=ifec, vmd_id=v.id, outcome="measure_eligible")
    cancelled = await requested(session, w, trigger="mmg")
    await vmd.cancel(session, principal=ifec, vmd_id=cancelled.id, reason="rinuncia")
    march = await reporting.integrated_share(session, ambito_id=v.ambito_id, start=date(2026, 3, 1),
                                             end=date(2026, 3, 31))
    april = await reporting.integrated_share(session, ambito_id=v.ambito_id, start=date(2026, 4, 1),
                                             end=date(2026, 4, 30))
    assert (march.denominator, march.share) == (0, None)
    assert (april.numerator, april.denominator) == (1, 1)  # the cancelled one never counts
    offanengo = await org(session, "comune-offanengo")
    crema = await org(session, "comune-crema")
    assert (await reporting.integrated_share(session, ambito_id=v.ambito_id, start=date(2026, 4, 1),
                                             end=date(2026, 4, 30), comune_id=offanengo.id)).denominator == 1
    assert (await reporting.integrated_share(session, ambito_id=v.ambito_id, start=date(2026, 4, 1),
                                             end=date(2026, 4, 30), comune_id=crema.id)).denominator == 0
    with pytest.raises(Invalid):
        await reporting.integrated_share(session, ambito_id=v.ambito_id, start=date(2026, 5, 1),
                                         end=date(2026, 4, 1))

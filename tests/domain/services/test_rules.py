"""The rules of services and measures as pure functions: planned hours over the days of service, weeks below the
threshold only once over, co-payment rules as data (most specific rule, monthly cap), the measure's period (Pro.Vi
May → April) and the rank of applications waiting for funds."""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from domain.measures.models import Measure, MeasureApplication, PeriodRule
from domain.measures.service import add_months, default_period, rank_key
from domain.services.models import Activation
from domain.services.queries import co_payment, co_payment_rule, planned_in, week_periods


def _order(start=date(2026, 3, 2), end=date(2026, 3, 30), hours=6, cost="21.50") -> Activation:
    return Activation(intensity_value=Decimal(hours), intensity_unit="hours_week", start_date=start, end_date=end,
                      unit_cost=Decimal(cost), service_type="sad")


class TestPlanned:
    def test_the_weekly_intensity_over_the_days_of_service(self):
        a = _order(start=date(2026, 3, 4))  # a Wednesday: 5 days of the first week
        assert planned_in(a, date(2026, 3, 2), date(2026, 3, 9)) == Decimal(6) * 5 / 7
        assert planned_in(a, date(2026, 3, 30), date(2026, 4, 6)) == 0

    def test_a_week_is_below_only_once_it_is_over(self):
        a = _order()
        per_day = {date(2026, 3, 2): Decimal(3)}
        weeks = week_periods(a, per_day, until=date(2026, 3, 5))
        assert [(w.start, w.below) for w in weeks] == [(date(2026, 3, 2), False)]  # still running
        weeks = week_periods(a, per_day, until=date(2026, 3, 9))
        assert [(w.start, w.planned, w.delivered, w.below) for w in weeks][0] == (date(2026, 3, 2), 6, 3, True)

    def test_exactly_the_threshold_is_not_below(self):
        a = _order(hours=5)
        weeks = week_periods(a, {date(2026, 3, 3): Decimal(4)}, until=date(2026, 3, 10))
        assert weeks[0].percent == Decimal("80.00") and weeks[0].below is False


class TestCoPayment:
    RULES = [{"comune": "*", "service_type": "sad", "share_percent": 10, "valid_from": date(2026, 1, 1)},
             {"comune": "comune-crema", "service_type": "sad", "share_percent": 20, "monthly_cap": 30,
              "valid_from": date(2026, 1, 1)}]

    def test_the_comunes_rule_wins_and_the_cap_is_monthly(self):
        assert co_payment_rule(self.RULES, "comune-crema", "sad", date(2026, 3, 1))["share_percent"] == 20
        assert co_payment_rule(self.RULES, "comune-offanengo", "sad", date(2026, 3, 1))["share_percent"] == 10
        assert co_payment_rule(self.RULES, "comune-crema", "adm", date(2026, 3, 1)) is None
        days = {date(2026, 3, d): Decimal(3) for d in (2, 5, 9, 12, 16, 19, 23, 26)} | {date(2026, 4, 2): Decimal(3)}
        # March: 24 h × 21.50 = 516 → 20 % = 103.20, capped at 30; April: 3 h = 64.50 → 12.90
        assert co_payment(self.RULES, "comune-crema", _order(), days) == Decimal("42.90")
        assert co_payment(self.RULES, "comune-offanengo", _order(), days) == Decimal("58.05")

    def test_no_rule_no_co_payment(self):
        assert co_payment([], "comune-crema", _order(), {date(2026, 3, 2): Decimal(3)}) == Decimal("0.00")


class TestMeasures:
    PRO_VI = Measure(code="pro_vi", label="Pro.Vi", period_rule=PeriodRule.fixed_months, start_month=5, months=12)
    B1 = Measure(code="b1", label="B1", period_rule=PeriodRule.from_start, months=12)

    def test_pro_vi_runs_may_to_april(self):
        assert default_period(self.PRO_VI, date(2026, 3, 2)) == (date(2026, 5, 1), date(2027, 5, 1))
        assert default_period(self.PRO_VI, date(2026, 5, 1)) == (date(2026, 5, 1), date(2027, 5, 1))
        assert default_period(self.PRO_VI, date(2026, 6, 15)) == (date(2027, 5, 1), date(2028, 5, 1))
        assert default_period(self.B1, date(2026, 3, 2)) == (date(2026, 3, 2), date(2027, 3, 2))
        assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)

    def test_rank_application_date_then_need_score(self):
        at = datetime(2026, 3, 2, tzinfo=UTC)

        def app(day, need):
            return MeasureApplication(id=uuid.uuid4(), application_date=day, need_score=need, applied_at=at)
        late, low, high, unknown = (app(date(2026, 3, 2), 90), app(date(2026, 3, 1), 40), app(date(2026, 3, 1), 70),
                                    app(date(2026, 3, 1), None))
        assert sorted([late, low, unknown, high], key=rank_key) == [high, low, unknown, late]

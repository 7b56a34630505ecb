"""Where the billing cycle, the ACU limits and the price of an ACU come from: said once
at start and by `check-config`. Nothing is guessed: without a source, nothing is exported."""

from __future__ import annotations

import structlog

from exporter.config import NO_CYCLE_SOURCE, Settings
from exporter.metrics.view import Billing
from exporter.polling.plan import billing_targets
from exporter.polling.strategies import strategy_of

log = structlog.get_logger("exporter")


def billing_view(settings: Settings) -> Billing:
    """What the metric families need of the billing settings and of sharding."""
    billing = settings.billing
    return Billing(settings.sharding.owns_enterprise, billing.acu_price, billing.currency)


def explain_billing(settings: Settings) -> list[str]:
    """Where the billing cycle and the ACU limits come from, a line each: for `check-config`
    and the log at start. Nothing is guessed: without a source, nothing is exported."""
    source = settings.cycle_source
    cycle = {
        "v3": "billing cycle: Devin's, from GET /v3/enterprise/consumption/cycles "
        "(devin.enterprise_service_user_key)",
        "v2": "billing cycle: Devin's, from GET /v2/enterprise/consumption/cycles "
        "(devin.enterprise_key)",
        "cycle_start_day": f"billing cycle: from day {settings.billing.cycle_start_day} of "
        "each month at 08:00 UTC (billing.cycle_start_day)",
        None: f"billing cycle: unknown, so nothing cycle-based is exported; {NO_CYCLE_SOURCE}",
    }[source]
    if source in ("v3", "v2") and settings.billing.cycle_start_day is not None:
        cycle += f", else day {settings.billing.cycle_start_day} (billing.cycle_start_day)"
    rows = [t.row for t in billing_targets(settings) if not strategy_of(t.row).first]
    if rows:
        limits = "ACU limits: from " + ", ".join(row.path for row in rows)
    elif not settings.enabled("acu_limits"):
        limits = "ACU limits: not read (endpoints.acu_limits is disabled)"
    else:
        limits = (
            "ACU limits: unknown, so none are exported; they need "
            "devin.enterprise_service_user_key or devin.enterprise_key"
        )
    price = settings.billing.acu_price
    money = (
        f"spend: {price:g} {settings.billing.currency} per ACU (billing.acu_price)"
        if price is not None
        else "spend: in ACUs (set billing.acu_price for money)"
    )
    return [cycle, limits, money]


def log_billing(settings: Settings) -> None:
    """Say once where the billing cycle and the limits come from, or why they are unknown."""
    if settings.cycle_source is None:
        log.warning(
            "billing_cycle_unknown",
            effect="no devin_billing_cycle_* series and no window=cycle",
            hint=NO_CYCLE_SOURCE,
        )
    else:
        log.info("billing_cycle_source", source=settings.cycle_source)
    if all(strategy_of(t.row).first for t in billing_targets(settings)):
        log.info("acu_limits_unknown", hint=explain_billing(settings)[1])

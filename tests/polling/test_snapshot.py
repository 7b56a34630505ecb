"""What a poll leaves for /metrics and the status page: how long a sample is served."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fakes import INTERVAL, NOW, Clock, FakeDevin, make_poller, target
from pydantic import SecretStr

from exporter.devin.models import SessionMetrics
from exporter.devin.table import ENDPOINTS
from exporter.polling.backoff import AuthBackoff
from exporter.polling.snapshot import Sample, Snapshot, fresh_samples, stale_after_for
from exporter.polling.targets import Target


def test_stale_after_is_never_less_than_three_of_the_targets_own_polls() -> None:
    hourly = Target(ENDPOINTS["v3_org_consumption_daily"], "org-a", SecretStr("cog_a"), 3600.0)
    assert 3 * 3600.0 == stale_after_for(hourly, 900.0)
    assert 4000.0 == stale_after_for(target("org-a"), 4000.0)  # 3 * INTERVAL is less


def test_a_sample_is_served_up_to_stale_after_and_not_a_second_longer() -> None:
    fast, hourly = (
        target("org-a"),
        Target(ENDPOINTS["v3_org_consumption_daily"], "org-b", SecretStr("cog_b"), 3600.0),
    )
    value = SessionMetrics.model_validate({})
    samples = {(fast, "1h"): Sample(value, NOW), (hourly, "1h"): Sample(value, NOW)}
    stale_after = 3 * INTERVAL
    assert samples == fresh_samples(samples, NOW + stale_after, stale_after)
    assert {(hourly, "1h"): samples[hourly, "1h"]} == fresh_samples(
        samples, NOW + stale_after + 1, stale_after
    )
    assert {} == fresh_samples(samples, NOW + 3 * 3600.0 + 1, stale_after)


async def test_a_snapshot_is_a_copy_that_later_polls_leave_alone() -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"))
    await poller.poll_all()
    before = poller.snapshot()
    clock.now += INTERVAL
    await poller.poll_all()
    after = poller.snapshot()
    assert before.version < after.version
    assert NOW == before.samples[target("org-a"), "1h"].fetched_at
    assert NOW == before.states[target("org-a"), "1h"].last_success
    assert NOW + INTERVAL == after.states[target("org-a"), "1h"].last_success


def test_the_next_poll_is_the_intervals_next_run_or_later_while_the_key_backs_off() -> None:
    a, b, hourly = (
        target("org-a"),
        target("org-b"),
        Target(ENDPOINTS["v3_org_consumption_daily"], "org-a", SecretStr("cog_a"), 3600.0),
    )
    snapshot = Snapshot(
        version=1,
        targets=(a, b, hourly),
        windows=(),
        samples={},
        states={},
        up={},
        backoff={a: AuthBackoff("forbidden", 3, NOW + 4 * INTERVAL)},
        next_runs={INTERVAL: NOW + INTERVAL},
    )
    assert NOW + 4 * INTERVAL == snapshot.next_poll(a)
    assert NOW + INTERVAL == snapshot.next_poll(b)
    assert snapshot.next_poll(hourly) is None  # no job for its interval: nothing scheduled


async def test_the_pollers_snapshot_holds_the_next_run_of_each_interval() -> None:
    hourly = Target(ENDPOINTS["v3_org_consumption_daily"], "org-a", SecretStr("cog_a"), 3600.0)
    poller = make_poller(FakeDevin(), Clock(), target("org-a"), hourly)
    assert {} == poller.snapshot().next_runs  # no scheduler to ask
    scheduler = AsyncIOScheduler()
    poller.schedule(scheduler)
    scheduler.start(paused=True)
    try:
        runs = poller.snapshot().next_runs
        assert {INTERVAL, 3600.0} == set(runs)
        assert runs[INTERVAL] < runs[3600.0]
    finally:
        scheduler.shutdown(wait=False)

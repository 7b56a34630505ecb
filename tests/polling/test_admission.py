"""Targets admitted per API key: a cap on polls under way, each key counted on its own."""

from __future__ import annotations

import asyncio

import pytest
from fakes import H1, H24, Clock, FakeDevin, Model, target
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from exporter.devin.table import Call, Endpoint
from exporter.metrics.instruments import Instruments
from exporter.polling.admission import Admission
from exporter.polling.poller import Poller
from exporter.polling.targets import Target


class CountingDevin(FakeDevin):
    """Counts the orgs with a request under way, per key, and keeps the highest count."""

    def __init__(self) -> None:
        super().__init__()
        self.busy: dict[str, set[str]] = {}
        self.most: dict[str, int] = {}

    async def fetch(self, endpoint: Endpoint[Model], key: SecretStr, call: Call) -> Model:
        secret, org = key.get_secret_value(), call.path["org_id"]
        busy = self.busy.setdefault(secret, set())
        busy.add(org)
        self.most[secret] = max(self.most.get(secret, 0), len(busy))
        try:
            await asyncio.sleep(0)  # let every other admitted target start its requests
            return await super().fetch(endpoint, key, call)
        finally:
            busy.discard(org)


def _poller(api: FakeDevin, targets: list[Target], admission: Admission) -> Poller:
    registry = CollectorRegistry()
    return Poller(
        api, targets, [H1, H24], Instruments(registry), clock=Clock(), admission=admission
    )


async def test_no_more_targets_of_one_key_run_at_once_than_admitted() -> None:
    api = CountingDevin()
    targets = [target(f"org-{i}") for i in range(10)]
    poller = _poller(api, targets, Admission(3))
    await poller.poll_all()
    assert {"cog_a": 3} == api.most
    assert poller.ready
    assert 20 == len(poller.samples)


async def test_each_key_has_its_own_count() -> None:
    api = CountingDevin()
    targets = [target(f"{key}-org-{i}", key) for i in range(4) for key in ("cog_a", "cog_b")]
    poller = _poller(api, targets, Admission(2))
    await poller.poll_all()
    assert {"cog_a": 2, "cog_b": 2} == api.most


async def test_close_cancels_the_targets_waiting_to_be_admitted() -> None:
    api = CountingDevin()
    api.gate = asyncio.Event()  # the admitted target never gets its answer
    poller = _poller(api, [target("org-0"), target("org-1")], Admission(1))
    poller.dispatch(list(poller.targets))
    await asyncio.sleep(0.01)
    await poller.close()
    assert {"org-0": 2} == dict(api.calls)  # org-1 never started
    assert not poller.samples


def test_a_cap_below_one_target_is_refused() -> None:
    with pytest.raises(ValueError, match="targets_per_key must be positive"):
        Admission(0)


def test_the_cap_follows_the_requests_a_key_may_have_in_flight() -> None:
    assert 32 == Admission.for_concurrency(16).targets_per_key

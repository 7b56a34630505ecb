"""Hand-written fakes of the DevinAPI Protocol and the poller built on them (no sockets)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry
from pydantic import BaseModel, SecretStr

from exporter.devin.errors import DevinAPIError
from exporter.devin.models import CursorPage, EnterpriseSessions, OffsetPage, SessionMetrics
from exporter.devin.table import ENDPOINTS, Call, Endpoint
from exporter.metrics.instruments import Instruments
from exporter.polling.poller import Poller
from exporter.polling.targets import Target
from exporter.windows import Window

Model = TypeVar("Model", bound=BaseModel)
Item = TypeVar("Item", bound=BaseModel)

NOW = 1_800_000_000.0
INTERVAL = 300.0
H1, H24 = Window(3600, "1h"), Window(86400, "24h")


# A complete v3 sessions answer, as the contract gives it, for narrow client tests.
SESSION_BODY: dict[str, Any] = {
    "sessions_created_count": 7,
    "sessions_created_by_size": {"xs": 3, "m": 4},
    "sessions_created_by_origin": {"slack": 5, "github": 2},
    "sessions_created_with_playbook_count": 1,
    "sessions_created_with_search_count": 2,
    "sessions_with_merged_prs_count": 3,
    "sessions_with_merged_prs_by_size": {"xs": 2, "m": 1},
    "avg_acus_per_session": 1.75,
}


def metrics(created: int) -> SessionMetrics:
    return SessionMetrics.model_validate(
        {
            "sessions_created_count": created,
            "sessions_created_by_size": {"xs": created},
            "sessions_created_by_origin": {"api": created},
            "sessions_created_with_playbook_count": 0,
            "sessions_created_with_search_count": 0,
            "sessions_with_merged_prs_count": 0,
            "sessions_with_merged_prs_by_size": {},
            "avg_acus_per_session": 1.0,
        }
    )


class FakeDevin:
    """Answers v3 sessions with the window's length as its count, and v2 sessions with 7;
    an org mapped to an error raises it. Counts calls per org."""

    def __init__(self) -> None:
        self.errors: dict[str, DevinAPIError] = {}
        self.calls: Counter[str] = Counter()
        self.keys_seen: list[str] = []
        self.gate: asyncio.Event | None = None  # when set, requests wait for it

    async def fetch(self, endpoint: Endpoint[Model], key: SecretStr, call: Call) -> Model:
        org = call.path.get("org_id") or ",".join(call.params.get("org_ids", []))
        self.calls[org] += 1
        self.keys_seen.append(key.get_secret_value())
        if self.gate is not None:
            await self.gate.wait()
        if org in self.errors:
            raise self.errors[org]
        if endpoint.model is SessionMetrics:
            answer: BaseModel = metrics(call.params["time_before"] - call.params["time_after"])
        elif endpoint.model is EnterpriseSessions:
            answer = EnterpriseSessions(sessions_count=7)
        else:
            raise NotImplementedError(endpoint.name)
        assert isinstance(answer, endpoint.model)
        return answer

    async def pages(
        self,
        endpoint: Endpoint[CursorPage[Item]] | Endpoint[OffsetPage[Item]],
        key: SecretStr,
        *,
        page_size: int = 100,
        call: Call | None = None,
    ) -> list[Item]:
        raise NotImplementedError(endpoint.name)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def target(org: str, key: str = "cog_a") -> Target:
    return Target(ENDPOINTS["v3_org_sessions"], org, SecretStr(key), INTERVAL)


def make_poller(api: FakeDevin, clock: Clock, *targets: Target) -> Poller:
    return Poller(
        api,
        list(targets),
        [H1, H24],
        Instruments(CollectorRegistry()),
        clock=clock,
    )

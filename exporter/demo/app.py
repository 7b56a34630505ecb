"""The demo Devin API: Devin's metrics, consumption and organisation endpoints, one route
per path of the endpoint table, with its auth rules and injectable faults.

Who exists is `account`, who may ask what is `auth`, the answers are `answers` (keyed by
row), what goes wrong is `faults`, and `/_demo/*` is `admin`. The 422 of a query the
contract does not document is FastAPI's HTTPValidationError shape.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from exporter.demo.account import DemoAccount
from exporter.demo.admin import admin_on_loopback_only, admin_routes
from exporter.demo.answers import Answer, Ask, answer_of
from exporter.demo.auth import denied
from exporter.demo.faults import FaultPlan, respond
from exporter.demo.query import Clock
from exporter.devin.spec import Contract
from exporter.devin.table import ACTIVE_USER_PERIODS, ROWS, Endpoint

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route(row: Endpoint[Any]) -> str:
    """The aiohttp route of a row's path template."""
    return row.path.replace("{period}", f"{{period:{'|'.join(ACTIVE_USER_PERIODS)}}}")


class DemoAPI:
    """The aiohttp application of the demo API; `plan` and `account` may change at run time."""

    def __init__(
        self,
        account: DemoAccount,
        *,
        plan: FaultPlan | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.account = account
        self.plan = plan or FaultPlan()
        self._clock = clock

    def app(self) -> web.Application:
        """Devin's routes, one per path of the endpoint table, and the admin API."""
        app = web.Application(middlewares=[admin_on_loopback_only])
        contract = Contract.load()
        by_path: dict[str, list[Endpoint[Any]]] = {}
        for row in ROWS:  # rows that use one endpoint two ways share its route
            by_path.setdefault(row.path, []).append(row)
        app.add_routes(
            [web.get(_route(rows[0]), self._serve(rows, contract)) for rows in by_path.values()]
        )
        app.add_routes(admin_routes(self))
        return app

    def _serve(self, rows: Sequence[Endpoint[Any]], contract: Contract) -> Handler:
        """The route of the rows of one path: count a request under its row (and pick its
        fault), refuse a key that may not ask, refuse a query the contract does not
        document, then answer.

        Rows share a path when they use one endpoint two ways: a request without
        `org_ids` is the whole-enterprise row's. The 422 for an undocumented, missing or
        mistyped parameter is FastAPI's HTTPValidationError, and stricter than Devin
        (which may ignore an unknown one) on purpose: a client that sends what the
        contract lacks must fail here.
        """
        path = rows[0].path
        operation = contract.operation(path.replace("{period}", ACTIVE_USER_PERIODS[0]))
        if operation is None:
            raise LookupError(f"{rows[0].name}: {path} is not in the contract")
        answers: dict[str, Answer] = {row.name: answer_of(row) for row in rows}

        async def serve(request: web.Request) -> web.StreamResponse:
            ask = Ask(
                request,
                request.match_info.get("org_id", ""),
                request.query.getall("org_ids", []),
                self.account,
                self._clock,
            )
            row = next((r for r in rows if r.whole_enterprise == (not ask.org_ids)), rows[0])
            fault = self.plan.next_fault(row.name, ask.org_id or ",".join(ask.org_ids))
            refused = denied(self.account, row, request, ask.org_id)
            if refused is not None:
                return refused
            problems = operation.check_query(
                {n: request.query.getall(n) for n in set(request.query)}
            )
            if problems:
                return web.json_response({"detail": [p.as_detail() for p in problems]}, status=422)
            body = answers[row.name](ask)
            if isinstance(body, web.Response):
                return body
            return await respond(request, fault, body)

        return serve

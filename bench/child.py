"""The processes of a benchmark: `python -m bench.child ROLE 'JSON-ARGS'`.

Each role starts its server (or load generator), says so on stdout as a line
`@bench {...}`, then answers commands, one JSON object a line on stdin, until stdin
closes. Anything else a role prints (logs) goes to stderr.

Roles:
  demo      the demo Devin API, every target delayed by `delay_seconds` (the seed
            endpoints', or with `every_endpoint` every endpoint's); `delay` re-times it
  exporter  the exporter, built by `exporter.main.start` from settings values; its
            `@bench` line comes when the first snapshot is complete, or with
            `hello: started` as soon as it serves
  stock     a stock prometheus-client exporter: one Gauge child per series, rendered on
            every scrape by `prometheus_client.start_http_server`
  static    aiohttp returning prebuilt bytes (gzipped once): the floor
  loadgen   the asyncio load generator of `bench.loadgen`
  imports   the exporter's modules imported, nothing running: the memory floor
  deps      the dependencies alone imported: the floor under that floor
  replay    a bare aiohttp or httpx client sending the requests the demo recorded
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Command = dict[str, Any]
Handler = Callable[[Command], Awaitable[dict[str, Any]]]

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT = "text/plain; version=0.0.4; charset=utf-8"


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write("@bench " + json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve_commands(handler: Handler) -> None:
    """Answer each command line with one `@bench` line; return when stdin closes."""
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line.strip():
            if not line:
                return
            continue
        command = json.loads(line)
        if command.get("cmd") == "quit":
            return
        try:
            emit(await handler(command))
        except Exception as err:  # the parent reports it; the child keeps serving
            emit({"error": f"{type(err).__name__}: {err}"})


async def _no_commands(command: Command) -> dict[str, Any]:
    return {"error": f"unknown command {command.get('cmd')!r}"}


# --- demo ------------------------------------------------------------------------------


async def run_demo(args: dict[str, Any]) -> None:
    from aiohttp import web

    from exporter.demo.account import DemoAccount
    from exporter.demo.app import DemoAPI
    from exporter.demo.faults import Fault, FaultPlan, PlanEntry
    from exporter.devin.table import ENDPOINTS
    from exporter.web.listener import listen

    account = DemoAccount.generate(args["orgs"], seed=args.get("seed", 1))
    every_endpoint = bool(args.get("every_endpoint", False))

    def delays(seconds: float) -> list[PlanEntry]:
        if not seconds:
            return []
        faults = [Fault(delay_seconds=seconds)]
        ids = [o.id for o in account.orgs]
        if every_endpoint:
            names = list(ENDPOINTS)
            return [PlanEntry(endpoint=n, org=i, faults=faults) for n in names for i in [*ids, ""]]
        entries = [PlanEntry(endpoint="v3_org_sessions", org=i, faults=faults) for i in ids]
        entries += [PlanEntry(endpoint="v2_enterprise_sessions", org=i, faults=faults) for i in ids]
        entries.append(PlanEntry(endpoint="v2_enterprise_sessions", org="", faults=faults))
        return entries

    api = DemoAPI(account, plan=FaultPlan(delays(float(args.get("delay_seconds", 0.0)))))
    app = api.app()
    # Between `record` and `recorded`: every request as sent, for a bare client to replay.
    recording: list[list[str]] | None = None

    @web.middleware
    async def record(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
        if recording is not None:
            recording.append([request.headers.get("Authorization", ""), request.path_qs])
        return await handler(request)

    app.middlewares.insert(0, record)
    listener = await listen(app, "127.0.0.1:0")
    try:
        # Throw-away keys of the demo API, sent to the parent over a pipe, never logged.
        emit(
            {
                "url": listener.url,
                "service_user_key": account.service_user_key,
                "enterprise_key": account.enterprise_key,
                "enterprise_service_user_key": account.enterprise_service_user_key,
                "orgs": [{"id": o.id, "name": o.name} for o in account.orgs],
            }
        )

        async def requests(command: Command) -> dict[str, Any]:
            nonlocal recording
            if command.get("cmd") == "record":
                recording = []
            if command.get("cmd") == "recorded":
                recorded, recording = recording or [], None
                return {"requests": recorded}
            if command.get("cmd") == "delay":
                api.plan.clear()
                for entry in delays(float(command["seconds"])):
                    api.plan.set(entry)
            return {"requests": sum(api.plan.requests.values())}

        await serve_commands(requests)
    finally:
        await listener.close()


# --- exporter --------------------------------------------------------------------------


async def run_exporter(args: dict[str, Any]) -> None:
    """The exporter as `exporter.main.start` builds it; `cycle` times one `poll_all()`."""
    from exporter import main
    from exporter.config import load_settings
    from exporter.logs import configure_logging

    configure_logging("error", "logfmt")
    settings = load_settings(None, **args["settings"])
    async with main.http_client(settings) as http:
        start_called = time.time()
        runtime = await main.start(settings, http)
        try:
            poller = runtime.poller
            if args.get("hello") == "started":
                emit({"url": runtime.url, "start_called_at": start_called})
            else:
                # `ready` is a property, with no event to wait on: look at it every 2 ms.
                while not runtime.poller.ready:  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
                emit(
                    {
                        "url": runtime.url,
                        "start_called_at": start_called,
                        "ready_at": time.time(),
                        "targets": len(poller.targets),
                        "targets_down": sum(not poller.up(t) for t in poller.targets),
                    }
                )

            async def cycle(command: Command) -> dict[str, Any]:
                if command.get("cmd") != "cycle":
                    return await _no_commands(command)
                started = time.perf_counter()
                await poller.poll_all()
                seconds = time.perf_counter() - started
                down = sum(not poller.up(t) for t in poller.targets)
                return {"seconds": seconds, "targets_down": down}

            await serve_commands(cycle)
        finally:
            await runtime.close()


# --- stock prometheus-client -----------------------------------------------------------


def run_stock(args: dict[str, Any]) -> None:
    """The same series as Gauges in a fresh registry, served by `start_http_server`."""
    from prometheus_client import CollectorRegistry, Gauge, start_http_server
    from prometheus_client.parser import text_string_to_metric_families

    registry = CollectorRegistry()
    gauges: dict[str, Gauge] = {}
    text = Path(args["exposition"]).read_text(encoding="utf-8")
    series = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names = sorted(sample.labels)
            gauge = gauges.get(sample.name)
            if gauge is None:
                gauge = gauges[sample.name] = Gauge(
                    sample.name, family.documentation or sample.name, names, registry=registry
                )
            child = gauge.labels(*(sample.labels[n] for n in names)) if names else gauge
            child.set(sample.value)
            series += 1
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    emit({"url": f"http://127.0.0.1:{server.server_port}", "series": series})
    for line in sys.stdin:  # until the parent says quit or closes stdin
        if line.strip() and json.loads(line).get("cmd") == "quit":
            break
    server.shutdown()
    thread.join(timeout=5)


# --- static ----------------------------------------------------------------------------


async def run_static(args: dict[str, Any]) -> None:
    """The floor: the same bodies, prebuilt (and gzipped once), chosen by the request headers."""
    from aiohttp import web

    from exporter.web.listener import listen

    text = await asyncio.to_thread(Path(args["text"]).read_bytes)
    openmetrics = await asyncio.to_thread(Path(args["openmetrics"]).read_bytes)
    bodies = {
        (False, False): text,
        (False, True): gzip.compress(text),
        (True, False): openmetrics,
        (True, True): gzip.compress(openmetrics),
    }

    async def metrics(request: web.Request) -> web.Response:
        om = "application/openmetrics-text" in request.headers.get("Accept", "")
        gz = "gzip" in request.headers.get("Accept-Encoding", "")
        headers = {"Content-Type": OPENMETRICS if om else TEXT}
        if gz:
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=bodies[om, gz], headers=headers)

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics)])
    listener = await listen(app, "127.0.0.1:0")
    try:
        emit({"url": listener.url})
        await serve_commands(_no_commands)
    finally:
        await listener.close()


# --- replay ----------------------------------------------------------------------------


async def run_replay(args: dict[str, Any]) -> None:
    """A bare client (aiohttp, or httpx with its own pool) sending given requests, each
    key under the exporter's rate and cap on requests in flight: the floor of a cycle."""
    started = time.perf_counter()
    from bench.replay import Replay

    replay = Replay(args["client"], args["url"], args["rate"], args["concurrency"])
    emit({"import_seconds": time.perf_counter() - started})

    async def run(command: Command) -> dict[str, Any]:
        if command.get("cmd") != "run":
            return await _no_commands(command)
        return (await replay.run([tuple(r) for r in command["requests"]])).__dict__

    try:
        await serve_commands(run)
    finally:
        await replay.close()


# --- load generator --------------------------------------------------------------------


async def run_loadgen(args: dict[str, Any]) -> None:
    from bench.loadgen import Cell, run_python

    async def cell(command: Command) -> dict[str, Any]:
        result = await run_python(Cell(**command["cell"]))
        return result.to_json()

    emit({"ready": True})
    await serve_commands(cell)


async def run_imports(args: dict[str, Any]) -> None:
    import importlib

    started = time.perf_counter()
    for module in ("exporter.main", "exporter.cli"):
        importlib.import_module(module)
    emit({"modules": len(sys.modules), "import_seconds": time.perf_counter() - started})
    await serve_commands(_no_commands)


# What the exporter's memory is measured against: its dependencies, imported.
DEPENDENCIES = (
    "aiohttp.web",
    "httpx",
    "pydantic",
    "pydantic_settings",
    "prometheus_client",
    "apscheduler.schedulers.asyncio",
    "yaml",
    "aiolimiter",
    "structlog",
)


async def run_deps(args: dict[str, Any]) -> None:
    import importlib

    # As the exporter imports them: structlog without its console extras (exporter/__init__).
    for extra in ("rich", "better_exceptions"):
        sys.modules.setdefault(extra, None)  # type: ignore[arg-type]
    started = time.perf_counter()
    for module in DEPENDENCIES:
        importlib.import_module(module)
    emit({"modules": len(sys.modules), "import_seconds": time.perf_counter() - started})
    await serve_commands(_no_commands)


def main() -> None:
    role, raw = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}"
    args: dict[str, Any] = json.loads(raw)
    if role == "stock":
        run_stock(args)
        return
    runners = {
        "demo": run_demo,
        "exporter": run_exporter,
        "static": run_static,
        "loadgen": run_loadgen,
        "imports": run_imports,
        "deps": run_deps,
        "replay": run_replay,
    }
    asyncio.run(runners[role](args))


if __name__ == "__main__":
    main()

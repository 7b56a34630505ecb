"""Shared fixtures: the demo Devin API and the exporter, as real servers on loopback."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import yaml

from exporter import main
from exporter.config import EndpointsSettings, Settings, load_settings
from exporter.demo.account import DemoAccount
from exporter.demo.app import DemoAPI
from exporter.devin.client import DevinClient
from exporter.devin.retries import RetryPolicy
from exporter.web.listener import Listener, listen

# Speed is measured by `make bench`, never asserted in tests: on a shared, loaded machine
# (the suite runs a worker per core) Hypothesis's default 200 ms deadline per example is
# a timed assertion.
hypothesis.settings.register_profile("devin-exporter", deadline=None)
hypothesis.settings.load_profile("devin-exporter")

ROOT = Path(__file__).resolve().parent.parent
ALL_GROUPS = tuple(EndpointsSettings.model_fields)
SEED_GROUPS = ("sessions", "enterprise_sessions")
# A fixed "now" for in-process runs: the demo API and the exporter agree on every window.
FIXED_NOW = 1_790_000_000.0


def require_tool(name: str) -> str:
    """Path of an external tool; in CI a missing tool fails the test instead of skipping it."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run must install it")
        pytest.skip(f"{name} is not installed (apt-get install prometheus)")
    return path


@dataclass
class Demo:
    """A demo Devin API serving on loopback."""

    api: DemoAPI
    listener: Listener

    @property
    def account(self) -> DemoAccount:
        return self.api.account

    @property
    def url(self) -> str:
        return self.listener.url

    def settings(self, *, everything: bool = False, **overrides: Any) -> Settings:
        """Settings that poll this demo API with its keys and organisations; with
        `everything`, every opt-in endpoint group too, and the enterprise service user."""
        values: dict[str, Any] = {
            "devin": {
                "base_url": self.url,
                "service_user_key": self.account.service_user_key,
                "enterprise_key": self.account.enterprise_key,
                "timeout": "5s",
                # Retries stay on, but fast: tests must not sleep through real backoffs.
                "retry_initial_backoff": "10ms",
                "retry_max_backoff": "50ms",
                "requests_per_second": 1000,
            },
            "organizations": [{"id": o.id, "name": o.name} for o in self.account.orgs],
            "poll_interval": "1h",  # tests drive polls themselves
            "web": {"listen_address": "127.0.0.1:0"},
        }
        if everything:
            values["devin"]["enterprise_service_user_key"] = (
                self.account.enterprise_service_user_key
            )
            values["endpoints"] = {group: {"enabled": True} for group in ALL_GROUPS}
            values["billing"] = {"acu_price": 2.25, "currency": "EUR"}
        values.update(overrides)
        return load_settings(None, **values)


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    """The demo API with three organisations and an extra origin, its clock fixed."""
    account = DemoAccount.generate(3, extra_origins=["github"])
    api = DemoAPI(account, clock=lambda: FIXED_NOW)
    listener = await listen(api.app(), "127.0.0.1:0")
    try:
        yield Demo(api, listener)
    finally:
        await listener.close()


@pytest.fixture
async def moving_demo(clock: Clock) -> AsyncIterator[Demo]:
    """The demo API on the same hand-moved clock as the exporter."""
    api = DemoAPI(DemoAccount.generate(2), clock=clock)
    listener = await listen(api.app(), "127.0.0.1:0")
    try:
        yield Demo(api, listener)
    finally:
        await listener.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def wait_until(condition: Callable[[], bool], within_seconds: float = 10.0) -> None:
    """Poll `condition` on the event loop until it holds; fail after `within_seconds`."""
    deadline = time.monotonic() + within_seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@dataclass
class Clock:
    """A clock that tests move by hand."""

    now: float = FIXED_NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


# The exporter and the demo API as separate processes, as an operator runs them.


@dataclass
class ExporterProcess:
    """`devin-exporter` and `devin-exporter demo-api` running as real processes."""

    url: str
    demo_admin_url: str
    demo: subprocess.Popen[str]
    exporter: subprocess.Popen[str]
    log_path: Path
    keys: list[str] = field(default_factory=list)

    def inject_fault(self, endpoint: str, org: str, status: int) -> None:
        """From now on, the demo API answers every request of this target with `status`."""
        body = {"endpoint": endpoint, "org": org, "faults": [{"status": status}]}
        httpx.post(f"{self.demo_admin_url}/faults", json=body, timeout=5).raise_for_status()

    def clear_faults(self) -> None:
        httpx.delete(f"{self.demo_admin_url}/faults", timeout=5).raise_for_status()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")


def wait_for_line(
    path: Path, pattern: str, process: subprocess.Popen[str], within_seconds: float = 20
) -> re.Match[str]:
    """The first match of `pattern` in a process's log file; fail if it exits first."""
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        match = re.search(pattern, path.read_text(encoding="utf-8"))
        if match:
            return match
        if process.poll() is not None:
            raise AssertionError(f"process exited early:\n{path.read_text(encoding='utf-8')}")
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r} in:\n{path.read_text(encoding='utf-8')}")


def stop_process(process: subprocess.Popen[str]) -> None:
    """Terminate, and kill if it has not gone within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_processes(tmp_path: Path, **config: Any) -> Iterator[ExporterProcess]:
    """Start the demo API, write a config for it, start the exporter, wait until ready."""
    demo_out = tmp_path / "demo.log"
    with demo_out.open("w") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "exporter.cli", "demo-api", "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    exporter: subprocess.Popen[str] | None = None
    try:
        demo_url = wait_for_line(demo_out, r"demo Devin API on (\S+)", demo).group(1)
        text = demo_out.read_text(encoding="utf-8")
        cog = re.search(r"\(cog_\):\s+(\S+)", text)
        apk = re.search(r"\(apk_user_\):\s+(\S+)", text)
        enterprise_cog = re.search(r"enterprise service user key \(cog_\):\s+(\S+)", text)
        orgs = re.findall(r"organization (\S+)  (.+)", text)
        assert cog is not None, text
        assert apk is not None, text
        assert enterprise_cog is not None, text
        assert orgs, text
        keys = [cog.group(1), apk.group(1), enterprise_cog.group(1)]
        (tmp_path / "cog.key").write_text(keys[0] + "\n")
        document: dict[str, Any] = {
            "devin": {
                "base_url": demo_url,
                "service_user_key_file": str(tmp_path / "cog.key"),
                "enterprise_key": keys[1],
                "enterprise_service_user_key": keys[2],
                "requests_per_second": 100,
                "retry_initial_backoff": "10ms",
                "retry_max_backoff": "50ms",
            },
            "organizations": [{"id": o, "name": n} for o, n in orgs],
            # A poll's requests (and their waits for the key's rate limit) must end within
            # poll_interval: 5 s leaves room on a loaded 2-CPU machine. The seed groups are
            # polled every 2 s; the others, polled at start like every group, every 10 s.
            "poll_interval": "5s",
            "endpoints": {
                group: {"enabled": True, "interval": "2s" if group in SEED_GROUPS else "10s"}
                for group in ALL_GROUPS
            },
            "web": {"listen_address": "127.0.0.1:0"},
            "log": {"level": "debug"},
            # The Budget row shows spend in this currency (ACUs x devin_acu_price).
            "billing": {"acu_price": 2.25, "currency": "EUR"},
            **config,
        }
        config_path = tmp_path / "config.yaml"
        config_path.write_text(yaml.safe_dump(document))
        log_path = tmp_path / "exporter.log"
        with log_path.open("w") as err:
            exporter = subprocess.Popen(
                [sys.executable, "-m", "exporter.cli", "--config", str(config_path)],
                stdout=err,
                stderr=subprocess.STDOUT,
                text=True,
            )
        url = wait_for_line(log_path, r"event=started .*address=(\S+)", exporter).group(1)
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "exporter never became ready"
            time.sleep(0.1)
        yield ExporterProcess(
            url=url,
            demo_admin_url=f"{demo_url}/_demo",
            demo=demo,
            exporter=exporter,
            log_path=log_path,
            keys=keys,
        )
    finally:
        if exporter is not None:
            stop_process(exporter)
        stop_process(demo)


processes = contextmanager(start_processes)
"""`with processes(tmp_path) as process:` for tests that need more than the fixture."""


@pytest.fixture
def demo_exporter(tmp_path: Path) -> Iterator[ExporterProcess]:
    """The exporter process polling a demo API process every 2 s (three orgs, four windows)."""
    yield from start_processes(tmp_path)


@asynccontextmanager
async def running_exporter(
    settings: Settings, clock: Callable[[], float], *, ready: bool = True
) -> AsyncIterator[main.Runtime]:
    """The exporter in-process on loopback with `settings`: started with its own HTTP client,
    after its first full poll (unless `ready` is false), and closed on the way out."""
    async with main.http_client(settings) as client:
        runtime = await main.start(settings, client, clock=clock)
        try:
            if ready:
                await wait_until(lambda: runtime.poller.ready)
            yield runtime
        finally:
            await runtime.close()


@pytest.fixture
async def running_everything(demo: Demo, clock: Clock) -> AsyncIterator[main.Runtime]:
    """Like `running`, with every endpoint group polled."""
    async with running_exporter(demo.settings(everything=True), clock) as runtime:
        yield runtime


@pytest.fixture
async def running(demo: Demo, clock: Clock) -> AsyncIterator[main.Runtime]:
    """The exporter in-process, on loopback, after its first full poll of the demo API."""
    async with running_exporter(demo.settings(), clock) as runtime:
        yield runtime


# Narrow client tests: DevinClient over httpx.MockTransport, one attempt per call (retries
# have their own tests in test_client_retries.py).

MOCK_BASE_URL = "https://devin.test"
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records requests and answers with `respond`."""

    def __init__(self, respond: Handler) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)


def answer(status: int, body: Any = None) -> Handler:
    return lambda request: httpx.Response(status, json=body)


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., DevinClient]]:
    """Builds one-attempt DevinClients over MockTransports; closes their httpx clients."""
    opened: list[httpx.AsyncClient] = []

    def build(handler: Handler, **kwargs: Any) -> DevinClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=MOCK_BASE_URL)
        opened.append(http)
        kwargs.setdefault("retry", RetryPolicy(attempts=1))
        return DevinClient(http, **kwargs)

    try:
        yield build
    finally:
        for http in opened:
            await http.aclose()

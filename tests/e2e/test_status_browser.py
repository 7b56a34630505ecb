"""The status page in a real browser: headless Chromium against the running exporter, at 3
and at 100 organisations with failures injected into the demo API.

Chromium runs its own JavaScript before `--dump-dom` prints the DOM, and
`--virtual-time-budget` lets 16 s of page time (one auto-refresh) pass in well under one
real second, so no test waits for the refresh. The 100-organisation test keeps a
screenshot under pytest's tmp dir (its path is printed); with KEEP_SCREENSHOTS=1 it is
also copied to tests/artifacts/status-page-100.png.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import shutil
import signal
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, Demo, wait_until

from exporter import main
from exporter.demo.account import DemoAccount
from exporter.demo.app import DemoAPI
from exporter.demo.faults import Fault, PlanEntry
from exporter.web.listener import listen

pytestmark = pytest.mark.slow  # real processes, servers or builds

BROWSER_TIMEOUT_SECONDS = 30.0
# Past one auto-refresh (15 s) of page time.
REFRESH_BUDGET_MS = 16_000
SCREENSHOT_SIZE = (1400, 1000)
ARTIFACT = ROOT / "tests" / "artifacts" / "status-page-100.png"
_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI containers run as root, where the sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
)


def chromium() -> str:
    """Path of a Chromium; in CI a missing one fails the test instead of skipping it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path is not None:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; .ci/run must install it")
    pytest.skip("chromium is not installed (apt-get install chromium): no real browser to run")


@dataclass(frozen=True)
class Row:
    state: str
    hidden: bool
    text: str  # the cells' text, joined by " | "


@dataclass(frozen=True)
class Page:
    """The DOM as Chromium left it, read the way a person reads the screen."""

    dom: str

    def _text(self, pattern: str) -> str | None:
        match = re.search(pattern, self.dom, re.DOTALL)
        return None if match is None else _plain(match.group(1))

    @property
    def headline(self) -> str | None:
        return self._text(r'<p id="headline"[^>]*>(.*?)</p>')

    @property
    def refresh_note(self) -> str | None:
        return self._text(r'<span id="refresh">(.*?)</span>')

    @property
    def refreshes(self) -> int:
        match = re.search(r'<body[^>]* data-refreshes="(\d+)"', self.dom)
        return 0 if match is None else int(match.group(1))

    @property
    def counts(self) -> dict[str, int]:
        """The summary boxes: {"failing": 2, ...}."""
        return {
            state: int(n)
            for state, n in re.findall(
                r'<a class="(\w+)[^"]*" href="\?state=\w+"><b>(\d+)</b>', self.dom
            )
        }

    @property
    def rows(self) -> list[Row]:
        body = re.search(r"<tbody>(.*?)</tbody>", self.dom, re.DOTALL)
        assert body is not None, self.dom[:2000]
        return [
            Row(
                state,
                bool(hidden),
                " | ".join(_plain(c) for c in re.findall(r"<td>(.*?)</td>", cells, re.DOTALL)),
            )
            for state, hidden, cells in re.findall(
                r'<tr class="(\w+)"( hidden="")?>(.*?)</tr>', body.group(1), re.DOTALL
            )
        ]

    @property
    def visible(self) -> list[Row]:
        return [row for row in self.rows if not row.hidden]

    @property
    def says_nothing_matches(self) -> bool:
        return '<p id="empty">' in self.dom


def _plain(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", fragment)).split())


class Browser:
    """Runs headless Chromium, one process per page, each with its own profile."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self._executable = executable
        self._workdir = workdir
        self._runs = 0

    async def _run(self, *args: str) -> str:
        self._runs += 1
        profile = self._workdir / f"chromium-profile-{self._runs}"
        process = await asyncio.create_subprocess_exec(
            self._executable,
            *_FLAGS,
            f"--user-data-dir={profile}",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its helpers share its process group, for the kill
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), BROWSER_TIMEOUT_SECONDS)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise AssertionError(f"chromium took over {BROWSER_TIMEOUT_SECONDS} s") from None
        assert 0 == process.returncode, err.decode(errors="replace")[-2000:]
        return out.decode()

    async def page(self, url: str, *, budget_ms: int = REFRESH_BUDGET_MS) -> Page:
        """The DOM after the page's script ran and `budget_ms` of page time passed."""
        return Page(await self._run(f"--virtual-time-budget={budget_ms}", "--dump-dom", url))

    async def screenshot(self, url: str, path: Path) -> None:
        width, height = SCREENSHOT_SIZE
        await self._run(f"--window-size={width},{height}", f"--screenshot={path}", url)


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    return Browser(chromium(), tmp_path)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_at_3_orgs_the_summary_and_failing_rows_come_first_and_refresh(
    running: main.Runtime, demo: Demo, browser: Browser
) -> None:
    broken, refused = demo.account.orgs[0], demo.account.orgs[1]
    demo.api.plan.set(
        PlanEntry(endpoint="v3_org_sessions", org=broken.id, faults=[Fault(status=500)])
    )
    demo.api.plan.set(
        PlanEntry(endpoint="v3_org_sessions", org=refused.id, faults=[Fault(status=403)])
    )
    await running.poller.poll_all()

    page = await browser.page(f"{running.url}/")

    assert "2 of 9 targets need attention: 1 failing, 1 backing off" == page.headline
    # 3 orgs x 2 session targets, the v2 enterprise-wide one, the billing cycle and limits.
    assert {"failing": 1, "backing_off": 1, "pending": 0, "ok": 7} == page.counts
    assert ["failing", "backing_off"] + ["ok"] * 7 == [row.state for row in page.visible]
    first, second = page.visible[:2]
    assert f"{broken.name} {broken.id}" in first.text
    assert "server_error HTTP 500" in first.text
    assert f"lacks ViewOrgMetrics or ViewAccountMetrics on {refused.id}" in second.text
    assert "Backing off after 1 refusal in a row, until" in second.text
    # The script fetched the page again after 15 s and put the new table in place.
    assert 1 == page.refreshes
    assert "Refreshes every 15 s." == page.refresh_note
    assert 9 == len(page.rows)


# Filters in the address, and the states of the rows each leaves visible. A `#...` filter
# is applied by the script alone; a `?...` one by the server too (it works without script).
FILTERS = {
    "#state=backing_off": ["backing_off"],
    "#q=FORBIDDEN": ["backing_off"],
    "#q=server_error 500": ["failing"],
    "?state=failing": ["failing"],
    "?state=ok&q=v3_org": ["ok"],
    "#q=no-such-org": [],
}


async def test_at_3_orgs_a_filter_in_the_address_hides_the_rest_and_pauses_refresh(
    running: main.Runtime, demo: Demo, browser: Browser
) -> None:
    for org, status in ((demo.account.orgs[0].id, 500), (demo.account.orgs[1].id, 403)):
        demo.api.plan.set(
            PlanEntry(endpoint="v3_org_sessions", org=org, faults=[Fault(status=status)])
        )
    await running.poller.poll_all()

    pages = await asyncio.gather(*(browser.page(f"{running.url}/{a}") for a in FILTERS))

    for (address, shown), page in zip(FILTERS.items(), pages, strict=True):
        seen = (
            [row.state for row in page.visible],
            len(page.rows),
            page.says_nothing_matches,
            page.refreshes,
            page.refresh_note,
        )
        paused = "Auto-refresh paused while filtering."
        assert (shown, 9, not shown, 0, paused) == seen, address


@dataclass
class Hundred:
    runtime: main.Runtime
    account: DemoAccount
    refused: list[str]  # orgs whose v3 key gets a 403
    broken: str  # the org whose v2 sessions get a 500
    unknown: str  # the org whose v3 sessions get a 404


@pytest.fixture
async def hundred() -> AsyncIterator[Hundred]:
    """The exporter polling a demo API of 100 organisations, on the real clock (so the
    page's relative times read as they would in production), after its first poll."""
    account = DemoAccount.generate(100)
    api = DemoAPI(account)
    orgs = [o.id for o in account.orgs]
    refused, broken, unknown = orgs[:10], orgs[10], orgs[11]
    for org in refused:
        api.plan.set(PlanEntry(endpoint="v3_org_sessions", org=org, faults=[Fault(status=403)]))
    api.plan.set(
        PlanEntry(endpoint="v2_enterprise_sessions", org=broken, faults=[Fault(status=500)])
    )
    api.plan.set(PlanEntry(endpoint="v3_org_sessions", org=unknown, faults=[Fault(status=404)]))
    listener = await listen(api.app(), "127.0.0.1:0")
    try:
        settings = Demo(api, listener).settings()
        async with main.http_client(settings) as client:
            runtime = await main.start(settings, client)
            try:
                await wait_until(lambda: runtime.poller.ready, within_seconds=60)
                yield Hundred(runtime, account, refused, broken, unknown)
            finally:
                await runtime.close()
    finally:
        await listener.close()


async def test_at_100_orgs_the_failing_targets_lead_a_page_under_150_kb(
    hundred: Hundred, browser: Browser, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    url = f"{hundred.runtime.url}/"
    shot = tmp_path / "status-page-100.png"
    size = len((await http.get(url, headers={"Accept-Encoding": "identity"})).content)
    page, filtered, _ = await asyncio.gather(
        browser.page(url),
        browser.page(f"{url}#q=forbidden"),
        browser.screenshot(url, shot),
    )

    assert size <= 150 * 1024, size
    assert "12 of 203 targets need attention: 2 failing, 10 backing off" == page.headline
    assert {"failing": 2, "backing_off": 10, "pending": 0, "ok": 191} == page.counts
    states = [row.state for row in page.visible]
    assert ["failing"] * 2 + ["backing_off"] * 10 + ["ok"] * 191 == states
    top = " ".join(row.text for row in page.visible[:12])
    for org in [hundred.broken, hundred.unknown, *hundred.refused]:
        assert org in top
    assert "server_error HTTP 500" in top
    assert "not_found HTTP 404" in top
    assert 1 == page.refreshes

    assert ["backing_off"] * 10 == [row.state for row in filtered.visible]
    assert 203 == len(filtered.rows)

    assert SCREENSHOT_SIZE == png_size(shot)
    print(f"status page screenshot: {shot} ({size} bytes of HTML)")
    if os.environ.get("KEEP_SCREENSHOTS"):
        ARTIFACT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, ARTIFACT)

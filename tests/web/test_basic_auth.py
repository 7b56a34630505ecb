"""Basic auth under a flood of wrong passwords, against real aiohttp servers on 127.0.0.1.

bcrypt is an injected checker that records its calls and can be held shut, so the
tests assert what was checked and what waited rather than how long things took.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import bcrypt
from structlog.testing import capture_logs

from exporter.web.basic_auth import BasicAuthLimits
from exporter.web.security import WebSecurity

from .test_security import (
    ALICE_PASSWORD,
    BOB_PASSWORD,
    USERS_ALICE,
    USERS_ALICE_BOB,
    logged,
    security_for,
    serve,
    write_config,
)

ALICE = ("alice", ALICE_PASSWORD)
# Every wrong password reaches bcrypt: no per-client budget, room for all in the queue.
UNTHROTTLED = BasicAuthLimits(client_failure_burst=None, bcrypt_queue=1000)


class RecordingCheckpw:
    """bcrypt.checkpw that counts calls per password and the most running at once.

    While `gate` is clear, calls wait for it (at most 10 s, so a failing test ends):
    the workers are then busy for as long as the test wants.
    """

    def __init__(self, *, delay_seconds: float = 0.0) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.delay_seconds = delay_seconds
        self.calls: Counter[bytes] = Counter()
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def __call__(self, password: bytes, hashed: bytes) -> bool:
        with self._lock:
            self.calls[password] += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.gate.wait(timeout=10)
            time.sleep(self.delay_seconds)
            return bcrypt.checkpw(password, hashed)
        finally:
            with self._lock:
                self.active -= 1

    def calls_for(self, password: str) -> int:
        return self.calls[password.encode()]


async def eventually(condition: Callable[[], bool], timeout_seconds: float = 10.0) -> None:
    """Wait until `condition()` holds; fail after `timeout_seconds`."""
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def request(url: str, user: str, password: str) -> tuple[int, dict[str, str]]:
    """GET /metrics with basic auth on a fresh connection; the status and headers.

    A bare HTTP/1.1 exchange: hundreds at once cost a fraction of what httpx clients do.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    writer.write(
        f"GET /metrics HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {credentials}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    try:
        status = int((await reader.readline()).split()[1])
        headers = {}
        while line := (await reader.readline()).strip():
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
    finally:
        writer.close()
        await writer.wait_closed()
    return status, headers


async def flood(url: str, passwords: list[str], user: str = "alice") -> list[int]:
    """One request per password, all at once, each on its own connection; their statuses."""
    responses = await asyncio.gather(*(request(url, user, password) for password in passwords))
    return [status for status, _ in responses]


async def scrape(url: str, auth: tuple[str, str]) -> int:
    status, _ = await request(url, *auth)
    return status


def distinct_wrong_passwords(count: int) -> list[str]:
    return [f"wrong-password-{i}" for i in range(count)]


async def test_flood_of_distinct_wrong_passwords_never_evicts_the_correct_one(
    tmp_path: Path,
) -> None:
    """200 wrong passwords, 16 failure places: the verified password stays remembered,
    and is answered while every bcrypt worker is stuck on the flood."""
    checkpw = RecordingCheckpw()
    limits = BasicAuthLimits(client_failure_burst=None, bcrypt_queue=1000, failure_cache_size=16)
    path = write_config(tmp_path / "web.yml", USERS_ALICE)
    security = security_for(path, checkpw=checkpw, auth_limits=limits)
    wrong = distinct_wrong_passwords(200)
    async with serve(security) as url:
        assert 200 == await scrape(url, ALICE)
        checkpw.gate.clear()
        try:
            flooding = asyncio.create_task(flood(url, wrong))
            await eventually(lambda: checkpw.active == limits.bcrypt_workers)
            started = time.monotonic()
            during = await scrape(url, ALICE)
            elapsed_seconds = time.monotonic() - started
        finally:
            checkpw.gate.set()
        statuses = await flooding
        after = await scrape(url, ALICE)
    assert (200, 200) == (during, after)
    assert [401] * 200 == statuses
    assert 1 == checkpw.calls_for(ALICE_PASSWORD)  # answered from the cache ever since
    assert 200 == sum(checkpw.calls_for(password) for password in wrong)
    assert elapsed_seconds < 2  # generous: it never waits for bcrypt


async def test_bcrypt_checks_never_exceed_the_worker_bound(tmp_path: Path) -> None:
    checkpw = RecordingCheckpw(delay_seconds=0.005)
    path = write_config(tmp_path / "web.yml", USERS_ALICE)
    security = security_for(path, checkpw=checkpw, auth_limits=UNTHROTTLED)
    async with serve(security) as url:
        statuses = await flood(url, distinct_wrong_passwords(200))
    assert [401] * 200 == statuses
    assert 200 == checkpw.calls.total()
    assert UNTHROTTLED.bcrypt_workers == 2
    assert 2 == checkpw.max_active  # reached, never exceeded


async def test_unknown_users_share_the_same_worker_bound(tmp_path: Path) -> None:
    """Decoy checks for unknown user names are bcrypt work too."""
    checkpw = RecordingCheckpw(delay_seconds=0.005)
    path = write_config(tmp_path / "web.yml", USERS_ALICE)
    security = security_for(path, checkpw=checkpw, auth_limits=UNTHROTTLED)
    async with serve(security) as url:
        statuses = await flood(url, distinct_wrong_passwords(100), user="mallory")
    assert [401] * 100 == statuses
    assert 2 == checkpw.max_active  # reached, never exceeded


async def test_repeated_wrong_password_is_checked_by_bcrypt_once_among_a_flood(
    tmp_path: Path,
) -> None:
    checkpw = RecordingCheckpw()
    path = write_config(tmp_path / "web.yml", USERS_ALICE)
    security = security_for(path, checkpw=checkpw, auth_limits=UNTHROTTLED)
    async with serve(security) as url:
        first = await flood(url, ["same-wrong-password"] * 20)  # at once: one check, shared
        others = await flood(url, distinct_wrong_passwords(200))
        again = await flood(url, ["same-wrong-password"] * 20)
    assert [401] * 240 == first + others + again
    assert 1 == checkpw.calls_for("same-wrong-password")


async def test_checks_beyond_the_queue_get_503_without_bcrypt_and_cached_ones_pass(
    tmp_path: Path,
) -> None:
    """1 worker and 2 queue places: of 10 new wrong passwords, 3 are checked, 7 refused.

    A remembered password is still answered; a correct one not yet remembered waits
    its turn like any other and is refused too (Retry-After: 1).
    """
    checkpw = RecordingCheckpw()
    limits = BasicAuthLimits(bcrypt_workers=1, bcrypt_queue=2, client_failure_burst=None)
    path = write_config(tmp_path / "web.yml", USERS_ALICE_BOB)
    security = security_for(path, checkpw=checkpw, auth_limits=limits)
    wrong = distinct_wrong_passwords(10)
    async with serve(security) as url:
        assert 200 == await scrape(url, ALICE)
        checkpw.gate.clear()
        try:
            with capture_logs() as logs:
                sent = [asyncio.create_task(request(url, "alice", password)) for password in wrong]
                await eventually(lambda: sum(task.done() for task in sent) == 7)
                refused = [task.result() for task in sent if task.done()]
                alice_during = await scrape(url, ALICE)
                bob_during = await scrape(url, ("bob", BOB_PASSWORD))
        finally:
            checkpw.gate.set()
        checked = [status for status, _ in await asyncio.gather(*sent)]
    assert [(503, "1")] * 7 == [(status, headers["retry-after"]) for status, headers in refused]
    assert [401] * 3 + [503] * 7 == sorted(checked)
    assert (200, 503) == (alice_during, bob_during)
    assert 3 == sum(checkpw.calls_for(password) for password in wrong)
    assert 0 == checkpw.calls_for(BOB_PASSWORD)
    [refusal] = logged(logs, logging.WARNING)  # one line per interval, however many refused
    assert ("basic_auth_refused", "busy") == (refusal["event"], refusal["reason"])
    assert "wrong-password" not in repr(logs)


async def test_a_client_out_of_failure_budget_gets_429_without_bcrypt(tmp_path: Path) -> None:
    """3 failed checks at once, then one per 6 s; a remembered password still passes."""
    now = [1000.0]
    checkpw = RecordingCheckpw()
    limits = BasicAuthLimits(client_failure_burst=3, client_failure_refill_seconds=6)
    path = write_config(tmp_path / "web.yml", USERS_ALICE)
    security = WebSecurity.from_file(
        path, check_interval_seconds=0, clock=lambda: now[0], checkpw=checkpw, auth_limits=limits
    )
    wrong = distinct_wrong_passwords(6)
    async with serve(security) as url:
        assert 200 == await scrape(url, ALICE)  # a success costs no budget
        statuses = [await scrape(url, ("alice", password)) for password in wrong[:5]]
        throttled = await request(url, "alice", wrong[5])
        remembered = await scrape(url, ALICE)
        again = await scrape(url, ("alice", wrong[0]))  # remembered as wrong: no budget needed
        now[0] += 6
        refilled = await scrape(url, ("alice", wrong[5]))
    assert [401, 401, 401, 429, 429] == statuses
    assert (429, "6") == (throttled[0], throttled[1]["retry-after"])
    assert (200, 401, 401) == (remembered, again, refilled)
    assert 4 == sum(checkpw.calls_for(password) for password in wrong)

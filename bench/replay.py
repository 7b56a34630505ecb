"""A bare client replaying the requests of a poll cycle: the floor the exporter is held to.

The same requests (path, query and key, as the demo API recorded them from the exporter),
against the same server, each key under the same gate as the exporter's: an aiolimiter
bucket of one second's worth of requests and a cap on requests in flight. Nothing else:
no retries, no parsing, no bookkeeping; the body is read whole and dropped.

Two clients: `aiohttp` (its own `ClientSession`, the floor) and `httpx` (an
`AsyncClient` with its stock httpcore pool, sized like the exporter's was), so that the
CPU per request of each stands beside the exporter's.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiolimiter import AsyncLimiter

Request = tuple[str, str]  # (Authorization header, path with query)


@dataclass
class Ran:
    requests: int
    errors: int
    seconds: float  # wall time of the run
    cpu_seconds: float  # this process's CPU time in it
    ended_at: float  # time.time() at its end


def _limiter(rate: float) -> AsyncLimiter:
    """A key's rate limit, as `KeyGate` builds it: a bucket of one second's worth."""
    burst = max(1.0, rate)
    return AsyncLimiter(burst, burst / rate)


class Replay:
    """One client and one rate limit per key, kept from run to run (as the exporter keeps
    its connections and buckets from one cycle to the next). Each key's cap on requests
    in flight is that many workers taking its requests in turn: no task waits for
    nothing, the leanest way to keep the cap busy."""

    def __init__(self, client: str, url: str, rate: float, concurrency: int) -> None:
        self.kind = client
        self.url = url.rstrip("/")
        self.rate, self.concurrency = rate, concurrency
        self._limiters: dict[str, AsyncLimiter] = {}
        self._client: Any = None

    def _open(self, keys: int) -> Any:
        if self._client is None:
            connections = max(1, keys) * self.concurrency
            if self.kind == "aiohttp":
                import aiohttp

                self._client = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=connections),
                    auto_decompress=False,
                )
            else:
                import httpx

                self._client = httpx.AsyncClient(
                    timeout=30, limits=httpx.Limits(max_connections=connections)
                )
        return self._client

    async def _send(self, client: Any, key: str, path: str) -> bool:
        headers = {"Authorization": key, "Accept": "application/json"}
        if self.kind == "aiohttp":
            async with client.get(self.url + path, headers=headers) as response:
                await response.read()
                return bool(response.status == 200)
        answer = await client.get(self.url + path, headers=headers)
        return bool(answer.status_code == 200)

    async def _worker(self, client: Any, key: str, paths: deque[str]) -> int:
        """Sends the key's requests until none is left; returns how many failed."""
        limiter, errors = self._limiters[key], 0
        while paths:
            path = paths.popleft()
            await limiter.acquire()
            try:
                errors += not await self._send(client, key, path)
            except Exception:  # counted, and reported as errors
                errors += 1
        return errors

    async def run(self, requests: list[Request]) -> Ran:
        by_key: dict[str, deque[str]] = {}
        for key, path in requests:
            by_key.setdefault(key, deque()).append(path)
        for key in by_key:
            self._limiters.setdefault(key, _limiter(self.rate))
        client = self._open(len(by_key))
        started, cpu = time.perf_counter(), time.process_time()
        errors = await asyncio.gather(
            *(
                self._worker(client, key, paths)
                for key, paths in by_key.items()
                for _ in range(self.concurrency)
            )
        )
        return Ran(
            requests=len(requests),
            errors=sum(errors),
            seconds=time.perf_counter() - started,
            cpu_seconds=time.process_time() - cpu,
            ended_at=time.time(),
        )

    async def close(self) -> None:
        if self._client is not None:
            if self.kind == "aiohttp":
                await self._client.close()
            else:
                await self._client.aclose()

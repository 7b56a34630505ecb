"""The soak's abusers, run as a process of their own so that they load the exporter, not
the scrapers: a slowloris and an auth flood. Prints what they got as one JSON line.

    python tests/soak/abuse.py URL SECONDS SLOWLORIS FLOODERS USER
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class Abuse:
    """What the abusers did and got."""

    slow_connections: int = 0  # slowloris connections opened, reopened ones included
    flood_statuses: Counter[int] = field(default_factory=Counter)
    flood_errors: Counter[str] = field(default_factory=Counter)


async def slowloris(url: str, deadline: float, abuse: Abuse) -> None:
    """One connection that sends a request line and then a header every second, never
    ending its headers; when the server cuts it off, another takes its place."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    while time.monotonic() < deadline:
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection(host, port)
            abuse.slow_connections += 1
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: soak\r\n")
            while time.monotonic() < deadline:
                await writer.drain()
                await asyncio.sleep(1.0)
                if reader.at_eof():
                    break
                writer.write(b"X-Slow: 1\r\n")
        except OSError:
            await asyncio.sleep(0.2)
        finally:
            if writer is not None:
                writer.close()


async def auth_flood(url: str, deadline: float, number: int, user: str, abuse: Abuse) -> None:
    """Scrapes with a new wrong password every time, on new connections."""
    turn = 0
    while time.monotonic() < deadline:
        turn += 1
        async with httpx.AsyncClient(timeout=10) as http:
            try:
                response = await http.get(
                    f"{url}/metrics", auth=(user, f"wrong-{number}-{turn}-{time.monotonic()}")
                )
            except httpx.HTTPError as err:
                abuse.flood_errors[type(err).__name__] += 1
                continue
            abuse.flood_statuses[response.status_code] += 1


async def main(url: str, seconds: float, slow: int, flooders: int, user: str) -> Abuse:
    deadline = time.monotonic() + seconds
    abuse = Abuse()
    await asyncio.gather(
        *(slowloris(url, deadline, abuse) for _ in range(slow)),
        *(auth_flood(url, deadline, n, user, abuse) for n in range(flooders)),
    )
    return abuse


if __name__ == "__main__":
    url, seconds, slow, flooders, user = sys.argv[1:6]
    done = asyncio.run(main(url, float(seconds), int(slow), int(flooders), user))
    summary = {
        "slow_connections": done.slow_connections,
        "flood_statuses": {str(k): v for k, v in done.flood_statuses.items()},
        "flood_errors": dict(done.flood_errors),
    }
    print(json.dumps(summary), flush=True)

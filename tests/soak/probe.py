"""The soak's fresh client, run as a process of its own so that its latency is the
exporter's, not that of the scrapers' busy event loop: every second a brand-new client
scrapes /metrics once. Prints what it got as one JSON line. The password comes from
the SOAK_PASSWORD environment variable, not the command line.

    python tests/soak/probe.py URL SECONDS USER TIMEOUT
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter

import httpx


async def main(url: str, seconds: float, user: str, limit: float) -> dict[str, object]:
    password = os.environ["SOAK_PASSWORD"]
    deadline = time.monotonic() + seconds
    fresh: list[tuple[int, float]] = []
    errors: Counter[str] = Counter()
    while time.monotonic() < deadline:
        began = time.monotonic()
        async with httpx.AsyncClient(timeout=limit) as http:
            try:
                response = await http.get(f"{url}/metrics", auth=(user, password))
            except httpx.HTTPError as err:
                errors[type(err).__name__] += 1
            else:
                fresh.append((response.status_code, time.monotonic() - began))
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    return {"fresh": fresh, "errors": dict(errors)}


if __name__ == "__main__":
    url, seconds, user, timeout = sys.argv[1:5]
    print(json.dumps(asyncio.run(main(url, float(seconds), user, float(timeout)))), flush=True)

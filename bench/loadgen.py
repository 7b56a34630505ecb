"""Load generators: `wrk` when it is installed, else a lean asyncio HTTP/1.1 client.

Both run outside the process under test (wrk as its own program, the Python client in a
`bench.child loadgen` process) and answer with the same `CellResult`. A cell is `concurrency`
connections, each sending requests back to back for `duration_seconds`.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Cell:
    """What one measurement sends: where, with which headers, how hard and for how long."""

    url: str
    headers: dict[str, str]
    concurrency: int
    duration_seconds: float
    timeout_seconds: float = 60.0


@dataclass
class CellResult:
    """Latency in seconds, throughput in responses per second, `bytes` on the wire per body."""

    requests: int
    errors: int
    seconds: float
    p50_seconds: float | None
    p99_seconds: float | None
    requests_per_second: float
    body_bytes: int | None
    generator: str
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (`q` in 0..100) of unsorted values; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# --- wrk -------------------------------------------------------------------------------

_WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '@wrk {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p99_us": %d,'
    .. ' "errors": %d, "timeouts": %d}\\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50.0), latency:percentile(99.0),
    e.connect + e.read + e.write + e.status, e.timeout))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(cell: Cell, body_bytes: int | None) -> CellResult:
    """One cell with wrk (one thread: the other core is the server's)."""
    binary = wrk_path()
    if binary is None:
        raise RuntimeError("wrk is not installed")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT)
    try:
        args = [
            binary,
            "-t1",
            f"-c{cell.concurrency}",
            f"-d{max(1, math.ceil(cell.duration_seconds))}s",
            f"--timeout={math.ceil(cell.timeout_seconds)}s",
            "-s",
            script.name,
        ]
        for name, value in cell.headers.items():
            args += ["-H", f"{name}: {value}"]
        args.append(cell.url)
        out = subprocess.run(
            args, capture_output=True, text=True, check=True, timeout=cell.timeout_seconds * 3
        ).stdout
    finally:
        Path(script.name).unlink(missing_ok=True)
    line = next(x for x in out.splitlines() if x.startswith("@wrk "))
    data = json.loads(line.removeprefix("@wrk "))
    seconds = data["duration_us"] / 1e6
    done = data["requests"]
    notes = [f"{data['timeouts']} timeouts"] if data["timeouts"] else []
    return CellResult(
        requests=done,
        errors=data["errors"] + data["timeouts"],
        seconds=seconds,
        p50_seconds=data["p50_us"] / 1e6 if done else None,
        p99_seconds=data["p99_us"] / 1e6 if done else None,
        requests_per_second=done / seconds if seconds else 0.0,
        body_bytes=body_bytes,
        generator="wrk",
        notes=notes,
    )


# --- the Python client -----------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """Status, body length and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status, *_ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = connection == "keep-alive" if version == "HTTP/1.0" else connection != "close"
    if "content-length" in headers:
        length = int(headers["content-length"])
        await reader.readexactly(length)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        length = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            length += size
            if size == 0:
                break
    else:
        length = len(await reader.read())
        keep_alive = False
    return int(status), length, keep_alive


async def _connection(
    host: str,
    port: int,
    request: bytes,
    deadline: float,
    timeout_seconds: float,
    latencies: list[float],
    sizes: list[int],
    errors: list[str],
) -> None:
    """One scraper: requests back to back on a kept-alive connection until the deadline."""
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_seconds):
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(host, port, limit=1 << 23)
                writer.write(request)
                status, length, keep_alive = await _read_response(reader)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as err:
            errors.append(type(err).__name__)
            keep_alive = False
        else:
            if status == 200:
                latencies.append(time.perf_counter() - started)
                sizes.append(length)
            else:
                errors.append(f"HTTP {status}")
        if not keep_alive and writer is not None:
            writer.close()
            writer = reader = None
    if writer is not None:
        writer.close()


async def run_python(cell: Cell) -> CellResult:
    """One cell with the asyncio client; requests in flight at the deadline are finished."""
    parts = urlsplit(cell.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in cell.headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    latencies: list[float] = []
    sizes: list[int] = []
    errors: list[str] = []
    started = time.perf_counter()
    deadline = started + cell.duration_seconds
    await asyncio.gather(
        *(
            _connection(
                host, port, request, deadline, cell.timeout_seconds, latencies, sizes, errors
            )
            for _ in range(cell.concurrency)
        )
    )
    seconds = time.perf_counter() - started
    kinds = sorted(set(errors))
    return CellResult(
        requests=len(latencies),
        errors=len(errors),
        seconds=seconds,
        p50_seconds=percentile(latencies, 50),
        p99_seconds=percentile(latencies, 99),
        requests_per_second=len(latencies) / seconds if seconds else 0.0,
        body_bytes=max(sizes) if sizes else None,
        generator="python",
        notes=[f"errors: {', '.join(kinds)}"] if kinds else [],
    )

"""The bounded body reader (exporter.devin.body), through DevinClient: `max_response_bytes`,
counted after decompression."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from conftest import Recorder, answer
from fakes import SESSION_BODY
from pydantic import SecretStr

from exporter.devin.client import DevinClient
from exporter.devin.errors import DevinAPIError
from exporter.devin.retries import RetryPolicy
from exporter.devin.table import ENDPOINTS

KEY = "cog_LimitsTestKey0123456789abcdefghij"
ORG_SESSIONS = ENDPOINTS["v3_org_sessions"]
CAP = 64 * 2**10
# Tenacity would retry a transient failure at once with these.
RETRYING = RetryPolicy(attempts=3, initial_backoff_seconds=0.001, max_backoff_seconds=0.001)


def sized(size: int) -> bytes:
    """SESSION_BODY as JSON, padded with spaces to exactly `size` bytes."""
    text = json.dumps(SESSION_BODY).encode()
    assert len(text) <= size
    return text + b" " * (size - len(text))


def raw(status: int, content: bytes, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    """Answers `content` as the network would carry it: not decoded by httpx beforehand."""
    return lambda request: httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))


def deflated(data: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """About 64 kB of gzip that inflates to 64 MiB of zeros (a thousand times the cap)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(2**20)
    parts = [compressor.compress(zeros) for _ in range(64)]
    return b"".join([*parts, compressor.flush()])


async def fetch(client: DevinClient, org: str = "org-a") -> Any:
    return await client.fetch(ORG_SESSIONS, SecretStr(KEY), ORG_SESSIONS.call(org, 100, 200))


async def failure(client: DevinClient, org: str = "org-a") -> DevinAPIError:
    with pytest.raises(DevinAPIError) as caught:
        await fetch(client, org)
    return caught.value


async def test_a_body_over_the_cap_is_response_too_large(
    make_client: Callable[..., DevinClient],
) -> None:
    error = await failure(make_client(raw(200, sized(CAP + 1)), max_response_bytes=CAP))

    assert ("response_too_large", 200, False) == (error.reason, error.status, error.transient)
    assert f"more than {CAP} bytes" == error.detail


async def test_a_body_read_by_the_transport_already_is_capped_too(
    make_client: Callable[..., DevinClient],
) -> None:
    """httpx.MockTransport hands over responses already read; the cap still holds."""
    big = {**SESSION_BODY, "padding": "x" * CAP}

    error = await failure(make_client(answer(200, big), max_response_bytes=CAP))

    assert "response_too_large" == error.reason


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_a_body_exactly_at_the_cap_parses(
    make_client: Callable[..., DevinClient], encoding: str
) -> None:
    content = sized(CAP)
    if encoding == "gzip":
        content = gzip.compress(content)

    client = make_client(
        raw(200, content, **{"Content-Encoding": encoding}), max_response_bytes=CAP
    )

    assert 7 == (await fetch(client)).sessions_created_count


async def test_a_gzip_bomb_is_response_too_large_and_never_held_whole(
    make_client: Callable[..., DevinClient], bomb: bytes
) -> None:
    """64 MiB of zeros in about 64 kB of gzip: the client holds about the cap, not 64 MiB."""
    client = make_client(raw(200, bomb, **{"Content-Encoding": "gzip"}), max_response_bytes=CAP)

    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        error = await failure(client)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert ("response_too_large", f"more than {CAP} bytes after gzip decoding") == (
        error.reason,
        error.detail,
    )
    assert peak - baseline < 4 * CAP
    # No buffer of the answer lingers, not even in the frames of the error's traceback
    # (still alive here): what is left is a few small objects.
    assert after - baseline < CAP


async def test_response_too_large_is_never_retried(
    make_client: Callable[..., DevinClient],
) -> None:
    recorder = Recorder(raw(200, sized(CAP + 1)))
    retried: list[tuple[str, str]] = []
    client = make_client(
        recorder,
        max_response_bytes=CAP,
        retry=RETRYING,
        on_retry=lambda endpoint, reason: retried.append((endpoint, reason)),
    )

    error = await failure(client)

    assert ("response_too_large", 1, []) == (error.reason, len(recorder.requests), retried)


async def test_the_hook_counts_an_answer_too_large_as_received(
    make_client: Callable[..., DevinClient],
) -> None:
    seen: list[tuple[str, int]] = []
    client = make_client(
        raw(200, sized(CAP + 1)),
        max_response_bytes=CAP,
        on_response=lambda endpoint, status: seen.append((endpoint, status)),
    )

    await failure(client)

    assert [("v3_org_sessions", 200)] == seen


def long_body(head: bytes, sent: list[int]) -> httpx.Response:
    """A body of 16 MiB after `head`, sent 12 kB at a time; `sent` counts what was pulled.

    Long enough to stand for an endless one, and finite, so that a client that reads it
    whole fails the test instead of hanging it.
    """

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        for _ in range(16 * 2**20 // 12288):
            sent.append(12288)
            yield b"0, " * 4096

    return httpx.Response(200, content=chunks())


async def test_a_long_body_is_read_no_further_than_the_cap(
    make_client: Callable[..., DevinClient],
) -> None:
    sent: list[int] = []
    head = b'{"sessions_created_count": 1, "filler": ['
    client = make_client(lambda request: long_body(head, sent), max_response_bytes=CAP)

    error = await failure(client)

    assert "response_too_large" == error.reason
    assert sum(sent) <= CAP + 12288


async def test_an_error_body_is_read_no_further_than_64_kib(
    make_client: Callable[..., DevinClient],
) -> None:
    sent: list[int] = []

    def fail(request: httpx.Request) -> httpx.Response:
        response = long_body(b'{"detail": "nope", "filler": [', sent)
        response.status_code = 500
        return response

    error = await failure(make_client(fail))

    # Cut at 64 KiB, the body is no JSON: no detail.
    assert ("server_error", 500, "") == (error.reason, error.status, error.detail)
    assert sum(sent) <= 64 * 2**10 + 12288


async def test_a_gzip_error_body_is_decoded_within_64_kib(
    make_client: Callable[..., DevinClient],
) -> None:
    """4 MiB of error, nearly all of it trailing spaces: its first 64 KiB hold the detail."""
    content = gzip.compress(json.dumps({"detail": "nope"}).encode() + b" " * 4 * 2**20)
    client = make_client(raw(403, content, **{"Content-Encoding": "gzip"}))

    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        error = await failure(client)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert ("forbidden", "nope") == (error.reason, error.detail)
    assert peak - baseline < 4 * 64 * 2**10


async def test_a_gzip_body_sent_unasked_parses(
    make_client: Callable[..., DevinClient],
) -> None:
    recorder = Recorder(
        raw(200, gzip.compress(json.dumps(SESSION_BODY).encode()), **{"Content-Encoding": "gzip"})
    )

    answer_ = await fetch(make_client(recorder, max_response_bytes=CAP))

    assert 7 == answer_.sessions_created_count
    # Only what the client can decode within the cap is offered (not br, not zstd).
    assert "gzip, deflate" == recorder.requests[0].headers["Accept-Encoding"]


@pytest.mark.parametrize(
    "wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib-wrapped", "raw-deflate"]
)
async def test_a_deflate_body_is_decoded_within_the_cap(
    make_client: Callable[..., DevinClient], wbits: int
) -> None:
    small = deflated(json.dumps(SESSION_BODY).encode(), wbits)
    big = deflated(sized(CAP + 1), wbits)
    client = make_client(
        lambda request: httpx.Response(
            200,
            headers={"Content-Encoding": "deflate"},
            stream=httpx.ByteStream(big if "/big/" in request.url.path else small),
        ),
        max_response_bytes=CAP,
    )

    assert 7 == (await fetch(client)).sessions_created_count
    assert "response_too_large" == (await failure(client, org="big")).reason


@pytest.mark.parametrize(
    ("content", "encoding"),
    [
        (b"\x1f\x8b\x08\x00garbage, not deflate at all", "gzip"),
        (gzip.compress(json.dumps(SESSION_BODY).encode())[:-8], "gzip"),  # no trailer
        (b"not deflate either", "deflate"),
        (json.dumps(SESSION_BODY).encode(), "br"),
        (gzip.compress(gzip.compress(json.dumps(SESSION_BODY).encode())), "gzip, gzip"),
    ],
    ids=["corrupt-gzip", "truncated-gzip", "corrupt-deflate", "unsupported", "stacked"],
)
async def test_an_undecodable_body_is_invalid_response_and_not_retried(
    make_client: Callable[..., DevinClient], content: bytes, encoding: str
) -> None:
    recorder = Recorder(raw(200, content, **{"Content-Encoding": encoding}))

    error = await failure(make_client(recorder, retry=RETRYING))

    assert ("invalid_response", 200, 1) == (error.reason, error.status, len(recorder.requests))


async def test_a_key_echoed_in_a_content_encoding_is_redacted(
    make_client: Callable[..., DevinClient],
) -> None:
    error = await failure(make_client(raw(200, b"{}", **{"Content-Encoding": KEY})))

    assert "invalid_response" == error.reason
    assert "Content-Encoding not supported: <redacted>" == error.detail

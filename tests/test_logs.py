"""The log: one format for every logger, and no fragment of a key in any line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog

from exporter.logs import configure_logging

KEY = "cog_LogTestKey0123456789abcdefgh"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """A stream for the log; the root logger's handlers are put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield io.StringIO()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def fail_with_the_key() -> None:
    raise ValueError(f"token {KEY}")


def test_no_fragment_of_a_key_reaches_a_log_line_whatever_logs_it(stream: io.StringIO) -> None:
    configure_logging("debug", "logfmt", stream, secrets=[KEY])

    structlog.get_logger("test").warning("poll_failed", detail=f"echo {KEY[3:15]} back")
    logging.getLogger("aiohttp.server").error("bad request %s", KEY[:12])
    try:
        fail_with_the_key()
    except ValueError:
        structlog.get_logger("test").exception("boom")

    text = stream.getvalue()
    assert 3 == text.count("<redacted>")
    assert not any(KEY[i : i + 8] in text for i in range(len(KEY) - 7))


def test_json_lines_are_redacted_too(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream, secrets=[KEY])

    structlog.get_logger("test").info("event", peer=KEY)

    assert '"peer": "<redacted>"' in stream.getvalue()

"""The log: one format for every logger, and no fragment of a key in any line."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest
import structlog

from exporter.logs import RateLimitedLog, configure_logging

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


def test_rate_limited_lines_are_written_in_the_same_format_and_redacted(
    stream: io.StringIO,
) -> None:
    """RateLimitedLog writes through structlog: configure_logging's level, format and
    redaction apply to its lines, the count held back and the traceback included."""
    configure_logging("info", "logfmt", stream, secrets=[KEY])
    limited = RateLimitedLog(structlog.get_logger("exporter.web.listener"), clock=lambda: 0.0)

    for _ in range(2):
        limited.log(logging.WARNING, "http_request_rejected", reason="header_timeout", peer=KEY)
    limited.log(logging.DEBUG, "http_client_disconnected", reason="ConnectionResetError")
    try:
        fail_with_the_key()
    except ValueError as exc:
        limited.log(logging.ERROR, "http_handler_failed", reason="ValueError", exc_info=exc)
    limited.flush()

    text = stream.getvalue()
    lines = [re.sub(r"^ts=\S+ ", "", line) for line in text.splitlines()]
    first, failed_with_traceback, flushed = lines  # the debug line is below the level
    failed, traceback = failed_with_traceback.split(" exception=", 1)
    assert [
        "level=warning event=http_request_rejected reason=header_timeout peer=<redacted>",
        "level=error event=http_handler_failed reason=ValueError",
        "level=warning event=http_request_rejected reason=header_timeout suppressed=1",
    ] == [first, failed, flushed]
    assert traceback.startswith('"Traceback (most recent call last)')
    assert "ValueError: token <redacted>" in traceback
    assert not any(KEY[i : i + 8] in text for i in range(len(KEY) - 7))

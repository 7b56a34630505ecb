"""Structured logs on stderr, as logfmt or JSON lines: `event key=value ...`."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import TextIO

import structlog

from exporter.devin.redact import Redactor

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(
    level: str, fmt: str, stream: TextIO = sys.stderr, *, secrets: Iterable[str] = ()
) -> None:
    """Send structlog and the standard library's loggers to `stream` in one format.

    Every field of every line, tracebacks included, loses any fragment of `secrets`
    (the configured keys) before it is written.
    """
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.processors.LogfmtRenderer(
            key_order=["ts", "level", "event"], drop_missing=True
        )
    )
    shared: list[structlog.typing.Processor] = [
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
    ]
    # Standard-library records (ours and libraries'): `extra=` fields become fields too.
    foreign: list[structlog.typing.Processor] = [*shared, structlog.stdlib.ExtraAdder()]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=foreign,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,  # tracebacks as text, not a tuple
                _drop_none,
                _Redact(Redactor(secrets)),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    # httpx logs every request at INFO; the poll log already says what matters.
    for noisy in ("httpx", "httpcore", "apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, _LEVELS[level]))


class _Redact:
    """A processor that redacts key fragments from every value of a log line."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    def __call__(
        self, logger: object, method: str, event: structlog.typing.EventDict
    ) -> structlog.typing.EventDict:
        return {key: self._value(value) for key, value in event.items()}

    def _value(self, value: object) -> object:
        if isinstance(value, str):
            return self._redactor(value)
        if value is None or isinstance(value, int | float):
            return value
        text = str(value)  # what the renderer would write
        return self._redactor(text) if self._redactor.leaks(text) else value


def _drop_none(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    return {k: v for k, v in event.items() if v is not None}


class RateLimitedLog:
    """At most one line per (event, reason) per interval; the lines held back are counted.

    The first line of a kind goes out at once; the next ones within `interval_seconds` are
    only counted, and the first line after the interval carries `suppressed=N`. A client
    that sends a thousand bad requests a second thus costs one line per kind per interval.
    Reasons must come from a small fixed set (exception classes, errno names), never from
    what a client sent: each one is remembered. `logger` is a structlog logger
    (`structlog.get_logger(name)`); `level` is a standard level number (`logging.WARNING`).
    """

    def __init__(
        self,
        logger: structlog.stdlib.BoundLogger,
        *,
        interval_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval_seconds = interval_seconds
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], tuple[int, int]] = {}  # key -> (level, count)

    def log(
        self,
        level: int,
        event: str,
        *,
        reason: str,
        exc_info: BaseException | None = None,
        **fields: object,
    ) -> bool:
        """Log `event reason=... field=...` unless one of its kind went out too recently;
        True if this one did."""
        key = (event, reason)
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_seconds:
            self._held[key] = (level, self._held.get(key, (level, 0))[1] + 1)
            return False
        self._last[key] = now
        _, suppressed = self._held.pop(key, (level, 0))
        self._emit(level, event, reason, exc_info, {**fields, "suppressed": suppressed or None})
        return True

    def flush(self) -> None:
        """Log the counts still held back (at shutdown), one line per kind."""
        for (event, reason), (level, count) in self._held.items():
            self._emit(level, event, reason, None, {"suppressed": count})
        self._held.clear()

    def _emit(
        self,
        level: int,
        event: str,
        reason: str,
        exc_info: BaseException | None,
        fields: dict[str, object],
    ) -> None:
        present = {k: v for k, v in fields.items() if v is not None}
        if exc_info is not None:
            present["exc_info"] = exc_info
        self._logger.log(level, event, reason=reason, **present)

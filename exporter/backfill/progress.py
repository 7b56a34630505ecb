"""Progress on stderr: a bar with its ETA on a terminal, a log line now and then otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

import structlog
from tqdm import tqdm

log = structlog.get_logger("exporter.backfill")

LOG_EVERY_SECONDS = 10.0


class Progress:
    """Counts steps done; shows them as a bar on a terminal, or logs every few seconds."""

    def __init__(self, total: int, done: int = 0, stream: TextIO | None = None) -> None:
        stream = sys.stderr if stream is None else stream
        self.total, self.done = total, done
        self._bar = (
            tqdm(total=total, initial=done, unit="step", file=stream, dynamic_ncols=True)
            if stream.isatty()
            else None
        )
        self._started = time.monotonic()
        self._first = done
        self._logged = self._started

    def step(self) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
            return
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY_SECONDS or self.done == self.total:
            self._logged = now
            rate = (self.done - self._first) / max(now - self._started, 1e-9)
            left = (self.total - self.done) / rate if rate else None
            log.info(
                "backfill_progress",
                steps_done=self.done,
                steps=self.total,
                eta_seconds=None if left is None else round(left),
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

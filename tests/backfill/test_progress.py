"""Progress on stderr: a bar on a terminal, log lines otherwise."""

from __future__ import annotations

import io

import structlog

from exporter.backfill.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_the_steps_done() -> None:
    stream = Terminal()
    progress = Progress(4, done=1, stream=stream)
    for _ in range(3):
        progress.step()
    progress.close()
    assert "4/4" in stream.getvalue()
    assert "step" in stream.getvalue()


def test_elsewhere_the_last_step_is_logged_with_its_count_and_nothing_is_drawn() -> None:
    stream = io.StringIO()
    with structlog.testing.capture_logs() as logs:
        progress = Progress(2, stream=stream)
        progress.step()
        progress.step()
        progress.close()
    assert "" == stream.getvalue()
    assert {"event": "backfill_progress", "steps_done": 2, "steps": 2} in [
        {k: v for k, v in line.items() if k in ("event", "steps_done", "steps")} for line in logs
    ]

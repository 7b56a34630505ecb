"""The parent's side of `bench.child`: start a role, talk to it, read its memory and CPU."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

ROOT = Path(__file__).resolve().parent.parent
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class ChildFailed(RuntimeError):
    """A child process died or did not answer; the message ends with its stderr."""


class Child:
    """One `python -m bench.child ROLE ARGS` process; `hello` is its first `@bench` line."""

    def __init__(
        self, role: str, args: dict[str, Any], log_dir: Path, *, timeout: float = 120.0
    ) -> None:
        self.role = role
        self.log_path = log_dir / f"{role}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        self._lines: queue.Queue[str | None] = queue.Queue()
        # Wall time before the interpreter starts: what "start-up time" counts from.
        self.spawned_at = time.time()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.child", role, json.dumps(args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=ROOT,
        )
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=self._pump, args=(stdout,), daemon=True).start()
        try:
            self.hello = self.read(timeout)
        except BaseException:
            self.close()
            raise

    def _pump(self, stdout: IO[str]) -> None:
        for line in stdout:
            if line.startswith("@bench "):
                self._lines.put(line.removeprefix("@bench "))
        self._lines.put(None)

    @property
    def pid(self) -> int:
        return self.process.pid

    def read(self, timeout: float = 600.0) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise ChildFailed(f"{self.role}: no answer in {timeout:.0f}s{self._tail()}") from None
        if line is None:
            raise ChildFailed(f"{self.role}: exited ({self.process.poll()}){self._tail()}")
        message: dict[str, Any] = json.loads(line)
        if "error" in message:
            raise ChildFailed(f"{self.role}: {message['error']}{self._tail()}")
        return message

    def ask(self, command: dict[str, Any], timeout: float = 600.0) -> dict[str, Any]:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        return self.read(timeout)

    def _tail(self) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n" + text[-3000:] if text.strip() else ""

    def memory_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) of the process, in KiB."""
        fields: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
        return fields

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process (all its threads) so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND

    def wait_idle(self, within_seconds: float = 120.0) -> None:
        """Until the process burns under 10% of a core: left-over requests are done."""
        deadline = time.monotonic() + within_seconds
        before = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.cpu_seconds()
            if now - before < 0.02:
                return
            before = now

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                stdin = self.process.stdin
                if stdin is not None:
                    stdin.write('{"cmd": "quit"}\n')
                    stdin.close()
                self.process.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

"""Where a backfill's samples wait, on disk, until they are written family by family.

Steps are computed time first, but OpenMetrics wants every family's samples together and
each series' samples in time order; an SQLite file beside the output holds them in
between, so memory does not grow with the range. The output is written to a temporary
file and renamed over PATH, so PATH is always a whole, valid OpenMetrics file.
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_fd_to_metric_families
from prometheus_client.utils import floatToGoString

from exporter.files import replacing

_SCHEMA = """
CREATE TABLE family (name TEXT PRIMARY KEY, type TEXT, help TEXT, unit TEXT);
CREATE TABLE sample (
    family TEXT, name TEXT, labels TEXT, ts INTEGER, value REAL,
    PRIMARY KEY (family, name, labels, ts)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Written:
    """What went into the output file."""

    families: int
    series: int
    samples: int


class Spool:
    """The samples of the steps done so far, in a temporary SQLite file."""

    def __init__(self, directory: Path) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix=".backfill-", dir=directory)
        self._db = sqlite3.connect(Path(self._dir.name) / "samples.sqlite")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()

    def add(self, t: int, families: Iterable[Metric]) -> None:
        """Every sample of these families, at time t (replacing any there were)."""
        with self._db:
            for family in families:
                self._db.execute(
                    "INSERT OR IGNORE INTO family VALUES (?, ?, ?, ?)",
                    (family.name, family.type, family.documentation, family.unit),
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO sample VALUES (?, ?, ?, ?, ?)",
                    ((family.name, s.name, _labels(s.labels), t, s.value) for s in family.samples),
                )

    def drop(self, times: Iterable[int]) -> None:
        """Forget every sample at these times (steps to be done again)."""
        with self._db:
            self._db.executemany("DELETE FROM sample WHERE ts = ?", ((t,) for t in times))

    def resume(self, path: Path, done: set[int]) -> None:
        """Take an earlier run's output back, but for the steps it did not finish."""
        if path.exists():
            self.drop(self.load(path) - done)

    def load(self, path: Path) -> set[int]:
        """Read an earlier run's output (strictly, as OpenMetrics) into the spool, a family
        at a time; the times it holds."""
        times: set[int] = set()
        with path.open(encoding="utf-8") as text:
            for family in text_fd_to_metric_families(text):  # type: ignore[no-untyped-call]
                by_time: dict[int, Metric] = {}
                for s in family.samples:
                    if s.timestamp is None:
                        raise ValueError(f"{path}: {s.name} has a sample without a timestamp")
                    t = int(float(s.timestamp))
                    at = by_time.get(t)
                    if at is None:
                        doc, kind, unit = family.documentation, family.type, family.unit
                        at = by_time[t] = Metric(family.name, doc, kind, unit)
                    at.samples.append(s)
                for t, at in by_time.items():
                    self.add(t, [at])
                times |= by_time.keys()
        return times

    def write(self, path: Path) -> Written:
        """The whole spool as OpenMetrics text at `path`, replaced atomically."""
        families = series = samples = 0
        with replacing(path) as out:
            for name, kind, help_text, unit in self._db.execute(
                "SELECT name, type, help, unit FROM family ORDER BY name"
            ).fetchall():
                rows = self._db.execute(
                    "SELECT name, labels, ts, value FROM sample WHERE family = ? "
                    "ORDER BY name, labels, ts",
                    (name,),
                )
                first = True
                previous: tuple[str, str] | None = None
                for sample_name, labels, ts, value in rows:
                    if first:
                        families += 1
                        out.write(
                            f"# HELP {name} {_escape_help(help_text)}\n# TYPE {name} {kind}\n"
                        )
                        if unit:
                            out.write(f"# UNIT {name} {unit}\n")
                        first = False
                    if (sample_name, labels) != previous:
                        series += 1
                        previous = (sample_name, labels)
                    samples += 1
                    out.write(f"{sample_name}{labels} {_value(value)} {ts}\n")
            out.write("# EOF\n")
        return Written(families, series, samples)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    pairs = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels.items()))
    return "{" + pairs + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]

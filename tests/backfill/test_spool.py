"""The spool's output: valid OpenMetrics as a strict parser reads it, written atomically."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter.backfill.spool import Spool


def family(name: str, samples: dict[str, float]) -> GaugeMetricFamily:
    metric = GaugeMetricFamily(name, f'What "{name}" is,\nin a line.', labels=["org"])
    for org, value in samples.items():
        metric.add_metric([org], value)
    return metric


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool(tmp_path)
    yield spool
    spool.close()


def parsed(path: Path) -> dict[str, list[tuple[dict[str, str], float, float]]]:
    return {
        f.name: [(s.labels, s.value, float(s.timestamp)) for s in f.samples]
        for f in text_string_to_metric_families(path.read_text(encoding="utf-8"))
    }


def test_steps_written_time_first_come_out_family_by_family_in_time_order(
    spool: Spool, tmp_path: Path
) -> None:
    # Steps finish out of order, as concurrent steps do.
    for t in (7200, 3600, 10800):
        spool.add(
            t, [family("devin_a", {"x": t / 3600, 'q"\\\n': 1.5}), family("devin_b", {"x": -t})]
        )
    out = tmp_path / "out.om"
    written = spool.write(out)
    assert (2, 3, 9) == (written.families, written.series, written.samples)
    assert out.read_text(encoding="utf-8").endswith("# EOF\n")
    assert {
        "devin_a": [
            ({"org": 'q"\\\n'}, 1.5, 3600.0),
            ({"org": 'q"\\\n'}, 1.5, 7200.0),
            ({"org": 'q"\\\n'}, 1.5, 10800.0),
            ({"org": "x"}, 1.0, 3600.0),
            ({"org": "x"}, 2.0, 7200.0),
            ({"org": "x"}, 3.0, 10800.0),
        ],
        "devin_b": [({"org": "x"}, -t, t) for t in (3600.0, 7200.0, 10800.0)],
    } == parsed(out)


def test_an_earlier_output_comes_back_but_for_its_unfinished_steps(
    spool: Spool, tmp_path: Path
) -> None:
    for t in (3600, 7200):
        spool.add(t, [family("devin_a", {"x": t})])
    out = tmp_path / "out.om"
    spool.write(out)
    again = Spool(tmp_path)
    try:
        again.resume(out, done={3600})
        again.write(out)
    finally:
        again.close()
    assert {"devin_a": [({"org": "x"}, 3600.0, 3600.0)]} == parsed(out)


def test_the_spool_leaves_nothing_behind(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.add(3600, [family("devin_a", {"x": 1})])
    spool.write(tmp_path / "out.om")
    spool.close()
    assert ["out.om"] == sorted(p.name for p in tmp_path.iterdir())

"""Each metric family module's exposition of a hand-made snapshot, against a golden file.

Run `make golden` (UPDATE_GOLDEN=1) to write the files again after a deliberate change,
and review them as a diff.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporter.metrics import families
from exporter.metrics.registry import collectors

from .snapshot import view

GOLDEN = Path(__file__).parent / "golden"
MODULES = sorted(m.name for m in pkgutil.iter_modules(families.__path__))


def exposition(module: str) -> str:
    """What the module's collectors render of the hand-made snapshot (text format)."""
    registry = CollectorRegistry(auto_describe=False)
    shown = view()
    for collector in importlib.import_module(f"{families.__name__}.{module}").COLLECTORS:
        registry.register(collector(shown))
    return generate_latest(registry).decode()


@pytest.mark.parametrize("module", MODULES)
def test_the_family_module_renders_its_golden_exposition(module: str) -> None:
    golden = GOLDEN / f"{module}.prom"
    actual = exposition(module)
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(actual, encoding="utf-8")
    assert golden.exists(), f"no {golden.name}: run make golden"
    assert golden.read_text(encoding="utf-8") == actual


def test_every_module_has_a_golden_file_with_samples_of_each_family() -> None:
    """The snapshot must hold a value for every family: a family with no sample in its
    golden file is a family the golden files do not pin."""
    assert {f"{m}.prom" for m in MODULES} == {p.name for p in GOLDEN.glob("*.prom")}
    for module in MODULES:
        lines = exposition(module).splitlines()
        declared = {line.split()[2] for line in lines if line.startswith("# TYPE ")}
        sampled = {line.split("{")[0].split(" ")[0] for line in lines if not line.startswith("#")}
        bare = {d for d in declared if not any(s.startswith(d) for s in sampled)}
        assert set() == bare, module
    assert len(collectors()) >= len(MODULES)


def test_the_golden_expositions_pass_promtool(tmp_path: Path) -> None:
    from conftest import require_tool

    promtool = require_tool("promtool")
    for module in MODULES:
        result = subprocess.run(
            [promtool, "check", "metrics"],
            input=(GOLDEN / f"{module}.prom").read_bytes(),
            capture_output=True,
            check=False,
        )
        assert (0, b"") == (result.returncode, result.stdout + result.stderr), module
